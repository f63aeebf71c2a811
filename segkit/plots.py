"""Plots for the reports (seaborn/matplotlib).

Every function takes ``ax=None`` (a new figure when None), draws one titled figure with
labelled axes (units in the labels) and returns the Axes, so tests inspect it on Agg.
Sections follow the stages; helpers used by one section stay in it with a leading ``_``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def _ax(ax=None, figsize=(7, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


# ---------------------------------------------------------------- exploration


def plot_quality(quality: pd.DataFrame, ax=None):
    """Rows set aside per cleaning rule and input (from ``explore.quality_table``)."""
    ax = _ax(ax)
    reasons = [c for c in quality.columns if c not in ("rows_in", "rows_used", "rows_rejected")]
    long = quality[reasons].stack().rename("rows").reset_index()
    long.columns = ["input", "reason", "rows"]
    long = long[long["rows"] > 0]
    if long.empty:
        ax.text(0.5, 0.5, "No rows rejected", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        sns.barplot(data=long, y="reason", x="rows", hue="input", ax=ax, orient="h")
        ax.set_xlabel("rows set aside")
        ax.set_ylabel("cleaning rule")
    ax.set_title("Rows set aside, by cleaning rule")
    return ax


def plot_feature_distributions(customers: pd.DataFrame, features: dict[str, bool], axes=None):
    """Histograms of key features; ``features`` maps a column to whether to log-scale it.

    Returns the array of Axes (one per feature present).
    """
    cols = [c for c in features if c in customers.columns]
    if axes is None:
        ncol = 3
        nrow = max(1, int(np.ceil(len(cols) / ncol)))
        _, axes = plt.subplots(nrow, ncol, figsize=(10, 2.8 * nrow), squeeze=False)
    flat = np.asarray(axes).ravel()
    units = {"revenue": "currency", "aov": "currency", "monetary": "currency"}
    for ax, col in zip(flat, cols, strict=False):
        x = customers[col].dropna().to_numpy(dtype=float)
        log = features[col] and len(x) and x.min() > 0
        bins = np.geomspace(x.min(), x.max(), 40) if log and x.max() > x.min() else 40
        ax.hist(x, bins=bins, color="#4C72B0")
        if log:
            ax.set_xscale("log")
        unit = units.get(col, "days" if col.endswith("_days") or col.startswith("days") else "")
        ax.set_xlabel(f"{col} ({unit}{', log scale' if log else ''})".replace("(, ", "("))
        ax.set_ylabel("customers")
        ax.set_title(col)
    for ax in flat[len(cols) :]:
        ax.set_axis_off()
    flat[0].figure.suptitle("Distribution of key customer features")
    flat[0].figure.tight_layout()
    return flat[: len(cols)]


def plot_monthly(monthly: pd.DataFrame, ax=None):
    """Monthly revenue (bars) and purchasing customers (line, right axis)."""
    ax = _ax(ax, figsize=(9, 4))
    x = pd.to_datetime(monthly["month"])
    ax.bar(x, monthly["revenue"], width=20, color="#4C72B0", label="revenue")
    ax.set_ylabel("revenue per month (currency)")
    ax.set_xlabel("month")
    right = ax.twinx()
    right.plot(x, monthly["customers"], color="#DD8452", marker="o", label="customers")
    right.set_ylabel("purchasing customers per month")
    right.set_ylim(bottom=0)
    ax.set_title("Monthly revenue and purchasing customers")
    return ax


def plot_cohort_retention(cohorts: pd.DataFrame, ax=None):
    """Heatmap of the share of each first-purchase cohort buying k months later."""
    ax = _ax(ax, figsize=(9, max(3, 0.3 * len(cohorts) + 1)))
    data = cohorts.drop(columns=["size"], errors="ignore").drop(columns=[0], errors="ignore")
    sns.heatmap(
        data * 100,
        ax=ax,
        cmap="Blues",
        annot=len(data) <= 25,
        fmt=".0f",
        cbar_kws={"label": "% of cohort buying"},
    )
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("first-purchase month (cohort)")
    ax.set_title("Cohort retention: % of each cohort buying again")
    return ax


def plot_concentration(concentration: dict, ax=None):
    """Lorenz curve of revenue over customers, with the top 10 % / 20 % shares marked."""
    ax = _ax(ax, figsize=(5, 5))
    lz = concentration["lorenz"]
    # Top-down: share of revenue from the top x % of customers.
    x = 1 - lz["customers_share"].to_numpy()[::-1]
    y = 1 - lz["revenue_share"].to_numpy()[::-1]
    ax.plot(x * 100, y * 100, color="#4C72B0", label="customers, largest first")
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", label="all customers equal")
    for share, key in ((10, "top_10"), (20, "top_20")):
        ax.plot([share], [concentration[key] * 100], "o", color="#C44E52")
        ax.annotate(
            f"top {share}%: {concentration[key]:.0%} of revenue",
            (share, concentration[key] * 100),
            xytext=(8, -12),
            textcoords="offset points",
        )
    ax.set_xlabel("% of customers (largest spenders first)")
    ax.set_ylabel("% of revenue")
    ax.set_title(f"Revenue concentration (Gini {concentration['gini']:.2f})")
    ax.legend(loc="lower right")
    return ax


# ---------------------------------------------------------------- clustering and profiling


# ---------------------------------------------------------------- CLV


# ---------------------------------------------------------------- A/B evaluation
