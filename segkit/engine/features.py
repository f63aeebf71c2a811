"""Customer features as ibis expressions: one definition, run on DuckDB or Spark.

The same table as :func:`segkit.features.customer_features` (which computes it in DuckDB
SQL and stays the default path): the BTYD summary in the lifetimes convention (purchases on
one day are one purchase; ``frequency`` repeat days, ``recency``, ``T``, ``monetary`` the
mean value of the repeat days), ``orders``, ``revenue``, ``aov``, ``items``,
``tenure_days``, ``days_since_last``, ``mean_ipt_days`` and revenue shares of the top
values of ``category``, ``channel``, ``country``. Every duration is cast to float64 before
it is divided (Spark would compute in DECIMAL), and the result's types are those of the
DuckDB path, so the two tables compare equal (``tests/test_engine.py``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segkit.core.checks import check_scalar
from segkit.core.errors import SegkitError
from segkit.core.params import UNIT_DAYS
from segkit.engine.backend import flt, ibis_module, not_finite

#: Integer columns of the feature table (the rest are float64 but the dates and the id).
INT_COLUMNS = ("frequency", "orders", "tenure_days", "days_since_last")


def check_log(t: Any, roles: dict[str, str], observation_end: Any) -> pd.Timestamp:
    """The observation end (given, else the last day of the log), after checking the log.

    Raises
    ------
    SegkitError
        A role's column is missing; an id, timestamp or amount is empty (or an amount NaN
        or infinite), with the count; an empty log.
    """
    cols = list(t.columns)
    for role, col in roles.items():
        if col not in cols:
            raise SegkitError(
                f"transactions is missing column {col!r} ({role}); columns are {cols}"
            )
    cid, ts, amt = roles["customer_id_col"], roles["timestamp_col"], roles["amount_col"]
    a = t[amt].cast("float64")
    row = (
        t.aggregate(
            last=t[ts].max(),
            bad_amount=t.count(where=a.isnull() | a.isnan() | not_finite(a)),
            bad_id=t.count(where=t[cid].isnull()),
            bad_ts=t.count(where=t[ts].isnull()),
        )
        .to_pandas()
        .iloc[0]
    )
    for col, role, n, what in (
        (amt, "amount_col", row["bad_amount"], "empty, NaN or infinite"),
        (cid, "customer_id_col", row["bad_id"], "empty"),
        (ts, "timestamp_col", row["bad_ts"], "empty"),
    ):
        if n:
            raise SegkitError(
                f"transactions column {col!r} ({role}) has {int(n)} {what} values; clean the "
                "log first (segkit.io.load_transactions rejects such rows)"
            )
    if observation_end is not None:
        return pd.Timestamp(observation_end).normalize()
    if pd.isna(row["last"]):
        raise SegkitError("transactions has no rows: cannot build customer features")
    return pd.Timestamp(row["last"]).normalize()


def purchase_days(t: Any, cid: str, ts: str, amt: str, end: Any) -> Any:
    """One row per customer and purchase day up to ``end`` (inclusive): the day's value."""
    x = t.mutate(_day=t[ts].date()).filter(lambda r: r._day <= end)
    return x.group_by(customer_id=x[cid], day=x._day).aggregate(value=x[amt].cast("float64").sum())


def btyd(days: Any, end: Any, unit: float) -> Any:
    """Per customer: frequency, recency, T, monetary, first_day, last_day (lifetimes)."""
    ibis = ibis_module()
    b = days.group_by("customer_id").aggregate(
        n=days.count(),
        first_day=days.day.min(),
        last_day=days.day.max(),
        total=days.value.sum(),
        first_value=days.value.argmin(days.day),  # one row per day: no ties
    )
    repeats = (b.n - 1).cast("float64")
    return b.select(
        "customer_id",
        frequency=b.n - 1,
        recency=b.last_day.delta(b.first_day, unit="day").cast("float64") / flt(unit),
        T=end.delta(b.first_day, unit="day").cast("float64") / flt(unit),
        monetary=ibis.ifelse(b.n > 1, (b.total - b.first_value) / repeats, flt(0.0)),
        first_day=b.first_day,
        last_day=b.last_day,
    )


def top_values(x: Any, col: str, amt: str, top_n: int) -> list[Any]:
    """The ``top_n + 1`` values of ``col`` with the most revenue (ties by value)."""
    g = x.filter(x[col].notnull()).group_by(col).aggregate(_s=x[amt].cast("float64").sum())
    rows = g.order_by([g._s.desc(), g[col]]).limit(int(top_n) + 1).to_pandas()
    return rows[col].tolist()


def share_aggregates(x: Any, amt: str, spec: list[tuple[str, str, list, bool]]) -> dict:
    """``name -> sum(amount where value) / sum(amount)`` for (column, name, values, other).

    ``other`` rows: the value is missing or not among ``values``.
    """
    ibis = ibis_module()
    a = x[amt].cast("float64")
    out = {}
    for col, name, values, other in spec:
        cond = (x[col].isnull() | ~x[col].isin(values)) if other else (x[col] == values[0])
        # a customer whose amounts sum to 0 (free items kept): 0 / 0 is NaN in DuckDB and
        # an error in Spark's ANSI mode, so the NaN is spelled out (NULL -> 0 as in DuckDB)
        part, total = a.sum(where=cond), a.sum()
        share = part / total.nullif(flt(0.0))
        out[name] = ibis.ifelse((total == flt(0.0)) & part.notnull(), flt(float("nan")), share)
    return out


def feature_table(
    t: Any,
    end: pd.Timestamp,
    unit: float,
    cols: dict[str, str | None],
    shares: list[tuple[str, str, list, bool]],
) -> Any:
    """The customer feature expression (see the module docstring), sorted by id.

    ``cols``: customer_id, timestamp, amount, order key, quantity (None: none) columns.
    """
    ibis = ibis_module()
    cid, ts, amt = str(cols["customer_id"]), str(cols["timestamp"]), str(cols["amount"])
    end_day = ibis.date(end.date())
    b = btyd(purchase_days(t, cid, ts, amt, end_day), end_day, unit)
    x = t.filter(t[ts].date() <= end_day)
    aggs = {
        "orders": x[str(cols["order_key"])].nunique(),
        "revenue": x[amt].cast("float64").sum(),
    }
    if cols["quantity"]:
        aggs["items"] = x[cols["quantity"]].cast("float64").sum()
    aggs.update(share_aggregates(x, amt, shares))
    o = x.group_by(customer_id=x[cid]).aggregate(**aggs)
    j = b.join(o, "customer_id")
    out = {
        "first_purchase": j.first_day.cast("timestamp"),
        "last_purchase": j.last_day.cast("timestamp"),
        **{c: j[c] for c in ("frequency", "recency", "T", "monetary", "orders", "revenue")},
        "aov": j.revenue / j.orders.cast("float64"),
        **({"items": j["items"]} if cols["quantity"] else {}),
        "tenure_days": end_day.delta(j.first_day, unit="day"),
        "days_since_last": end_day.delta(j.last_day, unit="day"),
        "mean_ipt_days": ibis.ifelse(
            j.frequency > 0,
            j.last_day.delta(j.first_day, unit="day").cast("float64") / j.frequency.cast("float64"),
            ibis.null("float64"),
        ),
        **{name: j[name].fill_null(flt(0.0)) for _, name, _, _ in shares},
    }
    return j.select("customer_id", **out).order_by("customer_id")


def normalize(out: pd.DataFrame) -> pd.DataFrame:
    """The DuckDB path's types: int64 counts and days, float64 values, datetime64[us]."""
    out = out.reset_index(drop=True)
    for c in out.columns:
        if c in INT_COLUMNS:
            out[c] = out[c].astype("int64")
        elif c in ("first_purchase", "last_purchase"):
            out[c] = pd.to_datetime(out[c]).astype("datetime64[us]")
        elif c != "customer_id":
            out[c] = out[c].astype("float64")
    return out


def customer_features(
    t: Any,
    observation_end: Any = None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
    order_id_col: str | None = "order_id",
    quantity_col: str | None = "quantity",
    share_cols: tuple[str, ...] = ("category", "channel", "country"),
    top_n: int = 8,
) -> pd.DataFrame:
    """Every customer feature of :func:`segkit.features.customer_features`, on ``t``'s engine.

    ``t``: an ibis table of the transaction log (:func:`segkit.engine.table`). Only the
    per-customer table comes back to pandas.

    Raises
    ------
    SegkitError
        As :func:`segkit.features.customer_features`.
    """
    from segkit.features import share_columns  # the names of the DuckDB path, once

    check_scalar(time_unit, "time_unit", str, in_=set(UNIT_DAYS))
    check_scalar(top_n, "top_n", int, ge=1)
    roles = {"customer_id_col": customer_id_col, "timestamp_col": timestamp_col}
    roles["amount_col"] = amount_col
    end = check_log(t, roles, observation_end)
    ibis = ibis_module()
    x = t.filter(t[timestamp_col].date() <= ibis.date(end.date()))
    shares: list[tuple[str, str, list, bool]] = []
    for col in (c for c in share_cols if c in t.columns):
        top = top_values(x, col, amount_col, top_n)
        for name, value in share_columns(col, top, top_n, [sh[1] for sh in shares]):
            shares.append((col, name, top[:top_n] if value is None else [value], value is None))
    cols: dict[str, str | None] = {"customer_id": customer_id_col, "timestamp": timestamp_col}
    cols["amount"] = amount_col
    cols["order_key"] = order_id_col if order_id_col in t.columns else timestamp_col
    cols["quantity"] = quantity_col if quantity_col in t.columns else None
    out = feature_table(t, end, UNIT_DAYS[time_unit], cols, shares).to_pandas()
    if out.empty:
        raise SegkitError(f"transactions has no rows on or before the observation end {end.date()}")
    return normalize(out)


def calibration_holdout(
    t: Any,
    calibration_end: Any,
    observation_end: Any = None,
    time_unit: str = "D",
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
    amount_col: str = "amount",
) -> pd.DataFrame:
    """:func:`segkit.features.calibration_holdout` on ``t``'s engine.

    Raises
    ------
    SegkitError
        As :func:`segkit.features.calibration_holdout`.
    """
    ibis = ibis_module()
    check_scalar(time_unit, "time_unit", str, in_=set(UNIT_DAYS))
    unit = UNIT_DAYS[time_unit]
    roles = {"customer_id_col": customer_id_col, "timestamp_col": timestamp_col}
    roles["amount_col"] = amount_col
    cal = pd.Timestamp(calibration_end).normalize()
    end = check_log(t, roles, observation_end)
    if cal >= end:
        raise SegkitError(
            f"calibration_end == {cal.date()} must be before the observation end {end.date()}"
        )
    cal_day = ibis.date(cal.date())
    d = purchase_days(t, customer_id_col, timestamp_col, amount_col, ibis.date(end.date()))
    c = btyd(d.filter(d.day <= cal_day), cal_day, unit)
    h = d.filter(d.day > cal_day)
    h = h.group_by("customer_id").aggregate(_fh=h.count(), _mh=h.value.mean())
    j = c.left_join(h, c.customer_id == h.customer_id)
    out = j.select(
        customer_id=c.customer_id,
        **{k: c[k] for k in ("frequency", "recency", "T", "monetary")},
        frequency_holdout=h._fh.fill_null(0),
        monetary_holdout=h._mh.fill_null(flt(0.0)),
        duration_holdout=flt((end - cal).days / unit),
    ).order_by("customer_id")
    df = out.to_pandas().reset_index(drop=True)
    if df.empty:
        raise SegkitError(f"no customer bought on or before calibration_end == {cal.date()}")
    for col in ("frequency", "frequency_holdout"):
        df[col] = df[col].astype("int64")
    for col in ("recency", "T", "monetary", "monetary_holdout", "duration_holdout"):
        df[col] = df[col].astype("float64")
    return df
