"""How well the purchase models predict: holdout checks and tracking plots' data.

The models are fitted on a calibration period and compared with what customers actually
bought afterwards (Fader, Hardie & Lee 2005, figures 2-4):

- :func:`holdout_predictions`: each model's expected holdout purchases per customer;
- :func:`holdout_by_frequency`: actual vs predicted, by calibration frequency;
- :func:`holdout_errors`: per model totals, MAE, RMSE, log-likelihood, AIC, BIC and the
  holdout test's z;
- :func:`holdout_test`: does the model fit this data? Actual against predicted holdout
  purchases, judged against what parameter uncertainty and chance explain;
- :func:`refit_test`: the same test for a model refitted on another split (a later cohort, an
  earlier window), and :func:`rate_change`: the buying rate before and during the holdout,
  actual and expected: the cheap checks of why a model does not fit;
- :func:`tracking`: weekly repeat purchases of the calibration cohort, actual and expected.

The holdout test
----------------
With ``P = sum_i E[X_i(t) | history_i]`` the predicted and ``A`` the actual holdout repeat
purchases, ``z = (A - P) / sqrt(var_param + var_sampling)``:

- ``var_param = g' Σ g``: the delta method, ``g`` the gradient of ``P`` with respect to the
  log-parameters (central differences) and ``Σ`` their covariance;
- ``var_sampling = sum_i (a_i - p_i)^2``: the robust (sandwich) estimate of
  ``sum_i Var(a_i)``, the chance in what customers actually buy. A Poisson variance (``P``)
  would understate it: customers differ in their rates and may have dropped out, so their
  counts are overdispersed (on CDNOW the robust sd is 1.9 times the Poisson one).

The model does not fit this data when ``|z|`` exceeds the normal quantile ``z_{1-α/2}``
(1.96 at α = 0.05): the miss is more than the fitted parameters and chance explain.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from segkit.clv.fit import Fit, fit_purchases
from segkit.clv.models import MODELS, compress
from segkit.core import paths
from segkit.core.checks import check_columns, check_scalar
from segkit.core.errors import SegkitError
from segkit.core.params import UNIT_DAYS
from segkit.core.sql import literal

#: Days per week of the tracking plots.
_WEEK = 7
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
    log-likelihood, AIC and BIC of the calibration fit, and the holdout test
    (:func:`holdout_test`: ``sd_parameters``, ``sd_sampling``, ``z``, ``fits``).

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
        test = holdout_test(cal, f, pred=p)
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
                "sd_parameters": test.sd_parameters,
                "sd_sampling": test.sd_sampling,
                "z": test.z,
                "fits": test.fits,
            }
        )
    return pd.DataFrame(rows)


class HoldoutTest(NamedTuple):
    """Actual against predicted holdout repeat purchases, and whether the gap is more than
    parameter uncertainty and chance explain (see the module)."""

    model: str  # model name (a key of MODELS)
    customers: int
    predicted: float  # P, expected holdout repeat purchases
    actual: float  # A
    sd_parameters: float  # sd of P from the parameters' uncertainty (delta method)
    sd_sampling: float  # sd of A around P from the customers' chance (robust)
    z: float  # (A - P) / sqrt(sd_parameters² + sd_sampling²)
    z_crit: float  # the normal quantile |z| is compared with

    @property
    def fits(self) -> bool:
        """False when |z| > z_crit: the model does not fit this data."""
        return bool(abs(self.z) <= self.z_crit)

    @property
    def error(self) -> float:
        """Relative error of the forecast, (P - A) / A (negative: too low)."""
        return (self.predicted - self.actual) / self.actual if self.actual > 0 else np.nan

    @property
    def allowed(self) -> float:
        """The relative miss parameter uncertainty and chance allow: z_crit · sd / P."""
        sd = np.hypot(self.sd_parameters, self.sd_sampling)
        return self.z_crit * sd / self.predicted if self.predicted > 0 else np.nan

    @property
    def factor(self) -> float:
        """How far the forecast missed, as a ratio >= 1: max(A/P, P/A) (the CLV band)."""
        if self.predicted <= 0 or self.actual <= 0:
            return np.inf
        return max(self.actual / self.predicted, self.predicted / self.actual)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, with the derived error, allowance, factor and verdict."""
        out: dict[str, Any] = {k: float(v) for k, v in self._asdict().items() if k != "model"}
        out.update(model=self.model, customers=int(self.customers), error=float(self.error))
        out.update(allowed=float(self.allowed), factor=float(self.factor), fits=self.fits)
        return out


def _total_gradient(fit: Fit, cal: pd.DataFrame, eps: float = 1e-4) -> tuple[float, np.ndarray]:
    """Predicted holdout total and its gradient with respect to the log-parameters (central
    differences), computed once per distinct history when the holdout length is shared."""
    t_all = cal["duration_holdout"].to_numpy(float)
    x, tx, T = (cal[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    t, w = t_all, np.ones(len(cal))
    if len(t_all) and np.all(t_all == t_all[0]):  # one calibration split: one length
        h = compress(x, tx, T)
        x, tx, T, w, t = h.x, h.tx, h.T, h.weight, np.full(len(h.x), t_all[0])

    def total(theta: np.ndarray) -> float:
        return float(w @ fit.spec.expected(theta, t, x, tx, T))

    z = np.log(fit.theta)
    grad = np.empty(len(z))
    for i in range(len(z)):
        dz = np.zeros_like(z)
        dz[i] = eps
        grad[i] = (total(np.exp(z + dz)) - total(np.exp(z - dz))) / (2 * eps)
    return total(fit.theta), grad


def holdout_test(
    cal: pd.DataFrame, fit: Fit, *, alpha: float = 0.05, pred: ArrayLike | None = None
) -> HoldoutTest:
    """Test whether ``fit`` (fitted on the calibration period) predicts the holdout.

    Parameters
    ----------
    cal
        ``features.calibration_holdout`` output.
    fit
        A purchase model fitted on ``cal``'s calibration period.
    alpha
        The test's level: the model does not fit when ``|z| > z_{1-alpha/2}``.
    pred
        The model's expected holdout purchases per customer, if already computed.

    Returns
    -------
    HoldoutTest
        Predicted, actual, both standard deviations and z (the module says how).

    Raises
    ------
    SegkitError
        When a column of ``cal`` is missing or ``alpha`` is not in (0, 1).
    """
    check_columns(cal, _CAL_COLUMNS, "calibration")
    check_scalar(alpha, "alpha", float, gt=0, lt=1)
    total, grad = _total_gradient(fit, cal)
    if pred is None:
        pred = fit.expected(cal["duration_holdout"], cal["frequency"], cal["recency"], cal["T"])
    p = np.asarray(pred, float)
    a = cal["frequency_holdout"].to_numpy(float)
    sd_param = float(np.sqrt(max(grad @ fit.cov_log @ grad, 0.0)))
    sd_sampling = float(np.sqrt(((a - p) ** 2).sum()))
    sd = np.hypot(sd_param, sd_sampling)
    return HoldoutTest(
        model=fit.model,
        customers=len(cal),
        predicted=total,
        actual=float(a.sum()),
        sd_parameters=sd_param,
        sd_sampling=sd_sampling,
        z=float((a.sum() - total) / sd) if sd > 0 else np.nan,
        z_crit=float(stats.norm.ppf(1 - alpha / 2)),
    )


def refit_test(cal: pd.DataFrame, model: str, *, seed: int = 0, alpha: float = 0.05) -> HoldoutTest:
    """Fit ``model`` on ``cal``'s calibration period and test it on its holdout.

    For the checks of why a model does not fit: the same model on a later cohort of
    customers (is it history before the data start?) or on an earlier window (is it the
    holdout period itself?).

    Raises
    ------
    SegkitError
        When a column is missing or the model cannot be fitted on ``cal``.
    """
    check_columns(cal, _CAL_COLUMNS, "calibration")
    fit = fit_purchases(model, cal["frequency"], cal["recency"], cal["T"], seed=seed)
    return holdout_test(cal, fit, alpha=alpha)


class RateChange(NamedTuple):
    """Repeat purchases per week of the calibration cohort: in the holdout and in as many
    complete weeks just before it, actual and as the model expects."""

    weeks: int  # complete holdout weeks compared (and as many calibration weeks before)
    actual_before: float
    actual_holdout: float
    expected_before: float
    expected_holdout: float

    @property
    def actual_change(self) -> float:
        """Relative change of the actual weekly purchases, holdout against before."""
        return self.actual_holdout / self.actual_before - 1

    @property
    def expected_change(self) -> float:
        """Relative change the model expects."""
        return self.expected_holdout / self.expected_before - 1


def rate_change(track: pd.DataFrame, model: str) -> RateChange | None:
    """The buying rate just before and during the holdout, from :func:`tracking` output.

    A stationary model expects the cohort's weekly purchases to change slowly (drop-out);
    a jump at the holdout that the model does not expect points to a change in the rate
    itself (a seasonal peak or a trend) rather than to the model's fit of the past.

    Returns
    -------
    RateChange or None
        None when there are no complete holdout weeks or fewer calibration weeks before.
    """
    check_columns(track, ["actual", model, "period", "complete"], "tracking")
    done = track[track["complete"]]
    hold = done[done["period"] == "holdout"]
    before = done[done["period"] == "calibration"].tail(len(hold))
    if hold.empty or len(before) < len(hold) or before["actual"].sum() <= 0:
        return None
    return RateChange(
        weeks=len(hold),
        actual_before=float(before["actual"].mean()),
        actual_holdout=float(hold["actual"].mean()),
        expected_before=float(before[model].mean()),
        expected_holdout=float(hold[model].mean()),
    )


def _tracking_counts(
    con: Any, tx_path: Any, cal: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`segkit.engine.clv.tracking_counts` in DuckDB SQL: customers of the
    calibration cohort per first purchase day, their repeat purchase days per week."""
    src = f"read_parquet({literal(paths.parquet_source(tx_path))})"
    cohort = f"""
        WITH d AS (SELECT DISTINCT customer_id, CAST(timestamp AS DATE) AS day FROM {src}
                   WHERE CAST(timestamp AS DATE) <= {literal(end.date())}),
        f AS (SELECT customer_id, min(day) AS first_day FROM d GROUP BY 1
              HAVING min(day) <= {literal(cal.date())})"""
    firsts = con.execute(
        f"{cohort} SELECT first_day, count(*) AS customers FROM f GROUP BY 1 ORDER BY 1"
    ).df()
    repeats = con.execute(
        f"""{cohort}
        SELECT date_diff('day', (SELECT min(first_day) FROM f), d.day) // {_WEEK} AS week,
               count(*) AS repeats
        FROM d JOIN f USING (customer_id) WHERE d.day > f.first_day GROUP BY 1 ORDER BY 1"""
    ).df()
    firsts["first_day"] = pd.to_datetime(firsts["first_day"])
    return firsts.astype({"customers": "int64"}), repeats.astype("int64")


def tracking(
    tx_path: Any,
    fits: dict[str, Fit],
    *,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str,
    con: Any = None,
    engine: str = "duckdb",
    spark: dict | None = None,
) -> pd.DataFrame:
    """Weekly repeat purchases of the calibration cohort, actual and expected.

    The tracking plots of Fader, Hardie & Lee (2005, figures 2-3): customers who first
    bought on or before ``calibration_end``; for each week since the first date, the
    number of repeat purchase days, and the model's expectation
    ``sum_i E[X(t - first_i)]`` differenced by week. Only two aggregates of the log are
    read, on the engine: the cohort's customers per first purchase day and their repeat
    purchase days per week (:func:`segkit.engine.clv.tracking_counts`).

    Parameters
    ----------
    tx_path
        The transactions (``customer_id``, ``timestamp``): a Parquet file or folder; with
        ``engine="spark"`` also anything :func:`segkit.engine.table` reads.
    fits
        Purchase models fitted on the calibration period, by name.
    calibration_end, observation_end
        Dates (anything :class:`pandas.Timestamp` reads).
    time_unit
        Time unit of the fits (``D`` or ``W``).
    con
        A DuckDB connection (``engine="duckdb"``); None for a new one.
    engine, spark
        ``duckdb`` (this module's SQL on ``con``) or ``spark`` (the ibis expressions of
        :mod:`segkit.engine.clv` on a session built from the ``spark`` parameters, or the
        active one).

    Returns
    -------
    pandas.DataFrame
        Per week: ``actual``, one column per model, ``period`` (calibration or holdout)
        and ``complete`` (False for a partial last week).

    Raises
    ------
    SegkitError
        When no customer bought on or before ``calibration_end``; an unknown engine.
    """
    cal = pd.Timestamp(calibration_end).normalize()
    end = pd.Timestamp(observation_end).normalize()
    if engine == "duckdb":
        import duckdb

        firsts, repeats = _tracking_counts(con or duckdb.connect(), tx_path, cal, end)
    else:
        from segkit import engine as eng  # ibis and PySpark: the optional spark extra
        from segkit.engine.clv import tracking_counts

        t = eng.table(eng.connect(engine, spark), tx_path)
        firsts, repeats = tracking_counts(t, cal, end)
    if firsts.empty:
        raise SegkitError(
            f"tracking: no customers bought on or before the calibration end ({cal.date()}) "
            f"in {tx_path}"
        )
    origin = pd.Timestamp(firsts["first_day"].min())
    n_days = (end - origin).days + 1
    n_weeks = int(np.ceil(n_days / _WEEK))
    actual = np.zeros(n_weeks)
    actual[repeats["week"].to_numpy()] = repeats["repeats"].to_numpy()
    first_i = (firsts["first_day"] - origin).dt.days.to_numpy()  # days since the origin
    counts = firsts["customers"].to_numpy(float)  # customers per first day
    edges = np.arange(1, n_weeks + 1) * _WEEK  # end of each week, in days since origin
    out = pd.DataFrame({"week": np.arange(1, n_weeks + 1), "actual": actual})
    unit = UNIT_DAYS[time_unit]
    for name, f in fits.items():
        age = (edges[:, None] - first_i[None, :]) / unit
        cum = (f.expected_new(np.clip(age, 0, None)) * (age > 0)) @ counts
        out[name] = np.diff(np.concatenate([[0.0], cum]))
    cal_week = ((cal - origin).days + 1) / _WEEK
    out["period"] = np.where(out["week"] <= cal_week, "calibration", "holdout")
    # a partial last week looks like a collapse in purchases: the plots leave it out
    out["complete"] = out["week"] * _WEEK <= n_days
    return out
