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
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd

from segkit.core.checks import SegkitError, check_scalar

_UNITS = {"D": 1.0, "W": 7.0}


def _source(con, transactions) -> str:
    """A FROM clause for a DataFrame, a relation or a Parquet/CSV path."""
    if isinstance(transactions, str | Path):
        p = Path(transactions).as_posix()
        if p.endswith(".parquet"):
            return f"read_parquet('{p}')"
        return f"read_csv('{p}')"
    if isinstance(transactions, pd.DataFrame):
        con.register("_tx_df", transactions)
        return "_tx_df"
    if isinstance(transactions, duckdb.DuckDBPyRelation):
        transactions.create_view("_tx_rel", replace=True)
        return "_tx_rel"
    raise SegkitError(
        f"transactions must be a DataFrame, a DuckDB relation or a file path, "
        f"found {type(transactions).__name__}"
    )


def _columns(con, src: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]


def _end_of(con, src: str, ts: str, observation_end) -> pd.Timestamp:
    if observation_end is not None:
        return pd.Timestamp(observation_end).normalize()
    last = con.execute(f"SELECT max({ts}) FROM {src}").fetchall()[0][0]
    if last is None:
        raise SegkitError("transactions has no rows: cannot build customer features")
    return pd.Timestamp(last).normalize()


def _days_sql(src, cid, ts, amount, end) -> str:
    # One row per customer and purchase day, up to the observation end (inclusive).
    return f"""
        SELECT {cid} AS customer_id, CAST({ts} AS DATE) AS day, sum({amount}) AS value
        FROM {src} WHERE CAST({ts} AS DATE) <= DATE '{end.date()}'
        GROUP BY 1, 2"""


def _btyd_sql(days: str, end: pd.Timestamp, unit: float) -> str:
    return f"""
        SELECT customer_id,
               count(*) - 1 AS frequency,
               date_diff('day', min(day), max(day)) / {unit} AS recency,
               date_diff('day', min(day), DATE '{end.date()}') / {unit} AS T,
               CASE WHEN count(*) > 1
                    THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) ELSE 0 END
                 AS monetary,
               min(day) AS first_day, max(day) AS last_day
        FROM ({days}) GROUP BY customer_id"""


def _check_unit(time_unit: str) -> float:
    check_scalar(time_unit, "time_unit", str, in_=set(_UNITS))
    return _UNITS[time_unit]


def btyd_summary(
    transactions,
    observation_end=None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    con=None,
) -> pd.DataFrame:
    """``customer_id, frequency, recency, T, monetary`` per customer (see module docstring).

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
    con = con or duckdb.connect()
    unit = _check_unit(time_unit)
    src = _source(con, transactions)
    end = _end_of(con, src, timestamp_col, observation_end)
    sql = _btyd_sql(_days_sql(src, customer_id_col, timestamp_col, amount_col, end), end, unit)
    out = con.execute(
        f"SELECT customer_id, frequency, recency, T, monetary FROM ({sql}) ORDER BY customer_id"
    ).df()
    out["frequency"] = out["frequency"].astype("int64")
    return out


def _slug(value) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(value).lower()).strip("_") or "blank"


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
) -> pd.DataFrame:
    """Every customer feature segkit uses, one row per customer, sorted by id.

    Columns: ``customer_id, first_purchase, last_purchase, frequency, recency, T, monetary,
    orders, revenue, aov, items, tenure_days, days_since_last, mean_ipt_days`` and, for each
    of ``share_cols`` present, ``share_<col>_<value>`` = that value's share of the customer's
    revenue for the ``top_n`` most common values (the rest summed in ``..._other``).
    ``orders`` counts distinct order ids, or distinct timestamps without an order id.
    """
    con = con or duckdb.connect()
    unit = _check_unit(time_unit)
    check_scalar(top_n, "top_n", int, ge=1)
    src = _source(con, transactions)
    cols = _columns(con, src)
    for role, col in (
        ("customer_id_col", customer_id_col),
        ("timestamp_col", timestamp_col),
        ("amount_col", amount_col),
    ):
        if col not in cols:
            raise SegkitError(
                f"transactions is missing column {col!r} ({role}); columns are {cols}"
            )
    end = _end_of(con, src, timestamp_col, observation_end)
    cid, ts, amt = customer_id_col, timestamp_col, amount_col
    con.execute(f"CREATE OR REPLACE TEMP TABLE _days AS {_days_sql(src, cid, ts, amt, end)}")
    btyd = _btyd_sql("SELECT * FROM _days", end, unit)
    order_key = order_id_col if order_id_col in cols else ts
    items = f"sum({quantity_col})" if quantity_col in cols else "NULL"
    within = f"CAST({ts} AS DATE) <= DATE '{end.date()}'"
    shares, share_names = [], []
    for col in [c for c in share_cols if c in cols]:
        top = [
            r[0]
            for r in con.execute(
                f"SELECT {col} FROM {src} WHERE {col} IS NOT NULL AND {within} "
                f"GROUP BY 1 ORDER BY sum({amt}) DESC, 1 LIMIT {top_n + 1}"
            ).fetchall()
        ]
        keep = top[:top_n] if len(top) > top_n else top
        for v in keep:
            name = f"share_{col}_{_slug(v)}"
            lit = str(v).replace("'", "''")
            shares.append(f"sum({amt}) FILTER (WHERE {col} = '{lit}') / sum({amt}) AS \"{name}\"")
            share_names.append(name)
        if len(top) > top_n:
            in_list = ", ".join("'" + str(v).replace("'", "''") + "'" for v in keep)
            name = f"share_{col}_other"
            shares.append(
                f"sum({amt}) FILTER (WHERE {col} IS NULL OR {col} NOT IN ({in_list})) "
                f'/ sum({amt}) AS "{name}"'
            )
            share_names.append(name)
    extra = "".join(f", {s}" for s in shares)
    sql = f"""
        WITH b AS ({btyd}),
        o AS (SELECT {cid} AS customer_id, count(DISTINCT {order_key}) AS orders,
                     sum({amt}) AS revenue, {items} AS items{extra}
              FROM {src} WHERE {within} GROUP BY 1)
        SELECT b.customer_id,
               CAST(b.first_day AS TIMESTAMP) AS first_purchase,
               CAST(b.last_day AS TIMESTAMP) AS last_purchase,
               b.frequency, b.recency, b.T, b.monetary,
               o.orders, o.revenue, o.revenue / o.orders AS aov, o.items,
               date_diff('day', b.first_day, DATE '{end.date()}') AS tenure_days,
               date_diff('day', b.last_day, DATE '{end.date()}') AS days_since_last,
               CASE WHEN b.frequency > 0
                    THEN date_diff('day', b.first_day, b.last_day) / b.frequency END
                 AS mean_ipt_days
               {"".join(f', coalesce(o."{n}", 0) AS "{n}"' for n in share_names)}
        FROM b JOIN o USING (customer_id) ORDER BY b.customer_id"""
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
) -> pd.DataFrame:
    """BTYD summary at ``calibration_end`` plus what each customer did afterwards.

    Customers whose first purchase is after ``calibration_end`` are left out (they were not
    yet customers). Adds ``frequency_holdout`` (purchase days in the holdout),
    ``monetary_holdout`` (their mean value, 0 without) and ``duration_holdout`` (the holdout
    length in ``time_unit``), as lifetimes' ``calibration_and_holdout_data`` does.
    """
    con = con or duckdb.connect()
    unit = _check_unit(time_unit)
    src = _source(con, transactions)
    cal = pd.Timestamp(calibration_end).normalize()
    end = _end_of(con, src, timestamp_col, observation_end)
    if cal >= end:
        raise SegkitError(
            f"calibration_end == {cal.date()} must be before the observation end {end.date()}"
        )
    days = _days_sql(src, customer_id_col, timestamp_col, amount_col, end)
    sql = f"""
        WITH d AS ({days}),
        cal AS ({_btyd_sql(f"SELECT * FROM d WHERE day <= DATE '{cal.date()}'", cal, unit)}),
        hold AS (SELECT customer_id, count(*) AS frequency_holdout,
                        avg(value) AS monetary_holdout
                 FROM d WHERE day > DATE '{cal.date()}' GROUP BY 1)
        SELECT cal.customer_id, cal.frequency, cal.recency, cal.T, cal.monetary,
               coalesce(hold.frequency_holdout, 0) AS frequency_holdout,
               coalesce(hold.monetary_holdout, 0) AS monetary_holdout,
               date_diff('day', DATE '{cal.date()}', DATE '{end.date()}') / {unit}
                 AS duration_holdout
        FROM cal LEFT JOIN hold USING (customer_id) ORDER BY cal.customer_id"""
    out = con.execute(sql).df()
    if out.empty:
        raise SegkitError(f"no customer bought on or before calibration_end == {cal.date()}")
    for c in ("frequency", "frequency_holdout"):
        out[c] = out[c].astype("int64")
    return out
