"""What a data file is, and the roles of its columns: the guesses behind ``segkit init --from``.

:func:`infer_file` reads a file with segkit's own reader (:func:`segkit.io.read.read_raw`:
CSV with any delimiter or ``.gz``, Parquet, Excel; whitespace-separated text and files
without a header line are recognized here), profiles every column once in DuckDB (how many
values are numbers, whole numbers, dates; distinct values) and decides its **shape**:

- a **transaction log**: a customer id repeated over rows, a date or timestamp column, an
  amount (or a quantity and a unit price);
- an **experiment**: a column with 2-5 levels named like an arm (segment, treatment, arm,
  group, variant…) or with a level named like a control, plus numeric outcome columns;
- a **customer table**: one row per id, or no id column (ids are then the row numbers).

The roles of a customer table's columns are segkit's own (the rules the clustering stage
applies, :mod:`segkit.segment.prepare` and :func:`segkit.segment.roles.feature_table`):
the table is loaded with :func:`segkit.io.load.load_customers` and those functions say which
columns are features, outcomes, dates, constant or id-like. What this module adds is only
what a run cannot guess by itself: the shape, the column mapping of a transaction log or an
experiment, whole-number codes that are categories (``Region`` 1/2/3), and the column that
measures value (``cluster.value``). Every choice carries the reason a user reads in the
commented ``params.yaml``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.core.params import table_spec
from segkit.core.sql import ident, literals
from segkit.core.words import PLACEHOLDER_IDS
from segkit.io import clean
from segkit.io.load import placeholders
from segkit.io.read import connect, format_of, read_raw

#: A date column: at least this share of its values parse as dates.
DATE_SHARE = 0.9
#: The kinds of values are judged on at most this many rows (evenly spaced over the file).
SAMPLE_ROWS = 50_000
#: Levels of an experiment's arm column.
ARM_LEVELS = (2, 5)
#: Shapes :func:`infer_file` tells apart (the table spec each becomes).
SHAPES = ("transactions", "customers", "experiment")

# Column names are matched in English and in the languages of most European CRM exports
# (German, French, Spanish, Italian, Portuguese, Dutch, Scandinavian): "Kunde", "Betrag",
# "Bestelldatum" are a transaction log as much as "customer", "amount", "order_date".
_CUSTOMER = re.compile(
    r"cust|client|user|member|account|buyer|shopper|patron|subscriber|household|contact|mail|"
    r"kunde|kund\b|kunder|klant|mitglied|abonnent|adh[ée]rent|socio|utente|usuario|"
    r"utilisateur|gebruiker",
    re.IGNORECASE,
)
_WHO = re.compile(
    r"id|cust\.?|customers?|clients?|users?|members?|accounts?|buyers?|e-?mail|kunden?|"
    r"kund(?:er)?|klant(?:en)?|clientes?|utentes?|usuarios?|mitglied(?:er)?|socios?",
    re.I,
)
_ID = re.compile(
    r"(?:^|[-_\s.])(?:id|key|no|nr|num|number|code|n[°º]|n[uú]mero|numero|nummer)\.?$|^id$|"
    r"[a-z](?:ID|Id)$|(?:nr|nummer)\.?$|"
    r"^(?:id|no|nr|n[°º]|num|n[uú]mero|numero|code|c[oó]digo|codice|identifiant|"
    r"identificador|identificativo|identifier|kennung)\.?[-_\s.]|identifier$|kennung$",
    re.IGNORECASE,
)
#: The end of an id's name written without a separator, after a customer word: "CustNo".
_ID_TAIL = re.compile(r"(?:no|nr|num|id|key)\.?$", re.IGNORECASE)
_EMAIL = re.compile(r"e-?mail", re.IGNORECASE)
_DATE = re.compile(
    r"date|time|day|dt_|_dt|when|created|timestamp|datum|zeit|fecha|data\b|jour|giorno|tag\b",
    re.IGNORECASE,
)
PRICE_NAME = re.compile(
    r"price|unit_?cost|item[ _-]?cost|rate|preis|prix|precio|prezzo|prijs|pre[çc]o|\bpris\b",
    re.IGNORECASE,
)
#: A price that is a row's total (``total_price``, ``line_total``, ``Gesamtpreis``): money.
TOTAL_NAME = re.compile(
    r"total|gesamt|summe|gross|brutto|line[ _-]?(?:total|price|amount)|extended",
    re.IGNORECASE,
)
AMOUNT_NAME = re.compile(
    r"amount|revenue|sales?\b|sales_|value|total|spend|spent|paid|turnover|dollar|euro|"
    r"\beur\b|\busd\b|\bgbp\b|monetary|gross|net_|^net$|sum\b|"
    r"betrag|umsatz|\bsumme|montant|importe|\bmonto|\bvalor\b|importo|\bvalore\b|bedrag|"
    r"omzet|belopp|bel[øo]b|fatturato|chiffre",
    re.IGNORECASE,
)
#: The part of a row's amount refunded (Stripe's "Amount Refunded", "Refunded Amount").
REFUND_NAME = re.compile(
    r"refund|erstatt|rembours|reembols|rimbors|terugbetaal|estorn", re.IGNORECASE
)
#: Money in minor units (``amount_cents``, ``price_in_pence``).
CENTS_NAME = re.compile(
    r"cents?\b|cents?_|_cents?|pence|penny|pennies|minor_?units?", re.IGNORECASE
)
QUANTITY_NAME = re.compile(
    r"qty|quantit|units|number_of|num_of|pieces|count|cds\b|menge|anzahl|st[üu]ck|cantidad|"
    r"aantal|antal|\bpezzi",
    re.IGNORECASE,
)
OPTIONAL_NAMES = {
    "order_id": re.compile(
        r"invoice|order|receipt|basket|transaction|ticket|bill|bestell|auftrag|rechnung|beleg|"
        r"\bbon\b|commande|facture|pedido|factura|ordine|fattura|bestelling|factuur|kvitto",
        re.IGNORECASE,
    ),
    "product": re.compile(
        r"stock|sku|product|item|article|ean|upc|artikel|produkt|produit|producto|prodotto|"
        r"produto",
        re.IGNORECASE,
    ),
    "category": re.compile(
        r"categor|department|family|kategor|cat[ée]gor|warengruppe|sortiment|famille|familia|"
        r"rayon|abteilung",
        re.IGNORECASE,
    ),
    "channel": re.compile(r"channel|kanal|canal|vertriebsweg", re.IGNORECASE),
    "country": re.compile(
        r"country|nation|^land$|\bland\b|pays|pa[íi]s\b|paese|staat", re.IGNORECASE
    ),
}
#: Columns that describe the customer, not the campaign's result, wherever they stand.
_ATTRIBUTE = re.compile(
    r"^age$|^age_|_age$|\bage\b|\balter\b|\bedad\b|\bâge\b|\bet[àa]\b|leeftijd|\bidade\b|income|einkommen|"
    r"salary|gehalt|revenu\b|ingreso|^year|jahr|zip|plz|postal|gender|geschlecht|sexe|sexo",
    re.IGNORECASE,
)
_ARM = re.compile(
    r"segment|treat|arm\b|^arm|group|variant|variation|cell|condition|test|campaign|mailing|"
    r"offer|promo|kampagne|campagne|campa[ñn]a|campagna|gruppe|groupe|grupo|gruppo",
    re.I,
)
CONTROL_NAME = re.compile(
    r"control|holdout|hold-out|no[ _-]?e-?mail|baseline|placebo|kontroll|contr[ôo]le|"
    r"^no[ _-]?(?:contact|campaign|mailing|offer|treatment|message)$",
    re.I,
)
_VALUE_LIKE = re.compile(r"^\s*[-+]?[\d.,:/ -]+\s*$")
_SPACED = re.compile(r"\S\s{2,}\S|^\s+\S+\s+\S")


@dataclass
class Column:
    """One column's profile. ``present``, ``distinct``, ``lo`` and ``hi`` count the whole
    file; the kinds of values (numbers, whole numbers, dates) are counted on the sample
    (every row of a file up to :data:`SAMPLE_ROWS` rows, else evenly spaced rows)."""

    name: str
    present: int  # non-empty values
    distinct: int  # distinct values (as text)
    lo: float | None  # smallest number
    hi: float | None  # largest number
    sampled: int  # non-empty values in the sample
    numeric: int  # of those, values that are numbers
    integer: int  # of those, values that are whole numbers
    dates: int = 0  # of those, values that parse as dates (checked for candidates only)
    answers: int = 0  # of those, numbers or yes/no answers (segkit.io.clean.flag_expr)

    @property
    def is_numeric(self) -> bool:
        return self.sampled > 0 and self.numeric == self.sampled

    @property
    def is_date(self) -> bool:
        return self.sampled > 0 and self.dates >= DATE_SHARE * self.sampled

    @property
    def date_share(self) -> float:
        return self.dates / self.sampled if self.sampled else 0.0

    @property
    def is_answer(self) -> bool:
        """Every value a number or a yes/no answer (``ja``/``nein``): an outcome can be."""
        return self.sampled > 0 and self.answers == self.sampled

    @property
    def is_binary(self) -> bool:
        return self.is_numeric and self.lo is not None and self.lo >= 0 and (self.hi or 0) <= 1


@dataclass
class Profile:
    """A file as read: the read options to write in the spec, its rows and columns."""

    path: Path
    options: dict[str, Any]  # table-spec keys that differ from the defaults (format, …)
    rows: int
    columns: dict[str, Column]
    why: dict[str, str] = field(default_factory=dict)  # read option -> reason
    rel: Any = None  # the DuckDB relation (text columns plus _row)
    con: Any = None


@dataclass
class Guess:
    """What a file is and the roles of its columns, each with the reason for it."""

    shape: str  # one of SHAPES
    profile: Profile
    spec: dict[str, Any]  # the table spec to write (without path)
    why: dict[str, str]  # spec key / column -> reason, for the comments
    left_out: dict[str, str]  # column -> why it is not used
    todo: list[str]  # what the user must check
    summary: str  # one line for the terminal
    extra: dict[str, Any] = field(default_factory=dict)  # shape-specific (e.g. abtest control)


def init_error(path: Path, what: str) -> SegkitError:
    """The error of ``segkit init --from``: names the file, then what was seen."""
    return SegkitError(f"segkit init --from {str(path)!r}: {what}")


# --------------------------------------------------------------------------- reading


def _read(con: duckdb.DuckDBPyConnection, path: Path, options: dict) -> Any:
    """:func:`segkit.io.read.read_raw` with ``options``; its errors reworded for init."""
    spec = table_spec({"path": str(path), **options}, "customers")
    assert spec is not None
    try:
        rel, _ = read_raw(con, spec, "customers")
    except SegkitError as exc:
        text = str(exc).replace("data.customers.", "").replace("customers file ", "file ")
        raise init_error(path, f"the file could not be read: {text}") from None
    return rel


def _names(rel: Any) -> list[str]:
    return [c for c in rel.columns if c != "_row"]


def _looks_headerless(names: list[str]) -> bool:
    """Every column name looks like a value (a number or a date): no header line."""
    return bool(names) and all(_VALUE_LIKE.match(str(n)) for n in names)


def _sheet_heads(path: Path) -> dict[str, list[str]]:
    """Sheet name -> its header row, for the sheets with columns: read once per file
    version (:func:`data_sheets` and :func:`read_file` both look at them)."""
    st = path.stat()
    return dict(_heads(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=8)
def _heads(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, list[str]], ...]:
    import pandas as pd

    book = pd.ExcelFile(path)
    heads = {str(s): pd.read_excel(book, sheet_name=s, nrows=0) for s in book.sheet_names}
    return tuple((s, list(map(str, h.columns))) for s, h in heads.items() if h.shape[1])


def data_sheets(path: str | Path) -> list[str] | None:
    """The sheets of a workbook to guess one by one: those with columns, when there are
    several and their columns differ (a workbook of orders and customers); None for any
    other file, or a workbook read as one table (one sheet, or sheets of a log split by year).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file() or format_of(path, "auto") != "excel":
        return None
    heads = _sheet_heads(path)
    if len(heads) < 2 or all(h == next(iter(heads.values())) for h in heads.values()):
        return None
    return list(heads)


#: Rows of a sheet looked at for title lines above its header.
TITLE_SCAN_ROWS = 30


def title_rows(path: Path, sheet: str | int | None = None) -> tuple[int, str] | None:
    """(rows, the first title) above the header of an Excel sheet written as a report:
    title and date lines, blank rows, then the table. The header is the first row that
    fills (nearly) as many cells as the widest row below it, all with text that is not a
    number; None when that is the first row."""
    import pandas as pd

    top = pd.read_excel(path, sheet_name=sheet or 0, header=None, nrows=TITLE_SCAN_ROWS, dtype=str)
    filled = top.notna().sum(axis=1).tolist()
    if not filled or max(filled) < 2:
        return None
    for i, row in enumerate(top.itertuples(index=False)):
        cells = [str(c).strip() for c in row if isinstance(c, str) and str(c).strip()]
        widest = max(filled[i:])
        if len(cells) >= max(2, 0.8 * widest) and not any(_NUMBER.match(c) for c in cells):
            # titles are sparse (lines of one or two cells); a fuller row above is a header
            # with gaps, and the table starts at the top
            if i == 0 or max(filled[:i]) > 2 or max(filled[:i]) * 2 >= len(cells):
                return None
            titles = [
                str(c) for r in top.iloc[:i].itertuples(index=False) for c in r if pd.notna(c)
            ]
            return i, (titles[0] if titles else "")
    return None


_NUMBER = re.compile(r"^[-+(]?[\d.,\s]+\)?$")


def read_file(path: str | Path, sheet: str | None = None) -> Profile:
    """Read ``path`` with segkit's reader, recognizing whitespace-separated text and a
    missing header line; returns the read options and the relation (not yet profiled).

    Raises
    ------
    SegkitError
        The file is missing, empty or cannot be read in any format segkit reads.
    """
    pattern = paths.is_pattern(path)
    path = Path(path).expanduser().resolve()
    if not (paths.matched_files(path) if pattern else path.is_file()):
        raise init_error(path, "no file matches" if pattern else "the file does not exist")
    con = connect()
    options: dict[str, Any] = {}
    why: dict[str, str] = {}
    titles = None if pattern or format_of(path, "auto") != "excel" else title_rows(path, sheet)
    if titles:
        options["skip_rows"], first = titles
        why["skip_rows"] = f"{titles[0]} row(s) above the header: a report's title ({first!r})"
    try:
        rel = _read(con, path, options)
    except SegkitError as exc:  # a first line of values can repeat a value: 1,1,2.5
        if "duplicate column names" not in str(exc):
            raise
        rel = _read(con, path, {"header": False})
        if not _looks_headerless([str(v) for v in rel.limit(1).fetchall()[0][1:]]):
            raise
        options["header"] = False
    names = _names(rel)
    first = rel.limit(3).fetchall()
    if len(names) == 1 and (
        _SPACED.search(names[0]) or any(_SPACED.search(str(r[1])) for r in first)
    ):
        options["format"] = "whitespace"
        why["format"] = "columns separated by runs of blanks, not by a delimiter"
        rel = _read(con, path, options)
        names = _names(rel)
    parquet = format_of(path, "auto") == "parquet"
    if options.get("header") is False or (_looks_headerless(names) and not parquet):
        first_line = rel.limit(1).fetchall()[0][1:] if options.get("header") is False else names
        options["header"] = False
        options["names"] = [f"column_{i + 1}" for i in range(len(names))]
        shown = ", ".join(map(str, first_line[:3]))
        why["header"] = f"the first line holds values ({shown}…), not names"
        rel = _read(con, path, options)
        names = _names(rel)
    if sheet is not None:  # one sheet of a workbook of several tables
        options["sheet"] = sheet
        rel = _read(con, path, options)
        names = _names(rel)
    elif format_of(path, "auto") == "excel" and not pattern and _sheets(path, options, why):
        rel = _read(con, path, options)
    rows = int(rel.aggregate("count(*)").fetchall()[0][0])
    if rows == 0:
        raise init_error(path, f"the file has column names {names} but no rows")
    return Profile(path, options, rows, {}, why, rel, con)


def _sheets(path: Path, options: dict, why: dict) -> bool:
    """A workbook of several sheets with the same columns (a log split by year): ``sheet:
    all``, read together; True when the file must be read again. (Sheets of different
    columns are guessed one by one: :func:`data_sheets`.)"""
    heads = _sheet_heads(path)
    if len(heads) < 2 or options.get("header") is False:
        return False
    options["sheet"] = "all"
    why["sheet"] = f"{len(heads)} sheets with the same columns {list(heads)}: read together"
    return True


# --------------------------------------------------------------------------- profiling


def read_spec(profile: Profile) -> dict:
    """The full table spec the file is read with (defaults plus the options found)."""
    out = table_spec({"path": str(profile.path), **profile.options}, "customers")
    assert out is not None
    return out


def _number_marks(profile: Profile) -> None:
    """Decimal comma (``12,50``) and thousands dots (``1.234,50``), from segkit's own hint."""
    names = _names(profile.rel)
    spec = read_spec(profile)
    exprs: dict[str, str] = {}
    for col in names:
        exprs.update(clean.decimal_evidence(col, spec))
        exprs[f"dots:{col}"] = (
            f"count(*) FILTER (WHERE regexp_matches({clean.bare_number(col)}, "
            r"'^[+-]?\d{1,3}(\.\d{3})+,\d+$'))"
        )
        exprs[f"spaces:{col}"] = (
            f"count(*) FILTER (WHERE regexp_matches({clean.bare_number(col)}, "
            r"'^[+-]?\d{1,3}([\s\x{00A0}\x{202F}]\d{3})+,\d+$'))"
        )
    ev = clean.profile(sample(profile), exprs)
    hint = clean.decimal_hint(ev, names, spec, "customers")
    if hint is None:
        return
    profile.options["decimal"] = ","
    profile.why["decimal"] = hint.split(":")[0].replace("values in", "values of")
    if any(int(ev[f"dots:{c}"]) for c in names):
        profile.options["thousands"] = "."
        profile.why["thousands"] = "numbers like 1.234,50: dots separate thousands"
    elif any(int(ev[f"spaces:{c}"]) for c in names):
        profile.options["thousands"] = " "
        profile.why["thousands"] = "numbers like 1 234,50: blanks separate thousands"


def _whole(col: str, spec: dict, i: int) -> dict[str, str]:
    """Aggregates over the whole file."""
    num = clean.num_expr(col, spec)
    text = clean.text_expr(col)
    return {
        f"{i}:present": f"count({text})",
        f"{i}:distinct": f"count(DISTINCT {text})",
        f"{i}:lo": f"min({num})",
        f"{i}:hi": f"max({num})",
    }


def _kinds(col: str, spec: dict, i: int) -> dict[str, str]:
    """Aggregates over the sample: the kinds of values."""
    num = clean.num_expr(col, spec)
    return {
        f"{i}:sampled": f"count({clean.text_expr(col)})",
        f"{i}:numeric": f"count({num})",
        f"{i}:integer": f"count(*) FILTER (WHERE {num} = round({num}))",
        f"{i}:answers": f"count({clean.flag_expr(col, spec)})",
    }


def sample(profile: Profile) -> Any:
    """The rows the kinds of values are judged on: all, or evenly spaced ones."""
    step = -(-profile.rows // SAMPLE_ROWS)
    return profile.rel if step <= 1 else profile.rel.filter(f"_row % {step} = 0")


def _date_candidate(c: Column) -> bool:
    """Text, or whole numbers of 8 digits that could be YYYYMMDD."""
    if not c.is_numeric:
        return c.numeric < 0.5 * c.sampled
    return bool(c.integer == c.sampled and c.lo and c.lo >= 19000101 and (c.hi or 0) <= 21001231)


def profile_file(path: str | Path, sheet: str | None = None) -> Profile:
    """:func:`read_file` (of one ``sheet`` of a workbook when given), then every column
    profiled (numbers, whole numbers, distinct values, and for text columns how many values
    parse as dates)."""
    profile = read_file(path, sheet)
    _number_marks(profile)
    spec = read_spec(profile)
    names = _names(profile.rel)
    rows = sample(profile)
    whole: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for i, col in enumerate(names):
        whole.update(_whole(col, spec, i))
        kinds.update(_kinds(col, spec, i))
    ev = {**clean.profile(profile.rel, whole), **clean.profile(rows, kinds)}
    for i, col in enumerate(names):
        lo, hi = ev[f"{i}:lo"], ev[f"{i}:hi"]
        counts = {
            k: int(ev[f"{i}:{k}"])
            for k in ("present", "distinct", "sampled", "numeric", "integer", "answers")
        }
        profile.columns[col] = Column(
            col,
            **counts,
            lo=None if lo is None else float(lo),
            hi=None if hi is None else float(hi),
        )
    candidates = [c for c in profile.columns.values() if c.present and _date_candidate(c)]
    dates = {c.name: f"count({clean.ts_expr(c.name, spec, dayfirst=True)})" for c in candidates}
    for col, n in clean.profile(rows, dates).items():
        profile.columns[col].dates = int(n)
    if not any(c.is_date for c in profile.columns.values()):
        _epoch_column(profile)
    return profile


#: Numbers since 1970-01-01 per second, by unit; those from 2000 to 2040 are dates.
_EPOCH_PER_SECOND = {"s": 1, "ms": 1000, "us": 1_000_000}
_EPOCH_SECONDS = (946_684_800, 2_208_988_800)
_EPOCH_NAME = re.compile(r"_at$|^at$|^ts$|_ts$|^ts_|epoch|unix|" + _DATE.pattern, re.IGNORECASE)


def _epoch_column(profile: Profile) -> None:
    """A column of numbers since 1970 named like a time (``created_at: 1704067200``), as API
    and database exports write timestamps: read as dates (``epoch``) when no column holds
    dates as text."""
    for c in profile.columns.values():
        if not (c.is_numeric and c.present and _EPOCH_NAME.search(c.name)) or c.lo is None:
            continue
        for unit, per in _EPOCH_PER_SECOND.items():
            lo, hi = (v * per for v in _EPOCH_SECONDS)
            if lo <= c.lo and (c.hi or 0) <= hi:
                profile.options["epoch"] = unit
                first, last = (
                    str(dt.datetime.fromtimestamp(v / per, dt.UTC).date())
                    for v in (c.lo, c.hi or c.lo)
                )
                profile.why["epoch"] = (
                    f"{c.name} holds numbers of {_UNIT_WORDS[unit]} since 1970-01-01 UTC, "
                    f"{c.lo:.0f} to {c.hi:.0f}: {first} to {last}"
                )
                c.dates = c.sampled
                return
        if _EXCEL_DAYS[0] <= c.lo and (c.hi or 0) <= _EXCEL_DAYS[1] and _DATE.search(c.name):
            profile.options["epoch"] = "excel"
            first, last = (
                str(dt.date(1899, 12, 30) + dt.timedelta(days=int(v))) for v in (c.lo, c.hi or c.lo)
            )
            profile.why["epoch"] = (
                f"{c.name} holds Excel's serial dates (days since 1899-12-30, the time as a "
                f"fraction), {c.lo:.0f} to {c.hi:.0f}: {first} to {last}"
            )
            c.dates = c.sampled
            return


_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
#: Excel's serial dates from 1970 to 2040: a column named like a date holding them.
_EXCEL_DAYS = (25_569, 51_136)


def day_order(profile: Profile, col: str) -> tuple[bool | None, str]:
    """(``dayfirst`` to write, or None to let the data decide; why) for a date column."""
    ev = clean.profile(profile.rel, clean.date_evidence(col))
    d, m, amb = int(ev["day_only"]), int(ev["month_only"]), int(ev["ambiguous"])
    if not amb or (d and not m) or (m and not d):
        if d or m:
            order = "day-first" if d else "month-first"
            return (
                None,
                f"{order}, proven by {d or m:,} values such as {ev['day_example' if d else 'month_example']!r}",
            )
        return None, "no day/month ambiguity"
    if d and m:
        return None, "mixed day/month orders: TODO give date_formats"
    return True, (
        f"TODO: {amb:,} dates like 01/02 could be day-first or month-first and none proves "
        "which; day-first assumed (set false for month/day)"
    )


# --------------------------------------------------------------------------- shape


def date_column(profile: Profile) -> Column | None:
    """The timestamp: a date column, those named like a date first, then by share parsed."""
    dates = [c for c in profile.columns.values() if c.is_date]
    dates.sort(key=lambda c: (not _DATE.search(c.name), -c.date_share))
    return dates[0] if dates else None


def _id_rank(c: Column, headerless: bool) -> int | None:
    """How much a column looks like the customer id (lower is better; None: not at all)."""
    if c.is_date or c.present == 0 or (c.numeric and c.integer < c.numeric):
        return None
    if any(p.search(c.name) for p in OPTIONAL_NAMES.values()):
        return None
    customer, idname = bool(_CUSTOMER.search(c.name)), bool(_ID.search(c.name))
    if customer and (idname or _ID_TAIL.search(c.name)):
        return 0
    if _WHO.fullmatch(c.name.strip()) or (customer and _EMAIL.search(c.name)):
        return 1  # "Kunde", "Customer Email" (shop exports know customers by their e-mail)
    if idname:
        return 2
    return 3 if headerless and c.distinct >= 2 else None


def id_column(profile: Profile) -> Column | None:
    """The customer id: named like one (``CustomerID``, ``client_no``, ``ID``), or, in a
    file without a header, the whole-number or text column with the most distinct values."""
    headerless = profile.options.get("header") is False
    ranked = [
        (r, -c.distinct, c.name)
        for c in profile.columns.values()
        if (r := _id_rank(c, headerless)) is not None
    ]
    return profile.columns[min(ranked)[2]] if ranked else None


def arm_column(profile: Profile) -> tuple[Column, list[str], list[str]] | None:
    """(arm column, its levels, the outcome columns) of an experiment, or None.

    The arm has 2-5 levels and is named like an arm (segment, treatment, group…) or has a
    level named like a control (control, holdout, no e-mail…); the outcomes are the numeric
    or yes/no columns after it that are not named like an attribute (age, income, zip…),
    and any such column named like a result (:data:`segkit.segment.prepare.OUTCOME_NAMES`).
    Without an outcome it is no arm.
    """
    from segkit.segment.prepare import OUTCOME_NAMES  # scikit-learn: imported when needed

    names = list(profile.columns)
    for c in profile.columns.values():
        if not ARM_LEVELS[0] <= c.distinct <= ARM_LEVELS[1] or c.is_binary:
            continue
        levels = levels_of(profile, c.name)
        if not (_ARM.search(c.name) or any(CONTROL_NAME.search(v) for v in levels)):
            continue
        after = names[names.index(c.name) + 1 :]
        outcomes = [
            n
            for n in names
            if n != c.name
            and profile.columns[n].is_answer
            and (OUTCOME_NAMES.search(n) or (n in after and not _ATTRIBUTE.search(n)))
        ]
        if outcomes:
            return c, levels, outcomes
    return None


def levels_of(profile: Profile, col: str) -> list[str]:
    """The distinct non-empty values of ``col``, most frequent first."""
    rows = profile.rel.aggregate(
        f"{clean.text_expr(col)} AS v, count(*) AS n", f"{clean.text_expr(col)}"
    ).fetchall()
    return [str(v) for v, _ in sorted(rows, key=lambda r: (-r[1], str(r[0]))) if v is not None]


def seen(profile: Profile) -> str:
    """What the file holds, for an error: rows, and each column's kind and distinct values."""
    parts = []
    for c in profile.columns.values():
        kind = "dates" if c.is_date else "numbers" if c.is_numeric else "text"
        parts.append(f"{c.name} ({kind}, {c.distinct:,} distinct)")
    return f"{profile.rows:,} rows; columns: " + ", ".join(parts)


def decide_shape(profile: Profile) -> str:
    """``transactions``, ``experiment`` or ``customers`` (see the module docstring).

    Raises
    ------
    SegkitError
        The file has one column, or an id repeated over rows but no date column.
    """
    if len(profile.columns) < 2:
        raise init_error(
            profile.path,
            f"cannot tell what the file is: it has one column ({seen(profile)}); a "
            "transaction log, customer table or experiment has several (is the delimiter right?)",
        )
    cid, date = id_column(profile), date_column(profile)
    repeated = cid is not None and cid.distinct < cid.present
    if repeated and date is not None:
        return "transactions"
    if arm_column(profile) is not None:
        return "experiment"
    if repeated:
        assert cid is not None
        raise init_error(
            profile.path,
            f"cannot tell what the file is: the id column {cid.name!r} repeats "
            f"({cid.present:,} rows, {cid.distinct:,} ids) like a transaction log, but no "
            f"column is a date (at least {DATE_SHARE:.0%} of values parsing as dates); "
            f"{seen(profile)}",
        )
    return "customers"


#: Currency codes shown by their sign in the reports (``report.currency``).
CURRENCY_SIGNS = _SIGNS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹"}


def currency_sign(profile: Profile, col: str) -> str | None:
    """``report.currency`` from the values of money column ``col``: the sign or code most
    of its values carry (``12,50 €`` -> ``€``, ``CHF 12.50`` -> ``CHF ``), else None."""
    sign = clean.currency_of(col)
    rows = profile.rel.aggregate(f"{sign} AS s, count(*) AS n", sign).fetchall()
    found = {str(s): int(n) for s, n in rows if s}
    present = profile.columns[col].present
    if not found or max(found.values()) * 2 < present:
        return None
    top = max(found, key=lambda k: found[k])
    return _SIGNS.get(top.upper(), top if len(top) == 1 else f"{top.upper()} ")


def distinct_ids(profile: Profile, col: str) -> int:
    """Customer ids once cleaned as the loader cleans them (``17850.0`` is ``17850``)."""
    sql = f"count(DISTINCT {clean.id_expr(col)})"
    return int(profile.rel.aggregate(sql).fetchall()[0][0])


def cancel_prefix(profile: Profile, col: str) -> tuple[str, int] | None:
    """A letter prefix that marks some order ids (``C536379`` among ``536365``…)."""
    t = clean.text_expr(col)
    rows = profile.rel.aggregate(
        f"regexp_extract({t}, '^([A-Za-z]+)[0-9]', 1) AS p, count(*) AS n",
        f"regexp_extract({t}, '^([A-Za-z]+)[0-9]', 1)",
    ).fetchall()
    counts = {str(p): int(n) for p, n in rows if p is not None}
    plain = counts.pop("", 0)
    if not counts or plain < 0.5 * profile.rows:
        return None
    prefix = max(counts, key=lambda p: counts[p])
    return prefix, counts[prefix]


#: A column that says what became of an order, and the levels of one that is no purchase.
_STATUS = re.compile(r"status|^state$|_state$|zustand|statut|estado|stato|\bstand\b", re.IGNORECASE)
_NOT_A_PURCHASE = re.compile(
    r"cancel|refund|return|void|fail|declin|reject|chargeback|abandon|storn|annul|"
    r"abgebrochen|zur[üu]ck|erstatt|rembours|retour|devuel|devoluc|reembols|rimbors|"
    r"anulad|cancelad|annullat",
    re.IGNORECASE,
)
#: ... unless partly so: a partially refunded order was bought ("partially_refunded").
_PARTIAL = re.compile(r"partial|teilweise|partiel|parcial|parzial|gedeeltelijk", re.I)
#: A status column has at most this many levels.
STATUS_LEVELS = 20


def excluded_statuses(profile: Profile, taken: set[str]) -> tuple[str, list[str], int] | None:
    """(column, levels, rows): a column named like an order status whose levels include
    cancelled, refunded, returned, failed… orders (``Status: completed / cancelled``), which
    are no purchases; None without one."""
    for c in profile.columns.values():
        if c.name in taken or not _STATUS.search(c.name) or not 2 <= c.distinct <= STATUS_LEVELS:
            continue
        t = clean.text_expr(c.name)
        rows = profile.rel.aggregate(f"{t} AS v, count(*) AS n", t).fetchall()
        bad = {
            str(v): int(n)
            for v, n in rows
            if v is not None and _NOT_A_PURCHASE.search(str(v)) and not _PARTIAL.search(str(v))
        }
        if bad and len(bad) < len([v for v, _ in rows if v is not None]):
            return c.name, sorted(bad), sum(bad.values())
    return None


def currencies_of(
    profile: Profile, money: str, taken: set[str]
) -> tuple[str | None, dict[str, int], int] | None:
    """(column, rows per currency, rows without one) when money is written in several
    currencies: a column named like a currency (``Currency``: EUR, USD) holding two or
    more, or else the signs and codes in the money column ``money`` (``€12.50``,
    ``$3.00``; column None); None for one currency or none."""
    names = [
        c
        for c in profile.columns
        if c not in taken and clean.CURRENCY_NAMES.match(c) and not clean.CONVERTED_NAMES.search(c)
    ]
    options: list[tuple[str | None, str]]
    options = [(c, clean.currency_code(clean.stripped(c))) for c in names[:1]]
    options.append((None, clean.currency_mark(money)))
    for col, code in options:
        rows = profile.rel.aggregate(f"{code} AS c, count(*) AS n", code).fetchall()
        found = {str(c): int(n) for c, n in rows if c is not None}
        if len(found) > 1:
            ordered = dict(sorted(found.items(), key=lambda cn: (-cn[1], cn[0])))
            return col, ordered, sum(int(n) for c, n in rows if c is None)
        if col is not None:  # a currency column with one currency: the amounts are in it
            return None
    return None


def _codes_in(profile: Profile, col: str) -> list[str]:
    """The currencies a currency column holds, as the loader reads them (``€`` is EUR)."""
    code = clean.currency_code(clean.stripped(col))
    rows = profile.rel.aggregate(f"{code} AS c", code).fetchall()
    return [str(r[0]) for r in rows if r[0] is not None]


def one_currency(profile: Profile, taken: set[str]) -> tuple[str, str] | None:
    """(column, currency) of a column named like a currency that holds one currency on
    every row it fills (``currency: EUR``): the money is in it; None otherwise."""
    for c in profile.columns:
        if c in taken or not clean.CURRENCY_NAMES.match(c) or clean.CONVERTED_NAMES.search(c):
            continue
        found = _codes_in(profile, c)
        return (c, found[0]) if len(found) == 1 else None
    return None


def repeated_totals(profile: Profile, amount: str, order: str) -> tuple[int, int]:
    """(orders with several rows, those whose rows all carry the same ``amount``): an
    order's total written on each of its lines, as WooCommerce exports it."""
    amt, o = clean.num_expr(amount, read_spec(profile)), clean.text_expr(order)
    per = profile.rel.filter(f"{o} IS NOT NULL").aggregate(
        f"count(*) AS n, count({amt}) AS f, count(DISTINCT {amt}) AS k", o
    )
    multi, same = per.aggregate(
        "count(*) FILTER (WHERE n > 1), count(*) FILTER (WHERE n > 1 AND f = n AND k = 1)"
    ).fetchall()[0]
    return int(multi), int(same)


def placeholder_ids(profile: Profile, col: str) -> tuple[list[str], int]:
    """(spellings, rows) of the ids in ``col`` that stand for no one
    (:data:`segkit.core.words.PLACEHOLDER_IDS`: WooCommerce's customer ``0`` of guest
    checkouts, ``unknown``), on at least 1% of the rows and 10; spellings as exclude_values
    compares them (trimmed, lower case: ``0.0`` in a column of float ids)."""
    ids, words = clean.id_expr(col), literals(sorted(PLACEHOLDER_IDS))
    raw = f"lower(trim(CAST({ident(col)} AS VARCHAR)))"
    rows = (
        profile.rel.filter(f"lower({ids}) IN ({words})")
        .aggregate(f"{ids} AS v, {raw} AS r, count(*) AS n", f"{ids}, {raw}")
        .fetchall()
    )
    big = placeholders([(str(v), str(r), int(n)) for v, r, n in rows], profile.rows)
    return sorted(w for _, _, words in big for w in words), sum(n for _, n, _ in big)


def converted_money(profile: Profile, taken: set[str]) -> tuple[str, str | None] | None:
    """(column, its currency) of money converted into one currency already, as payment
    exports add it beside the charged amount (Stripe's "Converted Amount" with "Converted
    Currency"): a numeric column named like money and converted, whose converted-currency
    column holds one currency (None without such a column); None when there is none."""
    for c in profile.columns.values():
        name = c.name
        if name in taken or not c.is_numeric or not clean.CONVERTED_NAMES.search(name):
            continue
        if not AMOUNT_NAME.search(name):
            continue
        beside = [
            k
            for k in profile.columns
            if clean.CURRENCY_NAMES.match(k) and clean.CONVERTED_NAMES.search(k)
        ]
        if not beside:
            return name, None
        found = _codes_in(profile, beside[0])
        if len(found) == 1:
            return name, found[0]
    return None


def utc_offsets(profile: Profile, col: str) -> dict[str, int]:
    """The UTC offsets the timestamps of ``col`` carry (``+0100``, ``+02:00``; ``Z`` is
    ``+0000``), normalized to ``+HHMM``, with their rows."""
    tail = clean.offset_of(col)
    rows = profile.rel.aggregate(f"{tail} AS o, count(*) AS n", tail).fetchall()
    out: dict[str, int] = {}
    for o, n in rows:
        if not o:
            continue
        o = "+0000" if o in ("Z", "z") else o.replace(":", "")
        o = o if len(o) == 5 else o + "00"
        out[o] = out.get(o, 0) + int(n)
    return out


def hash_numbered(profile: Profile, col: str) -> bool:
    """Every value of ``col`` is a number after a hash (``#1001``): how shops number orders."""
    t = clean.text_expr(col)
    bad, n = profile.rel.aggregate(
        f"count(*) FILTER (WHERE NOT regexp_full_match({t}, '#[0-9]+')), count({t})"
    ).fetchall()[0]
    return bool(n) and not bad


def quoted(col: str) -> str:
    """A column name as a derive expression may write it (backquotes when not a name)."""
    return col if re.fullmatch(r"[A-Za-z_]\w*", col) else f"`{col}`"


def sql_count(profile: Profile, where: str) -> int:
    """Rows of the file where the SQL condition ``where`` holds."""
    return int(profile.rel.aggregate(f"count(*) FILTER (WHERE {where})").fetchall()[0][0])
