"""The decision: expected profit per segment × campaign × channel, and which may be sent.

From the A/B effects of the value metric (a lift in money per customer, with its standard
error), for each segment × campaign × channel:

- profit per contact ``lift × margin − cost`` and its 95 % interval
  ``(lift ± z·se) × margin − cost`` (z from the normal: the lift's sampling distribution
  is taken as normal, which the A/B stage's Welch/CUPED intervals assume with large df);
- the probability that it is positive, ``Φ((lift − cost/margin) / se)``: the normal
  approximation of the lift's uncertainty (a flat-prior posterior), not a frequentist
  statement;
- the one-sided p-value of H0 "profit per contact ≤ 0" (the A/B stage's
  :func:`segkit.abtest.money.profit_p_values`: t with the lift's degrees of freedom);
- **the rule**: Holm's step-down over *every* segment × campaign × channel of the plan
  (the whole plan is one family), one-sided at ``plan.alpha``: the chance of one or more
  false "send" decisions anywhere in the plan stays at or below ``plan.alpha``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segkit.abtest.money import profit_p_values
from segkit.core.checks import check_columns, check_scalar
from segkit.core.errors import SegkitError

#: Columns of :func:`candidates`.
CANDIDATE_COLUMNS = [
    "segment",
    "campaign",
    "channel",
    "cost_per_contact",
    "lift",
    "lift_se",
    "lift_sd",
    "profit_per_contact",
    "profit_per_contact_low",
    "profit_per_contact_high",
    "prob_profit",
    "p_profit",
    "p_adjusted",
    "passes",
]


def cost_table(
    spec: Any, campaigns: list[str], channels: list[str], default: float
) -> dict[tuple[str, str], float]:
    """Cost of one contact per (campaign, channel) from ``plan.cost_per_contact``.

    ``spec``: None (``default`` everywhere), a number, ``{channel: cost}`` or
    ``{campaign: cost or {channel: cost}}``; a campaign not named costs ``default``, a
    channel not named under a campaign costs that campaign's number or ``default``.

    Raises
    ------
    SegkitError
        A key that is neither a channel nor a campaign, or a channel under a campaign
        that is not in ``plan.channels``.

    >>> cost_table({"sms": 0.3}, ["a"], ["email", "sms"], 0.1)
    {('a', 'email'): 0.1, ('a', 'sms'): 0.3}
    """
    out = {(a, c): float(default) for a in campaigns for c in channels}
    if spec is None:
        return out
    if not isinstance(spec, dict):
        return {k: float(spec) for k in out}
    for key, value in spec.items():
        if key in channels and not isinstance(value, dict):
            for a in campaigns:
                out[(a, key)] = float(value)
        elif key in campaigns:
            chans: dict[str, Any] = (
                value if isinstance(value, dict) else dict.fromkeys(channels, value)
            )
            for ch, cost in chans.items():
                if ch not in channels:
                    raise SegkitError(
                        f"plan.cost_per_contact.{key}.{ch}: {ch!r} is not in plan.channels "
                        f"{channels}"
                    )
                out[(key, ch)] = float(cost)
        else:
            raise SegkitError(
                f"plan.cost_per_contact: {key!r} is neither a channel {channels} nor a "
                f"campaign {campaigns}"
            )
    return out


def _lift_rows(effects: pd.DataFrame, metric: str, segment_col: str) -> pd.DataFrame:
    """The evaluated effect rows of ``metric`` in breakdown ``segment_col``."""
    check_columns(
        effects,
        ["metric", "segment_col", "segment", "arm", "abs_lift", "se", "df", "evaluated"],
        "ab_effects",
    )
    rows = effects[
        (effects["metric"] == metric)
        & (effects["segment_col"] == segment_col)
        & effects["evaluated"].astype(bool)
    ].copy()
    if rows.empty:
        cols = sorted(effects.loc[effects["metric"] == metric, "segment_col"].unique())
        raise SegkitError(
            f"plan.segment_col == {segment_col!r}: no evaluated A/B effect of {metric!r} for "
            f"it; breakdowns with effects are {cols}"
        )
    rows["segment"] = rows["segment"].astype(str)
    n = rows["n_control"].astype(float), rows["n_treatment"].astype(float)
    rows["lift_sd"] = rows["se"] / np.sqrt(1 / n[0] + 1 / n[1])  # per-customer sd, pooled
    return rows


def holm(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjusted p-values and the rejections at ``alpha`` (statsmodels)."""
    if not len(p):
        return np.array([], float), np.array([], bool)
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return adjusted, reject


def _option_rows(
    r: pd.DataFrame, arm: str, channel: str, cost: float, margin: float
) -> pd.DataFrame:
    """Profit per contact, interval, probability and p-value of one campaign on one
    channel in every segment of ``r``."""
    be = cost / margin  # the lift at which a contact pays for itself
    z = stats.norm.ppf(0.975)
    se = r["se"].to_numpy(float)
    lift = r["abs_lift"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        prob = np.where(se > 0, stats.norm.cdf((lift - be) / se), (lift > be) * 1.0)
    return pd.DataFrame(
        {
            "segment": r["segment"].to_numpy(),
            "campaign": arm,
            "channel": channel,
            "cost_per_contact": cost,
            "lift": lift,
            "lift_se": se,
            "lift_sd": r["lift_sd"].to_numpy(float),
            "profit_per_contact": lift * margin - cost,
            "profit_per_contact_low": (lift - z * se) * margin - cost,
            "profit_per_contact_high": (lift + z * se) * margin - cost,
            "prob_profit": prob,
            "p_profit": profit_p_values(r, be),
        }
    )


def candidates(
    effects: pd.DataFrame,
    metric: str,
    segment_col: str,
    costs: dict[tuple[str, str], float],
    margin: float,
    alpha: float = 0.025,
) -> pd.DataFrame:
    """Every segment × campaign × channel with its profit per contact and the decision rule.

    Parameters
    ----------
    effects
        The A/B stage's effects table (``ab_effects.csv``).
    metric
        The value metric (``abtest.value_metric``): its lift is money per customer.
    segment_col
        The breakdown the plan targets (``plan.segment_col``).
    costs
        Cost per contact by (campaign, channel) (:func:`cost_table`).
    margin
        Profit margin on the value metric (``clv.margin``).
    alpha
        One-sided family-wise error rate of false "send" decisions over the whole plan.

    Returns
    -------
    pandas.DataFrame
        :data:`CANDIDATE_COLUMNS`; ``passes``: Holm-adjusted p below ``alpha`` (and so
        the estimate is positive).
    """
    check_scalar(margin, "clv.margin", float, gt=0)
    check_scalar(alpha, "plan.alpha", float, gt=0, lt=0.5)
    rows = _lift_rows(effects, metric, segment_col)
    parts = [
        _option_rows(rows[rows["arm"] == arm], arm, channel, cost, margin)
        for (arm, channel), cost in costs.items()
        if (rows["arm"] == arm).any()
    ]
    if not parts:
        raise SegkitError(
            f"plan.cost_per_contact: no campaign of the A/B effects {sorted(rows['arm'].unique())} "
            "has a cost"
        )
    out = pd.concat(parts, ignore_index=True)
    out["p_adjusted"], out["passes"] = holm(out["p_profit"].to_numpy(float), alpha)
    out["passes"] &= out["profit_per_contact"] > 0
    return out[CANDIDATE_COLUMNS].sort_values(["segment", "campaign", "channel"], ignore_index=True)
