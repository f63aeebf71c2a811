"""Stage 05, A/B evaluation per segment: which campaign works for whom, and does it pay.

Every estimate is computed from per-(segment, arm) sufficient statistics (counts, sums,
sums of squares and cross-products) aggregated in DuckDB, so ten million experiment rows
cost one scan per segment column; nothing row-level reaches pandas.

Metrics (``abtest.metrics``, or inferred: 0/1 outcomes are proportions, other numeric
outcomes means, a ``pre_<outcome>`` column is that outcome's CUPED covariate):

- ``proportion``: difference of rates, Wald interval (unpooled), two-sided z-test with the
  pooled variance (as statsmodels' ``proportions_ztest``);
- ``mean``: Welch's t (unequal variances, Welch-Satterthwaite degrees of freedom);
  with ``covariate`` CUPED (Deng et al. 2013): ``y - θ(x - x̄)``, θ = cov(x, y) / var(x)
  pooled over the arms of the segment;
- ``ratio`` (``num`` / ``den``, e.g. spend per visitor who visited): ratio of sums per arm
  with its delta-method variance, z-test on the difference.

Relative lifts are ``mean_treatment / mean_control - 1`` with a delta-method interval.
Segment-level p-values are adjusted across the segments and arms of each segment column and
metric (``abtest.correction``: Holm or Benjamini-Hochberg, via statsmodels); whether the
effect differs between segments is Cochran's Q test of the segment-level effects.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.stages.run import Run, Skipped

KINDS = ("proportion", "mean", "ratio")
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
    """Customers per arm to detect ``p_control -> p_treatment`` (two-sided z-test):

    ``n = (z_{1-α/2} sqrt(2 p̄ q̄) + z_{1-β} sqrt(p1 q1 + p2 q2))² / (p1 - p2)²``
    with p̄ the mean of the two rates (Fleiss, Levin & Paik 2003, eq. 4.14, without
    continuity correction).

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
    """Customers per arm to detect a difference ``delta`` in means with standard deviation
    ``sd`` in each arm: ``n = 2 (z_{1-α/2} + z_{1-β})² sd² / delta²``."""
    check_scalar(sd, "sd", float, gt=0)
    if delta == 0:
        raise SegkitError("delta == 0: there is no effect to detect")
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return int(np.ceil(2 * (za + zb) ** 2 * sd**2 / delta**2))


def mde_proportion(p_control: float, n_per_arm: int, alpha=0.05, power=0.8) -> float:
    """Smallest absolute lift of a rate ``p_control`` detectable with ``n_per_arm``."""
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return float((za + zb) * np.sqrt(2 * p_control * (1 - p_control) / n_per_arm))


def mde_mean(sd: float, n_per_arm: int, alpha=0.05, power=0.8) -> float:
    """Smallest absolute difference in means detectable with ``n_per_arm`` per arm."""
    za, zb = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    return float((za + zb) * sd * np.sqrt(2 / n_per_arm))


# ----------------------------------------------------------------------------- metrics


def infer_metrics(experiment_cols: list[str], dtypes: dict, binary: set[str]) -> list[dict]:
    """Default metrics from the experiment's outcome columns (see module docstring)."""
    skip = {"customer_id", "arm"}
    outcomes = [
        c
        for c in experiment_cols
        if c not in skip and not c.startswith("pre_") and pd.api.types.is_numeric_dtype(dtypes[c])
    ]
    metrics = []
    for c in outcomes:
        m = {"name": c, "kind": "proportion" if c in binary else "mean", "col": c}
        if f"pre_{c}" in experiment_cols and m["kind"] == "mean":
            m["covariate"] = f"pre_{c}"
        metrics.append(m)
    value = [c for c in outcomes if c not in binary]
    gate = "visit" if "visit" in binary else ("conversion" if "conversion" in binary else None)
    if value and gate:
        metrics.append(
            {"name": f"{value[0]}_per_{gate}", "kind": "ratio", "num": value[0], "den": gate}
        )
    return metrics


def _check_metrics(metrics: list[dict], columns: list[str]) -> list[dict]:
    out = []
    for i, m in enumerate(metrics):
        where = f"abtest.metrics[{i}]"
        if not isinstance(m, dict):
            raise SegkitError(f"{where} == {m!r}, must be a mapping like {{name, kind, col}}")
        kind = m.get("kind")
        check_scalar(kind, f"{where}.kind", str, in_=KINDS)
        need = ["num", "den"] if kind == "ratio" else ["col"]
        for k in need:
            if k not in m:
                raise SegkitError(f"{where} ({kind}) needs {need}; given {sorted(m)}")
            if m[k] not in columns:
                raise SegkitError(
                    f"{where}.{k} == {m[k]!r} is not a column of the experiment; "
                    f"columns are {columns}"
                )
        if m.get("covariate") and m["covariate"] not in columns:
            raise SegkitError(
                f"{where}.covariate == {m['covariate']!r} is not a column of the experiment "
                f"or customer table; columns are {columns}"
            )
        out.append({"name": m.get("name") or m.get("col") or f"{m['num']}_per_{m['den']}", **m})
    return out


def _stats_sql(metrics: list[dict]) -> str:
    """Per-group sufficient statistics for every metric, as DuckDB aggregates."""
    parts = []
    for i, m in enumerate(metrics):
        if m["kind"] == "ratio":
            n, d = f'"{m["num"]}"', f'"{m["den"]}"'
            ok = f"{n} IS NOT NULL AND {d} IS NOT NULL"
            parts += [
                f"count(*) FILTER (WHERE {ok}) AS m{i}_n",
                f"sum({n}) FILTER (WHERE {ok}) AS m{i}_sy",
                f"sum({d}) FILTER (WHERE {ok}) AS m{i}_sx",
                f"sum({n}*{n}) FILTER (WHERE {ok}) AS m{i}_syy",
                f"sum({d}*{d}) FILTER (WHERE {ok}) AS m{i}_sxx",
                f"sum({n}*{d}) FILTER (WHERE {ok}) AS m{i}_sxy",
            ]
        else:
            y = f'"{m["col"]}"'
            x = f'"{m["covariate"]}"' if m.get("covariate") else None
            ok = f"{y} IS NOT NULL" + (f" AND {x} IS NOT NULL" if x else "")
            parts += [
                f"count(*) FILTER (WHERE {ok}) AS m{i}_n",
                f"sum({y}) FILTER (WHERE {ok}) AS m{i}_sy",
                f"sum({y}*{y}) FILTER (WHERE {ok}) AS m{i}_syy",
            ]
            if x:
                parts += [
                    f"sum({x}) FILTER (WHERE {ok}) AS m{i}_sx",
                    f"sum({x}*{x}) FILTER (WHERE {ok}) AS m{i}_sxx",
                    f"sum({x}*{y}) FILTER (WHERE {ok}) AS m{i}_sxy",
                ]
    return ", ".join(parts)


def sufficient_stats(con, relation: str, group: str | None, metrics: list[dict]) -> pd.DataFrame:
    """One row per (group value, arm) with count(*) and each metric's sums."""
    g = f'CAST("{group}" AS VARCHAR)' if group else "'all'"
    sql = f"""SELECT {g} AS segment, CAST(arm AS VARCHAR) AS arm, count(*) AS rows,
                     {_stats_sql(metrics)}
              FROM {relation} GROUP BY ALL ORDER BY 1, 2"""
    out = con.execute(sql).df()
    out["segment"] = out["segment"].fillna("(missing)")
    return out


class _Arm(NamedTuple):
    n: float
    mean: float
    var_mean: float  # variance of the arm's estimate (of the mean, rate or ratio)
    var_unit: float  # per-customer variance (for the MDE)


def _arm_stats(row: pd.Series, i: int, m: dict, theta: float = 0.0, x_all: float = 0.0) -> _Arm:
    n = float(row[f"m{i}_n"])
    if n == 0:
        return _Arm(0.0, np.nan, np.nan, np.nan)
    sy, syy = float(row[f"m{i}_sy"]), float(row[f"m{i}_syy"])
    my = sy / n
    if m["kind"] == "proportion":
        return _Arm(n, my, my * (1 - my) / n, my * (1 - my))
    dof = max(n - 1, 1)
    vy = max((syy - n * my * my) / dof, 0.0)
    if m["kind"] == "mean" and not m.get("covariate"):
        return _Arm(n, my, vy / n, vy)
    sx, sxx, sxy = (float(row[f"m{i}_{k}"]) for k in ("sx", "sxx", "sxy"))
    mx = sx / n
    vx = max((sxx - n * mx * mx) / dof, 0.0)
    cxy = (sxy - n * mx * my) / dof
    if m["kind"] == "ratio":  # my = mean num, mx = mean den
        if mx == 0:
            return _Arm(n, np.nan, np.nan, np.nan)
        r = my / mx
        v = (vy - 2 * r * cxy + r * r * vx) / (mx * mx)
        return _Arm(n, r, v / n, v)
    # CUPED: adjusted mean and variance with the pooled theta
    mean_adj = my - theta * (mx - x_all)
    v = max(vy - 2 * theta * cxy + theta * theta * vx, 0.0)
    return _Arm(n, mean_adj, v / n, v)


def _cuped_theta(rows: pd.DataFrame, i: int) -> tuple[float, float, float]:
    """Pooled theta = cov(x, y) / var(x) over the arms of one segment, the pooled mean of
    x, and the share of variance CUPED removes (1 - var(adjusted) / var(y))."""
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


def _compare(c: _Arm, t: _Arm, m: dict, alpha: float, power: float, target: float) -> dict:
    """Absolute and relative lift of treatment over control, interval, p-value, MDE, power."""
    z = stats.norm.ppf(1 - alpha / 2)
    diff = t.mean - c.mean
    se = np.sqrt(c.var_mean + t.var_mean)
    if m["kind"] == "mean":  # Welch
        dof = se**4 / (c.var_mean**2 / max(c.n - 1, 1) + t.var_mean**2 / max(t.n - 1, 1))
        q = stats.t.ppf(1 - alpha / 2, dof) if np.isfinite(dof) and dof > 0 else z
        p = 2 * stats.t.sf(abs(diff) / se, dof) if se > 0 else np.nan
    elif m["kind"] == "proportion":  # pooled z-test, Wald interval
        q = z
        pooled = (c.mean * c.n + t.mean * t.n) / (c.n + t.n)
        se0 = np.sqrt(pooled * (1 - pooled) * (1 / c.n + 1 / t.n))
        p = 2 * stats.norm.sf(abs(diff) / se0) if se0 > 0 else np.nan
    else:
        q = z
        p = 2 * stats.norm.sf(abs(diff) / se) if se > 0 else np.nan
    rel = t.mean / c.mean - 1 if c.mean else np.nan
    # delta method for mean_t / mean_c
    rel_se = (
        np.sqrt(t.var_mean / c.mean**2 + t.mean**2 * c.var_mean / c.mean**4) if c.mean else np.nan
    )
    zb = stats.norm.ppf(power)
    se_unit = np.sqrt(c.var_unit / c.n + c.var_unit / t.n) if c.n and t.n else np.nan
    mde = (z + zb) * se_unit
    effect = abs(target * c.mean)
    pw = stats.norm.sf(z - effect / se_unit) + stats.norm.cdf(-z - effect / se_unit)
    return {
        "mean_control": c.mean,
        "mean_treatment": t.mean,
        "abs_lift": diff,
        "abs_ci_low": diff - q * se,
        "abs_ci_high": diff + q * se,
        "rel_lift": rel,
        "rel_ci_low": rel - z * rel_se,
        "rel_ci_high": rel + z * rel_se,
        "p_value": p,
        "mde": mde,
        "power": pw,
    }


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
    """The effects table of one segment column from :func:`sufficient_stats` output."""
    rows = []
    for seg, g in st.groupby("segment", sort=True):
        g = g.set_index("arm")
        for i, m in enumerate(metrics):
            theta = x_all = reduction = 0.0
            if m["kind"] == "mean" and m.get("covariate"):
                theta, x_all, reduction = _cuped_theta(g, i)
            arms = {a: _arm_stats(g.loc[a], i, m, theta, x_all) for a in g.index}
            c = arms.get(control, _Arm(0.0, np.nan, np.nan, np.nan))
            for arm in sorted(a for a in arms if a != control):
                t = arms[arm]
                base = {
                    "metric": m["name"],
                    "kind": m["kind"],
                    "arm": arm,
                    "control": control,
                    "segment_col": segment_col,
                    "segment": seg,
                    "n_control": int(c.n),
                    "n_treatment": int(t.n),
                    "variance_reduction": reduction,
                }
                if min(c.n, t.n) < min_n:
                    rows.append(
                        {
                            **base,
                            "evaluated": False,
                            "note": f"fewer than abtest.min_n = {min_n} customers in an arm",
                        }
                    )
                    continue
                rows.append(
                    {**base, **_compare(c, t, m, alpha, power, target_lift), "evaluated": True}
                )
    out = pd.DataFrame(rows)
    for col in EFFECT_COLUMNS:
        if col not in out:
            out[col] = np.nan
    out["note"] = out["note"].astype(object).where(out["note"].notna(), "")
    out["evaluated"] = out["evaluated"].astype(bool)
    return out[EFFECT_COLUMNS]


def adjust(table: pd.DataFrame, method: str, alpha: float) -> pd.DataFrame:
    """Adjust p-values within each (segment column, metric) family of evaluated rows."""
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


def heterogeneity(table: pd.DataFrame) -> pd.DataFrame:
    """Cochran's Q test per (segment column, metric, arm): does the effect differ between
    segments? Q = sum w_i (d_i - d_w)^2, w_i = 1/se_i^2, chi-square with k - 1 df."""
    z = stats.norm.ppf(0.975)
    rows = []
    seg_rows = table[(table["segment_col"] != "all") & table["evaluated"]]
    for (col, metric, arm), g in seg_rows.groupby(["segment_col", "metric", "arm"]):
        se = (g["abs_ci_high"] - g["abs_ci_low"]) / (2 * z)
        ok = se > 0
        d, w = g["abs_lift"][ok].to_numpy(), 1 / se[ok].to_numpy() ** 2
        k = len(d)
        if k < 2:
            rows.append((col, metric, arm, k, np.nan, np.nan, "one segment: nothing to compare"))
            continue
        dw = (w * d).sum() / w.sum()
        q = float((w * (d - dw) ** 2).sum())
        rows.append((col, metric, arm, k, q, float(stats.chi2.sf(q, k - 1)), ""))
    return pd.DataFrame(
        rows, columns=["segment_col", "metric", "arm", "segments", "q", "p_value", "note"]
    )


def srm(st: pd.DataFrame, allocation: dict | None = None) -> pd.DataFrame:
    """Sample-ratio mismatch per segment: chi-square of the arm counts against the planned
    allocation (equal unless given). p < 0.001 flags a broken randomization."""
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
                "mismatch": bool(p < 0.001) if np.isfinite(p) else False,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- money


def money(
    table: pd.DataFrame,
    value_metric: str,
    segment_sizes: dict[str, pd.Series],
    cost_per_contact: float,
    margin: float,
) -> pd.DataFrame:
    """Incremental value per contact and per segment, profit after the contact cost, ROI.

    ``value_metric`` is a mean metric in money per customer (e.g. spend); the profit of
    one contact is ``lift × margin − cost``; ROI is profit / cost.
    """
    v = table[(table["metric"] == value_metric) & table["evaluated"]].copy()
    if v.empty:
        raise SegkitError(
            f"abtest.value_metric == {value_metric!r}: no evaluated rows for it; metrics "
            f"are {sorted(table['metric'].unique())}"
        )
    size = [
        segment_sizes.get(c, pd.Series(dtype=float)).get(str(g), np.nan)
        for c, g in zip(v["segment_col"], v["segment"], strict=True)
    ]
    # customers a rollout would reach: the segment's size in the customer base, or the
    # experiment's own count when the segment is not in it
    v["customers"] = pd.Series(size, index=v.index).fillna(v["n_treatment"] + v["n_control"])
    for s in ("", "_ci_low", "_ci_high"):
        col = "abs_lift" if not s else f"abs{s}"
        v[f"profit_per_contact{s}"] = v[col] * margin - cost_per_contact
    v["incremental_revenue"] = v["abs_lift"] * v["customers"]
    v["profit"] = v["profit_per_contact"] * v["customers"]
    v["roi"] = v["profit_per_contact"] / cost_per_contact if cost_per_contact > 0 else np.inf
    keep = [
        "segment_col",
        "segment",
        "arm",
        "customers",
        "abs_lift",
        "abs_ci_low",
        "abs_ci_high",
        "incremental_revenue",
        "profit_per_contact",
        "profit_per_contact_ci_low",
        "profit_per_contact_ci_high",
        "profit",
        "roi",
    ]
    return v[keep].reset_index(drop=True)


def recommend(value: pd.DataFrame) -> pd.DataFrame:
    """Per segment, which campaign to send: the arm with the highest profit per contact;
    ``send`` when its 95 % interval is above zero, ``test further`` when the estimate is
    positive but the interval includes zero, ``leave alone`` otherwise."""
    rows = []
    for (col, seg), g in value.groupby(["segment_col", "segment"], sort=True):
        best = g.sort_values("profit_per_contact", ascending=False).iloc[0]
        if best["profit_per_contact_ci_low"] > 0:
            action = "send"
        elif best["profit_per_contact"] > 0:
            action = "test further"
        else:
            action = "leave alone"
        rows.append(
            {
                "segment_col": col,
                "segment": seg,
                "campaign": best["arm"] if action != "leave alone" else "none",
                "action": action,
                "customers": best["customers"],
                "profit_per_contact": best["profit_per_contact"],
                "profit_ci_low": best["profit_per_contact_ci_low"],
                "profit_ci_high": best["profit_per_contact_ci_high"],
                "expected_profit": best["profit"] if action != "leave alone" else 0.0,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- stage


class ABResult(NamedTuple):
    findings: list[str]
    effects: pd.DataFrame  # ab_effects.csv
    srm: pd.DataFrame
    heterogeneity: pd.DataFrame
    value: pd.DataFrame | None
    recommendations: pd.DataFrame | None
    metrics: list[dict]
    control: str
    planning: pd.DataFrame


def _control(arms: list[str], given: str | None) -> str:
    if given is not None:
        if given not in arms:
            raise SegkitError(f"abtest.control == {given!r} is not an arm; arms are {arms}")
        return given
    guess = [a for a in arms if a.lower() in ("control", "none", "no e-mail", "holdout")]
    if not guess:
        raise SegkitError(
            f"abtest.control is not set and no arm looks like a control; arms are {arms}"
        )
    return guess[0]


def evaluate(
    con,
    relation: str,
    params: dict,
    segment_cols: list[str],
    segment_sizes: dict[str, pd.Series] | None = None,
    margin: float = 0.3,
    labels: dict[str, dict] | None = None,
    exclude: list[str] | tuple = (),
) -> ABResult:
    """Evaluate the experiment in DuckDB ``relation`` (columns: arm, outcomes, covariates,
    segment columns) with the ``abtest`` parameters ``params``. ``exclude``: joined
    columns that are not outcomes (customer attributes used as covariates)."""
    cols = [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]
    check_columns(pd.DataFrame(columns=cols), ["arm"], "experiment")
    dtypes = dict(con.execute(f"SELECT * FROM {relation} LIMIT 0").df().dtypes)
    numeric = [
        c
        for c in cols
        if c not in ("customer_id", "arm") and pd.api.types.is_numeric_dtype(dtypes[c])
    ]
    # one scan: rows per arm, and per numeric column its non-missing and non-0/1 values
    aggs = "".join(f', count("{c}"), count(*) FILTER (WHERE "{c}" NOT IN (0, 1))' for c in numeric)
    per_arm = con.execute(
        f"SELECT CAST(arm AS VARCHAR), count(*){aggs} FROM {relation} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    arm_counts = {r[0]: int(r[1]) for r in per_arm}
    present = {c: {r[0]: r[2 + 2 * i] for r in per_arm} for i, c in enumerate(numeric)}
    binary = {c for i, c in enumerate(numeric) if sum(r[3 + 2 * i] for r in per_arm) == 0}
    arms = sorted(arm_counts)
    if len(arms) < 2:
        raise SegkitError(
            f"experiment has {len(arms)} arm(s) {arms}; an A/B test needs two or more"
        )
    control = _control(arms, params["control"])
    if params["metrics"]:
        metrics = _check_metrics(params["metrics"], cols)
    else:
        exp_cols = [c for c in cols if c not in segment_cols and c not in exclude]
        metrics = infer_metrics(exp_cols, dtypes, binary)
    if not metrics:
        raise SegkitError(f"experiment has no numeric outcome column; columns are {cols}")
    for m in metrics:
        if m["kind"] == "proportion" and m["col"] not in binary:
            bad = con.execute(
                f'SELECT row_number() OVER () - 1 AS row, "{m["col"]}" FROM {relation} '
                f'QUALIFY "{m["col"]}" NOT IN (0, 1) LIMIT 5'
            ).fetchall()
            raise SegkitError(
                f"experiment column {m['col']!r} (metric {m['name']!r}) is a proportion but has "
                f"values other than 0/1: (row, value) {bad}; use kind: mean, or recode it"
            )
        need = [m["num"], m["den"]] if m["kind"] == "ratio" else [m["col"]]
        for col in need:
            empty = [a for a in arms if present.get(col, {}).get(a, 0) == 0]
            if empty:
                raise SegkitError(
                    f"experiment: arm {empty[0]!r} has no rows with a value of {col!r} "
                    f"(metric {m['name']!r}); arms and rows: {arm_counts}"
                )

    def needed(m: dict) -> list[str]:
        if m["kind"] == "ratio":
            return [m["num"], m["den"]]
        return [m["col"]] + ([m["covariate"]] if m.get("covariate") else [])

    nulls = ", ".join(
        "count(*) FILTER (WHERE " + " OR ".join(f'"{c}" IS NULL' for c in needed(m)) + ")"
        for m in metrics
    )
    counts = con.execute(f"SELECT {nulls} FROM {relation}").fetchall()[0]
    missing = {m["name"]: int(k) for m, k in zip(metrics, counts, strict=True) if k}

    kw = dict(
        alpha=params["alpha"],
        power=params["power"],
        target_lift=params["target_lift"],
        min_n=params["min_n"],
    )
    tables, srms = [], []
    overall = sufficient_stats(con, relation, None, metrics)
    tables.append(effects(overall, metrics, control, "all", **kw))
    srms.append(srm(overall).assign(segment_col="all"))
    for col in segment_cols:
        st = sufficient_stats(con, relation, col, metrics)
        tables.append(effects(st, metrics, control, col, **kw))
        srms.append(srm(st).assign(segment_col=col))
    table = adjust(pd.concat(tables, ignore_index=True), params["correction"], params["alpha"])
    het = heterogeneity(table)
    srm_table = pd.concat(srms, ignore_index=True)

    value = recs = None
    if params["value_metric"]:
        value = money(
            table[table["segment_col"] != "all"] if segment_cols else table,
            params["value_metric"],
            segment_sizes or {},
            params["cost_per_contact"],
            margin,
        )
        recs = recommend(value)
        names = {(c, str(k)): v for c, d in (labels or {}).items() for k, v in d.items()}
        recs.insert(
            2,
            "label",
            [
                names.get((c, str(g)), f"{c} = {g}")
                for c, g in zip(recs["segment_col"], recs["segment"], strict=True)
            ],
        )
    planning = _planning(table, metrics, params)
    findings = _findings(table, het, srm_table, recs, control, metrics, missing, params)
    return ABResult(findings, table, srm_table, het, value, recs, metrics, control, planning)


def _planning(table: pd.DataFrame, metrics: list[dict], params: dict) -> pd.DataFrame:
    """Customers per arm needed to detect the target relative lift on each overall metric."""
    rows = []
    z = stats.norm.ppf(1 - params["alpha"] / 2)
    zb = stats.norm.ppf(params["power"])
    for r in table[(table["segment_col"] == "all") & table["evaluated"]].itertuples():
        target = params["target_lift"] * r.mean_control
        if not target:
            continue
        var_unit = (r.mde / (z + zb)) ** 2 / (1 / r.n_control + 1 / r.n_treatment)
        if r.kind == "proportion":
            p1, p2 = r.mean_control, min(r.mean_control * (1 + params["target_lift"]), 0.999)
            n = sample_size_proportions(p1, p2, params["alpha"], params["power"])
        else:
            n = sample_size_means(target, np.sqrt(var_unit), params["alpha"], params["power"])
        rows.append(
            {
                "metric": r.metric,
                "arm": r.arm,
                "control_mean": r.mean_control,
                "target_rel_lift": params["target_lift"],
                "n_per_arm_needed": n,
                "n_per_arm_actual": min(r.n_control, r.n_treatment),
                "power": r.power,
            }
        )
    return pd.DataFrame(rows)


def _fmt(v: float, kind: str) -> str:
    return f"{100 * v:+.2f} points" if kind == "proportion" else f"{v:+,.3f}"


def _findings(table, het, srm_table, recs, control, metrics, missing, params) -> list[str]:
    out = []
    overall = table[(table["segment_col"] == "all") & table["evaluated"]]
    sig = overall[overall["p_adjusted"] < params["alpha"]]
    first = metrics[0]["name"]
    o1 = overall[overall["metric"] == first]
    if len(o1):
        best = o1.sort_values("abs_lift", ascending=False).iloc[0]
        out.append(
            f"Overall, '{best['arm']}' moves {first} by {_fmt(best['abs_lift'], best['kind'])} "
            f"against '{control}' (95% CI {_fmt(best['abs_ci_low'], best['kind'])} to "
            f"{_fmt(best['abs_ci_high'], best['kind'])}; {best['rel_lift']:+.0%} relative)."
        )
    out.append(
        f"{len(sig)} of {len(overall)} overall comparisons (metric × campaign) are significant "
        f"after {params['correction']} correction at {params['alpha']:.0%}."
    )
    h = het[het["p_value"] < params["alpha"]]
    if len(h):
        ex = h.sort_values("p_value").iloc[0]
        out.append(
            f"The effect differs between segments for {len(h)} of {len(het)} tests, e.g. "
            f"{ex['metric']} of '{ex['arm']}' across {ex['segment_col']} (Cochran's Q p = "
            f"{ex['p_value']:.2g}): target by segment rather than send one campaign to all."
        )
    elif len(het):
        out.append("No evidence that the effects differ between segments (Cochran's Q).")
    bad = srm_table[srm_table["mismatch"]]
    if len(bad):
        out.append(
            f"Warning: sample-ratio mismatch (p < 0.001) in {len(bad)} group(s), e.g. "
            f"{bad.iloc[0]['segment_col']} = {bad.iloc[0]['segment']}: the randomization or the "
            "data join may be broken; treat those results with suspicion."
        )
    else:
        out.append("The arms are balanced as planned (no sample-ratio mismatch).")
    if recs is not None and len(recs):
        for col, g in recs.groupby("segment_col", sort=False):
            send = g[g["action"] == "send"]
            leave = g[g["action"] == "leave alone"]
            parts = [f"{r.label}: {r.campaign}" for r in send.itertuples()]
            out.append(
                f"By {col}: send "
                + ("; ".join(parts) if parts else "nothing with confidence")
                + (f"; leave alone {', '.join(map(str, leave['label']))}" if len(leave) else "")
                + f" (profit after {params['cost_per_contact']:g} per contact)."
            )
    for name, k in missing.items():
        out.append(f"{k:,} rows have no value for {name}; they are left out of that metric.")
    skipped = table[~table["evaluated"]]
    if len(skipped):
        out.append(
            f"{skipped['segment'].nunique()} segment(s) have fewer than {params['min_n']} "
            "customers in an arm and are not evaluated."
        )
    return out


def run_stage(run: Run) -> ABResult | Skipped:
    """Evaluate the campaign of ``run`` overall and per segment; write the A/B artifacts."""
    import duckdb

    p = run.params["abtest"]
    if not run.has("experiment"):
        run.load("customers")  # the exploration writes experiment.parquet when there is one
    if not run.has("experiment"):
        reason = (
            f"parameter set {run.params['name']!r} has no experiment table "
            "(data.experiment), so there is no campaign to evaluate."
        )
        run.save_findings("abtest", [f"Skipped: {reason}"], status="skipped")
        return Skipped("abtest", reason)
    exp = run.path("experiment.parquet").as_posix()
    con = duckdb.connect()
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{exp}')")
    seg_cols = list(p["segment_cols"] or [])
    joins, attrs, sizes, labels = [], [], {}, {}
    if "segment" in seg_cols or "segment_name" in seg_cols:
        segs = run.load("segments")
        con.register("seg_df", segs)
        joins.append("LEFT JOIN seg_df s USING (customer_id)")
        for c in ("segment", "segment_name"):
            if c in seg_cols:
                sizes[c] = segs[c].astype(str).value_counts()
        labels["segment"] = dict(
            zip(segs["segment"].astype(str), segs["segment_name"], strict=False)
        )
    customers = run.load("customers")
    want_attrs = [c for c in seg_cols if c not in ("segment", "segment_name")]
    covs = [m.get("covariate") for m in (p["metrics"] or []) if isinstance(m, dict)]
    e_cols = [r[0] for r in con.execute("DESCRIBE e").fetchall()]
    want_attrs += [c for c in covs if c and c not in e_cols]
    if want_attrs:
        check_columns(
            customers, [c for c in want_attrs], "customers (abtest.segment_cols / covariate)"
        )
        attrs = list(dict.fromkeys(want_attrs))
        attr_df = customers[["customer_id", *attrs]].copy()
        for c in seg_cols:
            if c in attrs:
                col = attr_df[c]  # 0.0/1.0 flags are segments 0/1, not "0.0"/"1.0"
                if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
                    attr_df[c] = col.astype("Int64")
                sizes[c] = attr_df[c].astype(str).value_counts()
        con.register("attr_df", attr_df)
        joins.append("LEFT JOIN attr_df c USING (customer_id)")

    sel = (
        ["e.*"]
        + [f"s.{c}" for c in ("segment", "segment_name") if c in seg_cols]
        + [f'c."{c}"' for c in attrs]
    )
    con.execute(f"CREATE VIEW x AS SELECT {', '.join(sel)} FROM e {' '.join(joins)}")
    res = evaluate(con, "x", p, seg_cols, sizes, run.params["clv"]["margin"], labels, exclude=attrs)
    con.close()
    run.save("ab_effects.csv", res.effects)
    run.save("ab_heterogeneity.csv", res.heterogeneity)
    run.save("ab_srm.csv", res.srm)
    run.save("ab_planning.csv", res.planning)
    if res.value is not None:
        run.save("ab_value.csv", res.value)
        run.save("ab_recommendations.csv", res.recommendations)
    run.save(
        "ab_checks.json",
        {
            "control": res.control,
            "metrics": res.metrics,
            "sample_ratio_mismatch": bool(res.srm["mismatch"].any()),
            "correction": p["correction"],
            "alpha": p["alpha"],
        },
    )
    run.save_findings("abtest", res.findings)
    return res
