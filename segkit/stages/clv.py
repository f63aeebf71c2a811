"""Stage 'clv': fit the CLV models of a run, check them on the holdout, value every customer.

:func:`run` reads the customers' BTYD summary (and the calibration summary when
``data.calibration_end`` is set) from the run, fits the models named in ``clv.models``
through :mod:`segkit.clv`, and writes:

- ``clv_holdout.csv``, ``clv_models.csv``, ``clv_tracking.csv``: the holdout check of the
  models fitted on the calibration period (``clv_models.csv`` with each model's holdout
  test, :func:`segkit.clv.diagnostics.holdout_test`);
- ``clv_params.json``: every model's parameters fitted on the whole period, and under
  ``_meta.holdout_check`` the CLV model's holdout test, the checks of why it does not fit
  (when it does not) and the factor of the model-error band;
- ``clv.parquet`` (per customer, with segment and the ``clv_delta_*`` columns from which
  the delta-method interval of any group's total follows: :func:`segkit.clv.total_interval`)
  and ``clv_segments.csv`` (per segment, the interval of each segment's total), from the
  purchase model with the lowest BIC;
- ``actions_with_value.csv``: the profiling stage's suggested actions with each segment's CLV;
- ``findings_clv.json``: the findings, worded by the small ``_finding_*`` functions.

When the holdout test finds that the CLV model does not fit this data (its forecast misses
by more than parameter uncertainty and chance explain), the first finding says so, with
the numbers and the likely why (:func:`_diagnose`: the buying rate before and during the
holdout, the same model on an earlier window, on a later cohort of customers), and every
CLV range (total, per segment, per customer) is widened by the observed error
(:func:`segkit.clv.predict.model_error_band`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit import features, io, profile
from segkit.clv import (
    MODELS,
    PURCHASE_MODELS,
    SPEND_MODEL,
    Fit,
    ValueModel,
    fit_purchases,
    fit_spend,
    holdout_by_frequency,
    holdout_errors,
    holdout_predictions,
    segment_value,
    spend_frequency_correlation,
    total_interval,
    tracking,
)
from segkit.clv.diagnostics import (
    HoldoutTest,
    RateChange,
    holdout_test,
    rate_change,
    refit_test,
)
from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.core.params import UNIT_DAYS, parse_date
from segkit.stages.run import Run, Skipped
from segkit.stages.tables import untrusted

_UNIT_WORDS = {"W": "weeks", "D": "days"}
#: |correlation| of spend per purchase and frequency above which Gamma-Gamma is doubtful.
_MAX_SPEND_CORRELATION = 0.3
#: The cohort check of a misfit keeps customers first seen at least this many days after
#: the data start (a quarter): those who were already customers before the data began
#: show up in the first weeks.
_COHORT_AFTER_DAYS = 91
#: Fewest customers a check of why the model does not fit is run on.
_MIN_CHECK_CUSTOMERS = 200


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
    check: Check | None = None  # the CLV model's holdout test and, if it fails, why


class Diagnosis(NamedTuple):
    """Cheap checks of why the CLV model does not fit: each None when it could not run."""

    rate: RateChange | None  # weekly purchases before and during the holdout
    earlier: tuple[str, HoldoutTest] | None  # (calibration end, test) one holdout earlier
    cohort: tuple[str, HoldoutTest] | None  # (first purchase from, test) later customers


class Check(NamedTuple):
    """The CLV model's holdout test, the diagnosis when it fails, the band's factor."""

    test: HoldoutTest
    diagnosis: Diagnosis | None  # None when the model fits

    @property
    def factor(self) -> float:
        """Factor of the model-error band: 1 when the model fits, else max(A/P, P/A)."""
        return 1.0 if self.test.fits else self.test.factor


class _Holdout(NamedTuple):
    fits: dict[str, Fit]
    by_frequency: pd.DataFrame | None
    errors: pd.DataFrame | None
    tracking: pd.DataFrame | None
    cal: pd.DataFrame | None = None


def run(run: Run) -> CLVResult | Skipped:
    """Fit the CLV models of ``run``, validate on the holdout, predict every customer.

    Parameters
    ----------
    run
        The run; its ``clv`` parameters name the models, horizon, margin and discount rate.

    Returns
    -------
    CLVResult or Skipped
        Skipped when the run has no transaction log (so no purchase history), or when no
        purchase model can be fitted on it (every estimate runs off: the reason says which).

    Raises
    ------
    SegkitError
        When ``clv.models`` names no purchase model, or another fit fails.
    """
    customers = run.load("customers")
    if not {"frequency", "recency", "T"} <= set(customers.columns):
        return _skip(run)
    p = run.params["clv"]
    unit = run.params["data"]["time_unit"]
    purchase_models = _purchase_models(p["models"])
    use_spend = SPEND_MODEL in p["models"]
    seed = run.seed  # the warm start samples histories (only above 40,000 distinct ones)
    try:
        fits, dropped = _fits(customers, purchase_models, use_spend=use_spend, seed=seed)
    except NotIdentified as exc:  # the data, not the input, are at fault: the run goes on
        return _skip(run, str(exc))
    ho = _holdout(run, [m for m in purchase_models if m in fits], seed=seed, dropped=dropped)
    # a model the calibration period cannot identify is left out of the whole stage
    purchase_models = [m for m in purchase_models if m not in dropped]
    fits = {m: f for m, f in fits.items() if m not in dropped}
    corr = float("nan")
    if use_spend:  # Gamma-Gamma assumes spend per purchase independent of frequency
        corr = spend_frequency_correlation(customers["frequency"], customers["monetary"])
    best, passing = _choose(purchase_models, fits, ho)
    check = _check(run, ho, best, seed=seed)
    band = check.factor if check else 1.0  # the model-error band's factor (1: none)
    pred = _predictions(run, customers, fits, best, model_error=band)
    seg = segment_value(pred, run.params["profile"]["min_segment_size"], model_error=band)
    pred = _save_artifacts(
        run, pred, seg, fits=fits, cal_fits=ho.fits, best=best, corr=corr, check=check
    )
    actions = _actions_with_value(run, seg)
    params = pd.concat([f.table() for f in fits.values()], ignore_index=True)
    findings = _findings(
        run, pred, seg, fits=fits, check=check, ho=ho, best=best, corr=corr, passing=passing
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
        check=check,
    )


# ----------------------------------------------------------------------------- inputs


class NotIdentified(SegkitError):
    """No purchase model can be fitted on the purchase history (every estimate runs off)."""


def _skip(run: Run, reason: str | None = None) -> Skipped:
    reason = reason or (
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
        # each model's reason without the estimates' numbers (they stay in the log)
        each = "; ".join(why.split(" (the estimate runs off")[0] for why in dropped.values())
        raise NotIdentified(
            f"no purchase model could be fitted on the purchase history of {len(c):,} "
            "customers, so no lifetime value is estimated; segments, profiles and campaign "
            "results do not depend on it. The models describe customers who differ in how "
            "often they buy and who stop buying at some point; in these data the estimates run "
            f"off to the limits where every customer buys at the same rate or nobody stops "
            f"({each})."
        )
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
    return _Holdout(cal_fits, by_frequency, errors, track, cal)


def _choose(models: list[str], fits: dict[str, Fit], ho: _Holdout) -> tuple[str, list[str] | None]:
    """The CLV model and the models that pass the holdout check (None without a holdout).

    The holdout check drives the choice: the lowest BIC among the models whose holdout
    forecast is within what parameter uncertainty and chance allow; when none is (or there
    is no holdout), the lowest BIC of all, and the findings say the model does not fit.
    """
    if ho.cal is None:
        return min(models, key=lambda m: fits[m].bic), None
    passing = [m for m in models if m in ho.fits and holdout_test(ho.cal, ho.fits[m]).fits]
    return min(passing or models, key=lambda m: fits[m].bic), passing


def _check(run: Run, ho: _Holdout, best: str, *, seed: int) -> Check | None:
    """The holdout test of the CLV model (None without a holdout); when the model does not
    fit, the checks of why (:func:`_diagnose`)."""
    if ho.cal is None or ho.tracking is None or best not in ho.fits:
        return None
    test = holdout_test(ho.cal, ho.fits[best])
    if test.fits:
        return Check(test, None)
    return Check(test, _diagnose(run, ho.cal, ho.tracking, best, seed=seed))


def _diagnose(
    run: Run, cal: pd.DataFrame, track: pd.DataFrame, best: str, *, seed: int
) -> Diagnosis:
    """Why the model may not fit, from three cheap checks on data the stage already has.

    - rate: the calibration cohort's repeat purchases per week in the holdout against as
      many weeks just before it, actual and as the model expects (a jump the model does
      not expect means the buying rate changed: a seasonal peak or a trend);
    - earlier: the same model calibrated one holdout length earlier and tested on the
      weeks up to ``calibration_end`` (does it fit outside the holdout period?);
    - cohort: the same model on the customers first seen at least a quarter after the
      data start, whose whole history is in the data (is the miss due to customers who
      bought before the data began?).
    """
    d = run.params["data"]
    unit_days = UNIT_DAYS[d["time_unit"]]
    cal_end = parse_date(d["calibration_end"])
    rate = rate_change(track, best)
    start_age = float(cal["T"].max())  # age of the oldest customer: the data start
    cohort_age = start_age - _COHORT_AFTER_DAYS / unit_days
    cohort = None
    young = cal[cal["T"] <= cohort_age]
    if len(young) >= _MIN_CHECK_CUSTOMERS:
        since = (cal_end - pd.Timedelta(days=cohort_age * unit_days)).date().isoformat()
        cohort = _maybe(lambda: (since, refit_test(young, best, seed=seed)))
    return Diagnosis(rate, _earlier(run, cal, best, seed=seed), cohort)


def _earlier(
    run: Run, cal: pd.DataFrame, best: str, *, seed: int
) -> tuple[str, HoldoutTest] | None:
    """The model calibrated one holdout length before ``calibration_end`` and tested up
    to it; None when that calibration period would be shorter than the holdout."""
    d = run.params["data"]
    unit_days = UNIT_DAYS[d["time_unit"]]
    cal_end = parse_date(d["calibration_end"])
    length = pd.Timedelta(days=float(cal["duration_holdout"].iloc[0]) * unit_days)
    span = pd.Timedelta(days=float(cal["T"].max()) * unit_days)
    if span < 2 * length:
        return None
    early_end = (cal_end - length).normalize()
    tx, on = _transactions(run)
    con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
    try:
        early = features.calibration_holdout(tx, early_end, cal_end, d["time_unit"], con=con, **on)
    finally:
        con.close()
    if len(early) < _MIN_CHECK_CUSTOMERS:
        return None
    return _maybe(lambda: (early_end.date().isoformat(), refit_test(early, best, seed=seed)))


def _maybe(check: Any) -> Any:
    """``check()``, or None when the model cannot be fitted there (a diagnosis that cannot
    run is left out, never fails the stage)."""
    try:
        return check()
    except SegkitError:
        return None


def _transactions(run: Run) -> tuple[str, dict[str, Any]]:
    """The run's transactions as the run's engine reads them, and that engine.

    ``transactions.parquet`` is a file, or on the Spark path a folder of Parquet files:
    DuckDB reads a folder through a glob of its files, Spark reads the folder itself.
    """
    on = {"engine": run.params.get("engine", "duckdb"), "spark": run.params.get("spark")}
    path = run.path("transactions.parquet")
    return (path.as_posix() if on["engine"] != "duckdb" else paths.parquet_source(path)), on


def _tracking(run: Run, cal_fits: dict[str, Fit]) -> pd.DataFrame:
    d = run.params["data"]
    obs_end = run.load("data_quality")["summary"]["observation_end"]
    tx, on = _transactions(run)
    con = io.connect(temp_dir=run.artifacts / ".duckdb_tmp")
    try:
        return tracking(
            tx,
            cal_fits,
            calibration_end=d["calibration_end"],
            observation_end=obs_end,
            time_unit=d["time_unit"],
            con=con,
            **on,
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
    run: Run, customers: pd.DataFrame, fits: dict[str, Fit], best: str, *, model_error: float
) -> pd.DataFrame:
    """Per customer predictions of the ``best`` purchase model, with segment; the CLV
    interval widened by the model-error band when ``model_error`` > 1."""
    p = run.params["clv"]
    model = ValueModel(
        purchases=fits[best],
        spend=fits.get(SPEND_MODEL),
        horizon_months=p["horizon_months"],
        margin=p["margin"],
        discount_rate=p["discount_rate"],
        time_unit=run.params["data"]["time_unit"],
        model_error=model_error,
    )
    pred = model.predict(customers)
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
    check: Check | None,
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
        "holdout_check": _check_json(check),
    }
    run.save("clv_params.json", params_json)
    floats = pred.select_dtypes("float").columns
    with np.errstate(over="ignore"):  # x · 10^9 of a bound near the largest float
        pred[floats] = pred[floats].round(9)
    run.save("clv.parquet", pred)
    run.save("clv_segments.csv", seg)
    return pred


def _check_json(check: Check | None) -> dict[str, Any] | None:
    """The holdout check as plain JSON: the test, the band's factor, the diagnosis."""
    if check is None:
        return None
    out: dict[str, Any] = {**check.test.to_dict(), "model_error_factor": check.factor}
    if check.diagnosis is not None:
        dg = check.diagnosis
        out["rate"] = dg.rate._asdict() if dg.rate else None
        for name, key, part in (
            ("earlier", "calibration_end", dg.earlier),
            ("cohort", "first_purchase_from", dg.cohort),
        ):
            out[name] = {key: part[0], **part[1].to_dict()} if part else None
    return out


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


def _money2(v: float) -> str:
    return f"{v:,.2f}"


def _findings(
    run: Run,
    pred: pd.DataFrame,
    seg: pd.DataFrame,
    *,
    fits: dict[str, Fit],
    check: Check | None,
    ho: _Holdout,
    best: str,
    corr: float,
    passing: list[str] | None = None,
) -> list[str]:
    """The stage's findings, the headline first: that the model does not fit this data,
    when the holdout check says so; else the value."""
    p = run.params["clv"]
    d = run.params["data"]
    use_spend = SPEND_MODEL in fits
    value = _finding_value(pred, seg, p, factor=check.factor if check else 1.0)
    if check is not None and not check.test.fits:
        findings = [_finding_misfit(check, d["calibration_end"]), value]
        findings += [f for f in [_finding_checks(check)] if f]
    else:
        findings = [value]
        if check is not None and ho.errors is not None:
            findings.append(_finding_holdout(ho.errors, check, d["calibration_end"]))
    findings.append(_finding_alive(pred))
    models = [m for m in fits if m in PURCHASE_MODELS]  # in the order of clv.models
    findings.append(
        _finding_models(best, models, d["time_unit"], use_spend=use_spend, passing=passing)
    )
    findings += _findings_weak(fits)
    if use_spend:
        findings.append(_finding_correlation(corr))
    return findings


def _finding_value(pred: pd.DataFrame, seg: pd.DataFrame, p: dict, *, factor: float) -> str:
    total, low, high = total_interval(pred, model_error=factor)
    shown = seg[~seg["suppressed"]].sort_values("clv_per_customer", ascending=False)
    top = shown.iloc[0]
    interval = ""
    loose = untrusted(total, low, high) if np.isfinite(low) else None
    if loose:  # a 95% interval of 0 to 8e+185 would be quoted; it tells nothing
        interval = (
            f"; no useful interval: the fitted parameters barely determine the total ({loose}"
            f"; {pred['clv'].size:,} customers)"
        )
    elif np.isfinite(low) and factor == 1:
        interval = (
            f"; 95% interval {_money(low)} to {_money(high)} from the uncertainty of the fitted "
            "parameters alone"
        )
    elif np.isfinite(low):
        _, p_low, p_high = total_interval(pred)
        interval = (
            f"; range {_money(low)} to {_money(high)}: the 95% interval from the fitted "
            f"parameters ({_money(p_low)} to {_money(p_high)}) widened by the holdout "
            f"forecast's miss, a factor of {factor:.2f} both ways"
        )
    return (
        f"The customers are worth {_money(total)} in margin over the next {p['horizon_months']} "
        f"months (discounted at {p['discount_rate']:.0%} a year, margin {p['margin']:.0%}"
        f"{interval}); "
        f"segment {top['segment']} '{top.get('segment_name', top['segment'])}' is worth "
        f"{_money(top['clv_per_customer'])} per customer and {top['share_of_value']:.0%} of the total."
    )


def _test_numbers(t: HoldoutTest) -> str:
    """'predicted 3,384 repeat purchases against 4,482 actual (-24.5%)'."""
    return (
        f"predicted {t.predicted:,.0f} repeat purchases against {t.actual:,.0f} actual "
        f"({t.error:+.1%})"
    )


def _finding_holdout(errors: pd.DataFrame, check: Check, calibration_end: Any) -> str:
    t = check.test
    label = MODELS[t.model].label
    mae = errors.set_index("model").loc[label, "mae"]
    return (
        f"Holdout check passed: calibrated to {calibration_end}, {label} {_test_numbers(t)}, "
        "within what the uncertainty of the fitted parameters and chance allow "
        f"(±{t.allowed:.1%}, z = {t.z:+.2f}); mean absolute error {mae:.2f} per customer."
    )


def _finding_misfit(check: Check, calibration_end: Any) -> str:
    """The headline when the model does not fit: the numbers, the likely why, the band."""
    t = check.test
    return (
        f"The model does not fit this data: calibrated to {calibration_end}, "
        f"{MODELS[t.model].label} {_test_numbers(t)} in the holdout, where the uncertainty of "
        f"the fitted parameters and chance allow ±{t.allowed:.1%} (z = {t.z:+.1f}). "
        f"{_why(check.diagnosis, t)}. The CLV ranges are therefore widened by the forecast's "
        f"miss (a factor of {check.factor:.2f} both ways)."
    )


def _why(dg: Diagnosis | None, main: HoldoutTest) -> str:
    """The likely why, from the checks that could run (:func:`_finding_checks` gives their
    numbers); no cause is claimed when the checks do not point to one."""
    if dg is None:
        return "The checks of why could not run"
    rate_moved = dg.rate is not None and _rate_moved(dg.rate)
    # a window earlier that the model predicts, or misses the other way: the rate moves
    earlier_differs = dg.earlier is not None and _versus(dg.earlier[1], main) != (
        "missing the same way"
    )
    cohort_fits = dg.cohort is not None and _clears(dg.cohort[1], main)
    if (rate_moved or earlier_differs) and not cohort_fits:
        return (
            "Likely why: the buying rate changed in the holdout period (a seasonal peak or a "
            "trend), which these models, with one constant rate per customer, cannot follow"
        )
    if cohort_fits and not (rate_moved or earlier_differs):
        return (
            "Likely why: customers who bought before the data start, whose earlier "
            "purchases the model cannot see"
        )
    return "The checks of why do not single out one cause"


def _finding_checks(check: Check) -> str | None:
    """The numbers behind :func:`_why`: each check that could run; None without any."""
    dg, main = check.diagnosis, check.test
    if dg is None:
        return None
    facts = [_fact_rate(dg.rate), _fact_earlier(dg.earlier, main), _fact_cohort(dg.cohort, main)]
    facts = [f for f in facts if f]
    if not facts:
        return None
    return "Why the model likely misses: " + "; ".join(facts) + "."


def _rate_moved(r: RateChange) -> bool:
    """The actual weekly rate moved from before to the holdout by more than a tenth beyond
    what the model expects (its ratio of actual to expected changed by over 10%)."""
    before = r.actual_before / r.expected_before
    during = r.actual_holdout / r.expected_holdout
    return bool(abs(during / before - 1) > 0.1)


def _fact_rate(r: RateChange | None) -> str:
    if r is None:
        return ""
    return (
        f"the calibration customers made {r.actual_holdout:,.0f} repeat purchases a week in "
        f"the holdout against {r.actual_before:,.0f} in the {r.weeks} weeks before "
        f"({r.actual_change:+.0%}), where the model expects {r.expected_change:+.0%}"
    )


def _fact_earlier(part: tuple[str, HoldoutTest] | None, main: HoldoutTest) -> str:
    if part is None:
        return ""
    end, t = part
    return f"calibrated to {end} instead, the same model {_test_numbers(t)}, {_versus(t, main)}"


def _versus(t: HoldoutTest, main: HoldoutTest) -> str:
    """How a check's miss compares with the holdout's."""
    if t.fits:
        return "within what chance allows"
    return "missing the same way" if np.sign(t.z) == np.sign(main.z) else "missing the other way"


def _error(t: HoldoutTest) -> float:
    """The relative miss of a holdout forecast as the findings write it: (predicted -
    actual) / actual."""
    return (t.predicted - t.actual) / t.actual if t.actual > 0 else float("nan")


def _clears(cohort: HoldoutTest, main: HoldoutTest) -> bool:
    """The later customers' forecast clears the model of the overall miss: within chance
    and at most half the overall relative miss. Within chance alone is not enough: a
    cohort is smaller, so chance allows more, and the same miss can hide in it."""
    return cohort.fits and abs(_error(cohort)) <= abs(_error(main)) / 2


def _fact_cohort(part: tuple[str, HoldoutTest] | None, main: HoldoutTest) -> str:
    if part is None:
        return ""
    since, t = part
    same_size = np.sign(_error(t)) == np.sign(_error(main)) and not _clears(t, main)
    if _clears(t, main):
        tail = ", so the miss comes from customers who bought before the data start"
    elif same_size and t.fits:
        tail = (
            f" but by about as much as all customers ({_error(main):+.1%}), so purchases "
            "before the data start do not explain the miss"
        )
    elif same_size:
        tail = ", so purchases before the data start are not the cause"
    else:
        tail = ""
    return (
        f"on the {t.customers:,} customers first seen from {since} it {_test_numbers(t)}, "
        f"{_versus(t, main)}{tail}"
    )


def _finding_alive(pred: pd.DataFrame) -> str:
    alive = pred["p_alive"]
    total = pred["clv"].sum()
    return (
        f"{(alive < 0.5).mean():.0%} of customers are more likely gone than active "
        f"(probability alive below 50%); they hold {pred.loc[alive < 0.5, 'clv'].sum() / total:.0%} "
        "of the expected value."
    )


def _finding_models(
    best: str, models: list[str], unit: str, *, use_spend: bool, passing: list[str] | None = None
) -> str:
    """Which model the CLV uses and why (BIC, among the models passing the holdout check)."""
    labels = ", ".join(MODELS[m].label for m in models)
    if len(models) == 1:
        why = "the only purchase model fitted"
    elif passing is None:
        why = f"lowest BIC among {labels}"
    elif not passing:
        why = f"lowest BIC among {labels}; none passes the holdout check"
    elif set(passing) == set(models):
        why = f"lowest BIC among {labels}, all of which pass the holdout check"
    elif len(passing) == 1:
        why = f"the only one of {labels} that passes the holdout check"
    else:
        ok = ", ".join(MODELS[m].label for m in passing)
        why = f"lowest BIC among {ok}, the ones of {labels} that pass the holdout check"
    return f"CLV uses {MODELS[best].label} ({why}) fitted in {_UNIT_WORDS[unit]}" + (
        " and Gamma-Gamma for spend per purchase." if use_spend else "; no spend model."
    )


def _findings_weak(fits: dict[str, Fit]) -> list[str]:
    out = []
    for m, f in fits.items():
        if f.limit:
            out.append(
                f"{MODELS[m].label}: spend per purchase does not vary between customers more "
                f"than chance allows (its q and v run off to infinity), so every customer's "
                f"expected spend per purchase is the same, {_money2(f.spend_level)}, the "
                "model's limit."
            )
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
