"""HTML reports: one self-contained page per stage (no code, nothing from the network),
and the index page of a run and of a batch."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from segkit.core.files import atomic_write_text
from segkit.stages.text import plain

# Any <script src="http..."> or <link href="http..."> makes a report need the network.
EXTERNAL = re.compile(r"<(script|link)\b[^>]*(src|href)=\"https?://[^\"]*\"[^>]*>(\s*</script>)?")
_PRINT_CSS = """<style>
@media print { .jp-Cell, img { break-inside: avoid; } body { background: white; } }
body { max-width: 1100px; margin: auto; }
</style>"""
_STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse}th{border-bottom:2px solid #999}
td,th{padding:.3em .8em;text-align:left;vertical-align:top}
td.num,th.num{white-space:nowrap;text-align:right}
tr.headline td{border-bottom:1px solid #ddd;color:#444;padding-bottom:.7em}
.failed{color:#b00}.skipped{color:#888}.ok{color:#070}"""


def _errors_for_readers(nb: Any) -> None:
    """Replace each error output (a traceback with file paths) by its message and a hint.

    The executed notebook in the run folder keeps the full traceback for whoever debugs it.
    """
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        for i, out in enumerate(outputs):
            if out.get("output_type") != "error":
                continue
            message = html.escape(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
            outputs[i] = {
                "output_type": "display_data",
                "metadata": {},
                "data": {
                    "text/html": (
                        "<div class='segkit-error'><p><b>This stage failed.</b></p>"
                        f"<pre>{message}</pre><p>What to do: correct the input or parameter "
                        "the message names and rerun; the executed notebook in the run "
                        "folder holds the full traceback.</p></div>"
                    ),
                    "text/plain": message,
                },
            }


def export_html(nb_path: Path, html_path: Path, title: str) -> Path:
    """Self-contained HTML of an executed notebook: no code, no network resources."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    _errors_for_readers(nb)
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = EXTERNAL.sub("", body).replace("</head>", _PRINT_CSS + "</head>", 1)
    return atomic_write_text(html_path, describe_images(body, title))


_DEFAULT_ALT = 'alt="No description has been provided for this image"'
_HEADING_OR_IMG = re.compile(
    r"<h([1-3])[^>]*>(.*?)</h\1>(?:\s*<p>(.*?)</p>)?|" + re.escape(_DEFAULT_ALT), re.S
)


def _text(fragment: str | None) -> str:
    """An HTML fragment as plain text: tags and the anchor mark dropped, entities undone."""
    text = re.sub(r"<[^>]+>", "", fragment or "").replace("¶", "")
    return " ".join(html.unescape(text).split())


def _first_sentence(paragraph: str | None) -> str:
    """The first sentence of an HTML paragraph as plain text ("" without one)."""
    text = _text(paragraph)
    first = re.split(r"(?<=[.:;])\s", text, maxsplit=1)[0]
    return first if len(first) <= 200 else first[:197].rsplit(" ", 1)[0] + "…"


def describe_images(body: str, title: str) -> str:
    """Give every figure an alt text: the heading of the section it illustrates and the
    first sentence of the section's text (what the chart shows), when there is one.

    >>> describe_images('<h2 id="x">Revenue over time<a>¶</a></h2><img alt="No description has been provided for this image">', "explore")
    '<h2 id="x">Revenue over time<a>¶</a></h2><img alt="explore: Revenue over time (chart)">'
    >>> describe_images('<h2>Sizes</h2> <p>Share of customers. More.</p><img alt="No description has been provided for this image">', "profile")
    '<h2>Sizes</h2> <p>Share of customers. More.</p><img alt="profile: Sizes: Share of customers. (chart)">'
    """
    heading = title

    def swap(m: re.Match) -> str:
        nonlocal heading
        if m.group(2) is not None:
            heading = _text(m.group(2)) or heading
            said = _first_sentence(m.group(3))
            heading += f": {said}" if said else ""
            return m.group(0)
        return f'alt="{html.escape(f"{title}: {heading} (chart)")}"'

    return _HEADING_OR_IMG.sub(swap, body)


#: The columns of the grid index's comparison: (row key, heading, right-aligned).
_COMPARE = (
    ("k", "k", True),
    ("sizes", "segment sizes (customers)", True),
    ("clv", "total CLV (95% range)", True),
    ("campaign", "best campaign (all customers)", False),
)


def batch_index(name: str, rows: list[dict[str, Any]]) -> str:
    """The index page of a batch: each run's status and headline, then the runs side by
    side (k, segment sizes, total CLV, best campaign; the keys of
    :func:`segkit.pipeline.batch.run_facts`, shown when any run has them), each run
    linking to its summary page."""
    shown = [c for c in _COMPARE if any(r.get(c[0]) for r in rows)]
    head = "".join(f"<th{' class=num' if num else ''}>{h}</th>" for _, h, num in shown)
    cells = ""
    for r in rows:
        folder = html.escape(r["folder"])
        status = "ok" if r["ok"] else "failed"
        facts = "".join(
            f"<td{' class=num' if num else ''}>{html.escape(str(r.get(key) or '–'))}</td>"
            for key, _, num in shown
        )
        # the headline on its own line under the run's numbers, as wide as the table
        cells += (
            f"<tr class='run'><td><a href='{folder}/index.html' title='the run summary'>"
            f"{folder}</a></td><td class='{status}'>{status}</td>{facts}</tr>"
            f"<tr class='headline'><td></td><td colspan='{len(shown) + 1}'>"
            f"{html.escape(plain(r['text']) or '–')}</td></tr>"
        )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>segkit batch {html.escape(name)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>segkit batch: {html.escape(name)}</h1><p>The runs side by side, each with its "
        "headline underneath; a run's name opens its summary (segments, value, campaigns) "
        "and from there its stage reports.</p>"
        f"<table><tr><th>run (summary)</th><th>status</th>{head}</tr>{cells}</table>"
        "</body></html>"
    )
