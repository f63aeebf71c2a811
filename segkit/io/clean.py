r"""SQL expressions that turn text cells into ids, numbers and timestamps, and the checks
that read the whole column first (order of day and month, decimal commas, padded ids).

Every column name goes through :func:`segkit.core.sql.ident` and every value (a format, a
prefix, a date) through :func:`segkit.core.sql.literal`, so a quote in either stays text.

**Day and month.** Without ``date_formats``, a date like ``03/04/2024`` is read with the
order set by ``dayfirst``. The column is looked at first: a value whose first field is above
12 (``13/04/2024``) can only be day-first; one whose second field is above 12
(``04/13/2024``) only month-first; one with both fields up to 12 is ambiguous. Then:

- nothing proves an order: ``dayfirst`` is used, and the quality dict records that the
  order was assumed;
- the proof agrees with ``dayfirst``: used, recorded as proven;
- the proof contradicts ``dayfirst`` and ambiguous values exist: a :class:`SegkitError`
  asks for ``dayfirst`` (they would be swapped otherwise);
- both orders are proven and ambiguous values exist: a :class:`SegkitError` asks for
  ``date_formats`` (the file mixes conventions; no setting reads it right);
- with no ambiguous value, every value is read the one way it can be (no harm possible).

Dots (``13.04.2024``) are always day-first. Timestamps with an offset (``+02:00``, ``Z``)
are converted to UTC and counted (with ``local_time: true``, the wall time as written is
kept and the offset dropped); those without are kept as they are (local time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb

from segkit.core.errors import SegkitError
from segkit.core.params import CURRENCY_SIGNS, EPOCH_ORIGINS, EPOCH_UNITS
from segkit.core.sql import ident, literal, literals
from segkit.core.words import NO_WORDS, YES_WORDS

DAYFIRST_FORMATS = [
    # tried in this order, each a failed parse for the values it does not fit: the
    # common ones first (one failure before "%d/%m/%Y %H:%M": 1.6 CPU s for 3M values;
    # five failures: 7 s)
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y",  # dots: always day-first (German, Swiss, Nordic exports)
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d",
    "%d-%m-%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%d/%m/%Y %I:%M:%S %p",  # 12-hour clock: 1/5/2024 2:33 PM
    "%d/%m/%Y %I:%M %p",
    # month names (English): one reading only
    "%d-%b-%Y",
    "%d-%b-%Y %H:%M:%S",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%b %d, %Y %I:%M %p",
]
#: Two-digit years (05.01.24, 05/01/24, 05-JAN-24), read apart: DuckDB's %Y takes "24"
#: for the year 24, so these values must not reach the list above.
SHORT_YEAR_DAYFIRST = ["%d/%m/%y", "%d.%m.%y", "%d-%m-%y", "%d-%b-%y"]
_SHORT_YEAR = r"^\d{1,2}[./-](\d{1,2}|[A-Za-z]{3})[./-]\d\d$"


def _month_first(formats: list[str]) -> list[str]:
    return [f.replace("%d/%m", "%m/%d").replace("%d-%m", "%m-%d") for f in formats]


MONTHFIRST_FORMATS = _month_first(DAYFIRST_FORMATS)

#: Decimal marks and thousands separators a table spec may give.
DECIMALS = (".", ",")
THOUSANDS = (None, ",", ".", " ", "'", "_")

_BLANK = r"[\s\x{00A0}\x{000B}\x{FEFF}]"
_STRIP = rf"^{_BLANK}+|{_BLANK}+$"
_DMY = r"^(\d{1,2})[/-](\d{1,2})[/-]\d{2,4}"
_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([Zz]|[+-]\d\d(:?\d\d)?)$"
_ZULU = r"\s*[Zz]$"
_OFFSET_GAP = r"\s+([+-]\d\d(:?\d\d)?)$"
_OFFSET_TAIL = r"\s*([Zz]|[+-]\d\d(:?\d\d)?)$"
_COMMA_NUMBER = r"^[+-]?(\d{1,3}([.\s\x{00A0}\x{202F}]\d{3})+|\d*),\d+$"
#: A currency sign or code before or after a number ("€12.50", "12,50 €", "USD 1,234.56").
_CODES = "EUR|USD|GBP|CHF|JPY|CNY|INR|SEK|NOK|DKK|PLN|CZK|HUF|CAD|AUD|NZD|BRL|MXN|ZAR"
#: Blanks inside a number or between it and its currency: French exports write
#: "1 234,56 €" with no-break spaces (U+00A0, U+202F), which RE2's \s leaves out.
_SPACES = r"[\s\x{00A0}\x{202F}]"
_CURRENCY = rf"^([€$£¥₹]|{_CODES}){_SPACES}*|{_SPACES}*([€$£¥₹]|{_CODES})$"
#: Blanks collapsed inside a category spelling: the \s of RE2 (DuckDB), which unlike
#: Python's and Java's leaves out \v and the Unicode spaces.
_INNER_BLANKS = re.compile(r"[\t\n\f\r ]+")


def stripped(col: str) -> str:
    """The cell without surrounding blanks (tabs, no-break spaces and BOMs too)."""
    return f"regexp_replace({ident(col)}, {literal(_STRIP)}, '', 'g')"


def loose_ids(ids: Any) -> Any:
    """Ids (a pandas Series) compared loosely: blanks, case and leading zeros ignored
    ('000123' and '123', 'c7' and 'C7'). Only to tell a user that two files write their
    ids differently; segkit joins on the ids as written. :func:`loose_id_sql` is the same
    rule in SQL.

    >>> import pandas as pd
    >>> loose_ids(pd.Series([" 000123", "C7", "000"])).tolist()
    ['123', 'c7', '0']
    >>> duckdb.sql(f"SELECT {loose_id_sql('v')} FROM (VALUES (' 000123'), ('C7'), ('000')) t(v)").fetchall()
    [('123',), ('c7',), ('0',)]
    """
    text = ids.astype(str).str.strip().str.lower().str.lstrip("0")
    return text.where(text != "", "0")


def loose_id_sql(col: str) -> str:
    """:func:`loose_ids` as a SQL expression on column ``col``."""
    text = f"ltrim(lower(trim(CAST({ident(col)} AS VARCHAR))), '0')"
    return f"CASE WHEN {text} = '' THEN '0' ELSE {text} END"


def text_expr(col: str) -> str:
    """Text cell: stripped, empty as NULL."""
    return f"NULLIF({stripped(col)}, '')"


def id_expr(col: str, width: int | None = None) -> str:
    """Id cell: stripped; ids read from numbers arrive as '17850.0' and lose the '.0'; an
    e-mail address (an id with '@', as shop exports key customers) in lower case, since
    'Anna@x.com' and 'anna@x.com' are one customer (one mailbox). With ``width`` (the
    table spec's ``id_width``), an id of fewer digits gets leading zeros up to it, as the
    other file writes it ('123' -> '000123')."""
    x = f"regexp_replace({stripped(col)}, '\\.0+$', '')"
    x = f"CASE WHEN strpos({x}, '@') > 0 THEN lower({x}) ELSE {x} END"
    if width:
        short = f"regexp_full_match({x}, '[0-9]+') AND length({x}) < {int(width)}"
        x = f"CASE WHEN {short} THEN lpad({x}, {int(width)}, '0') ELSE {x} END"
    return f"NULLIF({x}, '')"


def flag_expr(col: str, spec: dict) -> str:
    """Outcome cell as DOUBLE: a yes/no answer as 1/0 (:data:`YES_WORDS`,
    :data:`NO_WORDS`), else the number (:func:`num_expr`)."""
    low, num = f"lower({stripped(col)})", num_expr(col, spec)
    return (  # numbers first: they cost what num_expr costs (words only where no number is)
        f"CASE WHEN {num} IS NOT NULL THEN {num} "
        f"WHEN {low} IN ({literals(sorted(YES_WORDS))}) THEN 1.0 "
        f"WHEN {low} IN ({literals(sorted(NO_WORDS))}) THEN 0.0 END"
    )


def currency_of(col: str) -> str:
    """The currency sign or code around the number in the cell ('' if none): ``€``, ``USD``."""
    return f"trim(regexp_extract({stripped(col)}, {literal(_CURRENCY)}))"


#: A column naming each row's currency (Shopify's and Stripe's "Currency", "Währung",
#: "devise", "moneda", "valuta"…).
CURRENCY_NAMES = re.compile(
    r"^(order|presentment|transaction|payment|settlement|converted)?[ _-]?"
    r"(currency|currency[ _-]?code|curr|ccy|w(ä|ae)hrung|devise|monnaie|moneda|divisa|"
    r"valuta|moeda|waluta)$",
    re.I,
)


#: Money converted into one currency already (Stripe's "Converted Amount" and "Converted
#: Currency", a settlement amount).
CONVERTED_NAMES = re.compile(r"convert|settle|umgerechnet", re.I)


def currency_code(text: str) -> str:
    """SQL: the currency named by ``text`` as :func:`segkit.core.params.currency_key` reads
    it (upper case, '€' as 'EUR'), NULL when empty; ``text`` is already stripped."""
    signs = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in CURRENCY_SIGNS.items())
    return f"CASE NULLIF(upper({text}), '') {signs} ELSE NULLIF(upper({text}), '') END"


def currency_mark(col: str) -> str:
    """The currency a money cell writes around its number (:func:`currency_code`: ``USD``,
    ``EUR`` for ``€``, ``$``), NULL for a plain number or none; the pattern runs only on
    cells that are not plain numbers."""
    return (  # a plain number costs one cast, no pattern
        f"CASE WHEN TRY_CAST({ident(col)} AS DOUBLE) IS NULL "
        f"THEN {currency_code(currency_of(col))} END"
    )


def bare_number(col: str) -> str:
    """The cell stripped of blanks and of a currency sign or code around it (``12,50 €``)."""
    return f"regexp_replace({stripped(col)}, {literal(_CURRENCY)}, '', 'g')"


def num_expr(col: str, spec: dict) -> str:
    """Number cell as DOUBLE (NULL if empty or not a number), with the spec's marks.

    A currency sign or code around the number is dropped (``€12.50``, ``12,50 €``,
    ``USD 1,234.56`` with ``thousands: ","``). The second reading is only for the cells the
    first cannot read: on 5M plain numbers 0.55 CPU s against 0.50 without it (a COALESCE
    of the two readings cost 0.88).
    """

    def marked(value: str) -> str:
        if spec["thousands"]:  # only separators in groups of three: 10.09.2023 is no number
            # a blank: any blank, no-break spaces too ("1 234,56" from a French export)
            sep = _SPACES if spec["thousands"] == " " else re.escape(spec["thousands"])
            dec = re.escape(spec["decimal"])
            grouped = literal(rf"[+-]?\d{{1,3}}({sep}\d{{3}})+({dec}\d+)?")
            value = (
                f"CASE WHEN regexp_full_match({value}, {grouped}) "
                f"THEN regexp_replace({value}, {literal(sep)}, '', 'g') ELSE {value} END"
            )
        if spec["decimal"] != ".":
            value = f"replace({value}, {literal(spec['decimal'])}, '.')"
        return f"TRY_CAST(NULLIF({value}, '') AS DOUBLE)"

    plain = marked(stripped(col))  # CASE, not COALESCE: DuckDB then reads each cell once
    return f"CASE WHEN {plain} IS NULL THEN {marked(bare_number(col))} ELSE {plain} END"


def check_number_marks(spec: dict, name: str) -> None:
    """``decimal`` and ``thousands`` are known marks and differ."""
    if spec["decimal"] not in DECIMALS:
        raise SegkitError(
            f"data.{name}.decimal == {spec['decimal']!r}, must be one of {list(DECIMALS)}"
        )
    if spec["thousands"] not in THOUSANDS or spec["thousands"] == spec["decimal"]:
        raise SegkitError(
            f"data.{name}.thousands == {spec['thousands']!r}, must be one of {list(THOUSANDS)} "
            f"and differ from data.{name}.decimal == {spec['decimal']!r}"
        )


def check_date_formats(con: duckdb.DuckDBPyConnection, spec: dict, name: str) -> None:
    """Each of ``date_formats`` is a format DuckDB's strptime accepts (bound, not quoted)."""
    for fmt in spec["date_formats"] or []:
        if not isinstance(fmt, str) or not fmt.strip():
            raise SegkitError(
                f"data.{name}.date_formats: {fmt!r} is not a format string (e.g. '%d/%m/%Y')"
            )
        try:
            con.execute("SELECT try_strptime('2024-01-31', ?)", [fmt]).fetchall()
        except duckdb.Error as exc:
            gist = str(exc).splitlines()[0][:200]
            raise SegkitError(
                f"data.{name}.date_formats: {fmt!r} is not a strptime format ({gist}); "
                "e.g. '%d/%m/%Y %H:%M'"
            ) from None


def _explicit_ts(value: str, formats: list[str], *, local: bool = False) -> str:
    """``date_formats`` in order; a format with an offset (``%z``) gives UTC, or with
    ``local`` (``local_time: true``) the wall time as written: a trailing ``%z`` and the
    value's offset are dropped before reading."""
    naive = [f for f in formats if "%z" not in f and "%Z" not in f]
    zoned = [f for f in formats if f not in naive]
    parts = [f"try_strptime({value}, [{literals(naive)}])"] if naive else []
    walls = [f.removesuffix("%z").rstrip() for f in zoned if f.endswith("%z")]
    if zoned and local and len(walls) == len(zoned):
        wall = f"regexp_replace({value}, {literal(_OFFSET_TAIL)}, '')"
        parts.append(f"try_strptime({wall}, [{literals(walls)}])")
    elif zoned:
        parts.append(f"timezone('UTC', try_strptime({value}, [{literals(zoned)}]))")
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def ts_expr(col: str, spec: dict, *, dayfirst: bool, typed: bool = False) -> str:
    """Timestamp cell: ``date_formats`` if given, else ISO then the common formats.

    The formats of the other day/month order come last, so a value that can only be read
    that way is (see the module docstring for when that is allowed). ``typed``: the column
    was stored as a timestamp or a date (a Parquet file) and holds DuckDB's ISO text of it,
    read as it is: ``date_formats`` are for text only.
    """
    value = stripped(col)
    if spec.get("epoch") and not typed:
        return epoch_expr(value, spec["epoch"])
    if spec["date_formats"] and not typed:
        formats = [str(f) for f in spec["date_formats"]]
        return _plausible(_explicit_ts(value, formats, local=bool(spec.get("local_time"))))
    first, second = (
        (DAYFIRST_FORMATS, MONTHFIRST_FORMATS)
        if dayfirst
        else (MONTHFIRST_FORMATS, DAYFIRST_FORMATS)
    )
    formats = first + [f for f in second if f not in first]
    day, month = SHORT_YEAR_DAYFIRST, _month_first(SHORT_YEAR_DAYFIRST)
    short = (day + month) if dayfirst else (month + day)
    short = list(dict.fromkeys(short))
    # DuckDB's cast reads 13/01/24 as the year 13: such a reading goes on to the formats
    cast = _plausible(f"TRY_CAST({value} AS TIMESTAMP)")
    local = (
        f"CASE WHEN length({value}) <= 9 AND regexp_matches({value}, {literal(_SHORT_YEAR)}) "
        f"THEN try_strptime({value}, [{literals(short)}]) "
        f"ELSE COALESCE({cast}, try_strptime({value}, [{literals(formats)}])) END"
    )
    zulu = f"regexp_replace({value}, {literal(_ZULU)}, '+00:00')"
    joined = f"regexp_replace({zulu}, {literal(_OFFSET_GAP)}, '\\1')"
    if spec.get("local_time"):  # the wall time as written: the offset dropped
        wall = f"regexp_replace({value}, {literal(_OFFSET_TAIL)}, '')"
        zoned = f"TRY_CAST({wall} AS TIMESTAMP)"
    else:
        zoned = f"timezone('UTC', TRY_CAST({joined} AS TIMESTAMPTZ))"
    return _plausible(f"CASE WHEN {has_offset(col)} THEN {zoned} ELSE {local} END")


#: Microseconds since 1970 of 10000-01-01: later numbers are no timestamps (Spark's end).
EPOCH_END_MICROS = 253_402_300_800_000_000


def epoch_expr(value: str, unit: str) -> str:
    """A number of seconds (``ms``, ``us``) since 1970-01-01 UTC, or of days since
    1899-12-30 (``excel``), as a UTC timestamp; NULL when it is not a number or not between
    1900 and 9999."""
    number = f"(TRY_CAST({value} AS DOUBLE) - {EPOCH_ORIGINS.get(unit, 0)})"
    micros = f"round({number} * {EPOCH_UNITS[unit]})"
    fits = f"abs({micros}) < {EPOCH_END_MICROS}"
    return _plausible(f"CASE WHEN {fits} THEN make_timestamp(CAST({micros} AS BIGINT)) END")


#: Timestamps before this year are misreadings (a two-digit year read by %Y: 0024), not
#: purchases: they count as unreadable.
FIRST_YEAR = 1900


def _plausible(ts: str) -> str:
    return f"CASE WHEN year({ts}) >= {FIRST_YEAR} THEN {ts} END"


def offset_of(col: str) -> str:
    """The UTC offset a timestamp cell carries (``+01:00``, ``-0500``, ``Z``), else ''."""
    return f"regexp_extract({stripped(col)}, {literal(_OFFSET)}, 3)"


def has_offset(col: str) -> str:
    """The cell is a timestamp with a UTC offset or ``Z``."""
    return f"regexp_matches({stripped(col)}, {literal(_OFFSET)})"


def profile(rel: duckdb.DuckDBPyRelation, exprs: dict[str, str]) -> dict[str, Any]:
    """Evaluate named aggregate expressions over ``rel`` in one pass."""
    if not exprs:
        return {}
    sql = ", ".join(f"{e} AS {ident(k)}" for k, e in exprs.items())
    rows = rel.aggregate(sql).fetchall()
    row = rows[0] if rows else ()
    return dict(zip(exprs, row, strict=True))


def date_evidence(col: str) -> dict[str, str]:
    """Aggregates that count values proving day-first, month-first, or neither."""
    value = stripped(col)
    a = f"TRY_CAST(regexp_extract({value}, {literal(_DMY)}, 1) AS INTEGER)"
    b = f"TRY_CAST(regexp_extract({value}, {literal(_DMY)}, 2) AS INTEGER)"
    conds = {
        "day_only": f"{a} > 12 AND {b} <= 12",
        "month_only": f"{a} <= 12 AND {b} > 12",
        "ambiguous": f"{a} <= 12 AND {b} <= 12",
    }
    out = {k: f"count(*) FILTER (WHERE {c})" for k, c in conds.items()}
    out["day_example"] = f"min({value}) FILTER (WHERE {conds['day_only']})"
    out["month_example"] = f"min({value}) FILTER (WHERE {conds['month_only']})"
    out["with_offset"] = f"count(*) FILTER (WHERE {has_offset(col)})"
    return out


def _order(dayfirst: bool) -> str:
    return "day-first" if dayfirst else "month-first"


def decide_dayfirst(
    ev: dict, *, dayfirst: bool | None, name: str, path: str, col: str
) -> tuple[bool, dict]:
    """The day/month order to read with, and what to record; raise when it is unsafe.

    ``dayfirst=None`` (the default of a table spec) means: the data decide. Then values
    that only one order can read prove it; when nothing proves it and some values are
    ambiguous (like 01/02/2011), the error asks for ``dayfirst`` or ``date_formats``.
    """
    d, m, amb = int(ev["day_only"]), int(ev["month_only"]), int(ev["ambiguous"])
    where = f"{name} ({path}): column {col!r}"
    if dayfirst is None:
        if amb and not d and not m:
            raise SegkitError(
                f"{where}: {amb} dates like 01/02/2011 could be day-first or month-first and "
                f"no value proves which; set data.{name}.dayfirst: true (day/month) or false "
                f"(month/day), or give data.{name}.date_formats"
            )
        dayfirst = bool(d) or not m  # proven, or (no ambiguous value) either way
    if d and m and amb:
        raise SegkitError(
            f"{where} mixes date orders: {d} values can only be day-first (e.g. "
            f"{ev['day_example']!r}), {m} only month-first (e.g. {ev['month_example']!r}), "
            f"and {amb} could be either; set data.{name}.date_formats to the file's formats "
            "(e.g. ['%d/%m/%Y'] or ['%m/%d/%Y'])"
        )
    proven = None if bool(d) == bool(m) else bool(d)
    if proven is not None and proven != dayfirst and amb:
        n, example = (d, ev["day_example"]) if proven else (m, ev["month_example"])
        raise SegkitError(
            f"{where}: data.{name}.dayfirst is {dayfirst}, but {n} values can only be "
            f"{_order(proven)} (e.g. {example!r}) and {amb} ambiguous ones would be read "
            f"{_order(dayfirst)}: set data.{name}.dayfirst: {proven} if the whole file is "
            f"{_order(proven)}, or give data.{name}.date_formats"
        )
    use = dayfirst if proven is None else proven
    if d and m:
        basis = "each value read the only way it can be (no ambiguous value)"
    elif proven is None:
        basis = f"assumed (dayfirst: {dayfirst}); no value proves the order"
    else:
        basis = f"proven by {d or m} values"
    note = {"order": _order(use), "basis": basis, "ambiguous_values": amb}
    return use, note


def decimal_evidence(col: str, spec: dict) -> dict[str, str]:
    """Aggregates counting values that fail as numbers and look like ``12,50``."""
    value = stripped(col)
    failed = f"{value} <> '' AND {num_expr(col, spec)} IS NULL"
    return {
        f"present:{col}": f"count(*) FILTER (WHERE {value} <> '')",
        f"failed:{col}": f"count(*) FILTER (WHERE {failed})",
        f"comma:{col}": (
            f"count(*) FILTER (WHERE {failed} AND regexp_matches({bare_number(col)}, "
            f"{literal(_COMMA_NUMBER)}))"
        ),
    }


def decimal_hint(ev: dict, cols: list[str], spec: dict, name: str) -> str | None:
    """A hint to set ``decimal: ","`` when most numbers fail and look like ``12,50``."""
    if spec["decimal"] != ".":
        return None
    for col in cols:
        present, failed = int(ev[f"present:{col}"]), int(ev[f"failed:{col}"])
        comma = int(ev[f"comma:{col}"])
        if failed * 2 > present and comma * 2 > failed:
            return (
                f"{comma} of {present} values in column {col!r} look like numbers with a "
                f'decimal comma (like 12,50): set data.{name}.decimal: "," (and '
                f'thousands: "." if they have thousands separators)'
            )
    return None


def trimmed_count(col: str) -> str:
    """Aggregate counting cells that had blanks around a non-empty value."""
    return f"count(*) FILTER (WHERE {ident(col)} <> {stripped(col)} AND {stripped(col)} <> '')"


def canonical_spellings(counts: Mapping[str, int]) -> dict[str, str]:
    """The spellings of a category column to rewrite, and their canonical spelling.

    ``counts``: how many rows hold each spelling (non-empty text, already stripped by
    :func:`text_expr`). Spellings equal after trimming spaces, collapsing inner blanks and
    case-folding are variants of one value ('united kingdom ', 'United  Kingdom'); each
    becomes the variant held by most rows, ties going to the alphabetically first, so the
    result is deterministic. Only the spellings that change are returned. The one rule of
    :func:`segkit.io.load_transactions` and the engines (:mod:`segkit.engine.clean`): the
    counts come from the engine, the rule runs on the distinct spellings only.

    >>> canonical_spellings({"France": 3, "france ": 1, "FRANCE": 3, "Spain": 2})
    {'France': 'FRANCE', 'france ': 'FRANCE'}
    """
    totals: dict[tuple[str, str], int] = {}
    spelled = {}
    for raw, n in counts.items():
        v = _INNER_BLANKS.sub(" ", raw.strip(" "))
        spelled[raw] = v
        totals[v.lower(), v] = totals.get((v.lower(), v), 0) + int(n)
    best: dict[str, tuple[int, str]] = {}
    for (k, v), n in totals.items():
        if k not in best or (-n, v) < (-best[k][0], best[k][1]):
            best[k] = (n, v)
    out = {raw: best[v.lower()][1] for raw, v in spelled.items()}
    return {raw: canon for raw, canon in sorted(out.items()) if raw != canon}
