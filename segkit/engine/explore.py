"""The exploration tables as ibis expressions: one definition, run on DuckDB or Spark.

The same tables as :mod:`segkit.explore` computes in DuckDB SQL (the default path), on
clean transactions (``customer_id, timestamp, amount[, order_id]``): the log's summary
(:func:`log_summary`), the monthly summary (:func:`monthly_summary`) and the cohort
retention (:func:`cohort_retention`). Only one row per month (or per cohort and month)
comes back to pandas; ``tests/test_engine_clean.py`` checks they equal the DuckDB ones.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segkit import explore
from segkit.core.checks import check_scalar


def _order_key(t: Any, fallback: list[str]) -> list[str]:
    return ["order_id"] if "order_id" in t.columns else fallback


def log_summary(t: Any) -> dict[str, Any]:
    """First and last timestamp, transactions, distinct orders and revenue of the log.

    Orders are distinct ``order_id`` values (nulls not counted), else distinct
    ``(customer_id, timestamp)`` pairs, as in the exploration stage.
    """
    key = _order_key(t, ["customer_id", "timestamp"])
    row = (
        t.aggregate(
            first=t.timestamp.min(),
            last=t.timestamp.max(),
            transactions=t.count(),
            revenue=t.amount.cast("float64").sum(),
        )
        .to_pandas()
        .iloc[0]
    )
    if key == ["order_id"]:
        orders = t.order_id.nunique().to_pandas()
    else:
        orders = t.select(*key).distinct().count().to_pandas()
    return {
        "first": pd.Timestamp(row["first"]),
        "last": pd.Timestamp(row["last"]),
        "transactions": int(row["transactions"]),
        "orders": int(orders),
        "revenue": float(row["revenue"]),
    }


def monthly_summary(t: Any) -> pd.DataFrame:
    """Revenue, purchasing customers, new customers and orders per calendar month.

    The table of :func:`segkit.explore.monthly_summary`: ``month, revenue, customers,
    new_customers, orders``; orders are distinct ``order_id`` values, else distinct
    timestamps.
    """
    key = _order_key(t, ["timestamp"])[0]
    x = t.mutate(_month=t.timestamp.truncate("M"))
    first = x.group_by("customer_id").aggregate(_first=x._month.min())
    j = x.join(first, "customer_id")
    out = (
        j.group_by(month=j._month)
        .aggregate(
            revenue=j.amount.cast("float64").sum(),
            customers=j.customer_id.nunique(),
            new_customers=j.customer_id.nunique(where=j._month == j._first),
            orders=j[key].nunique(),
        )
        .order_by("month")
        .to_pandas()
    )
    out["month"] = pd.to_datetime(out["month"]).dt.normalize().astype("datetime64[us]")
    counts = ["customers", "new_customers", "orders"]
    out[counts] = out[counts].astype("int64")
    return out.reset_index(drop=True)


def cohort_retention(
    t: Any, max_months: int = 12, observation_end: pd.Timestamp | str | None = None
) -> pd.DataFrame:
    """Share of each first-purchase-month cohort buying again k months later.

    The table of :func:`segkit.explore.cohort_retention` (cohort month rows, months 0 to
    ``max_months``, ``size``; months not fully observed NaN). The engine counts the
    customers per cohort and month; the shares are taken in pandas.
    """
    check_scalar(max_months, "max_months", int, ge=1)
    months = t.select("customer_id", month=t.timestamp.truncate("M")).distinct()
    first = months.group_by("customer_id").aggregate(cohort=months.month.min())
    j = months.join(first, "customer_id")
    k = (j.month.year() - j.cohort.year()) * 12 + (j.month.month() - j.cohort.month())
    j = j.mutate(k=k).filter(lambda r: r.k <= max_months)
    long = j.group_by(["cohort", "k"]).aggregate(n=j.count()).to_pandas()
    long["cohort"] = pd.to_datetime(long["cohort"]).dt.strftime("%Y-%m")
    long = long.sort_values(["cohort", "k"]).reset_index(drop=True)
    return explore.cohort_shares(long, max_months, observation_end)
