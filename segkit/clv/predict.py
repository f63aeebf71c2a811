"""Per-customer predictions and CLV from fitted models, with delta-method intervals.

CLV over a horizon of H months is
``sum_{i=1..H} (E[X(i months)] - E[X(i-1 months)]) · E[M] · margin / (1 + d)^(i/12)``
with ``d`` the annual discount rate, the expected purchases conditional on each customer's
history, and ``E[M]`` the Gamma-Gamma expected spend per purchase. Its interval reflects the
uncertainty of the fitted parameters (delta method on the log scale), not the much larger
customer-to-customer randomness of what will actually be bought.

- :func:`discounted_purchases`: the discounted sum of expected purchases, month by month;
- :func:`predict`: P(alive), expected purchases, spend and CLV with intervals;
- :func:`segment_value`: CLV per segment, small segments suppressed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from segkit.clv.fit import Fit
from segkit.clv.models import Theta, check_summary, compress, pair_index
from segkit.core.checks import check_columns, check_scalar
from segkit.core.params import MIN_SEGMENT_SIZE, UNIT_DAYS

#: Days in an average month (a year of 365.25 days).
DAYS_PER_MONTH = 365.25 / 12


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


def _delta_var(
    f: Callable[[np.ndarray], np.ndarray],
    fit: Fit,
    base: np.ndarray | None = None,
    eps: float = 1e-4,
) -> np.ndarray:
    """Per-row variance of log f(θ) from the covariance of the log-parameters (delta
    method); the gradient by forward differences from ``base = f(θ)`` when given, else
    central differences."""
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
    G = np.column_stack(grads)
    return np.einsum("ij,jk,ik->i", G, fit.cov_log, G)


def _add_spend(
    out: pd.DataFrame,
    spend: Fit,
    summary: pd.DataFrame,
    *,
    disc: np.ndarray,
    var: np.ndarray,
    margin: float,
    alpha: float,
) -> None:
    """Add expected spend and CLV with its interval to ``out``."""
    x = summary["frequency"].to_numpy(float)
    mx = summary["monetary"].to_numpy(float)
    es = spend.expected_spend(x, mx)
    var = var + _delta_var(lambda th: spend.spec.expected_spend(th, x, mx), spend)
    out["expected_spend"] = es
    out["clv"] = margin * disc * es
    zq = stats.norm.ppf(1 - alpha / 2)
    sd = np.sqrt(np.nan_to_num(var))
    out["clv_low"] = out["clv"] * np.exp(-zq * sd)
    out["clv_high"] = out["clv"] * np.exp(zq * sd)


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
        ``clv_high`` (parameter uncertainty, delta method), ``discounted_purchases``.

    Raises
    ------
    SegkitError
        For missing columns, an unusable summary, or a horizon or margin out of range.
    """
    check_columns(summary, ["frequency", "recency", "T"], "BTYD summary")
    check_scalar(horizon_months, "clv.horizon_months", int, gt=0)
    check_scalar(margin, "clv.margin", float, gt=0, le=1)
    check_summary(summary["frequency"], summary["recency"], summary["T"])
    h = compress(summary["frequency"], summary["recency"], summary["T"])
    months = horizon_months * months_in_units(time_unit)
    u_alive = purchases.p_alive(h.x, h.tx, h.T)
    u_exp = purchases.expected(months, h.x, h.tx, h.T)
    pairs = pair_index(h.x, h.T)
    horizon: dict[str, Any] = {
        "horizon_months": horizon_months,
        "discount_rate": discount_rate,
        "time_unit": time_unit,
    }
    u_disc = discounted_purchases(purchases, h.x, h.tx, h.T, pairs=pairs, **horizon)
    # delta method on log(discounted purchases) w.r.t. the log-parameters; forward
    # differences (half the cost on the hot path, ample for an interval)
    var_p = _delta_var(
        lambda th: discounted_purchases(
            purchases, h.x, h.tx, h.T, theta=th, pairs=pairs, **horizon
        ),
        purchases,
        base=u_disc,
    )
    inv = h.inverse
    out = pd.DataFrame(index=summary.index)
    if "customer_id" in summary:
        out["customer_id"] = summary["customer_id"].to_numpy()
    out["frequency"] = summary["frequency"].to_numpy()
    out["p_alive"] = u_alive[inv]
    out["expected_purchases"] = u_exp[inv]
    disc = u_disc[inv]
    if spend is not None and "monetary" in summary:
        _add_spend(out, spend, summary, disc=disc, var=var_p[inv], margin=margin, alpha=alpha)
    out["discounted_purchases"] = disc
    return out


def segment_value(clv: pd.DataFrame, min_size: int = MIN_SEGMENT_SIZE) -> pd.DataFrame:
    """CLV per segment, from :func:`predict` output with a ``segment`` column.

    Parameters
    ----------
    clv
        Per customer: ``segment`` (and ``segment_name``), ``clv``, ``clv_low``,
        ``clv_high``, ``p_alive``, ``expected_purchases``.
    min_size
        Segments below this many customers are listed with their size only (privacy).

    Returns
    -------
    pandas.DataFrame
        Per segment: customers, total CLV (and its interval), share of total value and of
        customers, CLV per customer and median, mean P(alive) and expected purchases,
        ``suppressed``.

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
        clv_low_total=("clv_low", "sum"),
        clv_high_total=("clv_high", "sum"),
        p_alive=("p_alive", "mean"),
        expected_purchases=("expected_purchases", "mean"),
    ).reset_index()
    out["share_of_value"] = out["clv_total"] / clv["clv"].sum()
    out["share_of_customers"] = out["customers"] / len(clv)
    out["clv_per_customer"] = out["clv_total"] / out["customers"]
    out["clv_median"] = g["clv"].median().to_numpy()
    small = out["customers"] < min_size
    detail = [c for c in out.columns if c not in (*keys, "customers", "share_of_customers")]
    out.loc[small, detail] = np.nan
    out["suppressed"] = small
    return out
