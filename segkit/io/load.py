"""The three loaders: every row read is used or rejected for the first rule it fails.

Counts reconcile exactly: ``rows_in == rows_used + rows_rejected`` and ``rows_rejected``
is the sum over :data:`REASONS`. Besides the counts, the quality dict records what was
learnt: the encoding or the sheets, ``ids_trimmed`` (ids that had blanks around them),
``date_order`` and ``timestamps_converted_to_utc`` (see :mod:`segkit.io.clean`), and
``notes`` (e.g. a hint to set ``decimal: ","``).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import duckdb
import pandas as pd

from segkit.core import params
from segkit.core.errors import SegkitError
from segkit.core.params import ROLES
from segkit.core.sql import ident, idents, literal
from segkit.core.words import PLACEHOLDER_IDS
from segkit.io import clean
from segkit.io.read import connect, read_raw, typed_dates

#: A single row worth more than this is taken for a data error (an id or a typo).
MAX_ROW_AMOUNT = 1e12

#: Cleaning rules in the order they are applied; a row is rejected for the first it fails.
REASONS = {
    "missing_customer_id": "customer id is empty",
    "unparseable_timestamp": "timestamp is empty or not a date",
    "non_numeric_amount": "amount, quantity or price is empty or not a number",
    "non_finite_amount": "amount, quantity or price is NaN or infinite (or overflows)",
    "unknown_currency": "the row's currency has no rate in currencies.rates, or it has none",
    "cancellation": "order id marks a cancellation",
    "excluded_value": "a value listed in exclude_values (e.g. a cancelled order), on the row "
    "or on another row of its order",
    "negative_quantity": "quantity below zero (a return)",
    "non_positive_amount": "amount is zero or negative (zero quantity or price, refund)",
    "implausible_amount": f"amount above {MAX_ROW_AMOUNT:.0e} in one row",
    "future_timestamp": "timestamp after the run date (when no observation end is given)",
    "after_observation_end": "timestamp after the observation end",
    "duplicate_row": "exact duplicate of an earlier row",
    "missing_arm": "experiment arm is empty",
    "duplicate_customer_id": "customer id seen on an earlier row",
    "non_numeric_outcome": "an outcome or covariate is not a finite number",
}

#: Optional roles of a transaction log, in the order the used rows keep them.
TX_OPTIONAL = ("order_id", "quantity", "unit_price", "product", "category", "channel", "country")


class Table(NamedTuple):
    """A cleaned input: DuckDB relations of used rows and rejects, plus what was read."""

    name: str
    source: str  # the file, for messages
    used: duckdb.DuckDBPyRelation
    rejects: duckdb.DuckDBPyRelation
    quality: dict


def table_spec(spec: dict | str | Path | None, name: str) -> dict | None:
    """Fill a table spec with defaults (see :func:`segkit.core.params.table_spec`)."""
    out = params.table_spec(spec, name)
    if out is not None:
        clean.check_number_marks(out, name)
    return out


def _filled(spec: dict | str | Path, name: str) -> dict:
    out = table_spec(spec, name)
    if out is None:
        raise SegkitError(f"data.{name}: no table spec given")
    return out


def _cols_text(name: str, m: dict, columns: list[str]) -> str:
    """The file's columns for a message, only if the file looks like a table of its kind."""
    if any(v is not None for v in m.values()):
        return f"columns are {columns}"
    return (
        f"none of its {len(columns)} columns has a name data.{name}.columns maps or a role's "
        "name: is it the right file (and sep, header, sheet, skip_rows)?"
    )


def column_mapping(spec: dict, name: str, columns: list[str], info: dict) -> dict[str, str | None]:
    """Role -> file column; roles not mapped default to a column of the same name.

    Raises
    ------
    SegkitError
        A mapped column is not among ``columns``.
    """
    given = spec["columns"] or {}
    m = {r: (given[r] if r in given else (r if r in columns else None)) for r in ROLES[name]}
    missing = {r: c for r, c in m.items() if c is not None and c not in columns}
    found = {r: c for r, c in m.items() if c is not None and c in columns}
    if missing:
        role, col = next(iter(missing.items()))
        sheets = info.get("sheets")
        hint = f"; the workbook's sheets are {sheets}" if sheets and len(sheets) > 1 else ""
        raise SegkitError(
            f"{name} ({spec['path']}) is missing column {col!r} (mapped to {role}); "
            f"{_cols_text(name, found, columns)}{hint}"
        )
    return m


def _finish(con, staged, name: str, spec: dict, info: dict, keep: list[str]) -> Table:
    """Split a staged relation (with ``_reason``) into used rows and rejects; count them."""
    tmp = ident(f"_staged_{name}")
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    staged.create(f"_staged_{name}")
    counts = dict(
        con.sql(f"SELECT coalesce(_reason, '_used'), count(*) FROM {tmp} GROUP BY 1").fetchall()
    )
    rows_in = int(sum(counts.values()))
    used_n = int(counts.pop("_used", 0))
    quality = {
        **info,
        "rows_in": rows_in,
        "rows_used": used_n,
        "rows_rejected": rows_in - used_n,
        "rejected": {k: int(counts[k]) for k in REASONS if k in counts},
    }
    if rows_in == 0:
        raise SegkitError(f"{name} file {spec['path']!r} has a header but no rows")
    if used_n == 0:
        top = max(quality["rejected"], key=lambda k: quality["rejected"][k])
        notes = "".join(f"; {n}" for n in info.get("notes", []))
        raise SegkitError(
            f"{name} ({spec['path']}): no rows left after cleaning; {rows_in} rows read, "
            f"all rejected, most for '{top}' ({REASONS[top]}): {quality['rejected']}{notes}"
        )
    used = con.sql(f"SELECT {', '.join(keep)} FROM {tmp} WHERE _reason IS NULL ORDER BY _row")
    raw_cols = [c for c in con.sql(f"SELECT * FROM {tmp}").columns if c.startswith("raw_")]
    rejects = con.sql(
        f"SELECT {literal(name)} AS input, _row AS row, _reason AS reason"
        + "".join(f", {ident(c)} AS {ident(c[4:])}" for c in raw_cols)
        + f" FROM {tmp} WHERE _reason IS NOT NULL ORDER BY _row"
    )
    return Table(name, str(spec["path"]), used, rejects, quality)


def _normalize_categories(con, table: str, cols: list[str]) -> None:
    """Unify whitespace and case variants ('united kingdom ', 'United Kingdom') in place.

    Each variant becomes its most frequent spelling (:func:`segkit.io.clean.
    canonical_spellings`, the rule the engines share). The spellings are counted in one
    GROUP BY, the rule runs on the distinct spellings only, and only the rows whose
    spelling changes are rewritten (none, for clean data): the cost is one scan of the
    column, not a rewrite of every row.
    """
    t = ident(table)
    for col in cols:
        c = ident(col)
        counts = con.execute(f"SELECT {c}, count(*) FROM {t} WHERE {c} IS NOT NULL GROUP BY 1")
        change = clean.canonical_spellings(dict(counts.fetchall()))
        if change:
            canon = pd.DataFrame({"raw": list(change), "canon": list(change.values())})
            con.register("_canon", canon)
            con.execute(f"UPDATE {t} SET {c} = _canon.canon FROM _canon WHERE {t}.{c} = _canon.raw")
            con.unregister("_canon")


def _reason_sql(rules: list[tuple[str, str]]) -> str:
    """CASE expression giving the first failing rule's name, NULL for a usable row."""
    return "CASE " + " ".join(f"WHEN {cond} THEN '{r}'" for r, cond in rules) + " ELSE NULL END"


def _raw_select(raw: duckdb.DuckDBPyRelation) -> list[str]:
    return [f"{ident(c)} AS {ident('raw_' + c)}" for c in raw.columns if c != "_row"]


def require_tx_roles(m: dict, spec: dict, columns: list[str]) -> None:
    """A transaction log maps a customer id, a timestamp and an amount (or quantity and price)."""
    for role in ("customer_id", "timestamp"):
        if m[role] is None:
            raise SegkitError(
                f"transactions ({spec['path']}) has no {role} column: map one in "
                f"data.transactions.columns.{role}; {_cols_text('transactions', m, columns)}"
            )
    if m["amount"] is None and (m["quantity"] is None or m["unit_price"] is None):
        raise SegkitError(
            f"transactions ({spec['path']}) needs an amount column, or quantity and unit_price "
            f"columns, mapped in data.transactions.columns; "
            f"{_cols_text('transactions', m, columns)}"
        )


def _tx_inspect(raw, m: dict, spec: dict, info: dict) -> bool:
    """Look at the whole columns once; record what was found; the day/month order to use."""
    num_cols = [m[r] for r in ("amount", "quantity", "unit_price") if m[r]]
    exprs = {"ids_trimmed": clean.trimmed_count(m["customer_id"])}
    exprs.update(clean.date_evidence(m["timestamp"]))
    for col in num_cols:
        exprs.update(clean.decimal_evidence(col, spec))
    if not spec.get("currencies"):
        for i, col in enumerate(num_cols):
            exprs[f"marks_{i}"] = f"count(DISTINCT {clean.currency_mark(col)})"
    ev = clean.profile(raw, exprs)
    for i, col in enumerate(num_cols):
        if ev.get(f"marks_{i}", 0) > 1:
            _mixed_marks(raw, spec, col)
    info["ids_trimmed"] = int(ev["ids_trimmed"])
    dayfirst = spec["dayfirst"]  # None: decided from the data
    if not spec["date_formats"]:
        dayfirst, note = clean.decide_dayfirst(
            ev, dayfirst=dayfirst, name="transactions", path=spec["path"], col=m["timestamp"]
        )
        if note["ambiguous_values"] or "proven" in note["basis"] or "each" in note["basis"]:
            info["date_order"] = note
        key = "timestamps_offset_dropped" if spec["local_time"] else "timestamps_converted_to_utc"
        info[key] = int(ev["with_offset"])
    hint = clean.decimal_hint(ev, num_cols, spec, "transactions")
    if hint:
        info["notes"] = [hint]
    return True if dayfirst is None else bool(dayfirst)


#: Logs over this many rows have their order-total check on 1 order in 16 (by a hash).
_ORDER_SAMPLE_ROWS = 1_000_000


def _order_total_notes(con, staged: str, amount_col: str, rows: int) -> list[str]:
    """Notes when the amount column holds each order's total rather than each row's:
    repeated on every row of an order (revenue would count it once per row), or on one
    row with the others empty (they are set aside; nothing is lost). Judged on the staged
    log (typed; exact duplicates and other rejects left out), on every order of a log of
    up to :data:`_ORDER_SAMPLE_ROWS` rows, else on 1 order in 16 by a hash of its id
    (0.26 CPU s on 5.5M rows)."""
    step = 16 if rows > _ORDER_SAMPLE_ROWS else 1
    per_order = (
        f"SELECT count(*) AS n, count(amount) AS filled, count(DISTINCT amount) AS amounts "
        f"FROM {ident(staged)} WHERE (_reason IS NULL OR _reason = 'non_numeric_amount') "
        f"AND order_id IS NOT NULL AND hash(order_id) % {step} = 0 GROUP BY order_id"
    )
    multi, repeated, first_only = con.sql(
        f"SELECT count(*) FILTER (WHERE n > 1), "
        f"count(*) FILTER (WHERE n > 1 AND filled = n AND amounts = 1), "
        f"count(*) FILTER (WHERE n > 1 AND filled = 1) FROM ({per_order})"
    ).fetchall()[0]
    if multi < 20:
        return []
    out, sampled = [], " sampled" if step > 1 else ""
    if repeated >= 0.8 * multi:
        out.append(
            f"In {repeated:,} of {multi:,}{sampled} orders with several rows, every row has "
            f"the same {amount_col!r}: it looks like the order's total repeated on each line, and "
            "revenue counts it once per row. Map the line's amount (or quantity and "
            "unit_price) instead, or give one row per order."
        )
    if first_only >= 0.8 * multi:
        out.append(
            f"In {first_only:,} of {multi:,}{sampled} orders with several rows, only one row "
            f"has {amount_col!r} (an order total on its first line, as shop exports write it): "
            "the rows without it are set aside as non-numeric amounts, and nothing is lost."
        )
    return out


def _tx_select(
    raw, m: dict, spec: dict, *, dayfirst: bool, typed: bool, cur: Currencies | None = None
) -> list[str]:
    ts = clean.ts_expr(m["timestamp"], spec, dayfirst=dayfirst, typed=typed)
    cid = clean.id_expr(m["customer_id"], spec.get("id_width"))
    sel = ["_row", f"{cid} AS customer_id", f"{ts} AS timestamp"]
    if cur is not None:  # amount and price are converted by load_transactions
        code = cur.code_sql(m["amount"] or m["unit_price"])
        sel += [f"{code} AS _currency", f"{cur.rate_sql(code)} AS _rate"]

    def units(num: str) -> str:  # minor units (cents) to units, last (exact in cents)
        return f"({num}) / CAST(100 AS DOUBLE)" if spec["cents"] else num

    refund = spec.get("refunded")
    # the part refunded: nothing when empty, NULL (a non-numeric amount) when not a number
    less = (
        f" - (CASE WHEN {clean.text_expr(refund)} IS NULL THEN 0 "
        f"ELSE {clean.num_expr(refund, spec)} END)"
        if refund
        else ""
    )
    for role in ("quantity", "unit_price", "amount"):
        if m[role]:
            num = clean.num_expr(m[role], spec)
            num = f"{num}{less}" if role == "amount" else num
            sel.append(f"{num if role == 'quantity' else units(num)} AS {role}")
    if not m["amount"]:
        q, p = (clean.num_expr(m[r], spec) for r in ("quantity", "unit_price"))
        sel.append(f"{units(f'{q} * {p}{less}')} AS amount")
    for role in ("order_id", "product", "category", "channel", "country"):
        if m[role]:
            sel.append(f"{clean.text_expr(m[role])} AS {role}")
    return sel + _raw_select(raw)


def excluded_values(spec: dict, columns: list[str]) -> dict[str, list[str]]:
    """``exclude_values`` as column -> values trimmed and lower-cased (the comparison's
    form), every column checked against the file's.

    Raises
    ------
    SegkitError
        A column of ``exclude_values`` is not in the file.
    """
    given = spec["exclude_values"] or {}
    for col in given:
        if col not in columns:
            raise SegkitError(
                f"transactions ({spec['path']}): data.transactions.exclude_values names "
                f"column {col!r}, which the file does not have; columns are {columns}"
            )
    return {str(c): sorted({str(v).strip().lower() for v in vs}) for c, vs in given.items()}


def _rows(n: int) -> str:
    return f"{n:,} row{'s' * (n != 1)}"


class Currencies(NamedTuple):
    """``currencies`` of a table spec, checked against the file: the column (None: the
    marks in the money cells), the rates by :func:`segkit.core.params.currency_key`, the
    default for rows without a currency."""

    column: str | None
    rates: dict[str, float]
    default: str | None

    def code_sql(self, money: str) -> str:
        """The row's currency: the column's value or the money cell's mark, upper-cased."""
        if self.column is not None:
            code = clean.currency_code(clean.stripped(self.column))
        else:
            code = clean.currency_mark(money)
        return code if self.default is None else f"coalesce({code}, {literal(self.default)})"

    def rate_sql(self, code: str) -> str:
        """The rate of currency ``code`` (NULL when it has none)."""
        whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in self.rates.items())
        return f"CASE {code} {whens} END"


def currencies(spec: dict, columns: list[str]) -> Currencies | None:
    """``currencies`` of a transaction log's spec, its column checked against the file's.

    Raises
    ------
    SegkitError
        The column of ``currencies`` is not in the file.
    """
    given = spec.get("currencies")
    if not given:
        return None
    col = given.get("column")
    if col is not None and col not in columns:
        raise SegkitError(
            f"transactions ({spec['path']}): data.transactions.currencies.column is {col!r}, "
            f"which the file does not have; columns are {columns}"
        )
    rates = {params.currency_key(k): float(v) for k, v in given["rates"].items()}
    default = given.get("default")
    return Currencies(col, rates, None if default is None else params.currency_key(default))


def _mixed_marks(raw, spec: dict, col: str) -> None:
    """Stop when the money cells of ``col`` write several currencies (``€12.50`` and
    ``$3.00``) and ``currencies`` does not say how to convert them: their sum means nothing.

    Raises
    ------
    SegkitError
        With the currencies, their rows and an example of the fix.
    """
    mark = clean.currency_mark(col)
    rows = raw.aggregate(f"{mark} AS c, count(*) AS n", mark).fetchall()
    found = sorted(
        ((str(c), int(n)) for c, n in rows if c is not None), key=lambda x: (-x[1], x[0])
    )
    plain = sum(int(n) for c, n in rows if c is None)
    listed = ", ".join(f"{c} on {_rows(n)}" for c, n in found)
    rates = ", ".join(f"{c!r}: {'1' if i == 0 else '…'}" for i, (c, _) in enumerate(found))
    raise SegkitError(
        f"transactions ({spec['path']}): column {col!r} writes money in {len(found)} "
        f"currencies ({listed}; {_rows(plain)} with a plain number): segkit adds money in one "
        f"currency. Convert it with data.transactions.currencies: {{rates: {{{rates}}}, "
        f"default: {found[0][0]!r}}}, each rate how much {found[0][0]} one unit is worth "
        "(the currency is read from each cell; default: the currency of a plain number)"
    )


def currency_column(columns: list[str], m: dict) -> str | None:
    """The first column named like a currency (:data:`segkit.io.clean.CURRENCY_NAMES`)
    that no role maps and that is not a converted one's, None without one or when the
    money mapped is converted already (:data:`segkit.io.clean.CONVERTED_NAMES`)."""
    money = [str(m[r]) for r in ("amount", "unit_price") if m.get(r)]
    if any(clean.CONVERTED_NAMES.search(c) for c in money):
        return None
    return next(
        (
            c
            for c in columns
            if clean.CURRENCY_NAMES.match(c)
            and not clean.CONVERTED_NAMES.search(c)
            and c not in m.values()
        ),
        None,
    )


def currency_note(col: str, rows: list[tuple[str, int]]) -> str | None:
    """A note when ``col``, named like a currency and not converted, holds several
    currencies on the used rows (``rows``: currency, used rows; most first): their amounts
    were added as if in one currency. Shared with :mod:`segkit.engine.clean`."""
    if len(rows) < 2:
        return None
    listed = ", ".join(f"{v} {_rows(n)}" for v, n in rows[:6]) + (", …" if len(rows) > 6 else "")
    return (
        f"Column {col!r} names {len(rows)} currencies ({listed}): their amounts were added as "
        "if in one currency. Unless they are converted already, set data.transactions."
        f"currencies: {{column: {col}, rates: {{{rows[0][0]}: 1, {rows[1][0]}: …}}}}."
    )


def _currency_note(con, staged: str, col: str) -> str | None:
    c = clean.currency_code(clean.stripped("raw_" + col))
    rows = con.sql(
        f"SELECT {c}, count(*) FROM {ident(staged)} WHERE _reason IS NULL "
        f"AND {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    return currency_note(col, [(str(v), int(n)) for v, n in rows])


#: A placeholder id on at least this share of the used rows (and 10 rows) is noted.
PLACEHOLDER_SHARE = 0.01


def placeholders(rows: list[tuple[str, str, int]], used: int) -> list[tuple[str, int, list[str]]]:
    """(id, rows, its spellings) of the ids that stand for no one on at least
    :data:`PLACEHOLDER_SHARE` of the ``used`` rows and 10, most rows first. ``rows``: (id,
    its spelling in the file trimmed and lower-cased, as exclude_values compares it, rows).
    Shared by the loaders and ``segkit init``."""
    by: dict[str, int] = {}
    spellings: dict[str, set[str]] = {}
    for v, raw, n in rows:
        by[v] = by.get(v, 0) + n
        spellings.setdefault(v, set()).add(raw)
    big = [(v, n) for v, n in by.items() if n >= max(10, PLACEHOLDER_SHARE * used)]
    return [(v, n, sorted(spellings[v])) for v, n in sorted(big, key=lambda vn: (-vn[1], vn[0]))]


def placeholder_note(id_col: str, rows: list[tuple[str, str, int]], used: int) -> str | None:
    """A note when ids that stand for no one (:data:`segkit.core.words.PLACEHOLDER_IDS`:
    ``0`` for WooCommerce's guest checkouts, ``unknown``) carry many used rows: each would
    be segmented as one customer. ``rows`` as :func:`placeholders` takes them. Shared with
    :mod:`segkit.engine.clean`."""
    big = placeholders(rows, used)
    if not big:
        return None
    listed = ", ".join(f"{v!r} on {_rows(n)} ({n / used:.0%})" for v, n, _ in big)
    values = ", ".join(repr(w) for _, _, words in big for w in words)
    return (
        f"Customer id {listed} of the rows used looks like a placeholder (guest checkouts, "
        "unknown customers), not one customer, and is segmented as one. Leave it out with "
        f"data.transactions.exclude_values: {{{id_col}: [{values}]}}."
    )


def _placeholder_note(con, staged: str, id_col: str, used: int) -> str | None:
    words = ", ".join(literal(w) for w in sorted(PLACEHOLDER_IDS))
    raw = f"lower(trim(CAST({ident('raw_' + id_col)} AS VARCHAR)))"
    rows = con.sql(
        f"SELECT customer_id, {raw}, count(*) FROM {ident(staged)} WHERE _reason IS NULL "
        f"AND lower(customer_id) IN ({words}) GROUP BY 1, 2"
    ).fetchall()
    return placeholder_note(id_col, [(str(v), str(r), int(n)) for v, r, n in rows], used)


def _tx_rules(
    m: dict, spec: dict, nums: Sequence[str], *, end, today, excluded: dict[str, list[str]]
) -> list[tuple[str, str]]:
    rules = [
        ("missing_customer_id", "customer_id IS NULL"),
        ("unparseable_timestamp", "timestamp IS NULL"),
        ("non_numeric_amount", " OR ".join(f"{r} IS NULL" for r in nums)),
        ("non_finite_amount", " OR ".join(f"NOT isfinite({r})" for r in nums)),
    ]
    if spec.get("currencies"):
        rules.append(("unknown_currency", "_rate IS NULL"))
    if spec["cancel_prefix"] and m["order_id"]:
        prefix = literal(str(spec["cancel_prefix"]))
        rules.append(("cancellation", f"starts_with(order_id, {prefix})"))
    listed = [
        f"lower(trim(CAST({ident('raw_' + c)} AS VARCHAR))) IN ({', '.join(map(literal, vs))})"
        for c, vs in excluded.items()
    ]
    if listed:
        cond = " OR ".join(listed)
        if m["order_id"]:  # the whole order: shops write its status on its first line only
            cond = (
                f"CASE WHEN order_id IS NULL THEN {cond} "
                f"ELSE bool_or({cond}) OVER (PARTITION BY order_id) END"
            )
        rules.append(("excluded_value", cond))
    if m["quantity"]:
        rules.append(("negative_quantity", "quantity < 0"))
    rules.append(
        ("non_positive_amount", "amount < 0" if spec["allow_zero_amount"] else "amount <= 0")
    )
    rules.append(("implausible_amount", f"amount > {literal(MAX_ROW_AMOUNT)}"))
    if end is None:
        now = pd.Timestamp.now() if today is None else pd.Timestamp(today)
        tomorrow = (now.normalize() + pd.Timedelta(days=1)).to_pydatetime()
        rules.append(("future_timestamp", f"timestamp >= {literal(tomorrow)}"))
    else:
        after = (pd.Timestamp(end).normalize() + pd.Timedelta(days=1)).to_pydatetime()
        rules.append(("after_observation_end", f"timestamp >= {literal(after)}"))
    return rules


def load_transactions(
    spec: dict | str | Path,
    observation_end: pd.Timestamp | str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    today: pd.Timestamp | str | None = None,
) -> Table:
    """Read and clean a transaction log.

    The used rows have ``customer_id, timestamp, amount`` plus whichever of ``order_id,
    quantity, unit_price, product, category, channel, country`` are mapped. ``amount`` is
    ``quantity * unit_price`` when no amount column is mapped. Rows after
    ``observation_end`` (a date: the whole day counts) are rejected; without one, rows
    after ``today`` (default: the current date) are rejected as ``future_timestamp``.
    ``date_formats`` apply to a timestamp written as text; a Parquet column stored as a
    timestamp or a date is used as it is. With ``currencies``, amount and unit price are
    converted by the rate of each row's currency (``quality["currencies"]``: rows and rate
    per currency); without it, a column named like a currency holding several is noted in
    ``quality["notes"]``.

    Raises
    ------
    SegkitError
        The file cannot be read, lacks a needed column, mixes or contradicts the day/month
        order (see :mod:`segkit.io.clean`), writes money in several currencies in its cells
        without ``currencies``, or no row is left after cleaning.
    """
    con = con or connect()
    spec = _filled(spec, "transactions")
    raw, info = read_raw(con, spec, "transactions")
    columns = [c for c in raw.columns if c != "_row"]
    m = column_mapping(spec, "transactions", columns, info)
    require_tx_roles(m, spec, columns)
    excluded = excluded_values(spec, columns)
    cur = currencies(spec, columns)
    if spec["refunded"] is not None and spec["refunded"] not in columns:
        raise SegkitError(
            f"transactions ({spec['path']}): data.transactions.refunded is "
            f"{spec['refunded']!r}, which the file does not have; columns are {columns}"
        )
    clean.check_date_formats(con, spec, "transactions")
    dayfirst = _tx_inspect(raw, m, spec, info)
    stored = bool(spec["date_formats"]) and m["timestamp"] in typed_dates(con, spec)
    sel = _tx_select(raw, m, spec, dayfirst=dayfirst, typed=stored, cur=cur)
    typed = raw.select(", ".join(sel))
    if cur is not None:  # a row without a rate is rejected (unknown_currency) before use
        money = [r for r in ("amount", "unit_price") if r in typed.columns]
        typed = typed.select(
            "* REPLACE (" + ", ".join(f"{r} * coalesce(_rate, 1.0) AS {r}" for r in money) + ")"
        )
    nums = [r for r in ("amount", "quantity", "unit_price") if r in typed.columns]
    rules = _tx_rules(m, spec, nums, end=observation_end, today=today, excluded=excluded)
    if spec["dedupe"]:
        part = idents("raw_" + c for c in columns)
        typed = typed.select(f"*, row_number() OVER (PARTITION BY {part} ORDER BY _row) AS _dup")
        rules.append(("duplicate_row", "_dup > 1"))
    staged = typed.select(f"*, {_reason_sql(rules)} AS _reason")
    keep = ["customer_id", "timestamp", "amount"] + [r for r in TX_OPTIONAL if m[r]]
    table = _finish(con, staged, "transactions", spec, info, keep)
    notes = []
    if m["order_id"] and m["amount"]:
        rows = table.quality["rows_in"]
        notes += _order_total_notes(con, "_staged_transactions", m["amount"], rows)
    if cur is not None:
        by = con.sql(
            "SELECT _currency, count(*) FROM _staged_transactions WHERE _reason IS NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ).fetchall()
        table.quality["currencies"] = [
            {"currency": c, "rows": int(n), "rate": cur.rates[c]} for c, n in by
        ]
    else:
        named = currency_column(columns, m)
        note = _currency_note(con, "_staged_transactions", named) if named else None
        notes += [note] if note else []
    used = table.quality["rows_used"]
    note = _placeholder_note(con, "_staged_transactions", str(m["customer_id"]), used)
    notes += [note] if note else []
    if notes:
        table.quality["notes"] = [*table.quality.get("notes", []), *notes]
    cats = [r for r in ("category", "channel", "country") if m[r]]
    if cats:
        _normalize_categories(con, "_staged_transactions", cats)
    return table


def _load_keyed(
    con,
    raw,
    *,
    spec: dict,
    name: str,
    m: dict,
    info: dict,
    select: list[str],
    keep: list[str],
    rules: list[tuple[str, str]],
) -> Table:
    """One row per customer id: missing ids, then ``rules``, then repeated ids rejected."""
    if spec["id_from_row"]:
        id_sql = "printf('R%06d', _row)"
    else:
        id_sql = clean.id_expr(m["customer_id"], spec.get("id_width"))
        info["ids_trimmed"] = int(
            clean.profile(raw, {"n": clean.trimmed_count(m["customer_id"])})["n"]
        )
    sel = ["_row", f"{id_sql} AS customer_id", *select, *_raw_select(raw)]
    typed = raw.select(", ".join(sel))
    typed = typed.select("*, row_number() OVER (PARTITION BY customer_id ORDER BY _row) AS _dup")
    rules = [
        ("missing_customer_id", "customer_id IS NULL"),
        *rules,
        ("duplicate_customer_id", "_dup > 1"),
    ]
    staged = typed.select(f"*, {_reason_sql(rules)} AS _reason")
    return _finish(con, staged, name, spec, info, ["customer_id", *keep])


def _id_mapping(spec: dict, name: str, raw, info: dict) -> dict:
    columns = [c for c in raw.columns if c != "_row"]
    m = column_mapping(spec, name, columns, info)
    if m["customer_id"] is None and not spec["id_from_row"]:
        raise SegkitError(
            f"{name} ({spec['path']}) has no customer_id column: map one in "
            f"data.{name}.columns.customer_id, or set data.{name}.id_from_row: true to number "
            f"the rows; {_cols_text(name, m, columns)}"
        )
    return m


#: Rows read first to rule out a column as numbers or dates before reading all of it.
_FIRST_ROWS = 2_000


def _every_value(raw, cols: list[str], read) -> set[str]:
    """The columns whose every non-empty value ``read(col)`` turns into a value (not NULL).

    Judged on the first :data:`_FIRST_ROWS` rows, then on the whole column only for the
    columns those rows did not rule out: a text column of a million rows would otherwise
    go through every number reading or date format (1M customers: 39 CPU s against 16)."""

    def failing(rel, candidates: list[str]) -> set[str]:  # a value read gives nothing
        exprs = {
            c: f"bool_or({read(c)} IS NULL AND {clean.text_expr(c)} IS NOT NULL)"
            for c in candidates
        }
        bad = clean.profile(rel, exprs)
        return {c for c in candidates if bad[c]}

    left = [c for c in cols if c not in failing(raw.limit(_FIRST_ROWS), cols)]
    if not left:  # (a column empty in the first rows stays a candidate)
        return set()
    exprs = {
        c: f"bool_and({read(c)} IS NOT NULL OR {clean.text_expr(c)} IS NULL) "
        f"AND count({clean.text_expr(c)}) > 0"
        for c in left
    }
    ok = clean.profile(raw, exprs)
    return {c for c in left if ok[c]}


def _numeric_columns(raw, cols: list[str], spec: dict, *, flags: bool = False) -> set[str]:
    """Columns whose every non-empty value parses as a number (``flags``: or as a yes/no
    answer, :func:`segkit.io.clean.flag_expr`: outcomes)."""
    read = clean.flag_expr if flags else clean.num_expr
    return _every_value(raw, cols, lambda c: read(c, spec))


def _date_columns(raw, cols: list[str], spec: dict, typed: set[str]) -> dict[str, bool]:
    """Columns whose every non-empty value is a date: column -> day-first order.

    The day/month order is decided per column as for a transaction log
    (:func:`segkit.io.clean.decide_dayfirst`). ``typed``: columns stored as a timestamp or
    a date (see :func:`segkit.io.read.typed_dates`), which ``date_formats`` do not apply to.
    """
    dates = _every_value(
        raw, cols, lambda c: clean.ts_expr(c, spec, dayfirst=True, typed=c in typed)
    )
    out = {}
    for col in (c for c in cols if c in dates):
        dayfirst = spec["dayfirst"]
        if not spec["date_formats"]:
            ev = clean.profile(raw, clean.date_evidence(col))
            dayfirst, _ = clean.decide_dayfirst(
                ev, dayfirst=dayfirst, name="customers", path=spec["path"], col=col
            )
        out[col] = bool(dayfirst)
    return out


def _date_selects(
    raw, dates: dict[str, bool], spec: dict, observation_end, info: dict, typed: set[str]
) -> dict[str, str]:
    """Date column -> SQL for its days before the observation end (``days_since_<col>``).

    The observation end is ``observation_end`` when given, else the latest date in these
    columns; it is recorded in ``info["dates"]``.
    """
    if not dates:
        return {}
    ts = {c: clean.ts_expr(c, spec, dayfirst=d, typed=c in typed) for c, d in dates.items()}
    if observation_end is not None:
        end = pd.Timestamp(observation_end).normalize()
        basis = "the observation end"
    else:
        latest = clean.profile(raw, {c: f"max({e})" for c, e in ts.items()})
        end = pd.Timestamp(max(latest.values())).normalize()
        basis = "the latest date in the table (no observation end given)"
    at = literal(end.date())
    info["dates"] = {
        c: {"as": f"days_since_{c}", "at": str(end.date()), "basis": basis} for c in dates
    }
    return {c: f"CAST(date_diff('day', CAST({e} AS DATE), {at}) AS DOUBLE)" for c, e in ts.items()}


def _check_customer_spec(spec: dict) -> None:
    """``derive`` and ``labels`` are mappings of names to text."""
    for key in ("derive", "labels"):
        value = spec[key]
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float) for k, v in value.items()
        ):
            example = '{total_spend: "a + b"}' if key == "derive" else '{MntWines: "wine spend"}'
            raise SegkitError(
                f"data.customers.{key} == {value!r}, must be a mapping name: text, e.g. {example}"
            )


def _check_named(spec: dict, key: str, names: list[str], columns: list[str]) -> None:
    """Every name in ``data.customers.<key>`` is a column ("did you mean" otherwise)."""
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(str(name), columns, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SegkitError(
                f"data.customers.{key}: {name!r} is not a column of customers "
                f"({spec['path']}){hint} Columns: {columns}"
            )


def _check_roles(spec: dict, columns: list[str], numeric: set[str] | None) -> None:
    """``derive`` names are new; ``outcomes`` and ``labels`` name columns (or derived ones);
    an outcome read from the file is numeric."""
    derived = [str(k) for k in spec["derive"] or {}]
    for name in derived:
        if name in columns:
            raise SegkitError(
                f"data.customers.derive.{name}: customers ({spec['path']}) already has a "
                f"column {name!r}; pick another name"
            )
    known = columns + derived
    _check_named(spec, "outcomes", list(spec["outcomes"] or []), known)
    # a label names a column, or a level of one: {"Channel=2": "retail"}
    labelled = [str(k).split("=", 1)[0] for k in spec["labels"] or {}]
    _check_named(spec, "labels", labelled, known)
    for col in spec["outcomes"] or []:
        if numeric is not None and col in columns and col not in numeric:
            raise SegkitError(
                f"data.customers.outcomes: {col!r} must be numeric (0/1, yes/no or an amount) "
                f"in customers ({spec['path']}); it holds text"
            )


def load_customers(
    spec: dict | str | Path,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    observation_end: pd.Timestamp | str | None = None,
) -> Table:
    """Read customer attributes: one row per customer id (later duplicates rejected).

    Numeric-looking attribute columns become numbers; a column whose every value is a date
    (text, read with ``date_formats`` when given, or a Parquet date or timestamp, used as it
    is) becomes ``days_since_<column>``: whole days from the date to
    ``observation_end`` (default: the latest date in those columns; recorded in
    ``quality["dates"]``); the other columns are categorical text with whitespace and
    case variants unified. ``outcomes`` and ``labels`` must name columns (or ``derive``
    names); ``derive`` names must be new. The ``derive`` columns themselves are added by
    :func:`segkit.derive.apply_spec` (a layer above this one).

    Raises
    ------
    SegkitError
        The file cannot be read, lacks an attribute or outcome column, a date column mixes
        day/month orders, a label names no column, an outcome is not numeric, a derive
        name is taken.
    """
    con = con or connect()
    spec = _filled(spec, "customers")
    _check_customer_spec(spec)
    raw, info = read_raw(con, spec, "customers")
    m = _id_mapping(spec, "customers", raw, info)
    cols = [c for c in raw.columns if c not in ("_row", m["customer_id"])]
    attrs = list(spec["attributes"] if spec["attributes"] is not None else cols)
    _check_roles(spec, cols, None)
    derived = set(spec["derive"] or {})
    attrs += [c for c in spec["outcomes"] or [] if c not in attrs and c not in derived]
    missing = [a for a in attrs if a not in cols]
    if missing:
        raise SegkitError(
            f"customers ({spec['path']}) is missing attribute column(s) {missing}; "
            f"{_cols_text('customers', {a: a for a in attrs if a in cols}, cols)}"
        )
    numeric = _numeric_columns(raw, attrs, spec)
    outcomes = [c for c in spec["outcomes"] or [] if c in cols]
    answers = _numeric_columns(raw, [c for c in outcomes if c not in numeric], spec, flags=True)
    numeric |= answers  # yes/no outcomes: 1/0
    _check_roles(spec, cols, numeric)
    typed = typed_dates(con, spec) if spec["date_formats"] else set()
    dates = _date_selects(
        raw,
        _date_columns(raw, [a for a in attrs if a not in numeric], spec, typed),
        spec,
        observation_end,
        info,
        typed,
    )
    select, keep = [], []
    for a in attrs:
        name = f"days_since_{a}" if a in dates else a
        read = clean.flag_expr if a in answers else clean.num_expr
        sql = dates.get(a) or (read(a, spec) if a in numeric else clean.text_expr(a))
        select.append(f"{sql} AS {ident(name)}")
        keep.append(ident(name))
    table = _load_keyed(
        con, raw, spec=spec, name="customers", m=m, info=info, select=select, keep=keep, rules=[]
    )
    text = [a for a in attrs if a not in numeric and a not in dates]
    _normalize_categories(con, "_staged_customers", text)
    if spec["outcomes"]:
        table.quality["outcomes"] = list(spec["outcomes"])
    return table


def _experiment_columns(raw, spec: dict, m: dict) -> tuple[list[str], list[str]]:
    """Outcome and covariate columns: as named, or every numeric other column."""
    others = [c for c in raw.columns if c not in ("_row", m["customer_id"], m["arm"])]
    outcomes = (
        spec["outcomes"]
        if spec["outcomes"] is not None
        else [c for c in others if c in _numeric_columns(raw, others, spec, flags=True)]
    )
    covariates = spec["covariates"] or []
    for col in [*outcomes, *covariates]:
        if col not in others:
            raise SegkitError(
                f"experiment ({spec['path']}) is missing column {col!r} "
                f"(named in outcomes/covariates); columns are {others}"
            )
    if not outcomes:
        raise SegkitError(
            f"experiment ({spec['path']}) has no numeric outcome column; "
            f"name them in data.experiment.outcomes; columns are {others}"
        )
    return list(outcomes), list(covariates)


def load_experiment(spec: dict | str | Path, con: duckdb.DuckDBPyConnection | None = None) -> Table:
    """Read an experiment: customer id, arm, numeric outcomes and covariates (a yes/no
    answer, ``ja``/``nein``, ``Yes``/``No``, is 1/0: :func:`segkit.io.clean.flag_expr`).

    Missing outcomes are kept (NULL); each A/B metric excludes them and counts them. A value
    that is present but not a finite number rejects the row.
    """
    con = con or connect()
    spec = _filled(spec, "experiment")
    raw, info = read_raw(con, spec, "experiment")
    m = _id_mapping(spec, "experiment", raw, info)
    if m["arm"] is None:
        raise SegkitError(
            f"experiment ({spec['path']}) has no arm column: map one in "
            f"data.experiment.columns.arm; {_cols_text('experiment', m, raw.columns[1:])}"
        )
    outcomes, covariates = _experiment_columns(raw, spec, m)
    vals = [*outcomes, *[c for c in covariates if c not in outcomes]]
    select = [f"{clean.text_expr(m['arm'])} AS arm"] + [
        f"{clean.flag_expr(c, spec)} AS {ident(c)}"
        for c in vals  # yes/no answers: 1/0
    ]
    bad = " OR ".join(
        f"({ident(c)} IS NULL AND {clean.text_expr('raw_' + c)} IS NOT NULL) "
        f"OR NOT isfinite({ident(c)})"
        for c in vals
    )
    rules = [("missing_arm", "arm IS NULL"), ("non_numeric_outcome", bad)]
    info["arms_trimmed"] = int(clean.profile(raw, {"n": clean.trimmed_count(m["arm"])})["n"])
    keep = ["arm", *map(ident, vals)]
    table = _load_keyed(
        con,
        raw,
        spec=spec,
        name="experiment",
        m=m,
        info=info,
        select=select,
        keep=keep,
        rules=rules,
    )
    table.quality.update(outcomes=outcomes, covariates=covariates)
    return table
