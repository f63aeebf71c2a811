"""Load and validate the three kinds of input, keeping every row accounted for.

Inputs (any subset, each described by a *table spec* in the parameters, see
:data:`segkit.core.params.TABLE_DEFAULTS`):

- **transactions**: customer id, timestamp, amount (or quantity × unit price); optional order
  id, quantity, unit price, product, category, channel, country;
- **customers**: customer id plus attributes;
- **experiment**: customer id, arm, outcomes and pre-period covariates.

Files are CSV (any delimiter, ``.gz`` too, any encoding), Parquet or Excel. Reading and
cleaning run in DuckDB (in-process; it reads the files directly and spills to disk), so the
cost grows with the data and 50 million rows fit on a laptop. Every row gets a *reason*:
``None`` for a row that is used, else the first cleaning rule it fails (:data:`REASONS`).
Used rows and rejects are written side by side and their counts reconcile exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from segkit.core.checks import SegkitError, check_scalar
from segkit.core import params
from segkit.core.files import sha256
from segkit.core.params import ROLES, TABLE_DEFAULTS

#: Cleaning rules in the order they are applied; a row is rejected for the first it fails.
REASONS = {
    "missing_customer_id": "customer id is empty",
    "unparseable_timestamp": "timestamp is empty or not a date",
    "non_numeric_amount": "amount, quantity or price is empty or not a number",
    "cancellation": "order id marks a cancellation",
    "negative_quantity": "quantity below zero (a return)",
    "non_positive_amount": "amount is zero or negative (zero quantity or price, refund)",
    "after_observation_end": "timestamp after the observation end",
    "duplicate_row": "exact duplicate of an earlier row",
    "missing_arm": "experiment arm is empty",
    "duplicate_customer_id": "customer id seen on an earlier row",
    "non_numeric_outcome": "an outcome or covariate is not a number",
}

_DEFAULT_DATE_FORMATS_DAYFIRST = [
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y%m%d",
    "%d-%m-%Y",
    "%Y/%m/%d",
]
_DEFAULT_DATE_FORMATS_MONTHFIRST = [
    f.replace("%d/%m", "%m/%d").replace("%d-%m", "%m-%d") for f in _DEFAULT_DATE_FORMATS_DAYFIRST
]


class Table(NamedTuple):
    """A cleaned input: DuckDB relations of used rows and rejects, plus what was read."""

    name: str
    source: str  # the file, for messages
    used: duckdb.DuckDBPyRelation
    rejects: duckdb.DuckDBPyRelation
    quality: dict


def connect(memory_limit: str | None = None, temp_dir: str | Path | None = None):
    """An in-process DuckDB connection that spills to ``temp_dir`` past ``memory_limit``."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if temp_dir:
        con.execute(f"SET temp_directory = '{Path(temp_dir).as_posix()}'")
    return con


def table_spec(spec: dict | str | Path | None, name: str) -> dict | None:
    """Fill a table spec with defaults (see :func:`segkit.core.params.table_spec`)."""
    return params.table_spec(spec, name)


def resolve_path(path: str | Path) -> Path:
    """An input path; relative paths (from Python, not a parameter file) against the cwd."""
    return Path(path).expanduser().resolve()


def _format_of(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if suffixes and suffixes[-1] in (".xlsx", ".xls", ".xlsm"):
        return "excel"
    return "csv"


def read_raw(con, spec: dict, name: str) -> tuple[duckdb.DuckDBPyRelation, dict]:
    """Read a file as a relation of VARCHAR columns plus ``_row`` (1-based file row)."""
    path = resolve_path(spec["path"])
    info: dict = {"file": str(spec["path"])}
    if not path.is_file():
        raise SegkitError(f"data.{name}.path: file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise SegkitError(f"{name} file {str(path)!r} is empty (0 bytes); expected a table")
    fmt = _format_of(path, spec["format"])
    info["format"] = fmt
    if fmt == "parquet":
        rel = con.sql(f"SELECT * FROM read_parquet('{path.as_posix()}')")
        rel = rel.select(", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in rel.columns))
    elif fmt in ("excel", "whitespace"):
        # Small formats: pandas reads them (DuckDB has no Excel reader without extensions).
        if fmt == "excel":
            df = pd.read_excel(
                path, sheet_name=spec["sheet"], dtype=str, header=0 if spec["header"] else None
            )
        else:
            df = pd.read_csv(path, sep=r"\s+", dtype=str, header=0 if spec["header"] else None)
        if spec["names"]:
            df.columns = spec["names"][: df.shape[1]]
        df.columns = [str(c) for c in df.columns]
        rel = con.from_df(df)
    else:
        opts = ["all_varchar = true", f"header = {str(bool(spec['header'])).lower()}"]
        if spec["sep"] != "auto":
            opts.append(f"delim = '{spec['sep']}'")
        if spec["names"]:
            opts.append(f"names = {list(spec['names'])!r}")
        encoding = spec["encoding"]
        try:
            enc = "utf-8" if encoding == "auto" else encoding
            rel = con.sql(
                f"SELECT * FROM read_csv('{path.as_posix()}', {', '.join(opts)}, "
                f"encoding = '{enc}')"
            )
            rel.limit(1).fetchall()  # force the sniffer and the first decode now
            con.sql(
                f"SELECT count(*) FROM read_csv('{path.as_posix()}', {', '.join(opts)}, "
                f"encoding = '{enc}')"
            ).fetchall()
        except duckdb.Error as exc:
            if encoding == "auto" and "unicode" in str(exc).lower():
                enc = "latin-1"
                rel = con.sql(
                    f"SELECT * FROM read_csv('{path.as_posix()}', {', '.join(opts)}, "
                    f"encoding = 'latin-1')"
                )
            else:
                raise SegkitError(
                    f"{name} file {str(path)!r} could not be read as CSV: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
        info["encoding"] = enc
    cols = rel.columns
    rel = rel.select("row_number() OVER () AS _row, " + ", ".join(f'"{c}"' for c in cols))
    return rel, info


def _mapping(spec: dict, name: str, columns: list[str]) -> dict[str, str | None]:
    """Role -> file column; roles not mapped default to a column of the same name."""
    given = spec["columns"] or {}
    out = {}
    for role in ROLES[name]:
        if role in given:
            col = given[role]
            if col is not None and col not in columns:
                raise SegkitError(
                    f"{name} ({spec['path']}) is missing column {col!r} (mapped to {role}); "
                    f"columns are {columns}"
                )
            out[role] = col
        else:
            out[role] = role if role in columns else None
    return out


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _id_expr(col: str) -> str:
    # Ids read from numbers arrive as '17850.0': strip the '.0' and surrounding blanks.
    return f"NULLIF(regexp_replace(trim({_q(col)}), '\\.0+$', ''), '')"


def _num_expr(col: str) -> str:
    return f"TRY_CAST(NULLIF(trim({_q(col)}), '') AS DOUBLE)"


def _ts_expr(col: str, spec: dict) -> str:
    formats = spec["date_formats"] or (
        _DEFAULT_DATE_FORMATS_DAYFIRST if spec["dayfirst"] else _DEFAULT_DATE_FORMATS_MONTHFIRST
    )
    fmts = "[" + ", ".join(f"'{f}'" for f in formats) + "]"
    strict = f"try_strptime(trim({_q(col)}), {fmts})"
    if spec["date_formats"]:
        return strict
    return f"COALESCE(TRY_CAST(trim({_q(col)}) AS TIMESTAMP), {strict})"


def _finish(con, staged, name: str, spec: dict, info: dict, keep: list[str]) -> Table:
    """Split a staged relation (with ``_reason``) into used rows and rejects; count them."""
    tmp = f"_staged_{name}"
    con.execute(f"DROP TABLE IF EXISTS {tmp}")
    staged.create(tmp)
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
        top = max(quality["rejected"], key=quality["rejected"].get)
        raise SegkitError(
            f"{name} ({spec['path']}): no rows left after cleaning; {rows_in} rows read, "
            f"all rejected, most for '{top}' ({REASONS[top]}): {quality['rejected']}"
        )
    used = con.sql(f"SELECT {', '.join(keep)} FROM {tmp} WHERE _reason IS NULL ORDER BY _row")
    raw_cols = [c for c in con.sql(f"SELECT * FROM {tmp}").columns if c.startswith("raw_")]
    rejects = con.sql(
        f"SELECT '{name}' AS input, _row AS row, _reason AS reason, "
        + ", ".join(f'{c} AS "{c[4:]}"' for c in raw_cols)
        + f" FROM {tmp} WHERE _reason IS NOT NULL ORDER BY _row"
    )
    return Table(name, str(spec["path"]), used, rejects, quality)


def _normalize_categories(con, table: str, cols: list[str]) -> None:
    """Unify whitespace and case variants ('united kingdom ', 'United Kingdom') in place.

    Each variant (compared trimmed, blanks collapsed and case-folded) becomes its most
    frequent spelling; ties go to the alphabetically first, so the result is deterministic.
    """
    for col in cols:
        c = _q(col)
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _canon AS
            SELECT k, first(v ORDER BY n DESC, v) AS canon FROM (
              SELECT lower(regexp_replace(trim({c}), '\\s+', ' ', 'g')) AS k,
                     regexp_replace(trim({c}), '\\s+', ' ', 'g') AS v, count(*) AS n
              FROM {table} WHERE {c} IS NOT NULL GROUP BY 1, 2) GROUP BY k""")
        con.execute(f"""
            UPDATE {table} SET {c} = _canon.canon FROM _canon
            WHERE lower(regexp_replace(trim({table}.{c}), '\\s+', ' ', 'g')) = _canon.k""")


def _reason_sql(rules: list[tuple[str, str]]) -> str:
    """CASE expression giving the first failing rule's name, NULL for a usable row."""
    return "CASE " + " ".join(f"WHEN {cond} THEN '{r}'" for r, cond in rules) + " ELSE NULL END"


def load_transactions(
    spec: dict | str | Path,
    observation_end: pd.Timestamp | str | None = None,
    con=None,
) -> Table:
    """Read and clean a transaction log.

    The used rows have ``customer_id, timestamp, amount`` plus whichever of ``order_id,
    quantity, unit_price, product, category, channel, country`` are mapped. ``amount`` is
    ``quantity * unit_price`` when no amount column is mapped. Rows after
    ``observation_end`` (a date: the whole day counts) are rejected.
    """
    con = con or connect()
    spec = table_spec(spec, "transactions")
    raw, info = read_raw(con, spec, "transactions")
    m = _mapping(spec, "transactions", [c for c in raw.columns if c != "_row"])
    for role in ("customer_id", "timestamp"):
        if m[role] is None:
            raise SegkitError(
                f"transactions ({spec['path']}) has no {role} column: map one in "
                f"data.transactions.columns.{role}; columns are {raw.columns[1:]}"
            )
    if m["amount"] is None and (m["quantity"] is None or m["unit_price"] is None):
        raise SegkitError(
            f"transactions ({spec['path']}) needs an amount column, or quantity and unit_price "
            f"columns, mapped in data.transactions.columns; columns are {raw.columns[1:]}"
        )
    sel = [
        "_row",
        f"{_id_expr(m['customer_id'])} AS customer_id",
        f"{_ts_expr(m['timestamp'], spec)} AS timestamp",
    ]
    for role in ("quantity", "unit_price", "amount"):
        if m[role]:
            sel.append(f"{_num_expr(m[role])} AS {role}")
    if not m["amount"]:
        sel.append(f"{_num_expr(m['quantity'])} * {_num_expr(m['unit_price'])} AS amount")
    for role in ("order_id", "product", "category", "channel", "country"):
        if m[role]:
            sel.append(f"NULLIF(trim({_q(m[role])}), '') AS {role}")
    sel += [f"{_q(c)} AS raw_{c}" for c in raw.columns if c != "_row"]
    typed = raw.select(", ".join(sel))
    nums = [r for r in ("amount", "quantity", "unit_price") if r in typed.columns]
    rules = [
        ("missing_customer_id", "customer_id IS NULL"),
        ("unparseable_timestamp", "timestamp IS NULL"),
        ("non_numeric_amount", " OR ".join(f"{r} IS NULL" for r in nums)),
    ]
    if spec["cancel_prefix"] and m["order_id"]:
        rules.append(("cancellation", f"starts_with(order_id, '{spec['cancel_prefix']}')"))
    if m["quantity"]:
        rules.append(("negative_quantity", "quantity < 0"))
    rules.append(
        ("non_positive_amount", "amount < 0" if spec["allow_zero_amount"] else "amount <= 0")
    )
    if observation_end is not None:
        end = pd.Timestamp(observation_end).normalize() + pd.Timedelta(days=1)
        rules.append(("after_observation_end", f"timestamp >= TIMESTAMP '{end}'"))
    keep = ["customer_id", "timestamp", "amount"] + [
        r
        for r in ("order_id", "quantity", "unit_price", "product", "category", "channel", "country")
        if m[r]
    ]
    if spec["dedupe"]:
        part = ", ".join(_q(f"raw_{c}") for c in raw.columns if c != "_row")
        typed = typed.select(f"*, row_number() OVER (PARTITION BY {part} ORDER BY _row) AS _dup")
        rules.append(("duplicate_row", "_dup > 1"))
    staged = typed.select(f"*, {_reason_sql(rules)} AS _reason")
    table = _finish(con, staged, "transactions", spec, info, keep)
    cats = [r for r in ("category", "channel", "country") if m[r]]
    if cats:
        _normalize_categories(con, "_staged_transactions", cats)
    return table


def _load_keyed(
    spec,
    name: str,
    con,
    extra_rules,
    keep_extra: list[str],
    sel_extra: list[str],
    m: dict,
    raw,
    info,
) -> Table:
    id_sql = "printf('R%06d', _row)" if spec["id_from_row"] else _id_expr(m["customer_id"])
    sel = ["_row", f"{id_sql} AS customer_id", *sel_extra]
    sel += [f"{_q(c)} AS raw_{c}" for c in raw.columns if c != "_row"]
    typed = raw.select(", ".join(sel))
    typed = typed.select("*, row_number() OVER (PARTITION BY customer_id ORDER BY _row) AS _dup")
    rules = [
        ("missing_customer_id", "customer_id IS NULL"),
        *extra_rules,
        ("duplicate_customer_id", "_dup > 1"),
    ]
    staged = typed.select(f"*, {_reason_sql(rules)} AS _reason")
    return _finish(con, staged, name, spec, info, ["customer_id", *keep_extra])


def _id_mapping(spec, name, raw):
    m = _mapping(spec, name, [c for c in raw.columns if c != "_row"])
    if m["customer_id"] is None and not spec["id_from_row"]:
        raise SegkitError(
            f"{name} ({spec['path']}) has no customer_id column: map one in "
            f"data.{name}.columns.customer_id, or set data.{name}.id_from_row: true to number "
            f"the rows; columns are {raw.columns[1:]}"
        )
    return m


def load_customers(spec: dict | str | Path, con=None) -> Table:
    """Read customer attributes: one row per customer id (later duplicates rejected).

    Numeric-looking attribute columns become numbers; the others are categorical text with
    whitespace and case variants unified.
    """
    con = con or connect()
    spec = table_spec(spec, "customers")
    raw, info = read_raw(con, spec, "customers")
    m = _id_mapping(spec, "customers", raw)
    cols = [c for c in raw.columns if c != "_row" and c != m["customer_id"]]
    attrs = spec["attributes"] if spec["attributes"] is not None else cols
    missing = [a for a in attrs if a not in cols]
    if missing:
        raise SegkitError(
            f"customers ({spec['path']}) is missing attribute column(s) {missing}; "
            f"columns are {cols}"
        )
    numeric = _numeric_columns(con, raw, attrs)
    sel = [
        (f"{_num_expr(a)} AS {_q(a)}" if a in numeric else f"NULLIF(trim({_q(a)}), '') AS {_q(a)}")
        for a in attrs
    ]
    table = _load_keyed(spec, "customers", con, [], [_q(a) for a in attrs], sel, m, raw, info)
    _normalize_categories(con, "_staged_customers", [a for a in attrs if a not in numeric])
    return table


def _numeric_columns(con, raw, cols: list[str]) -> set[str]:
    """Columns whose every non-empty value parses as a number."""
    if not cols:
        return set()
    exprs = ", ".join(
        f"bool_and({_num_expr(c)} IS NOT NULL OR NULLIF(trim({_q(c)}), '') IS NULL) "
        f"AND count(NULLIF(trim({_q(c)}), '')) > 0"
        for c in cols
    )
    flags = raw.aggregate(exprs).fetchall()[0]
    return {c for c, f in zip(cols, flags, strict=True) if f}


def load_experiment(spec: dict | str | Path, con=None) -> Table:
    """Read an experiment: customer id, arm, numeric outcomes and covariates.

    Missing outcomes are kept (NULL); each A/B metric excludes them and counts them. A value
    that is present but not a number rejects the row.
    """
    con = con or connect()
    spec = table_spec(spec, "experiment")
    raw, info = read_raw(con, spec, "experiment")
    m = _id_mapping(spec, "experiment", raw)
    if m["arm"] is None:
        raise SegkitError(
            f"experiment ({spec['path']}) has no arm column: map one in "
            f"data.experiment.columns.arm; columns are {raw.columns[1:]}"
        )
    others = [c for c in raw.columns if c not in ("_row", m["customer_id"], m["arm"])]
    outcomes = (
        spec["outcomes"]
        if spec["outcomes"] is not None
        else sorted(_numeric_columns(con, raw, others), key=others.index)
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
    vals = [*outcomes, *[c for c in covariates if c not in outcomes]]
    sel = [f"NULLIF(trim({_q(m['arm'])}), '') AS arm"] + [
        f"{_num_expr(c)} AS {_q(c)}" for c in vals
    ]
    bad = " OR ".join(
        f"({_num_expr(c)} IS NULL AND NULLIF(trim({_q(c)}), '') IS NOT NULL)" for c in vals
    )
    rules = [("missing_arm", "arm IS NULL"), ("non_numeric_outcome", bad)]
    # the rule conditions refer to typed names; recompute the bad test on raw columns
    rules[1] = (
        "non_numeric_outcome",
        " OR ".join(
            f"({_q(c)} IS NULL AND {_q('raw_' + c)} IS NOT NULL AND trim({_q('raw_' + c)}) <> '')"
            for c in vals
        ),
    )
    table = _load_keyed(spec, "experiment", con, rules, ["arm", *map(_q, vals)], sel, m, raw, info)
    table.quality.update(outcomes=list(outcomes), covariates=list(covariates))
    return table
