"""Money: incremental value and profit per contact, and which campaign to send to whom.

The value metric is a mean metric in money per customer (e.g. spend). The profit of one
contact is ``lift × margin − cost``; ROI is profit / cost. A segment gets the campaign with
the highest profit per contact when its 95 % interval is above zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
]


def money(
    table: pd.DataFrame,
    value_metric: str,
    segment_sizes: dict[str, pd.Series],
    cost_per_contact: float,
    margin: float,
) -> pd.DataFrame:
    """Incremental value per contact and per segment, profit after the contact cost, ROI.

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
        Cost of one contact; profit margin on the value metric.

    Returns
    -------
    pandas.DataFrame
        :data:`VALUE_COLUMNS`, one row per evaluated (segment column, segment, arm).

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
    return v[VALUE_COLUMNS].reset_index(drop=True)


def _action(best: pd.Series) -> str:
    if best["profit_per_contact_ci_low"] > 0:
        return SEND
    if best["profit_per_contact"] > 0:
        return TEST_FURTHER
    return LEAVE_ALONE


def recommend(value: pd.DataFrame) -> pd.DataFrame:
    """Per segment, which campaign to send.

    The arm with the highest profit per contact: ``send`` when its 95 % interval is above
    zero, ``test further`` when the estimate is positive but the interval includes zero,
    ``leave alone`` (campaign ``none``, no expected profit) otherwise.
    """
    rows = []
    for (col, seg), g in value.groupby(["segment_col", "segment"], sort=True):
        best = g.sort_values("profit_per_contact", ascending=False).iloc[0]
        action = _action(best)
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
