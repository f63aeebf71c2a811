"""Customer features from a transaction log, computed in DuckDB.

One row per customer, as pure functions of a clean transaction log (a DataFrame, a
Parquet/CSV path or a DuckDB relation) with ``*_col`` keywords, in the manner of lifetimes'
``summary_data_from_transaction_data``:

- the **BTYD summary** in the standard convention: purchases on the same day are one
  purchase; ``frequency`` = number of repeat purchase days, ``recency`` = last minus first
  purchase day, ``T`` = observation end minus first purchase day, ``monetary`` = mean value
  of the repeat purchase days (0 without repeats). Durations are in days (``time_unit="D"``)
  or weeks = days / 7 (``"W"``, as in Fader, Hardie & Lee 2005);
- marketer features: ``orders``, ``revenue``, ``aov``, ``items``, ``tenure_days``,
  ``days_since_last``, ``mean_ipt_days`` and revenue shares by category, channel and country.

DuckDB reads the file itself and spills to disk, so the cost grows with the log and the
memory stays bounded: 50 million transactions run on a laptop (see ``benchmarks/``).
On a connection that can load it (:mod:`segkit.core.native`: segkit's own connections, or
none given), the BTYD columns come from segkit's aggregate ``btyd_state`` in the same GROUP
BY per customer as the other features (and the calibration and holdout columns of
:func:`calibration_holdout` from two of them); elsewhere from two GROUP BYs (customer-day,
then customer). Both give the same numbers (tests/test_native.py).
With ``engine="spark"`` the same tables are computed by the ibis expressions of
:mod:`segkit.engine.features` on a Spark session, from Parquet or a Spark table.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segkit.core import native, paths
from segkit.core.checks import SegkitError, check_scalar
from segkit.core.sql import ident, literal, literals

_UNITS = {"D": 1.0, "W": 7.0}


def source_sql(con: Any, transactions: Any, *, view: str = "_tx") -> str:
    """A FROM clause for a DataFrame, a DuckDB relation or a Parquet/CSV path.

    A frame or relation is registered in ``con`` as the view ``view``; a folder is read as
    the Parquet files under it (as Spark writes ``transactions.parquet``).

    >>> import duckdb
    >>> source_sql(duckdb.connect(), "/data/it's.parquet")
    "read_parquet('/data/it''s.parquet')"
    """
    if isinstance(transactions, str | Path):
        p = Path(transactions)
        if p.is_dir() or p.suffix == ".parquet":  # a folder: as Spark writes a table
            return f"read_parquet({literal(paths.parquet_source(p))})"
        return f"read_csv({literal(p.as_posix())})"
    if isinstance(transactions, pd.DataFrame):
        con.register(view, transactions)
        return view
    if isinstance(transactions, duckdb.DuckDBPyRelation):
        transactions.create_view(view, replace=True)
        return view
    raise SegkitError(
        "transactions must be a DataFrame, a DuckDB relation or a file path, "
        f"found {type(transactions).__name__}"
    )


def _engine_table(transactions: Any, engine: str, spark: dict | None) -> Any:
    """The transaction log as an ibis table on ``engine`` (engine: spark).

    Raises
    ------
    SegkitError
        An unknown engine; a DuckDB relation, or a CSV/Excel file (to be converted to
        Parquet first); the spark extra missing; Spark does not start.
    """
    from segkit import engine as eng  # ibis and PySpark: the optional spark extra

    if isinstance(transactions, duckdb.DuckDBPyRelation):
        raise SegkitError(
            f"engine: {engine} reads transactions from Parquet, a Spark table or a DataFrame, "
            "not a DuckDB relation; write it to Parquet first (relation.write_parquet)"
        )
    return eng.table(eng.connect(engine, spark), transactions)


def _on_engine(name: str, transactions: Any, engine: Any, spark: Any, *args: Any, **kw: Any) -> Any:
    """``segkit.engine.features.<name>`` on the ``engine`` table of ``transactions``."""
    from segkit.engine import features as on_engine  # ibis: the optional spark extra

    return getattr(on_engine, name)(_engine_table(transactions, engine, spark), *args, **kw)


def _columns(con, src: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]


def _require(con, src: str, roles: dict[str, str]) -> None:
    """Every ``*_col`` argument names a column of the log."""
    cols = _columns(con, src)
    for role, col in roles.items():
        if col not in cols:
            raise SegkitError(
                f"transactions is missing column {col!r} ({role}); columns are {cols}"
            )


def _end_of(con, src: str, cid: str, ts: str, amount: str, observation_end) -> pd.Timestamp:
    """The observation end (given, else the last day of the log), after checking the log.

    Empty ids or timestamps and empty, NaN or infinite amounts stop with their count: the
    sums would silently skip or poison them (:func:`segkit.io.load_transactions` rejects
    such rows).
    """
    c, t, a = ident(cid), ident(ts), ident(amount)
    last, bad_amount, bad_id, bad_ts = con.execute(
        f"SELECT max({t}), "
        f"count(*) FILTER (WHERE {a} IS NULL OR NOT isfinite(CAST({a} AS DOUBLE))), "
        f"count(*) FILTER (WHERE {c} IS NULL), count(*) FILTER (WHERE {t} IS NULL) FROM {src}"
    ).fetchall()[0]
    for col, role, n, what in (
        (amount, "amount_col", bad_amount, "empty, NaN or infinite"),
        (cid, "customer_id_col", bad_id, "empty"),
        (ts, "timestamp_col", bad_ts, "empty"),
    ):
        if n:
            raise SegkitError(
                f"transactions column {col!r} ({role}) has {n} {what} values; clean the log "
                "first (segkit.io.load_transactions rejects such rows)"
            )
    if observation_end is not None:
        return pd.Timestamp(observation_end).normalize()
    if last is None:
        raise SegkitError("transactions has no rows: cannot build customer features")
    return pd.Timestamp(last).normalize()


def _window(
    con, src: str, cid: str, ts: str, amount: str, observation_end
) -> tuple[pd.Timestamp, bool]:
    """``(end, whole)``: the observation end as :func:`_end_of` gives it, and whether every
    purchase day is on or before it (then every row reaches the summary).

    It scans the timestamps and amounts but not the ids (the costliest column to read):
    less than half the CPU of ``_end_of`` (benchmarks/results/bench_features_others.md). With
    ``whole``, an empty id shows as an empty customer in the summary, whose caller then
    calls ``_end_of`` for the message. A bad timestamp or amount, an empty log without
    ``observation_end`` or days after the end (an empty id there would not show) go through
    ``_end_of``: the same errors, in its order.
    """
    t, a = ident(ts), ident(amount)
    last, last_day, bad = con.execute(
        f"SELECT max({t}), max(CAST({t} AS DATE)), count(*) FILTER (WHERE {t} IS NULL OR "
        f"{a} IS NULL OR NOT isfinite(CAST({a} AS DOUBLE))) FROM {src}"
    ).fetchall()[0]
    if bad or (last is None and observation_end is None):
        return _end_of(con, src, cid, ts, amount, observation_end), False
    end = pd.Timestamp(last if observation_end is None else observation_end).normalize()
    if last_day is not None and last_day > end.date():
        return _end_of(con, src, cid, ts, amount, observation_end), False
    return end, True


def _day(end: pd.Timestamp) -> str:
    return literal(end.date())


def _days_sql(src, cid, ts, amount, end) -> str:
    # One row per customer and purchase day, up to the observation end (inclusive).
    t = ident(ts)
    return f"""
        SELECT {ident(cid)} AS customer_id, CAST({t} AS DATE) AS day,
               sum({ident(amount)}) AS value
        FROM {src} WHERE CAST({t} AS DATE) <= {_day(end)}
        GROUP BY 1, 2"""


def _btyd_sql(days: str, end: pd.Timestamp, unit: float) -> str:
    return f"""
        SELECT customer_id,
               count(*) - 1 AS frequency,
               date_diff('day', min(day), max(day)) / {unit} AS recency,
               date_diff('day', min(day), {_day(end)}) / {unit} AS T,
               CASE WHEN count(*) > 1
                    THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) ELSE 0 END
                 AS monetary,
               min(day) AS first_day, max(day) AS last_day
        FROM ({days}) GROUP BY customer_id"""


def _btyd_of_state(state: str, end: pd.Timestamp, unit: float) -> str:
    """The columns of :func:`_btyd_sql` from a ``btyd_state`` struct
    (:mod:`segkit.core.native`; its days are days since 1970-01-01)."""
    s, end_day = state, (end.date() - dt.date(1970, 1, 1)).days
    return f"""{s}.days - 1 AS frequency,
               CAST({s}.last_day - {s}.first_day AS DOUBLE) / {unit} AS recency,
               CAST({end_day} - {s}.first_day AS DOUBLE) / {unit} AS T,
               CASE WHEN {s}.days > 1 THEN {s}.rest_total / ({s}.days - 1) ELSE 0 END
                 AS monetary,
               DATE '1970-01-01' + {s}.first_day AS first_day,
               DATE '1970-01-01' + {s}.last_day AS last_day"""


def _state_sql(ts: str, amt: str, end: pd.Timestamp | None) -> str:
    """The call of segkit's aggregate over the ``ts`` and ``amt`` columns: rows after ``end``
    (None: no end) left out (:mod:`segkit.core.native`)."""
    end_arg = "NULL" if end is None else _day(end)
    return (
        f"btyd_state(CAST({ident(ts)} AS DATE), CAST({ident(amt)} AS DOUBLE), "
        f"CAST({end_arg} AS DATE))"
    )


def _check_unit(time_unit: str) -> float:
    check_scalar(time_unit, "time_unit", str, in_=set(_UNITS))
    return _UNITS[time_unit]


def _roles(cid: str, ts: str, amount: str) -> dict[str, str]:
    return {"customer_id_col": cid, "timestamp_col": ts, "amount_col": amount}


def btyd_summary(
    transactions,
    observation_end=None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    con=None,
    engine: str = "duckdb",
    spark: dict | None = None,
) -> pd.DataFrame:
    """``customer_id, frequency, recency, T, monetary`` per customer (see module docstring).

    ``engine``: ``duckdb`` (in process, ``con``) or ``spark`` (:mod:`segkit.engine`, with
    the ``spark`` parameters; ``transactions`` is then Parquet, a table name or a frame).

    Raises
    ------
    SegkitError
        A ``*_col`` is not a column; an id, timestamp or amount is empty, NaN or infinite.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                    "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01",
    ...                                                 "2024-01-08", "2024-01-05"]),
    ...                    "amount": [10.0, 5.0, 20.0, 7.0]})
    >>> btyd_summary(tx, "2024-01-15")
      customer_id  frequency  recency     T  monetary
    0           a          1      7.0  14.0      20.0
    1           b          0      0.0  10.0       0.0
    """
    if engine != "duckdb":
        kw: dict[str, Any] = {**_roles(customer_id_col, timestamp_col, amount_col)}
        kw["share_cols"] = ()
        args = (transactions, engine, spark, observation_end, time_unit)
        out = _on_engine("customer_features", *args, **kw)
        return out[["customer_id", "frequency", "recency", "T", "monetary"]]
    con = con or native.connect()
    unit = _check_unit(time_unit)
    src = source_sql(con, transactions)
    cid, ts, amt = customer_id_col, timestamp_col, amount_col
    _require(con, src, _roles(cid, ts, amt))
    if native.load(con):
        return _btyd_native(con, src, cid, ts, amt, observation_end, unit)
    end, whole = _window(con, src, cid, ts, amt, observation_end)
    sql = _btyd_sql(_days_sql(src, cid, ts, amt, end), end, unit)
    out = _frame(
        con,
        f"SELECT customer_id, frequency, recency, T, monetary FROM ({sql}) ORDER BY customer_id",
    )
    if whole and out["customer_id"].isna().any():  # ids were not checked: _end_of raises
        _end_of(con, src, cid, ts, amt, observation_end)
    out["frequency"] = out["frequency"].astype("int64")
    return out


#: Column types that Arrow hands to pandas as ``.df()`` does (DECIMAL, HUGEINT and UUID
#: ids, for instance, would come as objects or strings instead of floats or objects)
_ARROW_AS_DF = frozenset(
    ["varchar", "double", "float", "bigint", "integer", "smallint", "tinyint"]
    + ["ubigint", "uinteger", "usmallint", "utinyint"]
)


def _frame(con, sql: str) -> pd.DataFrame:
    """The result of ``sql`` as ``.df()`` gives it; through Arrow when every column is a
    string, integer or float, for about half the CPU of ``.df()`` on 500k customers
    (benchmarks/results/bench_btyd_outside.md)."""
    rel = con.sql(sql)
    if all(t.id in _ARROW_AS_DF for t in rel.types):
        return rel.to_arrow_table().to_pandas()
    return rel.df()


def _btyd_native(con, src, cid, ts, amt, observation_end, unit: float) -> pd.DataFrame:
    """:func:`btyd_summary` in one GROUP BY with segkit's aggregate ``btyd_state``
    (:mod:`segkit.core.native`): one pass over the log, where the SQL needs a validation
    scan and two GROUP BYs. The same checks and errors: a bad row or an empty id sends the
    log to :func:`_end_of`, which stops with its count."""
    given = observation_end is not None
    state = _state_sql(ts, amt, pd.Timestamp(observation_end).normalize() if given else None)
    table = "_segkit_btyd"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {ident(cid)} AS customer_id, "
        f"{state} AS s FROM {src} GROUP BY 1"
    )
    try:
        bad, no_id, last = con.execute(
            f"SELECT sum(s.bad), count(*) FILTER (WHERE customer_id IS NULL), "
            f"max(s.last_day) FILTER (WHERE s.days > 0) FROM {table}"
        ).fetchall()[0]
        if bad or no_id or (last is None and not given):
            _end_of(con, src, cid, ts, amt, observation_end)  # stops with the count
            raise SegkitError(f"transactions: {bad} bad rows, {no_id} empty ids")  # not reached
        end = pd.Timestamp(observation_end if given else dt.date(1970, 1, 1) + dt.timedelta(last))
        out = _frame(
            con,
            f"SELECT customer_id, frequency, recency, T, monetary FROM (SELECT customer_id, "
            f"{_btyd_of_state('s', end.normalize(), unit)} FROM {table} WHERE s.days > 0) "
            "ORDER BY customer_id",
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    out["frequency"] = out["frequency"].astype("int64")
    return out


def _slug(value) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


def share_columns(
    col: str, top: list, top_n: int, taken: list[str] | None = None
) -> list[tuple[str, Any]]:
    """``(share_<col>_<slug>, value)`` per top value, and ``(share_<col>_other, None)``.

    ``top``: the ``top_n + 1`` values with the most revenue, most first; an ``other``
    column when there are more than ``top_n``. Values whose slugs coincide ('A-B', 'a b')
    get distinct names (``_2``, ``_3`` …), also from the names ``taken`` by other columns.
    Shared with :mod:`segkit.engine`.

    >>> share_columns("channel", ["Web", "app"], 1)
    [('share_channel_web', 'Web'), ('share_channel_other', None)]
    """
    keep = top[:top_n]
    pairs = [(_slug(v), v) for v in keep] + ([("other", None)] if len(top) > top_n else [])
    out: list[tuple[str, Any]] = []
    for label, value in pairs:
        name, n = f"share_{col}_{label}", 2
        while name in [*(taken or []), *(o[0] for o in out)]:
            name, n = f"share_{col}_{label}_{n}", n + 1
        out.append((name, value))
    return out


def _share_exprs(con, src: str, *, cols: list[str], amt: str, within: str, top_n: int):
    """``sum(amount) FILTER (...) / sum(amount) AS share_<col>_<value>`` per top value."""
    a = ident(amt)
    exprs: list[str] = []
    names: list[str] = []
    for col in cols:
        c = ident(col)
        top = [
            r[0]
            for r in con.execute(
                f"SELECT {c} FROM {src} WHERE {c} IS NOT NULL AND {within} "
                f"GROUP BY 1 ORDER BY sum({a}) DESC, 1 LIMIT {int(top_n) + 1}"
            ).fetchall()
        ]
        keep = top[:top_n]
        for name, value in share_columns(col, top, top_n, names):
            cond = (
                f"{c} IS NULL OR {c} NOT IN ({literals(keep)})"
                if value is None
                else f"{c} = {literal(value)}"
            )
            exprs.append(f"sum({a}) FILTER (WHERE {cond}) / sum({a}) AS {ident(name)}")
            names.append(name)
    return exprs, names


def customer_features(
    transactions,
    observation_end=None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    order_id_col: str | None = "order_id",
    quantity_col: str | None = "quantity",
    share_cols: tuple[str, ...] = ("category", "channel", "country"),
    top_n: int = 8,
    con=None,
    engine: str = "duckdb",
    spark: dict | None = None,
) -> pd.DataFrame:
    """Every customer feature segkit uses, one row per customer, sorted by id.

    Columns: ``customer_id, first_purchase, last_purchase, frequency, recency, T, monetary,
    orders, revenue, aov, items, tenure_days, days_since_last, mean_ipt_days`` and, for each
    of ``share_cols`` present, ``share_<col>_<value>`` = that value's share of the customer's
    revenue for the ``top_n`` most common values (the rest summed in ``..._other``).
    ``orders`` counts distinct order ids, or distinct timestamps without an order id.
    ``engine``: ``duckdb`` (this module's SQL, on ``con``) or ``spark`` (the ibis
    expressions of :mod:`segkit.engine.features` on a Spark session built from ``spark``,
    the ``spark`` parameters, or the active one; ``transactions`` is Parquet, a Spark
    table name or a DataFrame). Both give the same table.

    Raises
    ------
    SegkitError
        A ``*_col`` is not a column; an id, timestamp or amount is empty, NaN or infinite;
        no purchase on or before the observation end; with engine spark, a CSV input.
    """
    if engine != "duckdb":
        kw: dict[str, Any] = {**_roles(customer_id_col, timestamp_col, amount_col), "top_n": top_n}
        kw.update(order_id_col=order_id_col, quantity_col=quantity_col, share_cols=share_cols)
        args = (transactions, engine, spark, observation_end, time_unit)
        return _on_engine("customer_features", *args, **kw)
    con = con or native.connect()
    unit = _check_unit(time_unit)
    check_scalar(top_n, "top_n", int, ge=1)
    src = source_sql(con, transactions)
    cid, ts, amt = customer_id_col, timestamp_col, amount_col
    _require(con, src, _roles(cid, ts, amt))
    cols = _columns(con, src)
    end = _end_of(con, src, cid, ts, amt, observation_end)
    fused = native.load(con)  # the BTYD columns in the same GROUP BY as the others
    if not fused:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _days AS {_days_sql(src, cid, ts, amt, end)}")
    order_key = ident(order_id_col if order_id_col in cols else ts)
    items = f"sum({ident(quantity_col)})" if quantity_col in cols else "NULL"
    within = f"CAST({ident(ts)} AS DATE) <= {_day(end)}"
    shares, share_names = _share_exprs(
        con, src, cols=[c for c in share_cols if c in cols], amt=amt, within=within, top_n=top_n
    )
    extra = "".join(f", {s}" for s in shares)
    if fused:
        extra += f", {_state_sql(ts, amt, None)} AS s"
    o = f"""SELECT {ident(cid)} AS customer_id, count(DISTINCT {order_key}) AS orders,
                   sum({ident(amt)}) AS revenue, {items} AS items{extra}
            FROM {src} WHERE {within} GROUP BY 1"""
    if fused:
        joined = f"""SELECT *, {_btyd_of_state("s", end, unit)} FROM o"""
    else:
        joined = f"""SELECT * FROM ({_btyd_sql("SELECT * FROM _days", end, unit)}) b
                JOIN o USING (customer_id)"""
    sql = f"""
        WITH o AS ({o}), f AS ({joined})
        SELECT customer_id,
               CAST(first_day AS TIMESTAMP) AS first_purchase,
               CAST(last_day AS TIMESTAMP) AS last_purchase,
               frequency, recency, T, monetary,
               orders, revenue, revenue / orders AS aov, items,
               date_diff('day', first_day, {_day(end)}) AS tenure_days,
               date_diff('day', last_day, {_day(end)}) AS days_since_last,
               CASE WHEN frequency > 0
                    THEN date_diff('day', first_day, last_day) / frequency END
                 AS mean_ipt_days
               {"".join(f", coalesce({ident(n)}, 0) AS {ident(n)}" for n in share_names)}
        FROM f ORDER BY customer_id"""
    out = con.execute(sql).df()
    if out.empty:
        raise SegkitError(f"transactions has no rows on or before the observation end {end.date()}")
    if items == "NULL":
        out = out.drop(columns="items")
    for c in ("frequency", "orders", "tenure_days", "days_since_last"):
        out[c] = out[c].astype("int64")
    out["mean_ipt_days"] = out["mean_ipt_days"].astype("float64")
    return out


def calibration_holdout(
    transactions,
    calibration_end,
    observation_end=None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    con=None,
    engine: str = "duckdb",
    spark: dict | None = None,
) -> pd.DataFrame:
    """BTYD summary at ``calibration_end`` plus what each customer did afterwards.

    Customers whose first purchase is after ``calibration_end`` are left out (they were not
    yet customers). Adds ``frequency_holdout`` (purchase days in the holdout),
    ``monetary_holdout`` (their mean value, 0 without) and ``duration_holdout`` (the holdout
    length in ``time_unit``), as lifetimes' ``calibration_and_holdout_data`` does.

    Raises
    ------
    SegkitError
        As :func:`btyd_summary`; ``calibration_end`` not before the observation end.
    """
    if engine != "duckdb":
        kw: dict[str, Any] = _roles(customer_id_col, timestamp_col, amount_col)
        args = (transactions, engine, spark, calibration_end, observation_end, time_unit)
        return _on_engine("calibration_holdout", *args, **kw)
    con = con or native.connect()
    unit = _check_unit(time_unit)
    src = source_sql(con, transactions)
    cid, ts, amt = customer_id_col, timestamp_col, amount_col
    _require(con, src, _roles(cid, ts, amt))
    cal = pd.Timestamp(calibration_end).normalize()
    end = _end_of(con, src, cid, ts, amt, observation_end)
    if cal >= end:
        raise SegkitError(
            f"calibration_end == {cal.date()} must be before the observation end {end.date()}"
        )
    if native.load(con):
        sql = _calibration_holdout_native(src, cid, ts, amt, cal, end, unit)
    else:
        sql = _calibration_holdout_sql(src, cid, ts, amt, cal, end, unit)
    out = con.execute(sql).df()
    if out.empty:
        raise SegkitError(f"no customer bought on or before calibration_end == {cal.date()}")
    for c in ("frequency", "frequency_holdout"):
        out[c] = out[c].astype("int64")
    return out


def _calibration_holdout_native(src, cid, ts, amt, cal, end, unit: float) -> str:
    """:func:`calibration_holdout` in one GROUP BY with ``btyd_state``
    (:mod:`segkit.core.native`): the calibration summary up to ``cal``, and the holdout's
    purchase days and revenue from the rows after it (the log is checked by ``_end_of``)."""
    after_cal = f"CAST({ident(ts)} AS DATE) > {_day(cal)}"
    return f"""
        WITH g AS (
            SELECT {ident(cid)} AS customer_id, {_state_sql(ts, amt, cal)} AS c,
                   {_state_sql(ts, amt, end)} FILTER (WHERE {after_cal}) AS h
            FROM {src} GROUP BY 1),
        b AS (SELECT customer_id, h, {_btyd_of_state("c", cal, unit)} FROM g WHERE c.days > 0)
        SELECT customer_id, frequency, recency, T, monetary,
               coalesce(h.days, 0) AS frequency_holdout,
               CASE WHEN h.days > 0 THEN (h.first_total + h.rest_total) / h.days ELSE 0 END
                 AS monetary_holdout,
               date_diff('day', {_day(cal)}, {_day(end)}) / {unit} AS duration_holdout
        FROM b ORDER BY customer_id"""


def _calibration_holdout_sql(src, cid, ts, amt, cal, end, unit: float) -> str:
    days = _days_sql(src, cid, ts, amt, end)
    return f"""
        WITH d AS ({days}),
        cal AS ({_btyd_sql(f"SELECT * FROM d WHERE day <= {_day(cal)}", cal, unit)}),
        hold AS (SELECT customer_id, count(*) AS frequency_holdout,
                        avg(value) AS monetary_holdout
                 FROM d WHERE day > {_day(cal)} GROUP BY 1)
        SELECT cal.customer_id, cal.frequency, cal.recency, cal.T, cal.monetary,
               coalesce(hold.frequency_holdout, 0) AS frequency_holdout,
               coalesce(hold.monetary_holdout, 0) AS monetary_holdout,
               date_diff('day', {_day(cal)}, {_day(end)}) / {unit} AS duration_holdout
        FROM cal LEFT JOIN hold USING (customer_id) ORDER BY cal.customer_id"""
