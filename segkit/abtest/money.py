"""Money: incremental value and profit per contact, and which campaign to send to whom.

The value metric is a mean metric in money per customer (e.g. spend). The profit of one
contact is ``lift × margin − cost``; ROI is profit / cost.

The decision rule: each (segment, arm) gets the one-sided p-value of "profit per contact
> 0" (the lift's test against ``cost / margin`` with its interval's standard error and
degrees of freedom), adjusted across all segments × arms of its breakdown (one
``segment_col``) with ``abtest.correction`` (Holm by default: the chance of any false
"send" in a breakdown stays at or below α/2). A segment gets the arm with the highest
profit per contact, and "send" only when that arm's adjusted p-value is below α/2: with a
single comparison this is the old rule (the 95 % interval of the profit above zero).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segkit.core.errors import SegkitError

#: Recommendation of a segment, from its best arm's profit per contact.
SEND, TEST_FURTHER, LEAVE_ALONE = "send", "test further", "leave alone"

VALUE_COLUMNS = [
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
    "p_profit",
    "p_profit_adjusted",
]


def money(
    table: pd.DataFrame,
    value_metric: str,
    segment_sizes: dict[str, pd.Series],
    cost_per_contact: float,
    margin: float,
    correction: str = "holm",
) -> pd.DataFrame:
    """Incremental value per contact and per segment, profit after the contact cost, ROI,
    and the p-value that the profit per contact is not above zero.

    Parameters
    ----------
    table
        Effects table rows (:func:`segkit.abtest.statistics.effects`).
    value_metric
        Name of the metric whose lift is money per customer.
    segment_sizes
        Segment column -> customers per segment value (as text) in the customer base:
        the customers a rollout would reach. A segment not in it counts the experiment's
        own customers.
    cost_per_contact, margin
        Cost of one contact; profit margin on the value metric (> 0).
    correction
        ``multipletests`` method (``holm``, ``fdr_bh``, ``bonferroni``) or ``none``:
        ``p_profit_adjusted`` corrects ``p_profit`` across the rows of each segment column.

    Returns
    -------
    pandas.DataFrame
        :data:`VALUE_COLUMNS`, one row per evaluated (segment column, segment, arm);
        ``p_profit`` is the one-sided p-value of H0 "profit per contact <= 0", i.e. of
        ``lift <= cost / margin``, from the lift's ``se`` and ``df`` (t with ``df``
        degrees of freedom, normal when infinite).

    Raises
    ------
    SegkitError
        No evaluated row of ``value_metric`` in ``table``.
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
    v["customers"] = pd.Series(size, index=v.index).fillna(v["n_treatment"] + v["n_control"])
    for s in ("", "_ci_low", "_ci_high"):
        col = "abs_lift" if not s else f"abs{s}"
        v[f"profit_per_contact{s}"] = v[col] * margin - cost_per_contact
    v["incremental_revenue"] = v["abs_lift"] * v["customers"]
    v["profit"] = v["profit_per_contact"] * v["customers"]
    v["roi"] = v["profit_per_contact"] / cost_per_contact if cost_per_contact > 0 else np.inf
    v["p_profit"] = profit_p_values(v, cost_per_contact / margin)
    v["p_profit_adjusted"] = np.nan
    for _, idx in v.groupby("segment_col").groups.items():
        v.loc[idx, "p_profit_adjusted"] = _adjust(v.loc[idx, "p_profit"].to_numpy(), correction)
    return v[VALUE_COLUMNS].reset_index(drop=True)


def profit_p_values(rows: pd.DataFrame, break_even: float) -> np.ndarray:
    """One-sided p-values of H0 ``abs_lift <= break_even`` (profit per contact <= 0).

    Parameters
    ----------
    rows
        Effect rows with ``abs_lift``, ``se`` and ``df`` (:func:`segkit.abtest.compare`).
    break_even
        The lift at which a contact pays for itself (``cost / margin``).

    Returns
    -------
    numpy.ndarray
        ``P(T >= (abs_lift - break_even) / se)``, T ~ t(df) (normal for infinite df);
        with ``se == 0``, 0 when the lift is above break-even, else 1.

    >>> r = pd.DataFrame({"abs_lift": [0.5], "se": [0.25], "df": [np.inf]})
    >>> round(float(profit_p_values(r, 0.0)[0]), 4)  # z = 2
    0.0228
    """
    lift, se = rows["abs_lift"].to_numpy(float), rows["se"].to_numpy(float)
    dof = rows["df"].to_numpy(float)
    out = np.where(lift > break_even, 0.0, 1.0)
    pos = se > 0
    stat = (lift[pos] - break_even) / se[pos]
    out[pos] = stats.t.sf(stat, dof[pos])  # df = inf: the normal
    return out


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    ok = np.isfinite(p)
    if method == "none" or not ok.any():
        return p
    adj = p.copy()
    adj[ok] = multipletests(p[ok], method=method)[1]
    return adj


def _action(best: pd.Series, alpha: float) -> str:
    if best["p_profit_adjusted"] < alpha / 2:
        return SEND
    if best["profit_per_contact"] > 0:
        return TEST_FURTHER
    return LEAVE_ALONE


def recommend(value: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per segment, which campaign to send.

    The arm with the highest profit per contact: ``send`` when its profit is above zero
    with the multiplicity of its breakdown controlled (``p_profit_adjusted < alpha / 2``,
    see the module docstring), ``test further`` when the estimate is positive but not
    significant so, ``leave alone`` (campaign ``none``, no expected profit) otherwise.

    Parameters
    ----------
    value
        :func:`money`'s table.
    alpha
        ``abtest.alpha``: the two-sided level of the effects' intervals; one-sided
        "send" decisions are taken at ``alpha / 2``.

    Returns
    -------
    pandas.DataFrame
        One row per (segment column, segment): campaign, action, customers, profit per
        contact with its interval, ``p_profit`` (one-sided, raw) and
        ``p_profit_adjusted`` of the chosen arm, expected profit.
    """
    rows = []
    for (col, seg), g in value.groupby(["segment_col", "segment"], sort=True):
        best = g.sort_values("profit_per_contact", ascending=False).iloc[0]
        action = _action(best, alpha)
        rows.append(
            {
                "segment_col": col,
                "segment": seg,
                "campaign": best["arm"] if action != LEAVE_ALONE else "none",
                "action": action,
                "customers": best["customers"],
                "profit_per_contact": best["profit_per_contact"],
                "profit_ci_low": best["profit_per_contact_ci_low"],
                "profit_ci_high": best["profit_per_contact_ci_high"],
                "p_profit": best["p_profit"],
                "p_profit_adjusted": best["p_profit_adjusted"],
                "expected_profit": best["profit"] if action != LEAVE_ALONE else 0.0,
            }
        )
    return pd.DataFrame(rows)


def label_segments(recs: pd.DataFrame, labels: dict[str, dict] | None) -> pd.DataFrame:
    """``recs`` with a ``label`` column (third): the segment's name, else ``col = value``.

    ``labels``: segment column -> {segment value: name}; the overall row is
    ``all customers``.
    """
    names = {(c, str(k)): v for c, d in (labels or {}).items() for k, v in d.items()}
    out = recs.copy()
    out.insert(
        2,
        "label",
        [
            "all customers" if c == "all" else names.get((c, str(g)), f"{c} = {g}")
            for c, g in zip(recs["segment_col"], recs["segment"], strict=True)
        ],
    )
    return out
