"""Plots of the campaign plan (matplotlib); each takes ``ax=None`` and returns the Axes."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

# Segment and campaign names come from the data: every text stays literal (no mathtext).
mpl.rcParams["text.parse_math"] = False

#: Colour of each decision in the plots.
COLOURS = {
    "send": "C2",
    "not chosen": "C0",
    "not proven": "C1",
    "do not send": "C3",
    "too small": "grey",
}


def _ax(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def best_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Per segment the row shown: the one sent most, else the highest profit per contact."""
    order = table.sort_values(
        ["segment", "contacts", "profit_per_contact"], ascending=[True, False, False], kind="stable"
    )
    return order.drop_duplicates("segment").reset_index(drop=True)


def plot_profit_by_segment(table: pd.DataFrame, ax: Axes | None = None, currency: str = "") -> Axes:
    """Profit per contact of each segment's campaign (the one sent, else the best), with
    its 95 % interval, coloured by the decision.

    ``table``: ``plan.csv`` (:data:`segkit.plan.PLAN_COLUMNS`).
    """
    rows = best_rows(table)
    ax = _ax(ax, (8, 0.55 * len(rows) + 1.6))
    labels = [
        f"{r.segment_name} · {r.campaign} / {r.channel}"
        if isinstance(r.segment_name, str)
        else f"{r.segment} · {r.campaign} / {r.channel}"
        for r in rows.itertuples()
    ]
    pos = np.arange(len(rows))[::-1]
    for decision, colour in COLOURS.items():
        m = (rows["decision"] == decision).to_numpy()
        if not m.any():
            continue
        r = rows[m]
        ax.errorbar(
            r["profit_per_contact"],
            pos[m],
            xerr=[
                r["profit_per_contact"] - r["profit_per_contact_low"],
                r["profit_per_contact_high"] - r["profit_per_contact"],
            ],
            fmt="o",
            color=colour,
            capsize=3,
            label=decision,
        )
    ax.set_yticks(pos, labels)
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlabel(f"expected profit per contact ({currency or 'money'}), 95% interval")
    ax.set_title("Profit per contact by segment (campaign / channel)")
    ax.legend(fontsize=8, title="decision", title_fontsize=8)
    return ax


def plot_strategies(comparison: pd.DataFrame, ax: Axes | None = None, currency: str = "") -> Axes:
    """Expected profit of the plan, of sending everyone the best campaign and of sending
    nobody, with 95 % intervals (:func:`segkit.plan.compare`)."""
    ax = _ax(ax, (7, 2.6))
    c = comparison.reset_index(drop=True)
    pos = np.arange(len(c))[::-1]
    ax.barh(pos, c["expected_profit"], color=["C2", "C0", "grey"][: len(c)], alpha=0.7)
    ax.errorbar(
        c["expected_profit"],
        pos,
        xerr=[
            c["expected_profit"] - c["expected_profit_low"],
            c["expected_profit_high"] - c["expected_profit"],
        ],
        fmt="none",
        color="black",
        capsize=3,
    )
    ax.set_yticks(pos, c["strategy"])
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlabel(f"expected incremental profit ({currency or 'money'}), 95% interval")
    ax.set_title("The plan against sending everyone and sending nobody")
    return ax
