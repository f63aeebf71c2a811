"""Stage 'clv': fit the CLV models of a run, check them on the holdout, value every customer.

:func:`run` reads the customers' BTYD summary (and the calibration summary when
``data.calibration_end`` is set) from the run, fits the models named in ``clv.models``
through :mod:`segkit.clv`, and writes:

- ``clv_holdout.csv``, ``clv_models.csv``, ``clv_tracking.csv``: the holdout check of the
  models fitted on the calibration period;
- ``clv_params.json``: every model's parameters fitted on the whole period;
- ``clv.parquet`` (per customer, with segment and the ``clv_delta_*`` columns from which
  the delta-method interval of any group's total follows: :func:`segkit.clv.total_interval`)
  and ``clv_segments.csv`` (per segment, the interval of each segment's total), from the
  purchase model with the lowest BIC;
- ``actions_with_value.csv``: the profiling stage's suggested actions with each segment's CLV;
- ``findings_clv.json``: the findings, worded by the small ``_finding_*`` functions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit import io, profile
from segkit.clv import (
    MODELS,
    PURCHASE_MODELS,
    SPEND_MODEL,
    Fit,
    fit_purchases,
    fit_spend,
    holdout_by_frequency,
    holdout_errors,
    holdout_predictions,
    predict,
    segment_value,
    spend_frequency_correlation,
    total_interval,
    tracking,
)
from segkit.core.errors import SegkitError
from segkit.stages.run import Run, Skipped

_UNIT_WORDS = {"W": "weeks", "D": "days"}
#: |correlation| of spend per purchase and frequency above which Gamma-Gamma is doubtful.
_MAX_SPEND_CORRELATION = 0.3


class CLVResult(NamedTuple):
    """What the clv stage returns (and the 04_clv notebook shows)."""

    findings: list[str]
    params: pd.DataFrame  # every fitted model's parameters with se and intervals
    fits: dict[str, Fit]  # fits on the whole observation period (used for predictions)
    cal_fits: dict[str, Fit]  # fits on the calibration period (used for the holdout)
    holdout: pd.DataFrame | None  # by calibration frequency
    errors: pd.DataFrame | None  # per model
    tracking: pd.DataFrame | None
    customers: pd.DataFrame  # per customer predictions with segment
    segments: pd.DataFrame  # per segment value
    actions: pd.DataFrame | None  # profile's suggested actions revisited with CLV
    model: str  # purchase model used for CLV
    correlation: float
    time_unit: str


class _Holdout(NamedTuple):
    fits: dict[str, Fit]
    by_frequency: pd.DataFrame | None
    errors: pd.DataFrame | None
    tracking: pd.DataFrame | None


def run(run: Run) -> CLVResult | Skipped:
    """Fit the CLV models of ``run``, validate on the holdout, predict every customer.

    Parameters
    ----------
    run
        The run; its ``clv`` parameters name the models, horizon, margin and discount rate.

    Returns
    -------
    CLVResult or Skipped
        Skipped when the run has no transaction log (so no purchase history).

    Raises
    ------
    SegkitError
        When ``clv.models`` names no purchase model, or a fit fails.
    """
    customers = run.load("customers")
    if not {"frequency", "recency", "T"} <= set(customers.columns):
        return _skip(run)
    p = run.params["clv"]
    unit = run.params["data"]["time_unit"]
    purchase_models = _purchase_models(p["models"])
    use_spend = SPEND_MODEL in p["models"]
    seed = run.seed  # the warm start samples histories (only above 40,000 distinct ones)
    fits, dropped = _fits(customers, purchase_models, use_spend=use_spend, seed=seed)
    ho = _holdout(run, [m for m in purchase_models if m in fits], seed=seed, dropped=dropped)
    # a model the calibration period cannot identify is left out of the whole stage
    purchase_models = [m for m in purchase_models if m not in dropped]
    fits = {m: f for m, f in fits.items() if m not in dropped}
    corr = float("nan")
    if use_spend:
        corr = spend_frequency_correlation(customers["frequency"], customers["monetary"])
    best = min(purchase_models, key=lambda m: fits[m].bic)
    pred = _predictions(run, customers, fits, best)
    seg = segment_value(pred, run.params["profile"]["min_segment_size"])
    pred = _save_artifacts(run, pred, seg, fits=fits, cal_fits=ho.fits, best=best, corr=corr)
    actions = _actions_with_value(run, seg)
    params = pd.concat([f.table() for f in fits.values()], ignore_index=True)
    findings = _findings(
        run, pred, seg, fits=fits, errors=ho.errors, best=best, models=purchase_models, corr=corr
    )
    findings += [f"{MODELS[m].label} was left out: {why}" for m, why in dropped.items()]
    run.save_findings("clv", findings)
    return CLVResult(
        findings=findings,
        params=params,
        fits=fits,
        cal_fits=ho.fits,
        holdout=ho.by_frequency,
        errors=ho.errors,
        tracking=ho.tracking,
        customers=pred,
        segments=seg,
        actions=actions,
        model=best,
        correlation=corr,
        time_unit=unit,
    )


# ----------------------------------------------------------------------------- inputs


def params_table(result: CLVResult, digits: int = 4) -> pd.DataFrame:
    """The fitted parameters with their intervals, to ``digits`` significant digits.

    Significant digits, not decimals: a Pareto/NBD beta of 161.27 is known to a few parts
    in ten thousand, and its seventh digit differs between CPUs' numpy kernels.
    """
    table = result.params.copy()
    for col in table.select_dtypes("number").columns:
        table[col] = [float(f"{v:.{digits}g}") if np.isfinite(v) else v for v in table[col]]
    return table


def _skip(run: Run) -> Skipped:
    reason = (
        f"parameter set {run.params['name']!r} has no transaction log, so there is no "
        "purchase history to model; CLV needs data.transactions."
    )
    run.save_findings("clv", [f"Skipped: {reason}"], status="skipped")
    return Skipped("clv", reason)


def _purchase_models(models: list[str]) -> list[str]:
    """The purchase models among ``clv.models``; at least one is needed."""
    purchase_models = [m for m in models if m in PURCHASE_MODELS]
    if not purchase_models:
        raise SegkitError(f"clv.models == {models}: name at least one of {list(PURCHASE_MODELS)}")
    return purchase_models


# ----------------------------------------------------------------------------- fits


def _fit_each(c: pd.DataFrame, models: list[str], *, seed: int, dropped: dict[str, str]) -> dict:
    """Each purchase model fitted on ``c``; a model the data cannot identify is recorded in
    ``dropped`` with the reason instead of failing the stage, while another one fits."""
    fits = {}
    for m in models:
        try:
            fits[m] = fit_purchases(m, c["frequency"], c["recency"], c["T"], seed=seed)
        except SegkitError as exc:
            dropped[m] = str(exc)
    if not fits:
        raise SegkitError("no purchase model could be fitted: " + " | ".join(dropped.values()))
    return fits


def _holdout(run: Run, models: list[str], *, seed: int, dropped: dict[str, str]) -> _Holdout:
    """Fit on the calibration period and predict the holdout (when there is one)."""
    d = run.params["data"]
    if not d["calibration_end"]:
        return _Holdout({}, None, None, None)
    cal = run.load("calibration")
    cal_fits = _fit_each(cal, models, seed=seed, dropped=dropped)
    per_customer = holdout_predictions(cal, cal_fits)
    by_frequency = holdout_by_frequency(cal, cal_fits, pred=per_customer)
    errors = holdout_errors(cal, cal_fits, pred=per_customer)
    track = _tracking(run, cal_fits)
    run.save("clv_holdout.csv", by_frequency)
    run.save("clv_models.csv", errors)
    run.save("clv_tracking.csv", track)
    return _Holdout(cal_fits, by_frequency, errors, track)


def _tracking(run: Run, cal_fits: dict[str, Fit]) -> pd.DataFrame:
    d = run.params["data"]
    obs_end = run.load("data_quality")["summary"]["observation_end"]
    con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
    try:
        return tracking(
            run.path("transactions.parquet").as_posix(),
            cal_fits,
            calibration_end=d["calibration_end"],
            observation_end=obs_end,
            time_unit=d["time_unit"],
            con=con,
        )
    finally:
        con.close()


def _fits(
    customers: pd.DataFrame, models: list[str], *, use_spend: bool, seed: int
) -> tuple[dict[str, Fit], dict[str, str]]:
    """Every model fitted on the whole period, and the purchase models left out (why)."""
    dropped: dict[str, str] = {}
    fits = _fit_each(customers, models, seed=seed, dropped=dropped)
    if use_spend:
        fits[SPEND_MODEL] = fit_spend(customers["frequency"], customers["monetary"], seed=seed)
    return fits, dropped


# ----------------------------------------------------------------------------- predictions


def _predictions(
    run: Run, customers: pd.DataFrame, fits: dict[str, Fit], best: str
) -> pd.DataFrame:
    """Per customer predictions of the ``best`` purchase model, with segment."""
    p = run.params["clv"]
    pred = predict(
        fits[best],
        fits.get(SPEND_MODEL),
        customers,
        horizon_months=p["horizon_months"],
        margin=p["margin"],
        discount_rate=p["discount_rate"],
        time_unit=run.params["data"]["time_unit"],
    )
    if "clv" not in pred:  # no spend model: value in purchases only
        pred["clv"] = pred["discounted_purchases"]
        pred["clv_low"] = pred["clv_high"] = np.nan
    pred = pred.merge(run.load("segments"), on="customer_id", how="left")
    pred["segment"] = pred["segment"].fillna(0).astype(int)
    return pred


# ----------------------------------------------------------------------------- artifacts


def _save_artifacts(
    run: Run,
    pred: pd.DataFrame,
    seg: pd.DataFrame,
    *,
    fits: dict[str, Fit],
    cal_fits: dict[str, Fit],
    best: str,
    corr: float,
) -> pd.DataFrame:
    """Write clv_params.json, clv.parquet and clv_segments.csv; return the per customer
    predictions as written (floats rounded to 9 decimals)."""
    p = run.params["clv"]
    params_json: dict[str, Any] = {m: f.to_dict() for m, f in fits.items()}
    params_json["_meta"] = {
        "time_unit": run.params["data"]["time_unit"],
        "clv_model": best,
        "horizon_months": p["horizon_months"],
        "margin": p["margin"],
        "discount_rate": p["discount_rate"],
        "spend_frequency_correlation": corr,
        "calibration": {m: f.to_dict() for m, f in cal_fits.items()},
    }
    run.save("clv_params.json", params_json)
    floats = pred.select_dtypes("float").columns
    pred[floats] = pred[floats].round(9)
    run.save("clv.parquet", pred)
    run.save("clv_segments.csv", seg)
    return pred


def _actions_with_value(run: Run, seg: pd.DataFrame) -> pd.DataFrame | None:
    """The profiling stage's suggested actions, revisited with each segment's CLV."""
    try:
        profiles = run.load("profiles")
    except SegkitError:  # profiling skipped (e.g. too few customers): nothing to revisit
        return None
    actions = profile.suggest_actions(profiles, seg[~seg["suppressed"]])
    run.save("actions_with_value.csv", actions)
    return actions


# ----------------------------------------------------------------------------- findings


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _findings(
    run: Run,
    pred: pd.DataFrame,
    seg: pd.DataFrame,
    *,
    fits: dict[str, Fit],
    errors: pd.DataFrame | None,
    best: str,
    models: list[str],
    corr: float,
) -> list[str]:
    """The stage's findings, the headline first."""
    p = run.params["clv"]
    d = run.params["data"]
    use_spend = SPEND_MODEL in fits
    findings = [_finding_value(pred, seg, p)]
    if errors is not None:
        findings.append(_finding_holdout(errors, MODELS[best].label, d["calibration_end"]))
    findings.append(_finding_alive(pred))
    findings.append(_finding_models(best, models, d["time_unit"], use_spend=use_spend))
    findings += _findings_weak(fits)
    if use_spend:
        findings.append(_finding_correlation(corr))
    return findings


def _finding_value(pred: pd.DataFrame, seg: pd.DataFrame, p: dict) -> str:
    total, low, high = total_interval(pred)
    shown = seg[~seg["suppressed"]].sort_values("clv_per_customer", ascending=False)
    top = shown.iloc[0]
    interval = (
        f"; 95% interval {_money(low)} to {_money(high)} from the uncertainty of the fitted "
        "parameters alone"
        if np.isfinite(low)
        else ""
    )
    return (
        f"The customers are worth {_money(total)} in margin over the next {p['horizon_months']} "
        f"months (discounted at {p['discount_rate']:.0%} a year, margin {p['margin']:.0%}"
        f"{interval}); "
        f"segment {top['segment']} '{top.get('segment_name', top['segment'])}' is worth "
        f"{_money(top['clv_per_customer'])} per customer and {top['share_of_value']:.0%} of the total."
    )


def _finding_holdout(errors: pd.DataFrame, label: str, calibration_end: Any) -> str:
    e = errors.set_index("model")
    return (
        f"Checked on the holdout after {calibration_end}: {label} predicted "
        f"{e.loc[label, 'predicted_total']:,.0f} repeat purchases against "
        f"{e.loc[label, 'actual_total']:,.0f} actual ({e.loc[label, 'error_pct']:+.1f}%), "
        f"mean absolute error {e.loc[label, 'mae']:.2f} per customer."
    )


def _finding_alive(pred: pd.DataFrame) -> str:
    alive = pred["p_alive"]
    total = pred["clv"].sum()
    return (
        f"{(alive < 0.5).mean():.0%} of customers are more likely gone than active "
        f"(probability alive below 50%); they hold {pred.loc[alive < 0.5, 'clv'].sum() / total:.0%} "
        "of the expected value."
    )


def _finding_models(best: str, models: list[str], unit: str, *, use_spend: bool) -> str:
    return (
        f"CLV uses {MODELS[best].label} (lowest BIC among {', '.join(MODELS[m].label for m in models)}) "
        f"fitted in {_UNIT_WORDS[unit]}"
        + (" and Gamma-Gamma for spend per purchase." if use_spend else "; no spend model.")
    )


def _findings_weak(fits: dict[str, Fit]) -> list[str]:
    out = []
    for m, f in fits.items():
        if f.weak:
            out.append(
                f"Caution: {MODELS[m].label} barely identifies {', '.join(f.weak)} (95% "
                f"intervals over a factor of 10,000 wide); with this data "
                + (
                    "drop-out is hardly visible, so probability alive is not informative."
                    if m in PURCHASE_MODELS
                    else "spend per purchase is poorly determined."
                )
            )
    return out


def _finding_correlation(corr: float) -> str:
    if abs(corr) > _MAX_SPEND_CORRELATION:
        return (
            f"Caution: spend per purchase and frequency are correlated (r = {corr:.2f}); "
            "Gamma-Gamma assumes they are not, so CLV may be biased for frequent buyers."
        )
    return (
        f"Spend per purchase and frequency are nearly uncorrelated (r = {corr:.2f}), "
        "as the Gamma-Gamma model assumes."
    )
