"""Per-customer predictions and CLV from fitted models, with delta-method intervals.

CLV over a horizon of H months is
``sum_{i=1..H} (E[X(i months)] - E[X(i-1 months)]) · E[M] · margin / (1 + d)^(i/12)``
with ``d`` the annual discount rate, the expected purchases conditional on each customer's
history, and ``E[M]`` the Gamma-Gamma expected spend per purchase. Its interval reflects the
uncertainty of the fitted parameters (delta method on the log scale), not the much larger
customer-to-customer randomness of what will actually be bought.

The interval of a *total* (all customers, a segment) is not the sum of the customers'
bounds: every prediction moves with the same fitted parameters, so the variance of the
sum is ``g' Σ g`` with ``g`` the gradient of the total with respect to the
log-parameters (the purchase model's and the spend model's, fitted independently) and
``Σ`` their covariance. :func:`predict` writes each customer's share of that gradient,
premultiplied by a square root of ``Σ``, as the columns ``clv_delta_1..k``
(:data:`DELTA_PREFIX`): the variance of any group's total is the sum of squares of the
group's column sums (:func:`total_interval`).

- :func:`discounted_purchases`: the discounted sum of expected purchases, month by month;
- :func:`predict`: P(alive), expected purchases, spend and CLV with intervals;
- :func:`total_interval`: the delta-method interval of a total CLV;
- :func:`segment_value`: CLV per segment, small segments suppressed;
- :func:`model_error_band`: an interval widened by the model's observed error.

When the model does not fit
---------------------------
Parameter uncertainty says nothing about the model being wrong. When the holdout check
(:func:`segkit.clv.holdout_test`) finds the forecast off by more than parameter uncertainty
and chance explain, every CLV range is widened by a band calibrated on that backtest: with
``P`` the predicted and ``A`` the actual holdout purchases and ``f = max(A/P, P/A)``, an
interval ``[low, high]`` becomes ``[low / f, high · f]``. The parameter interval is
stretched, on the log scale, by the observed error both ways: the holdout shows how far the
model can be off, not in which direction it will be off over the next horizon (a seasonal
peak in the holdout may be a trough in the next months). The rule assumes the relative
error of the holdout forecast carries over to the CLV horizon; the band then contains the
value the model would have needed to be right on the holdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from segkit.clv.fit import Fit
from segkit.clv.models import SPEND_MODEL, Theta, check_summary, compress, pair_index
from segkit.core.checks import check_columns, check_scalar
from segkit.core.errors import SegkitError
from segkit.core.params import MIN_SEGMENT_SIZE, UNIT_DAYS

#: Days in an average month (a year of 365.25 days).
DAYS_PER_MONTH = 365.25 / 12
#: Prefix of the per-customer delta-method columns of :func:`predict` (see the module).
DELTA_PREFIX = "clv_delta_"


def months_in_units(time_unit: str) -> float:
    """Length of a month in ``time_unit`` (``D`` or ``W``).

    Examples
    --------
    >>> round(months_in_units("W"), 4)
    4.3482
    >>> months_in_units("M")
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: time_unit == 'M', must be one of ['D', 'W'].
    """
    check_scalar(time_unit, "time_unit", str, in_=UNIT_DAYS)
    return DAYS_PER_MONTH / UNIT_DAYS[time_unit]


def discounted_purchases(
    fit: Fit,
    x: ArrayLike,
    tx: ArrayLike,
    T: ArrayLike,
    *,
    horizon_months: int,
    discount_rate: float,
    time_unit: str,
    theta: Theta | None = None,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Sum over months of the expected purchases in month i, discounted to today.

    The month-by-month expectation given alive depends on (x, T) only: it is computed once
    per distinct pair (``pairs`` from :func:`~segkit.clv.models.pair_index` may be passed
    in) and multiplied by each history's probability alive.

    Parameters
    ----------
    fit
        A fitted purchase model.
    x, tx, T
        Histories, in the time unit of the fit.
    horizon_months, discount_rate, time_unit
        Months summed over, annual discount rate, time unit of the fit (``D`` or ``W``).
    theta
        Parameters to use instead of the fitted ones (for the delta method).
    pairs
        ``pair_index(x, T)``, when already computed.

    Returns
    -------
    numpy.ndarray
        One value per history.

    Raises
    ------
    SegkitError
        For a horizon that is not a positive integer, a discount rate outside [0, 1) or an
        unknown time unit.
    """
    check_scalar(horizon_months, "horizon_months", int, gt=0)
    check_scalar(discount_rate, "discount_rate", float, ge=0, lt=1)
    spec = fit.spec
    theta = fit.theta if theta is None else theta
    x, tx, T = (np.atleast_1d(np.asarray(v, float)) for v in (x, tx, T))
    px, pT, idx = pairs if pairs is not None else pair_index(x, T)
    month = months_in_units(time_unit)
    prev = np.zeros(len(px))
    total = np.zeros_like(prev)
    for i in range(1, horizon_months + 1):
        cur = spec.future(theta, i * month, px, pT)
        total += (cur - prev) / (1 + discount_rate) ** (i / 12)
        prev = cur
    return total[idx] * spec.p_alive(theta, x, tx, T)


def _log_gradient(
    f: Callable[[np.ndarray], np.ndarray],
    fit: Fit,
    base: np.ndarray | None = None,
    eps: float = 1e-4,
) -> np.ndarray:
    """Per-row gradient of log f(θ) with respect to the log-parameters (rows × parameters);
    forward differences from ``base = f(θ)`` when given, else central differences."""
    z = np.log(fit.theta)
    grads = []
    for i in range(len(z)):
        dz = np.zeros_like(z)
        dz[i] = eps
        with np.errstate(divide="ignore", invalid="ignore"):
            if base is not None:
                grads.append((np.log(f(np.exp(z + dz))) - np.log(base)) / eps)
            else:
                grads.append((np.log(f(np.exp(z + dz))) - np.log(f(np.exp(z - dz)))) / (2 * eps))
    return np.column_stack(grads)


def _quadratic(G: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Per-row ``g' cov g``: the delta-method variance of each row."""
    return np.einsum("ij,jk,ik->i", G, cov, G)


def cov_root(cov: np.ndarray) -> np.ndarray:
    """``L`` with ``L L' = cov`` (symmetric square root; negative eigenvalues of a
    numerically indefinite covariance count as 0)."""
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def model_error_band(low: ArrayLike, high: ArrayLike, factor: float) -> tuple[Any, Any]:
    """``[low / factor, high · factor]``: an interval widened by the model's observed error.

    ``factor`` is ``max(A/P, P/A)`` of the holdout check (:attr:`HoldoutTest.factor
    <segkit.clv.diagnostics.HoldoutTest.factor>`); 1 leaves the interval as it is. The
    module explains the rule.

    >>> low, high = model_error_band(90.0, 110.0, 1.25)
    >>> print(low, high)
    72.0 137.5

    Raises
    ------
    SegkitError
        For a factor below 1 or NaN (an infinite factor, a forecast of 0 or of nothing
        that happened, leaves the range unbounded: ``[0, inf]``).
    """
    check_scalar(factor, "model error factor", float, ge=1)
    return np.divide(low, factor), np.multiply(high, factor)


def total_interval(
    clv: pd.DataFrame, alpha: float = 0.05, *, model_error: float = 1.0
) -> tuple[float, float, float]:
    """Total CLV of the customers in ``clv`` with its delta-method interval.

    The variance of the total is the sum of squares of the column sums of the
    ``clv_delta_*`` columns (``g' Σ g``, see the module); the interval is on the log scale,
    ``total · exp(±z · sd / total)``, like the customers' own.

    Parameters
    ----------
    clv
        :func:`predict` output (or any subset of its rows): ``clv`` and ``clv_delta_*``.
    alpha
        1 - confidence level.
    model_error
        Factor of the model-error band (:func:`model_error_band`); 1 (the default) for
        the parameter interval alone.

    Returns
    -------
    (total, low, high); the bounds are NaN without delta columns (no spend model).

    >>> df = pd.DataFrame({"clv": [60.0, 40.0], "clv_delta_1": [3.0, 1.0],
    ...                    "clv_delta_2": [0.0, 3.0]})
    >>> total, low, high = total_interval(df)  # sd = sqrt(4² + 3²) = 5
    >>> print(f"{total:.0f} {low:.2f} {high:.2f}")
    100 90.67 110.30
    """
    cols = [c for c in clv.columns if str(c).startswith(DELTA_PREFIX)]
    sums = clv[cols].sum().to_numpy(float)
    return interval_of_sums(float(clv["clv"].sum()), sums, alpha, model_error=model_error)


def interval_of_sums(
    total: float, delta_sums: ArrayLike, alpha: float = 0.05, *, model_error: float = 1.0
) -> tuple[float, float, float]:
    """:func:`total_interval` from the sums alone: the total CLV of a group and the sums
    of its ``clv_delta_*`` columns (what an engine or a stream of batches adds up).

    >>> total, low, high = interval_of_sums(100.0, [4.0, 3.0])
    >>> print(f"{total:.0f} {low:.2f} {high:.2f}")
    100 90.67 110.30
    """
    sums = np.asarray(delta_sums, float)
    if not sums.size or total <= 0:
        return total, np.nan, np.nan
    sd = float(np.sqrt((sums**2).sum()))
    zq = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(over="ignore"):  # an open bound is infinite (tables: "not identified")
        low, high = total * np.exp(-zq * sd / total), total * np.exp(zq * sd / total)
    low, high = model_error_band(low, high, model_error)
    return total, float(low), float(high)


def purchase_terms(
    purchases: Fit,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    horizon_months: int,
    discount_rate: float,
    time_unit: str,
) -> pd.DataFrame:
    """What the purchase model says of each history: ``p_alive``, ``expected_purchases``
    (over the horizon), ``discounted_purchases`` and ``g_1..g_k``, the gradient of
    log(discounted purchases) with respect to the model's log-parameters (delta method).

    Each row depends on its own (frequency, recency, T) only, so the terms of a set of
    distinct histories can be joined back to any number of customers
    (:mod:`segkit.engine.value` does so on the engine).
    """
    h = compress(frequency, recency, T)
    months = horizon_months * months_in_units(time_unit)
    pairs = pair_index(h.x, h.T)
    horizon: dict[str, Any] = {
        "horizon_months": horizon_months,
        "discount_rate": discount_rate,
        "time_unit": time_unit,
    }
    u_disc = discounted_purchases(purchases, h.x, h.tx, h.T, pairs=pairs, **horizon)
    # delta method on log(discounted purchases) w.r.t. the log-parameters; forward
    # differences (half the cost on the hot path, ample for an interval)
    G_p = _log_gradient(
        lambda th: discounted_purchases(
            purchases, h.x, h.tx, h.T, theta=th, pairs=pairs, **horizon
        ),
        purchases,
        base=u_disc,
    )
    inv = h.inverse
    out = pd.DataFrame(
        {
            "p_alive": purchases.p_alive(h.x, h.tx, h.T)[inv],
            "expected_purchases": purchases.expected(months, h.x, h.tx, h.T)[inv],
            "discounted_purchases": u_disc[inv],
        }
    )
    for j in range(G_p.shape[1]):
        out[f"g_{j + 1}"] = G_p[inv, j]
    return out


def _add_spend(
    out: pd.DataFrame,
    spend: Fit,
    summary: pd.DataFrame,
    *,
    purchases: Fit,
    disc: np.ndarray,
    G_p: np.ndarray,
    margin: float,
    alpha: float,
) -> None:
    """Add expected spend, CLV with its interval and the delta columns to ``out``."""
    x = summary["frequency"].to_numpy(float)
    mx = summary["monetary"].to_numpy(float)
    es = spend.expected_spend(x, mx)
    # closed form (the same formula the engine evaluates: segkit.engine.value)
    G_s = np.column_stack(spend.spec.log_gradient(spend.theta, x, np.nan_to_num(mx)))
    var = _quadratic(G_p, purchases.cov_log) + _quadratic(G_s, spend.cov_log)
    out["expected_spend"] = es
    clv = margin * disc * es
    out["clv"] = clv
    zq = stats.norm.ppf(1 - alpha / 2)
    sd = np.sqrt(np.nan_to_num(var))
    with np.errstate(over="ignore"):  # a bound the data leave open is infinite: say so
        out["clv_low"] = clv * np.exp(-zq * sd)
        out["clv_high"] = clv * np.exp(zq * sd)
    # d clv_i / d log θ = clv_i · d log clv_i / d log θ, times a root of the covariance
    parts = [
        np.nan_to_num(clv[:, None] * G) @ cov_root(f.cov_log)
        for G, f in ((G_p, purchases), (G_s, spend))
    ]
    delta = np.hstack(parts)
    for j in range(delta.shape[1]):
        out[f"{DELTA_PREFIX}{j + 1}"] = delta[:, j]


def predict(
    purchases: Fit,
    spend: Fit | None,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    margin: float = 0.3,
    discount_rate: float = 0.1,
    time_unit: str = "W",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-customer predictions from a BTYD summary (frequency, recency, T, monetary).

    Parameters
    ----------
    purchases, spend
        Fitted purchase model; fitted Gamma-Gamma model, or None for no spend columns.
    summary
        One row per customer: ``frequency``, ``recency``, ``T`` (and ``monetary``,
        ``customer_id`` when present).
    horizon_months, margin, discount_rate, time_unit
        CLV horizon, profit margin, annual discount rate, time unit of the fits.
    alpha
        1 - confidence level of the CLV interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``p_alive``, ``expected_purchases`` (over the horizon), ``expected_spend``
        (per purchase), ``clv`` (margin × discounted expected revenue) with ``clv_low`` /
        ``clv_high`` (parameter uncertainty, delta method), the ``clv_delta_*`` columns
        (one per parameter of the two models: the customer's part of the delta-method
        variance of a total, see :func:`total_interval`), ``discounted_purchases``.

    Raises
    ------
    SegkitError
        For missing columns, an unusable summary, or a horizon or margin out of range.
    """
    check_columns(summary, ["frequency", "recency", "T"], "BTYD summary")
    check_scalar(horizon_months, "clv.horizon_months", int, gt=0)
    check_scalar(margin, "clv.margin", float, gt=0, le=1)
    check_summary(summary["frequency"], summary["recency"], summary["T"])
    terms = purchase_terms(
        purchases,
        summary["frequency"],
        summary["recency"],
        summary["T"],
        horizon_months=horizon_months,
        discount_rate=discount_rate,
        time_unit=time_unit,
    )
    out = pd.DataFrame(index=summary.index)
    if "customer_id" in summary:
        out["customer_id"] = summary["customer_id"].to_numpy()
    out["frequency"] = summary["frequency"].to_numpy()
    out["p_alive"] = terms["p_alive"].to_numpy()
    out["expected_purchases"] = terms["expected_purchases"].to_numpy()
    disc = terms["discounted_purchases"].to_numpy()
    if spend is not None and "monetary" in summary:
        G_p = terms.filter(like="g_").to_numpy()
        kw = {"purchases": purchases, "disc": disc, "G_p": G_p}
        _add_spend(out, spend, summary, **kw, margin=margin, alpha=alpha)
    out["discounted_purchases"] = disc
    return out


@dataclass(frozen=True)
class ValueModel:
    """A fitted CLV model with its settings: what ``clv_params.json`` holds, and what
    turns any BTYD summary into the per-customer values of ``clv.parquet``:
    ``ValueModel.load("reports/demo/artifacts/clv_params.json").predict(summary)``
    (``tests/test_clv_value.py`` checks it against the stage's own ``clv.parquet``).
    """

    purchases: Fit
    spend: Fit | None
    horizon_months: int
    margin: float
    discount_rate: float
    time_unit: str
    model_error: float = 1.0  # factor of the model-error band (1: none)
    alpha: float = 0.05

    @classmethod
    def load(cls, path: str | Path) -> ValueModel:
        """The model a CLV stage saved (``artifacts/clv_params.json``).

        Raises
        ------
        SegkitError
            The file is missing or not such a file, or was written before segkit saved
            the parameters' covariance.
        """
        path = Path(path)
        try:
            saved = json.loads(path.read_text())
            meta = saved["_meta"]
            best = meta["clv_model"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SegkitError(
                f"{path}: not a CLV model written by the CLV stage (clv_params.json with "
                f"_meta.clv_model): {exc}"
            ) from None
        check = meta.get("holdout_check") or {}
        factor = check.get("model_error_factor", 1.0)
        return cls(
            purchases=Fit.from_dict(best, saved[best]),
            spend=Fit.from_dict(SPEND_MODEL, saved[SPEND_MODEL]) if SPEND_MODEL in saved else None,
            horizon_months=int(meta["horizon_months"]),
            margin=float(meta["margin"]),
            discount_rate=float(meta["discount_rate"]),
            time_unit=str(meta["time_unit"]),
            model_error=float(factor) if factor is not None else 1.0,
        )

    def predict(self, summary: pd.DataFrame) -> pd.DataFrame:
        """Per customer: ``customer_id`` (when given), ``frequency``, ``p_alive``,
        ``expected_purchases``, ``expected_spend``, ``clv``, ``clv_low``, ``clv_high``
        (widened by the model-error band), ``clv_delta_*``, ``discounted_purchases``.
        Without a spend model, ``clv`` is in discounted purchases and has no interval."""
        pred = predict(
            self.purchases,
            self.spend,
            summary,
            horizon_months=self.horizon_months,
            margin=self.margin,
            discount_rate=self.discount_rate,
            time_unit=self.time_unit,
            alpha=self.alpha,
        )
        if "clv" not in pred:  # no spend model: value in purchases only
            disc = pred.pop("discounted_purchases")
            pred["clv"] = disc
            pred["clv_low"] = pred["clv_high"] = np.nan
            pred["discounted_purchases"] = disc  # last, as with a spend model
        pred["clv_low"], pred["clv_high"] = model_error_band(
            pred["clv_low"], pred["clv_high"], self.model_error
        )
        return pred


def segment_value(
    clv: pd.DataFrame,
    min_size: int = MIN_SEGMENT_SIZE,
    alpha: float = 0.05,
    *,
    model_error: float = 1.0,
) -> pd.DataFrame:
    """CLV per segment, from :func:`predict` output with a ``segment`` column.

    Parameters
    ----------
    clv
        Per customer: ``segment`` (and ``segment_name``), ``clv``, ``p_alive``,
        ``expected_purchases`` and the ``clv_delta_*`` columns (without them the interval
        is NaN).
    min_size
        Segments below this many customers are listed with their size only (privacy).
    alpha
        1 - confidence level of the interval of each segment's total.
    model_error
        Factor of the model-error band (:func:`model_error_band`) applied to each
        segment's interval; 1 for parameter uncertainty only.

    Returns
    -------
    pandas.DataFrame
        Per segment: customers, total CLV and its delta-method interval
        (``clv_low_total``, ``clv_high_total``: :func:`total_interval` on the segment's
        customers, parameter uncertainty, widened by ``model_error``), share of total value and of customers, CLV
        per customer and median, mean P(alive) and expected purchases, ``suppressed``.

    Raises
    ------
    SegkitError
        When ``segment`` or ``clv`` is missing.
    """
    check_columns(clv, ["segment", "clv"], "clv")
    keys = ["segment", "segment_name"] if "segment_name" in clv else ["segment"]
    g = clv.groupby(keys, sort=True)
    out = g.agg(
        customers=("clv", "size"),
        clv_total=("clv", "sum"),
        p_alive=("p_alive", "mean"),
        expected_purchases=("expected_purchases", "mean"),
    ).reset_index()
    bounds = np.array([total_interval(part, alpha, model_error=model_error)[1:] for _, part in g])
    out.insert(out.columns.get_loc("clv_total") + 1, "clv_low_total", bounds[:, 0])
    out.insert(out.columns.get_loc("clv_total") + 2, "clv_high_total", bounds[:, 1])
    out["share_of_value"] = out["clv_total"] / clv["clv"].sum()
    out["share_of_customers"] = out["customers"] / len(clv)
    out["clv_per_customer"] = out["clv_total"] / out["customers"]
    out["clv_median"] = g["clv"].median().to_numpy()
    small = out["customers"] < min_size
    detail = [c for c in out.columns if c not in (*keys, "customers", "share_of_customers")]
    out.loc[small, detail] = np.nan
    out["suppressed"] = small
    return out
