"""Cleaning a typed transaction log on the engine: the rules of :mod:`segkit.io.load`.

With ``engine: spark`` and a transaction log in Parquet (a file, a folder, any path Spark
reads such as ``s3a://``, or a table of the session's catalog: ``format: table``), Spark
reads and cleans the log itself; only the counts come back to the driver, and the clean
rows and the rejects are written by Spark. The rules are those of
:func:`segkit.io.load_transactions`, in the same order, first failing rule wins
(:data:`segkit.io.REASONS`):

missing or blank customer id (after the same trimming as :func:`segkit.io.clean.id_expr`),
null timestamp, null or non-finite amount, quantity or price, a currency without a rate
(``currencies``, from its column: the money is then converted), the cancellation prefix on
the order id, the excluded values, negative quantity, non-positive amount, implausible amount
(> :data:`segkit.io.MAX_ROW_AMOUNT`), after the observation end (or in the future), exact
duplicate rows (one kept); category, channel and country spellings are unified by
:func:`segkit.io.clean.canonical_spellings`. ``amount`` is ``quantity * unit_price`` when no
amount is mapped.

**Typed columns.** DuckDB reads every Parquet column as text and parses it; here the
columns keep their types, and each is read as DuckDB would read its text: integers,
decimals and floats as DOUBLE (a FLOAT through its shortest text, as DuckDB does), dates
and timestamps as timestamps (a timestamp with a time zone in UTC, counted in
``timestamps_converted_to_utc``), ids and text through the same trimming. A timestamp or
an amount, quantity or price stored as *text* is a :class:`SegkitError` that says to store
it typed or to use ``engine: duckdb`` (whose sniffing reads day/month orders, decimal
commas and time zones of text); ``date_formats``, ``dayfirst``, ``decimal`` and
``thousands`` are about text and do not apply to typed columns. With ``epoch`` the
timestamp is a column of numbers since 1970; ``cents``, ``refunded`` and ``currencies``
(from its column) change the money as :func:`segkit.io.load_transactions` does, and the
notes on a currency column and on placeholder ids are the same.

**Rejects.** ``input, row, reason, values`` as the DuckDB path writes them: ``values`` is
``column=value | ...`` of the raw row, numbers and timestamps printed as DuckDB prints them
(``12.5``, ``1e+20``, ``nan``; a timestamp with a time zone ends ``+00``). ``row`` is the
row's 1-based position in the input, files taken in name order (Spark's
``_metadata.row_index`` of Parquet files); it is null for a catalog table whose source
gives no row index. Without a row index, which of two duplicates is kept is arbitrary (they
are equal). Neither output is sorted (Spark writes it in parallel).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.core.params import CURRENCY_SIGNS, EPOCH_ORIGINS, EPOCH_UNITS
from segkit.core.words import PLACEHOLDER_IDS
from segkit.engine.backend import NOT_PARQUET, flt, ibis_module, not_finite
from segkit.io import MAX_ROW_AMOUNT, REASONS
from segkit.io import clean as io_clean
from segkit.io import load as io_load

#: Suffixes of a Parquet file.
PARQUET_SUFFIXES = (".parquet", ".pq")
#: Roles whose text spellings are unified (as :func:`segkit.io.load_transactions` does).
CATEGORY_ROLES = ("category", "channel", "country")
#: Column names the cleaning uses for its own bookkeeping (as :data:`segkit.io.read.RESERVED`).
RESERVED = ("_row", "_reason", "_dup")

# DuckDB prints a DOUBLE positionally from 1e-4 up to 1e16, in scientific notation outside.
_POSITIONAL = (1e-4, 1e16)
# Positional digits through DECIMAL(38, 18): 20 integer digits hold every value below 1e16.
_DECIMAL = (38, 18)
_STRIP = r"^[\s\x{00A0}\x{000B}\x{FEFF}]+|[\s\x{00A0}\x{000B}\x{FEFF}]+$"


class Cleaned(NamedTuple):
    """A transaction log cleaned on an engine: ibis tables and the counts.

    ``used``: the used rows (the columns of :func:`segkit.io.load_transactions`);
    ``rejects``: ``input, row, reason, values``; ``quality``: the counts in the shape of
    the DuckDB path's quality dict; ``release``: frees every row with its reason, kept
    (cached) on the engine for the two writes; call it once both are written.
    """

    used: Any
    rejects: Any
    quality: dict
    release: Callable[[], None]


def is_spark(con: Any) -> bool:
    """Whether ``con`` is ibis' Spark backend."""
    return type(con).__module__.startswith("ibis.backends.pyspark")


def reads(spec: Mapping[str, Any]) -> bool:
    """Whether the engine reads and cleans the input of table spec ``spec`` itself.

    True for ``format: parquet`` or ``table``, and for ``format: auto`` with a path that
    ends ``.parquet``/``.pq``, is a folder, or is a URI (``s3a://…``) not ending in a
    CSV, JSON or Excel suffix. CSV, JSON and Excel stay with DuckDB (its sniffing).
    """
    fmt = spec.get("format", "auto")
    if fmt in ("parquet", "table"):
        return True
    if fmt != "auto":
        return False
    text = str(spec["path"])
    suffix = Path(text).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return True
    if "://" in text:
        return suffix not in NOT_PARQUET
    return Path(text).is_dir()


# ------------------------------------------------------------------------------- read


def _kind(dtype: Any, spark_type: Any = None) -> str:
    """What a column is, for reading it as DuckDB reads its text."""
    if spark_type is not None and type(spark_type).__name__ == "TimestampType":
        return "timestamptz"  # Spark's TIMESTAMP is instant-based (a Parquet UTC timestamp)
    if dtype.is_string():
        return "string"
    if dtype.is_floating():
        return "float32" if dtype.is_float32() else "float64"
    if dtype.is_integer() or dtype.is_decimal() or dtype.is_boolean():
        return "exact"  # printed the same by both engines
    if dtype.is_timestamp():
        return "timestamptz" if dtype.timezone else "timestamp"
    if dtype.is_date():
        return "date"
    return "other"


def _spark_read(con: Any, spec: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """The input as a Spark temporary view with ``_row``: ibis table and column kinds."""
    from pyspark.sql import functions as F

    session = con._session
    text = str(spec["path"])
    try:
        df = session.table(text) if spec.get("format") == "table" else session.read.parquet(text)
    except Exception as e:
        what = "table of the Spark catalog" if spec.get("format") == "table" else "Parquet"
        raise SegkitError(
            f"data.transactions.path: {text!r} could not be read as {what} by Spark "
            f"({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        ) from None
    columns = list(df.columns)
    _check_names(columns, text)
    kinds = {f.name: f.dataType for f in df.schema.fields}
    try:
        meta = df.select("*", F.col("_metadata.file_path").alias("_file"), "_metadata.row_index")
        files = meta.groupBy("_file").count().collect()
    except Exception:  # a source without file metadata (e.g. some catalog tables)
        meta, files = None, []
    if meta is None or not files or any(r["_file"] is None for r in files):
        df = df.withColumn("_row", F.lit(None).cast("long"))
    else:
        offsets, start = [], 0
        for r in sorted(files, key=lambda r: r["_file"]):  # files in name order
            offsets.append((r["_file"], start))
            start += int(r["count"])
        if len(offsets) == 1:
            df = meta.withColumn("_row", F.col("row_index") + 1)
        else:
            table = session.createDataFrame(offsets, "_file string, _offset long")
            df = meta.join(F.broadcast(table), "_file").withColumn(
                "_row", F.col("_offset") + F.col("row_index") + 1
            )
        df = df.select(*[F.col(f"`{c}`") for c in columns], "_row")
    view = "_segkit_raw_transactions"
    df.createOrReplaceTempView(view)
    t = con.table(view)
    return t, {c: _kind(t[c].type(), kinds[c]) for c in columns}


def _duckdb_read(con: Any, spec: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """The input on ibis' DuckDB backend, with ``_row`` (file order), and column kinds."""
    ibis = ibis_module()
    text = str(spec["path"])
    if spec.get("format") == "table":
        raw = con.table(text)
    else:
        raw = con.read_parquet(paths.parquet_source(text))
    _check_names(list(raw.columns), text)
    t = raw.mutate(_row=ibis.row_number() + 1)
    return t, {c: _kind(raw[c].type()) for c in raw.columns}


def _check_names(columns: list[str], where: str) -> None:
    clash = [c for c in columns if c in RESERVED or c.startswith("_raw_")]
    if clash:
        raise SegkitError(
            f"transactions ({where}) has column(s) {clash}, names segkit uses for its own "
            f"bookkeeping ({list(RESERVED)}, _raw_*); rename them"
        )


# ---------------------------------------------------------------------------- values


def _double_text(x: Any, spark: bool) -> Any:
    """A DOUBLE as DuckDB prints it (``12.5``, ``3.0``, ``1e+20``, ``1e-05``, ``nan``)."""
    ibis = ibis_module()
    if not spark:
        return x.cast("string")
    a = x.abs()
    positional = (
        x.cast(f"decimal({_DECIMAL[0]}, {_DECIMAL[1]})")
        .cast("string")
        .re_replace(r"0+$", "")
        .re_replace(r"\.$", ".0")
    )
    sci = x.cast("string")  # Java: 1.0E20, 1.5E-5
    mantissa = sci.re_extract(r"^(-?[0-9.]+)E", 1).re_replace(r"\.0$", "")
    digits = sci.re_extract(r"E-?([0-9]+)$", 1)
    sign = ibis.ifelse(sci.contains("E-"), "-", "+")
    digits = ibis.ifelse(digits.length() < 2, "0" + digits, digits)
    return ibis.cases(
        (x.isnan(), "nan"),
        (x == flt(float("inf")), "inf"),
        (x == flt(float("-inf")), "-inf"),
        (x == flt(0.0), "0.0"),
        ((a >= flt(_POSITIONAL[0])) & (a < flt(_POSITIONAL[1])), positional),
        else_=mantissa + "e" + sign + digits,
    )


def _number(x: Any, kind: str) -> Any:
    """A column as DOUBLE, as DuckDB parses its text (a FLOAT through its shortest text)."""
    if kind == "float32":  # through its short text, as DuckDB reads it (0.1, not 0.100000001)
        return x.cast("string").cast("float64")
    return x.cast("float64")


def _text(x: Any, kind: str, spark: bool) -> Any:
    """A column as the text DuckDB reads it as (CAST AS VARCHAR)."""
    if kind == "string":
        return x
    if kind in ("float32", "float64"):
        return _double_text(_number(x, kind), spark)
    if kind == "timestamptz" and spark:
        return x.cast("string") + "+00"  # the session is in UTC
    return x.cast("string")


def _stripped(s: Any) -> Any:
    return s.re_replace(_STRIP, "")


def _id(text: Any, width: int | None = None) -> Any:
    """An id as :func:`segkit.io.clean.id_expr` cleans it: stripped, '17850.0' -> '17850',
    an e-mail address in lower case, fewer digits than ``width`` with leading zeros."""
    ibis = ibis_module()
    x = _stripped(text).re_replace(r"\.0+$", "")
    x = ibis.ifelse(x.contains("@"), x.lower(), x)
    if width:
        short = x.re_search(r"^[0-9]+$") & (x.length() < int(width))
        x = ibis.ifelse(short, x.lpad(int(width), "0"), x)
    return x.nullif("")


# ---------------------------------------------------------------------------- clean


def _refund(t: Any, col: str, kinds: dict[str, str], where: str) -> Any:
    """The part of a row's amount refunded: 0 when empty."""
    if col not in kinds:
        raise SegkitError(
            f"{where}: data.transactions.refunded is {col!r}, which the input does not have"
        )
    if kinds[col] not in ("float32", "float64", "exact") or t[col].type().is_boolean():
        raise SegkitError(f"{where}: column {col!r} (refunded) is {t[col].type()}, not a number")
    x = _number(t[col], kinds[col])
    # ibis' IS NULL on Spark counts NaN as null: a NaN stays (a non-finite amount, as in io)
    return ibis_module().ifelse(x.isnull() & ~x.isnan().fill_null(False), flt(0.0), x)


def _timestamp(t: Any, col: str, kinds: dict[str, str], spec: Mapping, spark: bool) -> Any:
    """The timestamp column read as segkit.io reads it: typed, or numbers since 1970."""
    where = f"transactions ({spec['path']})"
    epoch = spec.get("epoch")
    if epoch and kinds[col] not in ("float32", "float64", "exact"):
        raise SegkitError(
            f"{where}: column {col!r} (timestamp) is {t[col].type()}, not a number of "
            f"{epoch} since 1970 as data.transactions.epoch says"
        )
    if epoch:
        return _epoch(t[col], epoch, spark)
    if kinds[col] not in ("timestamp", "timestamptz", "date"):
        raise SegkitError(
            f"{where}: column {col!r} (timestamp) is {t[col].type()}, not a timestamp or "
            "date; on engine: spark store it typed in the Parquet file (e.g. "
            "pd.to_datetime(...) before to_parquet), or read the file with engine: duckdb, "
            "which parses dates in text (day/month order, time zones)"
        )
    return t[col].cast("timestamp")


def _typed(t: Any, m: dict, kinds: dict[str, str], spec: Mapping, spark: bool) -> Any:
    """The typed columns of :func:`segkit.io.load_transactions`, plus ``_row`` and ``_raw_i``."""
    where = f"transactions ({spec['path']})"
    ts = _timestamp(t, m["timestamp"], kinds, spec, spark)
    nums = [r for r in ("amount", "quantity", "unit_price") if m[r]]
    for role in nums:
        if kinds[m[role]] not in ("float32", "float64", "exact") or t[m[role]].type().is_boolean():
            raise SegkitError(
                f"{where}: column {m[role]!r} ({role}) is {t[m[role]].type()}, not a number; "
                "on engine: spark store it as a number in the Parquet file, or read the file "
                "with engine: duckdb, which parses numbers in text (decimal, thousands)"
            )
    cid = m["customer_id"]
    out: dict[str, Any] = {
        "_row": t._row,
        "customer_id": _id(_text(t[cid], kinds[cid], spark), spec.get("id_width")),
        "timestamp": ts,
    }
    for role in nums:
        out[role] = _number(t[m[role]], kinds[m[role]])
    if not m["amount"]:
        out["amount"] = out["quantity"] * out["unit_price"]
    if spec.get("refunded"):  # less the part refunded, as segkit.io reads it
        out["amount"] = out["amount"] - _refund(t, str(spec["refunded"]), kinds, where)
    if spec.get("cents"):  # minor units to units, last (exact in cents), as segkit.io
        for role in ("amount", "unit_price"):
            if role in out:
                out[role] = out[role] / flt(100.0)
    cur = io_load.currencies(dict(spec), [c for c in t.columns if c != "_row"])
    if cur is not None:
        out.update(_converted(t, out, cur, kinds, spark, where))
    for role in ("order_id", "product", *CATEGORY_ROLES):
        if m[role]:
            out[role] = _stripped(_text(t[m[role]], kinds[m[role]], spark)).nullif("")
    raw = [c for c in t.columns if c != "_row"]
    out.update({f"_raw_{i}": t[c] for i, c in enumerate(raw)})
    return t.select(**out)


def _epoch(x: Any, unit: str, spark: bool) -> Any:
    """Seconds (``ms``, ``us``) since 1970 as a timestamp, as :func:`segkit.io.clean.
    epoch_expr` reads them: whole microseconds, null when out of range or before 1900."""
    import ibis.expr.datatypes as dt

    ibis = ibis_module()
    # ibis' as_timestamp takes no microseconds on DuckDB: each engine's own function
    name = "timestamp_micros" if spark else "make_timestamp"

    @ibis.udf.scalar.builtin(name=name, signature=((dt.int64,), dt.timestamp))
    def from_micros(v):  # typed by the signature above
        """Microseconds since 1970 as a timestamp."""

    days = x.cast("float64") - flt(float(EPOCH_ORIGINS.get(unit, 0)))  # Excel's 1899-12-30
    micros = days * flt(float(EPOCH_UNITS[unit]))
    fits = micros.abs() < flt(float(io_clean.EPOCH_END_MICROS))  # before year 10000
    # round() is a cast to BIGINT in ibis: only on the numbers that fit
    ts = from_micros(ibis.ifelse(fits, micros.round(), None)).cast("timestamp")
    return ibis.ifelse(ts.year() >= io_clean.FIRST_YEAR, ts, None)


def _currency_code(text: Any) -> Any:
    """A currency as :func:`segkit.io.clean.currency_code` reads it: stripped, upper case,
    '€' as EUR, null when empty."""
    code = _stripped(text).upper().nullif("")
    return code.substitute(CURRENCY_SIGNS, else_=code)


def _converted(
    t: Any, out: dict[str, Any], cur: io_load.Currencies, kinds: dict, spark: bool, where: str
) -> dict[str, Any]:
    """``_currency``, ``_rate`` and the money converted, as :func:`segkit.io.load_transactions`
    does (a row without a rate keeps its amount and is rejected as unknown_currency)."""
    if cur.column is None:
        raise SegkitError(
            f"{where}: data.transactions.currencies has no column; on engine: spark the "
            "amounts are typed numbers, without a currency sign to read: name the column "
            "that holds each row's currency, or read the file with engine: duckdb"
        )
    ibis = ibis_module()
    code = _currency_code(_text(t[cur.column], kinds[cur.column], spark))
    if cur.default is not None:
        code = code.fill_null(cur.default)
    rate = ibis.cases(*[(code == k, flt(v)) for k, v in cur.rates.items()], else_=None)
    money: dict[str, Any] = {
        r: out[r] * rate.fill_null(flt(1.0)) for r in ("amount", "unit_price") if r in out
    }
    return {"_currency": code, "_rate": rate, **money}


def _rules(
    x: Any, m: dict, spec: Mapping, *, end: Any, today: Any, raw: list[str]
) -> list[tuple[str, Any]]:
    """(reason, condition) in the order of :func:`segkit.io.load_transactions`."""
    ibis = ibis_module()
    nums = [r for r in ("amount", "quantity", "unit_price") if r in x.columns]
    # ibis' IS NULL on Spark counts NaN as null: a null here is a null that is not NaN
    missing = [x[r].isnull() & ~x[r].isnan().fill_null(False) for r in nums]
    rules = [
        ("missing_customer_id", x.customer_id.isnull()),
        ("unparseable_timestamp", x.timestamp.isnull()),
        ("non_numeric_amount", ibis.or_(*missing)),
        ("non_finite_amount", ibis.or_(*[not_finite(x[r]) for r in nums])),
    ]
    if "_rate" in x.columns:
        rules.append(("unknown_currency", x._rate.isnull()))
    if spec["cancel_prefix"] and m["order_id"]:
        rules.append(("cancellation", x.order_id.startswith(str(spec["cancel_prefix"]))))
    excluded = [
        x[f"_raw_{raw.index(c)}"].cast("string").strip().lower().isin(vs)
        for c, vs in io_load.excluded_values(dict(spec), raw).items()
    ]
    if excluded:
        cond = ibis.or_(*excluded).fill_null(False)
        if m["order_id"]:  # the whole order, as segkit.io does
            whole = cond.any().over(group_by=x.order_id)
            cond = ibis.ifelse(x.order_id.isnull(), cond, whole)
        rules.append(("excluded_value", cond))
    if m["quantity"]:
        rules.append(("negative_quantity", x.quantity < flt(0.0)))
    zero = flt(0.0)
    rules.append(
        (
            "non_positive_amount",
            x.amount < zero if spec["allow_zero_amount"] else x.amount <= zero,
        )
    )
    rules.append(("implausible_amount", x.amount > flt(MAX_ROW_AMOUNT)))
    if end is None:
        now = pd.Timestamp.now() if today is None else pd.Timestamp(today)
        tomorrow = (now.normalize() + pd.Timedelta(days=1)).to_pydatetime()
        rules.append(("future_timestamp", x.timestamp >= ibis.timestamp(tomorrow)))
    else:
        after = (pd.Timestamp(end).normalize() + pd.Timedelta(days=1)).to_pydatetime()
        rules.append(("after_observation_end", x.timestamp >= ibis.timestamp(after)))
    return rules


def _staged(x: Any, rules: list[tuple[str, Any]], dedupe: bool) -> Any:
    """``x`` with ``_reason``: the first rule a row fails, null for a used row."""
    ibis = ibis_module()
    if dedupe:
        raw = [c for c in x.columns if c.startswith("_raw_")]
        x = x.mutate(_dup=ibis.row_number().over(group_by=raw, order_by=x._row))
        rules = [*rules, ("duplicate_row", x._dup > 0)]  # ibis numbers rows from 0
    return x.mutate(_reason=ibis.cases(*[(cond, r) for r, cond in rules], else_=None))


def _pseudonym(value: Any, salt: str) -> Any:
    """'P' + 16 hex digits of sha256(salt || id), as the DuckDB path writes it."""
    return "P" + (salt + value).hexdigest("sha256").substr(0, 16)


def _rejects(
    x: Any,
    raw: list[str],
    kinds: dict[str, str],
    *,
    spark: bool,
    id_col: str,
    salt: str | None,
    width: int | None = None,
) -> Any:
    """``input, row, reason, values`` of the rejected rows (``values``: ``col=value | …``)."""
    ibis = ibis_module()
    pairs = []
    for i, c in enumerate(raw):
        value = _text(x[f"_raw_{i}"], kinds[c], spark)
        if salt is not None and c == id_col:
            # the id as the loader cleans it, so a rejected row's pseudonym is the customer's
            value = _pseudonym(_id(value, width), salt)
        pairs.append(ibis.literal(f"{c}=") + value.fill_null(""))
    text = pairs[0]
    for p in pairs[1:]:
        text = text + " | " + p
    bad = x.filter(x._reason.notnull())
    return bad.select(
        input=ibis.literal("transactions"),
        row=bad._row.cast("int64"),
        reason=bad._reason,
        values=text,
    )


def clean_transactions(
    con: Any,
    spec: Mapping[str, Any] | str | Path,
    observation_end: pd.Timestamp | str | None = None,
    *,
    today: pd.Timestamp | str | None = None,
    salt: str | None = None,
) -> Cleaned:
    """Clean a typed transaction log on ibis backend ``con`` (Spark, or DuckDB).

    The rules, counts and outputs of :func:`segkit.io.load_transactions` (see the module
    docstring for typed columns and the rejects' ``row``). One pass counts the rows by
    reason (kept on the engine for the writes that follow); the category spellings are
    counted on the engine too. ``salt``: pseudonymize the customer ids of both outputs
    (``data.pseudonymize``).

    Raises
    ------
    SegkitError
        The input cannot be read, lacks a needed column, stores a timestamp or an amount
        as text, has no rows, or no row is left after cleaning.
    """
    filled = io_load.table_spec(dict(spec) if isinstance(spec, Mapping) else spec, "transactions")
    if filled is None:  # pragma: no cover (table_spec fills every spec given)
        raise SegkitError("data.transactions: no table spec given")
    spark = is_spark(con)
    t, kinds = (_spark_read if spark else _duckdb_read)(con, filled)
    fmt = "parquet" if filled["format"] == "auto" else filled["format"]
    info: dict[str, Any] = {"file": str(filled["path"]), "format": fmt}
    if paths.is_pattern(filled["path"]) and "://" not in str(filled["path"]):
        info["files"] = [f.name for f in paths.matched_files(filled["path"])]  # as io has
    raw = [c for c in t.columns if c != "_row"]
    m = io_load.column_mapping(filled, "transactions", raw, info)
    io_load.require_tx_roles(m, filled, raw)
    cid, ts = str(m["customer_id"]), str(m["timestamp"])
    x = _typed(t, m, kinds, filled, spark)
    rules = _rules(x, m, filled, end=observation_end, today=today, raw=raw)
    staged, release = _cache(con, _staged(x, rules, bool(filled["dedupe"])))
    counts = _counts(staged, raw, kinds, cid, ts, spark)
    info["ids_trimmed"] = int(counts["trimmed"].sum())
    if not filled["date_formats"]:
        # a Parquet timestamp with a zone is an instant: UTC either way; the key says which
        # rule applied, as segkit.io records it
        key = "timestamps_offset_dropped" if filled["local_time"] else "timestamps_converted_to_utc"
        info[key] = int(counts["offset"].sum())
    by: dict[str, int] = {}
    for r, n in zip(counts["_reason"], counts["n"], strict=True):
        key = r if isinstance(r, str) else "_used"
        by[key] = by.get(key, 0) + int(n)
    try:
        quality = _quality(info, by, filled)
    except SegkitError:
        release()
        raise
    if "_currency" in counts.columns:  # rows used per currency, as segkit.io records them
        cur = io_load.currencies(dict(filled), raw)
        assert cur is not None
        used_by = counts[counts["_reason"].isna()].groupby("_currency")["n"].sum()
        quality["currencies"] = [
            {"currency": str(c), "rows": int(n), "rate": cur.rates[str(c)]}
            for c, n in sorted(used_by.items(), key=lambda cn: (-cn[1], str(cn[0])))
        ]
    named = None if filled.get("currencies") else io_load.currency_column(raw, m)
    notes = [
        _currency_note(staged, raw, kinds, named, spark) if named else None,
        _placeholder_note(staged, raw, kinds, cid, quality["rows_used"], spark),
    ]
    if any(notes):  # as segkit.io notes them
        quality["notes"] = [n for n in notes if n]
    used = _normalized(staged, staged.filter(staged._reason.isnull()), m)
    if salt is not None:
        used = used.mutate(customer_id=_pseudonym(used.customer_id, salt))
    keep = ["customer_id", "timestamp", "amount"] + [r for r in io_load.TX_OPTIONAL if m[r]]
    rejects = _rejects(
        staged, raw, kinds, spark=spark, id_col=cid, salt=salt, width=filled.get("id_width")
    )
    return Cleaned(used.select(keep), rejects, quality, release)


def _counts(
    staged: Any, raw: list[str], kinds: dict[str, str], cid: str, ts: str, spark: bool
) -> pd.DataFrame:
    """Rows by reason, with what reading found (padded ids, UTC timestamps): one pass.

    ``trimmed``: ids with blanks around a non-empty value; ``offset``: timestamps with a
    time zone (converted to UTC), as the DuckDB path counts them in its text.
    """
    ibis = ibis_module()
    id_raw = staged[f"_raw_{raw.index(cid)}"]
    ts_raw = staged[f"_raw_{raw.index(ts)}"]
    none = ibis.literal(0)
    if kinds[cid] == "string":
        text = _text(id_raw, "string", spark)
        padded = ((text != _stripped(text)) & (_stripped(text) != "")).fill_null(False)
        trimmed = staged.count(where=padded)
    else:
        trimmed = none
    offset = staged.count(where=ts_raw.notnull()) if kinds[ts] == "timestamptz" else none
    keys = ["_reason", *(["_currency"] if "_currency" in staged.columns else [])]
    return (
        staged.group_by(keys)
        .aggregate(n=staged.count(), trimmed=trimmed, offset=offset)
        .to_pandas()
    )


def _currency_note(staged: Any, raw: list[str], kinds: dict, col: str, spark: bool) -> str | None:
    """:func:`segkit.io.load.currency_note` for column ``col``, counted on the engine."""
    code = _currency_code(_text(staged[f"_raw_{raw.index(col)}"], kinds[col], spark))
    used = staged.filter(staged._reason.isnull()).mutate(_code=code)
    named = used.filter(used._code.notnull())
    counts = named.group_by("_code").aggregate(n=named.count())
    rows = sorted(
        ((str(c), int(n)) for c, n in counts.to_pandas().itertuples(index=False)),
        key=lambda cn: (-cn[1], cn[0]),
    )
    return io_load.currency_note(col, rows)


def _placeholder_note(
    staged: Any, raw: list[str], kinds: dict, id_col: str, used: int, spark: bool
) -> str | None:
    """:func:`segkit.io.load.placeholder_note`, counted on the engine."""
    ids = staged.filter(
        staged._reason.isnull() & staged.customer_id.lower().isin(sorted(PLACEHOLDER_IDS))
    )
    spelling = _text(ids[f"_raw_{raw.index(id_col)}"], kinds[id_col], spark).strip().lower()
    counts = ids.group_by(["customer_id", spelling.name("_raw")]).aggregate(n=ids.count())
    rows = [(str(v), str(r), int(n)) for v, r, n in counts.to_pandas().itertuples(index=False)]
    return io_load.placeholder_note(id_col, rows, used)


def _normalized(staged: Any, used: Any, m: dict) -> Any:
    """``used`` with category spellings unified, counted over every row as io does."""
    for role in (r for r in CATEGORY_ROLES if m[r]):
        present = staged.filter(staged[role].notnull())
        spellings = present.group_by(role).aggregate(n=present.count()).to_pandas()
        change = io_clean.canonical_spellings(
            {str(r): int(n) for r, n in spellings.itertuples(index=False)}
        )
        if change:
            used = used.mutate(**{role: used[role].substitute(change, else_=used[role])})
    return used


def _cache(con: Any, table: Any) -> tuple[Any, Callable[[], None]]:
    """``table`` computed once and kept on the engine, and how to free it.

    Spark persists it (memory, spilling to disk); DuckDB makes a temporary table. (ibis'
    own ``Table.cache`` cannot be released on DuckDB with ibis 12 here.)
    """
    name = "_segkit_staged_transactions"
    if is_spark(con):
        df = con._session.sql(con.compile(table)).persist()
        df.createOrReplaceTempView(name)

        def release() -> None:
            df.unpersist()
            con._session.catalog.dropTempView(name)

    else:
        # raw SQL: ibis 12's DROP on DuckDB (overwrite=True, drop_table) compiles without a name
        con.raw_sql(f"CREATE OR REPLACE TEMP TABLE {name} AS {con.compile(table)}")

        def release() -> None:
            con.raw_sql(f"DROP TABLE IF EXISTS {name}")

    return con.table(name), release


def _quality(info: dict, by: dict[str, int], spec: Mapping) -> dict:
    """The quality dict of the DuckDB path, from the counts by reason."""
    rows_in = sum(by.values())
    used_n = by.pop("_used", 0)
    quality = {
        **info,
        "rows_in": rows_in,
        "rows_used": used_n,
        "rows_rejected": rows_in - used_n,
        "rejected": {k: by[k] for k in REASONS if k in by},
    }
    if rows_in == 0:
        raise SegkitError(f"transactions file {spec['path']!r} has a header but no rows")
    if used_n == 0:
        top = max(quality["rejected"], key=lambda k: quality["rejected"][k])
        raise SegkitError(
            f"transactions ({spec['path']}): no rows left after cleaning; {rows_in} rows "
            f"read, all rejected, most for '{top}' ({REASONS[top]}): {quality['rejected']}"
        )
    return quality


# ----------------------------------------------------------------------------- write


def write_parquet(con: Any, table: Any, path: str | Path) -> Path:
    """Write an ibis table to Parquet on its engine; the clean rows' timestamps stay naive.

    On Spark the result is a folder of part files written in parallel (renamed
    ``part-00000.parquet`` … in Spark's order, without Spark's ``_SUCCESS`` and ``.crc``
    files, so a run folder hashes the same way every time); written beside ``path`` first
    and then moved, so a failed write leaves no half table. On DuckDB, one file.
    """
    dest = Path(path)
    tmp = dest.with_name(dest.name + ".tmp")
    _remove(tmp)
    if is_spark(con):
        from pyspark.sql import functions as F

        df = con._session.sql(con.compile(table))
        for f in df.schema.fields:
            if type(f.dataType).__name__ == "TimestampType":  # readers expect naive UTC
                df = df.withColumn(f.name, F.col(f"`{f.name}`").cast("timestamp_ntz"))
        df.write.mode("overwrite").parquet(tmp.as_posix())
        tidy(tmp)
    else:
        con.to_parquet(table, tmp.as_posix())
    _remove(dest)
    tmp.replace(dest)
    return dest


def tidy(folder: Path) -> list[Path]:
    """Drop Spark's bookkeeping files from a written folder; number its parts in order."""
    for p in folder.iterdir():
        if p.name.startswith((".", "_")):
            p.unlink()
    parts = sorted(folder.glob("*.parquet"))
    out = []
    for i, p in enumerate(parts):
        target = folder / f"part-{i:05d}.parquet"
        p.rename(target)
        out.append(target)
    return out


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
