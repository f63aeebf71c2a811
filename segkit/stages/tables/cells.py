"""Cells and tables for people: the formatting core of :mod:`segkit.stages.tables`.

Every table a stage notebook shows goes through :func:`show` (or one of the per-table
formatters of :mod:`segkit.stages.tables.by_stage`, which choose the columns a reader needs
and call it). The rules:

- no index column; thousands separators; money with ``report.currency`` ("€1,234,568");
  shares as percentages ("20%"); p-values as "< 0.001"; intervals in one cell
  ("7.0 to 8.3 pts", "-€2.38 to €3.56");
- a missing value is a dash "–" and a footnote says what a dash means (never ``NaN``);
- text is never cut: it wraps (HTML) or continues on the next line (plain text);
- wide tables are reduced to the columns a reader needs, and the full table is a CSV
  artifact of the run folder, linked under the table;
- a number that cannot be trusted (an interval bound over 10^6 times the estimate, a CLV
  parameter the fit flags as weakly identified) reads "not identified", with the reason.

The result is a :class:`Table`: ``_repr_html_`` for the report and a deterministic
plain-text ``__repr__`` of the same formatted values (nbval compares the text output, so
it must carry the numbers, not ``<Styler object at 0x…>``).

Why pandas' Styler and not Great Tables: both render HTML tables offline. Great Tables
1.1.0 was tried (installed apart, ``pip install --target``): its default HTML holds no
network URL, and only ``opt_table_font(font=google_font(...))`` adds a Google Fonts
``@import``. But the rules above are segkit's own (the currency comes from a parameter,
an interval's decimals follow its width, "not identified" depends on the estimate), so
either library would only lay out cells segkit has already written. Styler does that with
what is installed (pandas + jinja2); Great Tables would add ten packages to the
environment and the lock file (itself, htmltools, multimark, faicons, nokap,
lazy_importer, importlib_metadata, importlib_resources, websockets, zipp) for no rule we
need. The cells are formatted here once, as text, and the HTML and the plain-text views
show that same text.
"""

from __future__ import annotations

import hashlib
import html
import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from pandas.io.formats.style import Styler

from segkit.core.errors import SegkitError

if TYPE_CHECKING:
    from segkit.stages.run import Run

DASH = "–"
DASH_NOTE = "– no value: not applicable or not computed for this row."
NOT_IDENTIFIED = "not identified"
#: An interval bound further than this many times the estimate from zero means the data
#: do not pin the number down (issue 17: e.g. a Pareto/NBD beta of 2.7e259).
UNTRUSTED_RATIO = 1e6
#: Plain-text cells wrap at this many characters (the HTML wraps by CSS).
TEXT_WIDTH = 40


# ----------------------------------------------------------------------------- cells


def is_missing(v: Any) -> bool:
    """Whether a cell has no value: None, NaN, NA or NaT (shown as a dash).

    >>> is_missing(None), is_missing(float("nan")), is_missing(pd.NA), is_missing("x")
    (True, True, True, False)
    """
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def auto_decimals(v: float) -> int:
    """Decimals for a number read by a person: 2 below 10, 1 below 1,000, else 0."""
    a = abs(v)
    return 2 if a < 10 else 1 if a < 1000 else 0


def _signed(text: str, negative: bool) -> str:
    return f"-{text}" if negative else text


def fmt_int(v: Any) -> str:
    """A count with thousands separators: ``1234567`` -> "1,234,567"; missing -> "–"."""
    return DASH if is_missing(v) else f"{round(float(v)):,}"


def fmt_num(v: Any, decimals: int | None = None) -> str:
    """A number with thousands separators; decimals chosen from its size unless given.

    >>> fmt_num(1234.5678), fmt_num(12.345), fmt_num(0.8200), fmt_num(3, 1)
    ('1,235', '12.3', '0.82', '3.0')
    """
    if is_missing(v):
        return DASH
    v = float(v)
    if not math.isfinite(v):
        return NOT_IDENTIFIED
    d = auto_decimals(v) if decimals is None else decimals
    return f"{v:,.{d}f}"


def fmt_money(v: Any, currency: str = "", decimals: int | None = None) -> str:
    """Money with the currency first: 2 decimals below 100, none above.

    >>> fmt_money(1234567.891, "€"), fmt_money(-0.403, "$"), fmt_money(12.3, "")
    ('€1,234,568', '-$0.40', '12.30')
    """
    if is_missing(v):
        return DASH
    v = float(v)
    if not math.isfinite(v):
        return NOT_IDENTIFIED
    d = (2 if abs(v) < 100 else 0) if decimals is None else decimals
    return _signed(f"{currency}{abs(v):,.{d}f}", v < 0 and round(abs(v), d) > 0)


def fmt_pct(v: Any, decimals: int | None = None) -> str:
    """A share (0-1) as a percentage: 1 decimal below 10 %, none above.

    >>> fmt_pct(0.197), fmt_pct(0.004), fmt_pct(1.0)
    ('20%', '0.4%', '100%')
    """
    if is_missing(v):
        return DASH
    p = 100 * float(v)
    d = (1 if abs(p) < 10 else 0) if decimals is None else decimals
    return f"{p:,.{d}f}%"


def fmt_p(v: Any) -> str:
    """A p-value: three decimals, "< 0.001" below.

    >>> fmt_p(0.0005), fmt_p(0.0024), fmt_p(0.348)
    ('< 0.001', '0.002', '0.348')
    """
    if is_missing(v):
        return DASH
    return "< 0.001" if float(v) < 0.001 else f"{float(v):.3f}"


def fmt_bool(v: Any) -> str:
    """True/False as "yes"/"no"."""
    return DASH if is_missing(v) else ("yes" if bool(v) else "no")


def untrusted(estimate: Any, low: Any, high: Any) -> str | None:
    """Why an interval cannot be trusted, or None: a bound over 10^6 times the estimate.

    >>> untrusted(161.3, 90.9, 2.69e259)
    'an interval bound is over 1,000,000 times the estimate'
    >>> untrusted(7.9, 5.3, 11.7) is None
    True
    """
    if any(is_missing(x) for x in (estimate, low, high)):
        return None
    bound = max(abs(float(low)), abs(float(high)))
    if not math.isfinite(bound) or bound > UNTRUSTED_RATIO * abs(float(estimate)):
        return f"an interval bound is over {UNTRUSTED_RATIO:,.0f} times the estimate"
    return None


def fmt_interval(low: Any, high: Any, unit: str = "num", currency: str = "") -> str:
    """An interval in one cell, both ends with the same decimals (from its width).

    ``unit``: "num", "money" (with ``currency``), "pct" (shares shown as %), "pts"
    (differences of shares, in percentage points).

    >>> fmt_interval(0.070, 0.083, "pts"), fmt_interval(-2.376, 3.557, "money", "€")
    ('7.0 to 8.3 pts', '-€2.38 to €3.56')
    """
    if is_missing(low) or is_missing(high):
        return DASH
    lo, hi = float(low), float(high)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return NOT_IDENTIFIED
    if unit in ("pct", "pts"):
        lo, hi = 100 * lo, 100 * hi
    width = abs(hi - lo)
    # two significant digits of the width; at least one decimal below a width of 100
    d = 1 - math.floor(math.log10(width)) if width > 0 else 2
    d = min(max(d, 1 if width < 100 else 0), 4)
    if unit == "money":
        d = 2 if d >= 1 else 0
        return f"{fmt_money(lo, currency, d)} to {fmt_money(hi, currency, d)}"
    if unit == "pct":
        return f"{lo:,.{d}f}% to {hi:,.{d}f}%"
    return f"{lo:,.{d}f} to {hi:,.{d}f}" + (" pts" if unit == "pts" else "")


def fmt_sig(v: Any, digits: int = 4) -> str:
    """A model parameter to ``digits`` significant digits, with thousands separators."""
    if is_missing(v):
        return DASH
    v = float(v)
    if not math.isfinite(v):
        return NOT_IDENTIFIED
    if v == 0:
        return "0"
    d = max(digits - 1 - math.floor(math.log10(abs(v))), 0)
    return f"{v:,.{d}f}"


# ----------------------------------------------------------------------------- tables


CELL_KINDS = frozenset({"text", "int", "num", "money", "pct", "p", "bool", "sig", "pre"})
INTERVAL_KINDS = frozenset({"num", "money", "pct", "pts"})


@dataclass(frozen=True)
class Col:
    """One column of a formatted table.

    ``source``: a column of the data, or ``(low, high)`` for an interval in one cell;
    ``kind``: text, int, num, num:D (D decimals), money, pct, p, bool, sig (significant
    digits), pre (formatted already, aligned as a number), or for an interval its unit
    (num, money, pct, pts); ``estimate``: the column an interval is
    checked against (:func:`untrusted`).
    """

    source: str | tuple[str, str]
    label: str
    kind: str = "text"
    estimate: str | None = None

    def __post_init__(self) -> None:
        kinds = INTERVAL_KINDS if isinstance(self.source, tuple) else CELL_KINDS
        if self.kind not in kinds and not (
            self.kind.startswith("num:") and self.kind[4:].isdigit() and kinds is CELL_KINDS
        ):
            raise SegkitError(
                f"table column {self.source!r}: kind {self.kind!r}, must be one of "
                f"{sorted(kinds)}" + (" or num:D" if kinds is CELL_KINDS else "")
            )

    @property
    def columns(self) -> tuple[str, ...]:
        return self.source if isinstance(self.source, tuple) else (self.source,)

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


def _cell(col: Col, row: pd.Series, currency: str) -> str:
    """One formatted cell of ``row``."""
    if isinstance(col.source, tuple):
        lo, hi = row[col.source[0]], row[col.source[1]]
        if col.estimate is not None and untrusted(row[col.estimate], lo, hi):
            return NOT_IDENTIFIED
        return fmt_interval(lo, hi, col.kind, currency)
    v = row[col.source]
    if col.kind == "pre":  # formatted upstream (per-row units), aligned as a number
        return DASH if is_missing(v) or str(v) == "" else str(v)
    if col.kind.startswith("num:"):
        return fmt_num(v, int(col.kind[4:]))
    if col.kind == "text":
        return DASH if is_missing(v) or str(v).strip() == "" else str(v)
    if col.kind == "money":
        return fmt_money(v, currency)
    formatter: dict[str, Callable[[Any], str]] = {
        "int": fmt_int,
        "num": fmt_num,
        "pct": fmt_pct,
        "p": fmt_p,
        "bool": fmt_bool,
        "sig": fmt_sig,
    }
    return formatter[col.kind](v)


def _auto_cols(df: pd.DataFrame) -> list[Col]:
    """Columns inferred from the dtypes: counts, numbers, yes/no, text."""
    cols = []
    for c in df.columns:
        s = df[c]
        kind = (
            "bool"
            if pd.api.types.is_bool_dtype(s)
            else "int"
            if pd.api.types.is_integer_dtype(s)
            else "num"
            if pd.api.types.is_numeric_dtype(s)
            else "text"
        )
        cols.append(Col(str(c), str(c).replace("_", " "), kind))
    return cols


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]


class Table:
    """A formatted table: every cell already text; renders as HTML and as plain text."""

    def __init__(
        self,
        head: Sequence[str],
        rows: Sequence[Sequence[str]],
        numeric: Sequence[bool],
        caption: str = "",
        notes: Iterable[str] = (),
        link: str | None = None,
    ):
        self.head, self.rows, self.numeric = list(head), [list(r) for r in rows], list(numeric)
        self.caption, self.notes, self.link = caption, list(notes), link

    def to_frame(self) -> pd.DataFrame:
        """The formatted cells (text) with the readers' column names."""
        return pd.DataFrame(self.rows, columns=self.head)

    def _footer(self) -> list[str]:
        lines = list(self.notes)
        if self.link:
            lines.append(f"Full table: {self.link}")
        return lines

    def __repr__(self) -> str:
        grid = [[_wrap(c, TEXT_WIDTH) for c in row] for row in [self.head, *self.rows]]
        widths = [max(len(x) for r in grid for x in r[j]) for j in range(len(self.head))]
        out = [self.caption] if self.caption else []
        if not self.head:
            return "\n".join([*out, "(no columns)", *self._footer()])
        for i, row in enumerate(grid):
            for k in range(max(len(c) for c in row)):
                parts = []
                for j, cell in enumerate(row):
                    text = cell[k] if k < len(cell) else ""
                    right = self.numeric[j] and i > 0
                    parts.append(text.rjust(widths[j]) if right else text.ljust(widths[j]))
                out.append("  ".join(parts).rstrip())
            if i == 0:
                out.append("  ".join("-" * w for w in widths))
        if not self.rows:
            out.append("(no rows)")
        return "\n".join(out + self._footer())

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self) -> str:
        """The table as HTML (pandas Styler): no index, numbers right-aligned, text wrapped."""
        n = len(self.head)
        keys = [f"c{j}" for j in range(n)]
        frame = pd.DataFrame([[html.escape(c) for c in r] for r in self.rows], columns=keys)
        uid = hashlib.sha1(repr(self).encode()).hexdigest()[:10]
        styler = (
            Styler(frame, cell_ids=False)
            .hide(axis="index")
            .relabel_index([html.escape(h) for h in self.head], axis=1)
            .set_uuid(uid)
            .set_table_attributes('class="segkit-table"')
        )
        styles: dict[Any, Any] = {}
        for key, num in zip(keys, self.numeric, strict=True):
            align = "text-align:right" if num else "text-align:left"
            td = "white-space:nowrap" if num else "white-space:normal;max-width:28em"
            styles[key] = [
                {"selector": "td", "props": f"{align};{td};overflow-wrap:anywhere"},
                {"selector": "th", "props": f"{align};white-space:normal;vertical-align:bottom"},
            ]
        styler = styler.set_table_styles(styles)
        if self.caption:
            styler = styler.set_caption(html.escape(self.caption))
        body = styler.to_html()
        notes = "<p>No rows.</p>" if not self.rows else ""
        notes += "".join(f"<p>{html.escape(x)}</p>" for x in self.notes)
        if self.link:
            href = html.escape(self.link)
            notes += f'<p>Full table: <a href="{href}">{href}</a></p>'
        style = '<p style="font-size:90%;color:#555;margin:.2em 0">'
        return f'<div class="segkit-table">{body}{notes.replace("<p>", style)}</div>'


def currency_of(run: Run | None) -> str:
    """``report.currency`` of the run ("" without a run)."""
    if run is None:
        return ""
    return str((run.params.get("report") or {}).get("currency") or "")


def _link(run: Run | None, name: str | None, full: pd.DataFrame | None) -> str | None:
    """The run-folder path of the full table ``name``, written from ``full`` if absent."""
    if run is None or not name:
        return None
    if not run.path(name).exists():
        if full is None:
            return None
        run.save(name, full)
    return f"artifacts/{name}"


def show(
    df: pd.DataFrame,
    cols: Sequence[Col] | None = None,
    *,
    run: Run | None = None,
    caption: str = "",
    notes: Iterable[str] = (),
    full: str | None = None,
    dash_note: str = DASH_NOTE,
) -> Table:
    """``df`` formatted for a reader: the columns ``cols`` (all, by dtype, when None).

    A column of ``cols`` absent from ``df``, or with no value at all, is left out. ``full``
    names the CSV artifact holding every column (written from ``df`` if the run lacks it),
    linked under the table. ``dash_note`` explains the dashes, added when a dash shows.
    """
    cols = _auto_cols(df) if cols is None else list(cols)
    cols = [c for c in cols if all(s in df for s in c.columns)]
    if len(df):  # a column with no value at all says nothing
        cols = [c for c in cols if not all(df[s].isna().all() for s in c.columns)]
    currency = currency_of(run)
    rows = [[_cell(c, r, currency) for c in cols] for _, r in df.iterrows()]
    notes = list(notes)
    if any(cell == DASH for row in rows for cell in row):
        notes.append(dash_note)
    return Table(
        [c.label for c in cols],
        rows,
        [c.numeric for c in cols],
        caption=caption,
        notes=notes,
        link=_link(run, full, df),
    )
