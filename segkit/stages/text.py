r"""Text from the data, made safe for the reports.

Arm names, segment names, category values and column names come from the user's files and
end up in Markdown findings, which nbconvert renders to HTML (and MathJax would typeset
``$...$``). :func:`md` escapes a data value for Markdown; :func:`safe_markdown` is the net
under every finding (:func:`segkit.stages.run.show_findings`): no raw HTML element and no
math survives it; :func:`plain` turns a finding back into plain text for an HTML index.

>>> md("<img src=x> *a* $1_b")
'&lt;img src=x&gt; \\*a\\* \\$1\\_b'
>>> safe_markdown("arm <b>x</b> earned $5")
'arm &lt;b&gt;x&lt;/b&gt; earned \\$5'
>>> plain(md("<img> $0-100"))
'<img> $0-100'
"""

from __future__ import annotations

import html
import re
from typing import Any

_MD_SPECIALS = re.compile(r"([\\`*_\[\]|~$])")
_ESCAPED = re.compile(r"\\([\\`*_\[\]|~$])")
_DOLLAR = re.compile(r"(?<!\\)\$")


def md(text: Any) -> str:
    """``text`` safe inside Markdown: HTML escaped, Markdown and math specials escaped."""
    return _MD_SPECIALS.sub(r"\\\1", html.escape(str(text), quote=False))


def safe_markdown(text: Any) -> str:
    """A finding with any raw HTML element neutralised and ``$`` kept literal."""
    text = str(text).replace("<", "&lt;").replace(">", "&gt;")
    return _DOLLAR.sub(r"\\$", text)


def plain(text: Any) -> str:
    """A Markdown finding as plain text: escapes undone (for an HTML page that escapes)."""
    return html.unescape(_ESCAPED.sub(r"\1", str(text)))
