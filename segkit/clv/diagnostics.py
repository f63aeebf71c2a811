"""How well the purchase models predict: holdout checks and tracking plots' data.

The models are fitted on a calibration period and compared with what customers actually
bought afterwards (Fader, Hardie & Lee 2005, figures 2-4):

- :func:`holdout_predictions`: each model's expected holdout purchases per customer;
- :func:`holdout_by_frequency`: actual vs predicted, by calibration frequency;
- :func:`holdout_errors`: per model totals, MAE, RMSE, log-likelihood, AIC, BIC;
- :func:`tracking`: weekly repeat purchases of the calibration cohort, actual and expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segkit.clv.fit import Fit
from segkit.clv.models import MODELS
from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.params import UNIT_DAYS
from segkit.core.sql import literal

_CAL_COLUMNS = ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]


def holdout_predictions(cal: pd.DataFrame, fits: dict[str, Fit]) -> pd.DataFrame:
    """Each model's expected holdout purchases per customer (one column per model).

    Parameters
    ----------
    cal
        ``features.calibration_holdout`` output: the calibration summary with
        ``frequency_holdout`` and ``duration_holdout``.
    fits
        Purchase models fitted on the calibration period, by name.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``cal``.

    Raises
    ------
    SegkitError
        When a column of ``cal`` is missing.
    """
    check_columns(cal, _CAL_COLUMNS, "calibration")
    t = cal["duration_holdout"].to_numpy()
    return pd.DataFrame(
        {n: f.expected(t, cal["frequency"], cal["recency"], cal["T"]) for n, f in fits.items()},
        index=cal.index,
    )


def holdout_by_frequency(
    cal: pd.DataFrame,
    fits: dict[str, Fit],
    *,
    censor: int = 7,
    pred: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Actual vs predicted holdout purchases per customer, by calibration frequency.

    Parameters
    ----------
    cal
        ``features.calibration_holdout`` output.
    fits
        Purchase models fitted on the calibration period, by name.
    censor
        Frequencies from ``censor`` on are grouped as ``censor+``.
    pred
        :func:`holdout_predictions`, if already computed.

    Returns
    -------
    pandas.DataFrame
        One row per frequency 0..censor-1 and ``censor+`` (as in Fader, Hardie & Lee 2005,
        figure 4), plus a ``total`` row with sums over all customers.
    """
    pred = holdout_predictions(cal, fits) if pred is None else pred
    df = pd.DataFrame({"frequency": cal["frequency"], "actual": cal["frequency_holdout"]})
    df[list(fits)] = pred[list(fits)]
    df["group"] = np.where(df["frequency"] >= censor, f"{censor}+", df["frequency"].astype(str))
    order = [str(i) for i in range(censor)] + [f"{censor}+"]
    g = df.groupby("group")
    out = g[["actual", *fits]].mean().reindex(order).dropna(how="all")
    out.insert(0, "customers", g.size().reindex(out.index))
    tot = df[["actual", *fits]].sum()
    out.loc["total"] = [len(df), *tot.to_numpy()]
    out.index.name = "calibration_frequency"
    return out.reset_index()


def holdout_errors(
    cal: pd.DataFrame, fits: dict[str, Fit], pred: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Per model: total predicted vs actual holdout purchases, MAE and RMSE per customer,
    log-likelihood, AIC and BIC of the calibration fit.

    Parameters
    ----------
    cal, fits, pred
        As for :func:`holdout_by_frequency`.

    Returns
    -------
    pandas.DataFrame
        One row per model, named by its label.
    """
    preds = holdout_predictions(cal, fits) if pred is None else pred
    rows = []
    actual = cal["frequency_holdout"].to_numpy(float)
    for name, f in fits.items():
        p = preds[name].to_numpy()
        rows.append(
            {
                "model": MODELS[name].label,
                "actual_total": actual.sum(),
                "predicted_total": p.sum(),
                "error_pct": 100 * (p.sum() - actual.sum()) / actual.sum(),
                "mae": np.mean(np.abs(p - actual)),
                "rmse": np.sqrt(np.mean((p - actual) ** 2)),
                "loglik": f.loglik,
                "aic": f.aic,
                "bic": f.bic,
            }
        )
    return pd.DataFrame(rows)


def _purchase_days(con: Any, tx_path: str, cal: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Distinct purchase days up to ``end`` of the customers who first bought by ``cal``,
    with each customer's first day."""
    days = con.execute(
        f"""
        WITH d AS (SELECT DISTINCT customer_id, CAST(timestamp AS DATE) AS day
                   FROM read_parquet({literal(tx_path)})
                   WHERE CAST(timestamp AS DATE) <= {literal(end.date())}),
        f AS (SELECT customer_id, min(day) AS first FROM d GROUP BY 1)
        SELECT d.day, f.first FROM d JOIN f USING (customer_id)
        WHERE f.first <= {literal(cal.date())}"""
    ).df()
    if days.empty:
        raise SegkitError(
            f"tracking: no customers bought on or before the calibration end ({cal.date()}) "
            f"in {tx_path}"
        )
    return days


def tracking(
    tx_path: str,
    fits: dict[str, Fit],
    *,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str,
    con: Any = None,
) -> pd.DataFrame:
    """Weekly repeat purchases of the calibration cohort, actual and expected.

    The tracking plots of Fader, Hardie & Lee (2005, figures 2-3): customers who first
    bought on or before ``calibration_end``; for each week since the first date, the
    number of repeat purchase days, and the model's expectation
    ``sum_i E[X(t - first_i)]`` differenced by week.

    Parameters
    ----------
    tx_path
        Parquet file of the transactions (``customer_id``, ``timestamp``).
    fits
        Purchase models fitted on the calibration period, by name.
    calibration_end, observation_end
        Dates (anything :class:`pandas.Timestamp` reads).
    time_unit
        Time unit of the fits (``D`` or ``W``).
    con
        A DuckDB connection; None for a new one.

    Returns
    -------
    pandas.DataFrame
        Per week: ``actual``, one column per model, ``period`` (calibration or holdout)
        and ``complete`` (False for a partial last week).

    Raises
    ------
    SegkitError
        When no customer bought on or before ``calibration_end``.
    """
    import duckdb

    con = con or duckdb.connect()
    cal = pd.Timestamp(calibration_end).normalize()
    end = pd.Timestamp(observation_end).normalize()
    days = _purchase_days(con, tx_path, cal, end)
    origin = pd.Timestamp(days["first"].min())
    n_days = (end - origin).days + 1
    n_weeks = int(np.ceil(n_days / 7))
    day_i = (pd.to_datetime(days["day"]) - origin).dt.days.to_numpy()
    first_i = (pd.to_datetime(days["first"]) - origin).dt.days.to_numpy()
    repeat = day_i > first_i
    actual = np.bincount(day_i[repeat] // 7, minlength=n_weeks)[:n_weeks]
    firsts = pd.Series(first_i[day_i == first_i]).value_counts()  # customers per first day
    edges = np.arange(1, n_weeks + 1) * 7  # end of each week, in days since origin
    out = pd.DataFrame({"week": np.arange(1, n_weeks + 1), "actual": actual.astype(float)})
    unit = UNIT_DAYS[time_unit]
    for name, f in fits.items():
        age = (edges[:, None] - firsts.index.to_numpy()[None, :]) / unit
        cum = (f.expected_new(np.clip(age, 0, None)) * (age > 0)) @ firsts.to_numpy()
        out[name] = np.diff(np.concatenate([[0.0], cum]))
    cal_week = ((cal - origin).days + 1) / 7
    out["period"] = np.where(out["week"] <= cal_week, "calibration", "holdout")
    # a partial last week looks like a collapse in purchases: the plots leave it out
    out["complete"] = out["week"] * 7 <= n_days
    return out
