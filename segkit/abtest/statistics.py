"""Statistics of the A/B evaluation, from per-(segment, arm) sufficient statistics.

- ``proportion``: difference of rates, Wald interval (unpooled), two-sided z-test with the
  pooled variance (as statsmodels' ``proportions_ztest``);
- ``mean``: Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom);
  with ``covariate`` CUPED (Deng et al. 2013): ``y - θ(x - x̄)``, θ = cov(x, y) / var(x)
  pooled over the arms of the segment;
- ``ratio`` (``num`` / ``den``): ratio of sums per arm with its delta-method variance,
  z-test on the difference.

Relative lifts are ``mean_treatment / mean_control - 1`` with a delta-method interval.
:func:`adjust` corrects p-values across the segments and arms of each segment column and
metric (Holm, Benjamini-Hochberg, ... via statsmodels); :func:`heterogeneity` tests whether
the effect differs between segments (Cochran's Q with the exact standard errors; for rates
the likelihood-ratio test of arm × segment in a logistic model), corrected across tests; :func:`srm` the sample-ratio mismatch check; sample sizes, MDEs and the
:func:`planning` table complete the planning side. The covariate balance of the arms is
:mod:`segkit.abtest.balance`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segkit.core.checks import check_scalar
from segkit.core.errors import SegkitError
from segkit.core.params import METRIC_KINDS

KINDS = METRIC_KINDS
#: p-value below which the arm counts of a group flag a sample-ratio mismatch.
SRM_P = 0.001
#: Columns of the effects table (``ab_effects.csv``), in order.
EFFECT_COLUMNS = [
    "metric",
    "kind",
    "arm",
    "control",
    "segment_col",
    "segment",
    "n_control",
    "n_treatment",
    "mean_control",
    "mean_treatment",
    "abs_lift",
    "abs_ci_low",
    "abs_ci_high",
    "se",
    "df",
    "rel_lift",
    "rel_ci_low",
    "rel_ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    "mde",
    "power",
    "variance_reduction",
    "evaluated",
    "note",
]


# ----------------------------------------------------------------------------- planning


def sample_size_proportions(
    p_control: float, p_treatment: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Customers per arm to detect ``p_control -> p_treatment`` (two-sided z-test).

    ``n = (z_{1-α/2} sqrt(2 p̄ q̄) + z_{1-β} sqrt(p1 q1 + p2 q2))² / (p1 - p2)²``
    with p̄ the mean of the two rates (Fleiss, Levin & Paik 2003, eq. 4.14, without
    continuity correction).

    Parameters
    ----------
    p_control, p_treatment
        The two rates, each in (0, 1).
    alpha, power
        Two-sided significance level and the power wanted.

    Returns
    -------
    int
        Customers needed in each arm.

    Raises
    ------
    SegkitError
        A rate, ``alpha`` or ``power`` outside (0, 1), or two equal rates.

    Examples
    --------
    >>> sample_size_proportions(0.05, 0.06)
    8158
    """
    check_scalar(p_control, "p_control", float, gt=0, lt=1)
    check_scalar(p_treatment, "p_treatment", float, gt=0, lt=1)
    check_scalar(alpha, "alpha", float, gt=0, lt=1)
    check_scalar(power, "power", float, gt=0, lt=1)
    if p_control == p_treatment:
        raise SegkitError("p_treatment == p_control: there is no effect to detect")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pbar = (p_control + p_treatment) / 2
    num = za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(
        p_control * (1 - p_control) + p_treatment * (1 - p_treatment)
    )
    return int(np.ceil(num**2 / (p_control - p_treatment) ** 2))


def sample_size_means(delta: float, sd: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Customers per arm to detect a difference ``delta`` in means.

    ``n = 2 (z_{1-α/2} + z_{1-β})² sd² / delta²`` with ``sd`` the standard deviation in
    each arm.

    Raises
    ------
    SegkitError
        ``sd`` not positive, or ``delta == 0``.

    Examples
    --------
    >>> sample_size_means(2.0, 10.0)
    393
    """
    check_scalar(sd, "sd", float, gt=0)
    if delta == 0:
        raise SegkitError("delta == 0: there is no effect to detect")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return int(np.ceil(2 * (za + zb) ** 2 * sd**2 / delta**2))


def mde_proportion(
    p_control: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest absolute lift of a rate ``p_control`` detectable with ``n_per_arm``.

    >>> round(mde_proportion(0.05, 8158), 4)
    0.0096
    """
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return float((za + zb) * np.sqrt(2 * p_control * (1 - p_control) / n_per_arm))


def mde_mean(sd: float, n_per_arm: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute difference in means detectable with ``n_per_arm`` per arm.

    >>> round(mde_mean(10.0, 393), 2)
    2.0
    """
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return float((za + zb) * sd * np.sqrt(2 / n_per_arm))


def planning(
    table: pd.DataFrame, *, alpha: float, power: float, target_lift: float
) -> pd.DataFrame:
    """Customers per arm needed to detect ``target_lift`` (relative) on each overall metric.

    Parameters
    ----------
    table
        The effects table (:func:`effects`, adjusted); its evaluated ``segment_col ==
        "all"`` rows are planned.
    alpha, power, target_lift
        The test's level, the power wanted and the relative lift to detect.

    Returns
    -------
    pandas.DataFrame
        One row per overall metric and arm: control mean, customers needed and had, power;
        none for a metric whose control mean is 0 or that has no variance.
    """
    rows = []
    z = stats.norm.ppf(1 - alpha / 2)
    zb = stats.norm.ppf(power)
    for r in table[(table["segment_col"] == "all") & table["evaluated"]].itertuples():
        target = target_lift * r.mean_control
        if not target:
            continue
        var_unit = (r.mde / (z + zb)) ** 2 / (1 / r.n_control + 1 / r.n_treatment)
        if r.kind == "proportion":
            p1, p2 = r.mean_control, min(r.mean_control * (1 + target_lift), 0.999)
            n = sample_size_proportions(p1, p2, alpha, power)
        elif var_unit > 0:
            n = sample_size_means(target, np.sqrt(var_unit), alpha, power)
        else:  # no variance left (e.g. a covariate that explains it all): nothing to plan
            continue
        rows.append(
            {
                "metric": r.metric,
                "arm": r.arm,
                "control_mean": r.mean_control,
                "target_rel_lift": target_lift,
                "n_per_arm_needed": n,
                "n_per_arm_actual": min(r.n_control, r.n_treatment),
                "power": r.power,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- arms


class Arm(NamedTuple):
    """One arm's estimate of one metric in one segment."""

    n: float
    mean: float
    var_mean: float  # variance of the arm's estimate (of the mean, rate or ratio)
    var_unit: float  # per-customer variance (for the MDE)


_EMPTY = Arm(0.0, np.nan, np.nan, np.nan)


def arm_stats(row: pd.Series, i: int, m: dict, theta: float = 0.0, x_all: float = 0.0) -> Arm:
    """The estimate of metric ``m`` (number ``i``) from one row of sufficient statistics.

    ``theta`` and ``x_all`` are the CUPED coefficient and pooled covariate mean
    (:func:`cuped_theta`) for a mean metric with a covariate.
    """
    n = float(row[f"m{i}_n"])
    if n == 0:
        return _EMPTY
    sy, syy = float(row[f"m{i}_sy"]), float(row[f"m{i}_syy"])
    my = sy / n
    if m["kind"] == "proportion":
        return Arm(n, my, my * (1 - my) / n, my * (1 - my))
    dof = max(n - 1, 1)
    vy = max((syy - n * my * my) / dof, 0.0)
    if m["kind"] == "mean" and not m.get("covariate"):
        return Arm(n, my, vy / n, vy)
    sx, sxx, sxy = (float(row[f"m{i}_{k}"]) for k in ("sx", "sxx", "sxy"))
    mx = sx / n
    vx = max((sxx - n * mx * mx) / dof, 0.0)
    cxy = (sxy - n * mx * my) / dof
    if m["kind"] == "ratio":  # my = mean num, mx = mean den
        if mx == 0:
            return _EMPTY._replace(n=n)
        r = my / mx
        v = (vy - 2 * r * cxy + r * r * vx) / (mx * mx)
        return Arm(n, r, v / n, v)
    # CUPED: adjusted mean and variance with the pooled theta
    mean_adj = my - theta * (mx - x_all)
    v = max(vy - 2 * theta * cxy + theta * theta * vx, 0.0)
    return Arm(n, mean_adj, v / n, v)


def cuped_theta(rows: pd.DataFrame, i: int) -> tuple[float, float, float]:
    """CUPED terms of metric ``i`` over the arms (rows) of one segment.

    Returns
    -------
    tuple of float
        Pooled ``theta = cov(x, y) / var(x)``, the pooled mean of x, and the share of
        variance CUPED removes (``1 - var(adjusted) / var(y)``); zeros below 3 customers.
    """
    n = rows[f"m{i}_n"].sum()
    sy, syy, sx, sxx, sxy = (rows[f"m{i}_{k}"].sum() for k in ("sy", "syy", "sx", "sxx", "sxy"))
    if n < 3:
        return 0.0, 0.0, 0.0
    vx = (sxx - sx * sx / n) / (n - 1)
    vy = (syy - sy * sy / n) / (n - 1)
    cxy = (sxy - sx * sy / n) / (n - 1)
    theta = cxy / vx if vx > 0 else 0.0
    reduction = (cxy * cxy / (vx * vy)) if vx > 0 and vy > 0 else 0.0
    return float(theta), float(sx / n), float(reduction)


# ----------------------------------------------------------------------------- comparisons


def _quantile_and_p(c: Arm, t: Arm, kind: str, alpha: float) -> tuple[float, float, float]:
    """Interval quantile, two-sided p-value of ``t.mean - c.mean`` for the metric kind, and
    the degrees of freedom of the interval (``inf``: normal)."""
    z = stats.norm.ppf(1 - alpha / 2)
    diff = t.mean - c.mean
    se = np.sqrt(c.var_mean + t.var_mean)
    if kind == "mean":  # Welch
        dof = se**4 / (c.var_mean**2 / max(c.n - 1, 1) + t.var_mean**2 / max(t.n - 1, 1))
        if not (np.isfinite(dof) and dof > 0):
            dof = np.inf
        q = stats.t.ppf(1 - alpha / 2, dof) if np.isfinite(dof) else z
        p = 2 * stats.t.sf(abs(diff) / se, dof) if se > 0 else np.nan
        return q, p, float(dof)
    if kind == "proportion":  # pooled z-test, Wald interval
        pooled = (c.mean * c.n + t.mean * t.n) / (c.n + t.n)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / c.n + 1 / t.n))
        return z, (2 * stats.norm.sf(abs(diff) / se0) if se0 > 0 else np.nan), np.inf
    return z, (2 * stats.norm.sf(abs(diff) / se) if se > 0 else np.nan), np.inf


def _mde_and_power(c: Arm, t: Arm, *, alpha: float, power: float, target: float):
    """MDE at ``power`` and the power to detect a relative lift ``target``."""
    z = stats.norm.ppf(1 - alpha / 2)
    zb = stats.norm.ppf(power)
    se_unit = np.sqrt(c.var_unit / c.n + c.var_unit / t.n) if c.n and t.n else np.nan
    effect = abs(target * c.mean)
    pw = stats.norm.sf(z - effect / se_unit) + stats.norm.cdf(-z - effect / se_unit)
    return (z + zb) * se_unit, pw


def compare(c: Arm, t: Arm, kind: str, *, alpha: float, power: float, target: float) -> dict:
    """Treatment ``t`` against control ``c``: lifts, intervals, p-value, MDE and power.

    Parameters
    ----------
    c, t
        The arms' estimates (:func:`arm_stats`).
    kind
        ``proportion``, ``mean`` or ``ratio``: which test and interval.
    alpha, power, target
        Level, planned power and the relative lift whose power is reported.

    Returns
    -------
    dict
        ``mean_control`` … ``power``, the numeric columns of :data:`EFFECT_COLUMNS`
        (``se``: standard error of the absolute lift, unpooled; ``df``: degrees of freedom
        of its interval, Welch's for means, ``inf`` for the normal intervals).
    """
    z = stats.norm.ppf(1 - alpha / 2)
    diff = t.mean - c.mean
    se = np.sqrt(c.var_mean + t.var_mean)
    q, p, dof = _quantile_and_p(c, t, kind, alpha)
    rel = t.mean / c.mean - 1 if c.mean else np.nan
    # delta method for mean_t / mean_c
    rel_se = (
        np.sqrt(t.var_mean / c.mean**2 + t.mean**2 * c.var_mean / c.mean**4) if c.mean else np.nan
    )
    mde, pw = _mde_and_power(c, t, alpha=alpha, power=power, target=target)
    return {
        "mean_control": c.mean,
        "mean_treatment": t.mean,
        "abs_lift": diff,
        "abs_ci_low": diff - q * se,
        "abs_ci_high": diff + q * se,
        "se": se,
        "df": dof,
        "rel_lift": rel,
        "rel_ci_low": rel - z * rel_se,
        "rel_ci_high": rel + z * rel_se,
        "p_value": p,
        "mde": mde,
        "power": pw,
    }


def _segment_rows(g: pd.DataFrame, metrics: list[dict], base: dict, opts: dict) -> list[dict]:
    """Effect rows of one segment (``g``: its sufficient statistics indexed by arm)."""
    rows = []
    control, min_n = base["control"], opts["min_n"]
    for i, m in enumerate(metrics):
        theta = x_all = reduction = 0.0
        if m["kind"] == "mean" and m.get("covariate"):
            theta, x_all, reduction = cuped_theta(g, i)
        arms = {a: arm_stats(g.loc[a], i, m, theta, x_all) for a in g.index}
        c = arms.get(control, _EMPTY)
        for arm in sorted(a for a in arms if a != control):
            t = arms[arm]
            row = {
                "metric": m["name"],
                "kind": m["kind"],
                "arm": arm,
                **base,
                "n_control": int(c.n),
                "n_treatment": int(t.n),
                "variance_reduction": reduction,
            }
            if min(c.n, t.n) < min_n:
                note = f"fewer than abtest.min_n = {min_n} customers in an arm"
                rows.append({**row, "evaluated": False, "note": note})
                continue
            kw = {k: opts[k] for k in ("alpha", "power")}
            res = compare(c, t, m["kind"], target=opts["target_lift"], **kw)
            rows.append({**row, **res, "evaluated": True})
    return rows


def effects(
    st: pd.DataFrame,
    metrics: list[dict],
    control: str,
    segment_col: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: float = 0.1,
    min_n: int = 100,
) -> pd.DataFrame:
    """The effects table of one segment column.

    Parameters
    ----------
    st
        Sufficient statistics, one row per (segment, arm)
        (:func:`segkit.abtest.aggregation.sufficient_stats`).
    metrics
        The metric specs (with names), in the order of ``st``'s ``m<i>_`` columns.
    control, segment_col
        The control arm; the name of the segment column (``"all"`` overall).
    alpha, power, target_lift, min_n
        Level, planned power, relative lift for the power column, and the fewest
        customers per arm for a comparison to be evaluated.

    Returns
    -------
    pandas.DataFrame
        :data:`EFFECT_COLUMNS`; a row with ``evaluated`` False has a ``note`` saying why.
    """
    rows = []
    opts = {"alpha": alpha, "power": power, "target_lift": target_lift, "min_n": min_n}
    for seg, g in st.groupby("segment", sort=True):
        base = {"control": control, "segment_col": segment_col, "segment": seg}
        rows += _segment_rows(g.set_index("arm"), metrics, base, opts)
    out = pd.DataFrame(rows)
    for col in EFFECT_COLUMNS:
        if col not in out:
            out[col] = np.nan
    out["note"] = out["note"].astype(object).where(out["note"].notna(), "")
    out["evaluated"] = out["evaluated"].astype(bool)
    return out[EFFECT_COLUMNS]


def adjust(table: pd.DataFrame, method: str, alpha: float) -> pd.DataFrame:
    """Adjust p-values within each (segment column, metric) family of evaluated rows.

    ``method`` is a statsmodels ``multipletests`` method (``holm``, ``fdr_bh``,
    ``bonferroni``) or ``none``; ``significant`` is ``p_adjusted < alpha``.
    """
    table = table.copy()
    table["p_adjusted"] = np.nan
    for _, idx in table[table["evaluated"]].groupby(["segment_col", "metric"]).groups.items():
        p = table.loc[idx, "p_value"].to_numpy(float)
        ok = np.isfinite(p)
        if method == "none" or ok.sum() == 0:
            adj = p
        else:
            adj = p.copy()
            adj[ok] = multipletests(p[ok], alpha=alpha, method=method)[1]
        table.loc[idx, "p_adjusted"] = adj
    table["significant"] = table["p_adjusted"] < alpha
    return table


#: Columns of the heterogeneity table (``ab_heterogeneity.csv``), in order.
HETEROGENEITY_COLUMNS = [
    "segment_col",
    "metric",
    "kind",
    "arm",
    "segments",
    "q",
    "q_p_value",
    "lr",
    "lr_p_value",
    "test",
    "p_value",
    "p_adjusted",
    "significant",
    "note",
]
Q_TEST, LR_TEST = "Cochran's Q", "logistic interaction LR"


def _logistic_deviance(y: np.ndarray, n: np.ndarray, X: np.ndarray) -> float:
    """Deviance (against the saturated model) of a binomial logit GLM on grouped counts,
    fitted by Newton-Raphson."""
    rate = np.clip(y.sum() / n.sum(), 1e-6, 1 - 1e-6)
    beta = np.linalg.lstsq(X, np.full(len(y), np.log(rate / (1 - rate))), rcond=None)[0]
    for _ in range(100):
        mu = n / (1 + np.exp(-(X @ beta)))
        w = mu * (1 - mu / n)
        step = np.linalg.lstsq(X.T @ (w[:, None] * X), X.T @ (y - mu), rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    mu = n / (1 + np.exp(-(X @ beta)))
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(y > 0, y * np.log(y / mu), 0.0)
        b = np.where(n - y > 0, (n - y) * np.log((n - y) / (n - mu)), 0.0)
    return float(2 * (a + b).sum())


def logistic_interaction_lr(
    y_control: np.ndarray, n_control: np.ndarray, y_treatment: np.ndarray, n_treatment: np.ndarray
) -> tuple[float, int]:
    """Likelihood-ratio test of arm × segment in a logistic model of a 0/1 outcome.

    The full model (a rate per segment and arm) is saturated on the grouped counts, so the
    statistic is the deviance of the model without interaction, ``logit p = segment +
    arm``; chi-square with (segments - 1) df. A segment where every customer of both arms
    has the same outcome says nothing about the interaction and is left out.

    Parameters
    ----------
    y_control, n_control, y_treatment, n_treatment
        Per segment: successes and customers of the control and of the treatment arm.

    Returns
    -------
    (statistic, df); ``(nan, 0)`` with fewer than two informative segments.

    >>> lr, df = logistic_interaction_lr(
    ...     np.array([10, 30]), np.array([100, 100]), np.array([20, 30]), np.array([100, 100]))
    >>> df, round(lr, 3)
    (1, 2.503)
    """
    yc, nc, yt, nt = (
        np.asarray(a, float) for a in (y_control, n_control, y_treatment, n_treatment)
    )
    ys, ns = yc + yt, nc + nt
    keep = (ys > 0) & (ys < ns)
    k = int(keep.sum())
    if k < 2:
        return np.nan, 0
    y = np.concatenate([yc[keep], yt[keep]])
    n = np.concatenate([nc[keep], nt[keep]])
    X = np.hstack([np.vstack([np.eye(k), np.eye(k)]), np.repeat([[0.0], [1.0]], k, axis=0)])
    return _logistic_deviance(y, n, X), k - 1


def _q_test(g: pd.DataFrame) -> tuple[float, float]:
    """Cochran's Q and its p-value of the absolute lifts of ``g`` (exact standard errors)."""
    ok = (g["se"] > 0).to_numpy()
    d, w = g["abs_lift"].to_numpy(float)[ok], 1 / g["se"].to_numpy(float)[ok] ** 2
    if len(d) < 2:
        return np.nan, np.nan
    dw = (w * d).sum() / w.sum()
    q = float((w * (d - dw) ** 2).sum())
    return q, float(stats.chi2.sf(q, len(d) - 1))


def _lr_test(g: pd.DataFrame) -> tuple[float, float]:
    """The logistic interaction LR test of a proportion's segment rows ``g``."""
    yc = np.round(g["mean_control"] * g["n_control"]).to_numpy()
    yt = np.round(g["mean_treatment"] * g["n_treatment"]).to_numpy()
    lr, dof = logistic_interaction_lr(yc, g["n_control"], yt, g["n_treatment"])
    return lr, (float(stats.chi2.sf(lr, dof)) if dof else np.nan)


def heterogeneity(table: pd.DataFrame, method: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Does the effect differ between segments? One test per (segment column, metric, arm).

    Over the evaluated segment rows of ``table``: Cochran's Q of the absolute lifts,
    ``Q = sum w_i (d_i - d_w)^2``, ``w_i = 1/se_i^2`` with the lifts' exact standard errors,
    chi-square with k - 1 df (the additive scale); for a proportion also the
    likelihood-ratio test of arm × segment in a logistic model
    (:func:`logistic_interaction_lr`), the scale on which a rate's effect is usually
    constant. ``test``/``p_value`` is the test on the metric's scale (the LR test for
    proportions, Q otherwise); ``p_adjusted`` corrects those p-values across the whole
    table with ``method`` (a ``multipletests`` method or ``none``); ``significant`` is
    ``p_adjusted < alpha``.

    Returns
    -------
    pandas.DataFrame
        :data:`HETEROGENEITY_COLUMNS`.
    """
    rows = []
    seg_rows = table[(table["segment_col"] != "all") & table["evaluated"]]
    for (col, metric, arm), g in seg_rows.groupby(["segment_col", "metric", "arm"]):
        kind = g["kind"].iloc[0]
        q, q_p = _q_test(g)
        lr, lr_p = _lr_test(g) if kind == "proportion" else (np.nan, np.nan)
        test, p = (LR_TEST, lr_p) if kind == "proportion" else (Q_TEST, q_p)
        note = "" if len(g) >= 2 else "one segment: nothing to compare"
        rows.append((col, metric, kind, arm, len(g), q, q_p, lr, lr_p, test, p, note))
    cols = [c for c in HETEROGENEITY_COLUMNS if c not in ("p_adjusted", "significant")]
    out = pd.DataFrame(rows, columns=cols)
    p = out["p_value"].to_numpy(float)
    ok = np.isfinite(p)
    adj = p.copy()
    if method != "none" and ok.any():
        adj[ok] = multipletests(p[ok], method=method)[1]
    out["p_adjusted"] = adj
    out["significant"] = out["p_adjusted"] < alpha
    return out[HETEROGENEITY_COLUMNS]


def srm(st: pd.DataFrame, allocation: dict | None = None) -> pd.DataFrame:
    """Sample-ratio mismatch per segment.

    Chi-square of the arm counts (``rows`` of :func:`sufficient_stats` output) against the
    planned allocation (equal unless given); ``p < SRM_P`` flags a broken randomization.
    """
    rows = []
    for seg, g in st.groupby("segment", sort=True):
        counts = g.set_index("arm")["rows"].astype(float)
        share = np.array(
            [allocation.get(a, 0) for a in counts.index] if allocation else np.ones(len(counts))
        )
        share = share / share.sum()
        exp = share * counts.sum()
        chi2 = float(((counts.to_numpy() - exp) ** 2 / exp).sum()) if len(counts) > 1 else 0.0
        p = float(stats.chi2.sf(chi2, len(counts) - 1)) if len(counts) > 1 else np.nan
        rows.append(
            {
                "segment": seg,
                **{f"n_{a}": int(n) for a, n in counts.items()},
                "chi2": chi2,
                "p_value": p,
                "mismatch": bool(p < SRM_P) if np.isfinite(p) else False,
            }
        )
    return pd.DataFrame(rows)
