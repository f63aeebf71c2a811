"""Exploration of clean inputs: data quality, monthly revenue, cohorts, concentration.

Pure functions over clean tables (the stage :mod:`segkit.stages.explore` loads a run's
inputs, calls them and writes the artifacts):

- :func:`quality_table`: rows in/used/rejected per input and per cleaning rule;
- :func:`monthly_summary`: revenue, customers, new customers and orders per month;
- :func:`cohort_retention`: share of each first-purchase cohort buying again k months later;
- :func:`revenue_concentration`: top 10 %/20 % shares, Gini and the Lorenz curve;
- :func:`feature_summary`, :func:`distribution_features`: the customer features at a glance;
- :class:`Exploration`: what the ``01_explore`` notebook shows.

The aggregations over transactions run in DuckDB, so they grow with the log and not with
memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, TypeAlias

import duckdb
import numpy as np
import pandas as pd

from segkit import features, io
from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.core.sql import ident, literal

#: What the transaction helpers accept: a frame, a DuckDB relation or a Parquet/CSV path.
Transactions: TypeAlias = pd.DataFrame | duckdb.DuckDBPyRelation | str | Path

#: Key features shown in the distributions, with whether a log scale suits them.
KEY_FEATURES = {
    "orders": True,
    "revenue": True,
    "aov": True,
    "days_since_last": False,
    "tenure_days": False,
    "mean_ipt_days": True,
}


def distribution_features(
    customers: pd.DataFrame, max_features: int = 6, exclude: Iterable[str] = ()
) -> dict[str, bool]:
    """Features to plot: the key ones present, else numeric attributes; log scale if skewed.
    ``exclude``: numeric columns that are codes, not quantities (``cluster.categorical``,
    e.g. a region numbered 1-3), never drawn as a histogram of numbers.

    >>> distribution_features(pd.DataFrame({"orders": [1, 2], "age": [30, 40]}))
    {'orders': True}
    >>> codes = pd.DataFrame({"Region": [1, 2, 3, 3], "Milk": [5.0, 7.0, 9.0, 400.0]})
    >>> distribution_features(codes, exclude=["Region"])
    {'Milk': False}
    """
    present = {c: log for c, log in KEY_FEATURES.items() if c in customers.columns}
    if present:
        return present
    num = customers.drop(columns=[c for c in exclude if c in customers]).select_dtypes("number")
    num = num.loc[:, num.nunique() > 2].iloc[:, :max_features]
    return {c: bool(num[c].min() > 0 and num[c].skew() > 2) for c in num.columns}


class Exploration(NamedTuple):
    """What the ``01_explore`` notebook shows."""

    findings: list[str]
    quality: pd.DataFrame  # one row per input: rows in/used/rejected and per reason
    summary: dict  # customers, transactions, revenue, date range, observation end
    features: pd.DataFrame  # feature_summary of the customers
    customers: pd.DataFrame  # for the distribution plots (aggregated there, never listed)
    monthly: pd.DataFrame | None
    cohorts: pd.DataFrame | None
    concentration: dict | None


def quality_table(quality: dict[str, dict]) -> pd.DataFrame:
    """One row per input: ``rows_in, rows_used, rows_rejected`` and one column per reason.

    ``quality`` maps an input name to the ``quality`` dict of a :class:`segkit.io.Table`.
    The table reconciles: ``rows_in == rows_used + rows_rejected == rows_used + sum(reasons)``.

    >>> q = {"transactions": {"rows_in": 10, "rows_used": 7, "rows_rejected": 3,
    ...                       "rejected": {"cancellation": 2, "duplicate_row": 1}}}
    >>> quality_table(q).loc["transactions"].tolist()
    [10, 7, 3, 2, 1]
    """
    rows = []
    for name, q in quality.items():
        row = {
            "input": name,
            "rows_in": q["rows_in"],
            "rows_used": q["rows_used"],
            "rows_rejected": q["rows_rejected"],
        }
        row.update({reason: n for reason, n in q["rejected"].items()})
        rows.append(row)
    reasons = [r for r in io.REASONS if any(r in q["rejected"] for q in quality.values())]
    out = pd.DataFrame(rows, columns=["input", "rows_in", "rows_used", "rows_rejected", *reasons])
    out[reasons] = out[reasons].fillna(0)
    return out.set_index("input").astype("int64")


def _columns(con: duckdb.DuckDBPyConnection, src: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]


def monthly_summary(
    transactions: Transactions, con: duckdb.DuckDBPyConnection | None = None
) -> pd.DataFrame:
    """Revenue, purchasing customers, new customers and orders per calendar month.

    Parameters
    ----------
    transactions : clean transactions (``customer_id, timestamp, amount[, order_id]``) as
        a DataFrame, a DuckDB relation of ``con`` or a Parquet/CSV path.
    con : DuckDB connection to run on; a new one when None.

    Returns
    -------
    DataFrame ``month, revenue, customers, new_customers, orders``, one row per month;
    orders are distinct ``order_id`` values, else distinct timestamps.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [1.0, 2.0, 4.0],
    ...                    "timestamp": pd.to_datetime(["2024-01-02", "2024-02-03", "2024-02-04"])})
    >>> monthly_summary(tx)[["revenue", "customers", "new_customers"]].values.tolist()
    [[1.0, 1.0, 1.0], [6.0, 2.0, 1.0]]
    """
    con = con or duckdb.connect()
    src = features.source_sql(con, transactions, view="_explore_tx")
    order_key = ident("order_id" if "order_id" in _columns(con, src) else "timestamp")
    return con.execute(f"""
        WITH f AS (SELECT customer_id, date_trunc('month', min(timestamp)) AS first_month
                   FROM {src} GROUP BY 1)
        SELECT CAST(date_trunc('month', t.timestamp) AS DATE) AS month,
               sum(t.amount) AS revenue,
               count(DISTINCT t.customer_id) AS customers,
               count(DISTINCT t.customer_id) FILTER (
                   WHERE date_trunc('month', t.timestamp) = f.first_month) AS new_customers,
               count(DISTINCT t.{order_key}) AS orders
        FROM {src} t JOIN f USING (customer_id)
        GROUP BY 1 ORDER BY 1""").df()


def cohort_retention(
    transactions: Transactions,
    max_months: int = 12,
    observation_end: pd.Timestamp | str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> pd.DataFrame:
    """Share of each first-purchase-month cohort buying again k months later.

    Rows: cohort month (``YYYY-MM``); columns: months since the first purchase, 0 to
    ``max_months``; values: share of the cohort's customers who bought in that month
    (month 0 is 1.0 by definition). A column ``size`` holds the cohort size. Months not
    fully observed (after ``observation_end``, or the month it cuts short) are NaN, not
    zero, so the last diagonal does not look like a collapse.

    Parameters
    ----------
    transactions : clean transactions, as for :func:`monthly_summary`.
    max_months : last month since the first purchase to show (an integer >= 1).
    observation_end : last observed day; None = the month of the last transaction is the
        last observed one.
    con : DuckDB connection to run on; a new one when None.

    Raises
    ------
    SegkitError
        When ``max_months`` is not an integer >= 1.
    """
    check_scalar(max_months, "max_months", int, ge=1)
    con = con or duckdb.connect()
    src = features.source_sql(con, transactions, view="_explore_tx")
    long = con.execute(f"""
        WITH m AS (SELECT DISTINCT customer_id, date_trunc('month', timestamp) AS month
                   FROM {src}),
             f AS (SELECT customer_id, min(month) AS cohort FROM m GROUP BY 1)
        SELECT strftime(f.cohort, '%Y-%m') AS cohort,
               date_diff('month', f.cohort, m.month) AS k,
               count(*) AS n
        FROM m JOIN f USING (customer_id)
        WHERE date_diff('month', f.cohort, m.month) <= {literal(max_months)}
        GROUP BY 1, 2 ORDER BY 1, 2""").df()
    return cohort_shares(long, max_months, observation_end)


def cohort_shares(
    long: pd.DataFrame, max_months: int, observation_end: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """The cohort table of :func:`cohort_retention` from its counts.

    ``long``: ``cohort`` (``YYYY-MM``), ``k`` (months since the first purchase, up to
    ``max_months``) and ``n`` (customers of the cohort buying in month k), sorted by
    cohort and k; the engines count it (:mod:`segkit.engine.explore`), this takes the
    shares and blanks the months not fully observed.
    """
    wide = long.pivot(index="cohort", columns="k", values="n").fillna(0)
    wide = wide.reindex(columns=range(max_months + 1), fill_value=0)
    size = wide[0]
    out = wide.div(size, axis=0)
    # Months that lie after the observation end are unknown, not zero; a month the
    # observation end cuts short is incomplete and left out too.
    last = pd.Period(long["cohort"].max(), "M")
    if observation_end is not None:
        end = pd.Timestamp(observation_end)
        last = pd.Period(end, "M") - (0 if end.is_month_end else 1)
    for cohort in out.index:
        open_months = (last - pd.Period(cohort, "M")).n
        out.loc[cohort, [k for k in out.columns if k > open_months]] = np.nan
    out.columns = [int(c) for c in out.columns]
    out.insert(0, "size", size.astype("int64"))
    return out


def revenue_concentration(customers: pd.DataFrame, revenue_col: str = "revenue") -> dict:
    """Share of revenue from the top 10 % and 20 % of customers, Gini, and the Lorenz curve.

    Returns a dict ``top_10, top_20, gini`` (rounded to 6 digits) and ``lorenz``, a frame
    ``customers_share, revenue_share`` of at most 201 points (an aggregate, never rows).
    Raises :class:`SegkitError` when ``revenue_col`` is missing or holds no positive revenue.

    >>> c = pd.DataFrame({"revenue": [1.0] * 8 + [46.0, 46.0]})
    >>> revenue_concentration(c)["top_10"], revenue_concentration(c)["top_20"]
    (0.46, 0.92)
    """
    check_columns(customers, [revenue_col], "customers")
    r = np.sort(customers[revenue_col].to_numpy(dtype=float))[::-1]
    if len(r) == 0 or r.sum() <= 0:
        raise SegkitError(f"customers.{revenue_col} has no positive revenue to concentrate")
    cum = np.cumsum(r) / r.sum()
    n = len(r)

    def top(share: float) -> float:
        k = max(1, int(round(share * n)))
        return round(float(cum[k - 1]), 6)

    # Lorenz curve (ascending) on at most 200 points: an aggregate, never customer rows.
    asc = np.concatenate([[0.0], np.cumsum(r[::-1]) / r.sum()])
    x = np.linspace(0, 1, n + 1)
    idx = np.unique(np.linspace(0, n, min(n, 200) + 1).round().astype(int))
    gini = float(1 - 2 * np.trapezoid(asc, x))
    return {
        "top_10": top(0.10),
        "top_20": top(0.20),
        "gini": round(gini, 6),
        "lorenz": pd.DataFrame({"customers_share": x[idx], "revenue_share": asc[idx]}),
    }


def feature_summary(customers: pd.DataFrame) -> pd.DataFrame:
    """Count, missing, mean, quartiles and skewness of every numeric feature.

    >>> feature_summary(pd.DataFrame({"x": [1.0, 2.0, None]}))[["count", "missing", "mean"]]
       count  missing  mean
    x    2.0        1   1.5
    """
    num = customers.select_dtypes("number")
    out = num.describe(percentiles=[0.25, 0.5, 0.75, 0.95]).T
    out.insert(1, "missing", num.isna().sum())
    out["skew"] = num.skew()
    return out
