"""The CLV tracking counts as ibis expressions: one definition, run on DuckDB or Spark.

:func:`segkit.clv.diagnostics.tracking` (the weekly tracking plots of Fader, Hardie & Lee
2005) needs two small aggregates of the transaction log, never one row per purchase:

- the customers of the calibration cohort (first purchase on or before the calibration
  end) per first purchase day;
- their repeat purchase days (purchase days after their first) per week since the origin,
  the cohort's first purchase day.

:func:`tracking_counts` computes both on the engine of ``t`` (``engine: spark``); the
DuckDB SQL of :mod:`segkit.clv.diagnostics` computes the same tables on the default path.
Purchases on one day are one purchase day, as in the BTYD summary.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segkit.engine.backend import ibis_module

#: Days per week of the tracking plots.
WEEK_DAYS = 7


def tracking_counts(
    t: Any,
    calibration_end: Any,
    observation_end: Any,
    *,
    customer_id_col: str = "customer_id",
    timestamp_col: str = "timestamp",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers per first purchase day and repeat purchase days per week, on ``t``'s engine.

    Parameters
    ----------
    t
        An ibis table of the transaction log (:func:`segkit.engine.table`).
    calibration_end, observation_end
        Dates (anything :class:`pandas.Timestamp` reads); purchases after
        ``observation_end`` are left out, customers first seen after ``calibration_end``
        too.

    Returns
    -------
    (firsts, repeats)
        ``firsts``: ``first_day`` (datetime64), ``customers`` (int64), by day; empty when
        no customer bought on or before ``calibration_end``. ``repeats``: ``week`` (0 =
        the week starting on the earliest first day), ``repeats`` (int64), by week; weeks
        without a repeat purchase are absent.
    """
    ibis = ibis_module()
    cal = ibis.date(pd.Timestamp(calibration_end).date())
    end = ibis.date(pd.Timestamp(observation_end).date())
    x = t.select(customer_id=t[customer_id_col], day=t[timestamp_col].date())
    d = x.filter(x.day <= end).distinct()
    f = d.group_by("customer_id").aggregate(first_day=d.day.min())
    f = f.filter(f.first_day <= cal)
    firsts = f.group_by("first_day").aggregate(customers=f.count()).order_by("first_day")
    out_firsts = firsts.to_pandas()
    out_firsts["first_day"] = pd.to_datetime(out_firsts["first_day"])
    out_firsts["customers"] = out_firsts["customers"].astype("int64")
    if out_firsts.empty:
        return out_firsts, pd.DataFrame({"week": [], "repeats": []}, dtype="int64")
    origin = ibis.date(out_firsts["first_day"].min().date())
    j = d.join(f, "customer_id")
    r = j.filter(j.day > j.first_day)
    # days since the origin are >= 0, so integer division is the week's floor on any engine
    r = r.select(week=r.day.delta(origin, unit="day") // WEEK_DAYS)
    repeats = r.group_by("week").aggregate(repeats=r.count()).order_by("week").to_pandas()
    return out_firsts, repeats.astype("int64")
