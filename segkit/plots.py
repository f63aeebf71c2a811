"""Plots for the reports (seaborn/matplotlib).

Every function takes ``ax=None`` (a new figure when None), draws one titled figure with
labelled axes (units in the labels) and returns the Axes, so tests inspect it on Agg.
Sections follow the stages; helpers used by one section stay in it with a leading ``_``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

# Labels come from the data: "$0-100" is a price band, not mathematics (Hillstrom's history
# segments were typeset as an italic "0 - 100"). Every text stays literal.
mpl.rcParams["text.parse_math"] = False
# Every text at least MIN_FONT_PT points (matplotlib's "small" legends are 8.3 pt).
mpl.rcParams.update(
    {
        "font.size": 10,
        "legend.fontsize": 10,
        "legend.title_fontsize": 10,
        "xtick.labelsize": 10,
        "ytick.labelsize": 10,
    }
)

#: Smallest text, in points, at the size a report shows a figure.
MIN_FONT_PT = 10.0
#: Widest a report shows a figure, in CSS px: the notebook HTML's content column in a
#: 1,400 px window (measured in Chromium; wider images are scaled down to it).
SHOWN_WIDTH_PX = 1090
#: Pixels per inch of a notebook figure (matplotlib-inline's PNG, figure.dpi = 100).
REPORT_DPI = 100
#: Widest figure a plot function makes, in inches: shown unscaled (with a margin for the
#: labels that "tight" cropping adds outside the axes).
MAX_WIDTH_IN = 10.0

#: One colour per segment number (1 = the first colour), the same in every chart of a run:
#: seaborn's colour-blind palette without its grey (kept for "all" and "other") and yellow
#: (unreadable on white), plus two darker hues; beyond ten segments the colours repeat.
SEGMENT_COLOURS = (
    "#0173b2",
    "#de8f05",
    "#029e73",
    "#d55e00",
    "#cc78bc",
    "#ca9161",
    "#56b4e9",
    "#fbafe4",
    "#6a3d9a",
    "#1b7837",
)
ALL_COLOUR = "#3c3c3c"  # all customers (the overall row of a breakdown)
OTHER_COLOUR = "#a0a0a0"  # segment 0: small segments folded together


@dataclass
class PlotContext:
    """What the plots of one run share: the currency of money axes and the segment names
    (to find a segment's number, hence its colour, from its name)."""

    currency: str = ""
    names: dict[str, int] = field(default_factory=dict)  # segment name -> number
    names_file: Path | None = None  # segment_names.json of the run, read when needed
    value_metric: str | None = None  # the A/B metric whose lift is money

    def segment_number(self, label: Any) -> int | None:
        """The segment number of ``label`` (a number, "3", or a segment name), else None."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            return int(label)
        text = str(label).strip()
        if text.lstrip("-").isdigit():
            return int(text)
        names = dict(self.names)
        if self.names_file is not None and self.names_file.is_file():
            try:
                stored = json.loads(self.names_file.read_text())
                names.update({str(v): int(k) for k, v in stored.items()})
            except (ValueError, OSError):
                pass  # a half-written file: the colours fall back to the plot's order
        return names.get(text)


_CONTEXT = PlotContext()


def set_context(
    currency: str = "",
    names: dict[Any, str] | None = None,
    names_file: str | Path | None = None,
    value_metric: str | None = None,
) -> PlotContext:
    """Set what every later plot uses: the currency of money axes and the segment names
    (``names``: number -> name; ``names_file``: a ``segment_names.json`` read at each plot,
    so names written after this call count). :meth:`segkit.Run.open` calls it."""
    global _CONTEXT
    _CONTEXT = PlotContext(
        currency=currency or "",
        names={str(v): int(k) for k, v in (names or {}).items()},
        names_file=Path(names_file) if names_file else None,
        value_metric=value_metric,
    )
    return _CONTEXT


def context() -> PlotContext:
    """The plotting context in force (see :func:`set_context`)."""
    return _CONTEXT


def use_run(folder: str | Path, params: dict[str, Any]) -> PlotContext:
    """The plotting context of a run folder and its resolved parameters."""
    return set_context(
        currency=params.get("report", {}).get("currency", ""),
        names=params.get("cluster", {}).get("names") or {},
        names_file=Path(folder) / "artifacts" / "segment_names.json",
        value_metric=params.get("abtest", {}).get("value_metric"),
    )


def money_label(what: str, currency: str = "") -> str:
    """An axis label for an amount of money, with ``currency`` or else the run's:
    "revenue (€)"."""
    return f"{what} ({currency or _CONTEXT.currency or 'currency units'})"


def _interval_bars(ax: Axes, est: Any, pos: Any, low: Any, high: Any, **kw: Any) -> None:
    """Horizontal 95% interval bars from ``low`` to ``high`` around ``est`` at ``pos``."""
    est, low, high = (np.asarray(a, dtype=float) for a in (est, low, high))
    ax.errorbar(est, pos, xerr=[est - low, high - est], **kw)


def segment_colour(label: Any) -> str | None:
    """The colour of a segment (its number, name, "all" or "other"); None if unknown."""
    text = str(label).strip().lower()
    if text in ("all", "all customers"):
        return ALL_COLOUR
    if text == "other":
        return OTHER_COLOUR
    number = _CONTEXT.segment_number(label)
    if number is None:
        return None
    return OTHER_COLOUR if number <= 0 else SEGMENT_COLOURS[(number - 1) % len(SEGMENT_COLOURS)]


def segment_palette(labels: Any) -> dict[Any, str]:
    """Label -> colour for the segments of a plot: each known segment its own colour;
    labels that are not segments of the run take, in order, colours no known one uses."""
    labels = list(dict.fromkeys(labels))
    known = {lab: segment_colour(lab) for lab in labels}
    spare = iter([c for c in SEGMENT_COLOURS if c not in known.values()] * len(labels))
    return {lab: col or next(spare) for lab, col in known.items()}


def _swatches(ax: Axes, positions: Any, labels: Any) -> None:
    """A square of the segment's colour beside each y tick label that names a segment."""
    from matplotlib.transforms import offset_copy

    marks = [(p, segment_colour(lab)) for p, lab in zip(positions, labels, strict=True)]
    marks = [(p, c) for p, c in marks if c is not None]
    if not marks:
        return
    where = offset_copy(
        ax.get_yaxis_transform(), fig=ax.get_figure(root=True), x=-7, units="points"
    )
    for p, c in marks:
        ax.plot([0], [p], "s", ms=8, color=c, transform=where, clip_on=False)
    ax.tick_params(axis="y", pad=14)


def shown_scale(fig: Any) -> float:
    """How much a report scales the figure down (1 = shown at its own size), from its
    width with "tight" cropping as the notebook's PNG is saved."""
    width_in = fig.get_size_inches()[0]
    try:
        tight = fig.get_tightbbox(fig.canvas.get_renderer())
        width_in = max(width_in, tight.width)
    except (AttributeError, RuntimeError):  # a backend without a renderer: the size
        pass
    return min(1.0, SHOWN_WIDTH_PX / (width_in * REPORT_DPI))


def _legible(fig: Any) -> None:
    """Raise every text of ``fig`` to MIN_FONT_PT at the size a report shows it: a
    figure wider than the report is scaled down, so its text must be set larger."""
    from matplotlib.text import Text

    for _ in range(6):  # larger text widens the figure a little: check again
        floor = MIN_FONT_PT / shown_scale(fig)
        small = [
            t
            for t in fig.findobj(Text)
            if t.get_visible() and t.get_text() and t.get_fontsize() < floor - 1e-9
        ]
        for ax in fig.axes:
            ax.tick_params(which="both", labelsize=max(floor, MIN_FONT_PT))
        if not small:
            return
        for t in small:
            t.set_fontsize(floor)


def _log_x(ax: Axes) -> None:
    """A log x axis whose tick labels are plain numbers (the default ones are mathtext,
    which the literal-text setting above would show as code)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _index_heatmap(index: pd.DataFrame, annot: Any, fmt: str, ax: Axes) -> None:
    """A heatmap of indices (100 = everyone) on a log2 scale, so that 50 and 200 are
    equally far from the middle, annotated with ``annot``."""
    sns.heatmap(
        np.log2(index.clip(lower=1) / 100),
        annot=annot,
        fmt=fmt,
        cmap="RdBu_r",
        center=0,
        vmin=-2,
        vmax=2,
        cbar_kws={"label": "log2(index / 100)"},
        ax=ax,
    )


def _ax(ax: Axes | None = None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    """``ax``, else the Axes of a new figure no wider than a report shows unscaled."""
    if ax is None:
        _, ax = plt.subplots(figsize=(min(figsize[0], MAX_WIDTH_IN), figsize[1]))
    return ax


# ---------------------------------------------------------------- exploration


def plot_quality(quality: pd.DataFrame, ax: Axes | None = None) -> Axes:
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
    _legible(ax.figure)
    return ax


def plot_feature_distributions(
    customers: pd.DataFrame, features: dict[str, bool], axes: Any = None
) -> Any:
    """Histograms of key features; ``features`` maps a column to whether to log-scale it.

    Returns the array of Axes (one per feature present).
    """
    cols = [c for c in features if c in customers.columns]
    if axes is None:
        ncol = 3
        nrow = max(1, int(np.ceil(len(cols) / ncol)))
        _, axes = plt.subplots(nrow, ncol, figsize=(MAX_WIDTH_IN, 2.8 * nrow), squeeze=False)
    flat = np.asarray(axes).ravel()
    money = _CONTEXT.currency or "currency units"
    units = {"revenue": money, "aov": money, "monetary": money}
    for ax, col in zip(flat, cols, strict=False):
        x = customers[col].dropna().to_numpy(dtype=float)
        log = features[col] and len(x) and x.min() > 0
        bins = np.geomspace(x.min(), x.max(), 40) if log and x.max() > x.min() else 40
        ax.hist(x, bins=bins, color="#4C72B0")
        if log:
            _log_x(ax)
        unit = units.get(col, "days" if col.endswith("_days") or col.startswith("days") else "")
        notes = ", ".join(n for n in (unit, "log scale" if log else "") if n)
        ax.set_xlabel(f"{col} ({notes})" if notes else col)
        ax.set_ylabel("customers")
        ax.set_title(col)
    for ax in flat[len(cols) :]:
        ax.set_axis_off()
    flat[0].figure.suptitle("Distribution of key customer features")
    flat[0].figure.tight_layout()
    _legible(flat[0].figure)
    return flat[: len(cols)]


def plot_monthly(monthly: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Monthly revenue (bars) and purchasing customers (line, right axis)."""
    ax = _ax(ax, figsize=(9, 4))
    x = pd.to_datetime(monthly["month"])
    ax.bar(x, monthly["revenue"], width=20, color="#4C72B0", label="revenue")
    ax.set_ylabel(money_label("revenue per month"))
    ax.set_xlabel("month")
    right = ax.twinx()
    right.plot(x, monthly["customers"], color="#DD8452", marker="o", label="customers")
    right.set_ylabel("purchasing customers per month")
    right.set_ylim(bottom=0)
    ax.set_title("Monthly revenue and purchasing customers")
    _legible(ax.figure)
    return ax


def plot_cohort_retention(cohorts: pd.DataFrame, ax: Axes | None = None) -> Axes:
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
    _legible(ax.figure)
    return ax


def plot_concentration(concentration: dict, ax: Axes | None = None) -> Axes:
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
    _legible(ax.figure)
    return ax


# ---------------------------------------------------------------- clustering and profiling


def plot_k_selection(k_selection: pd.DataFrame, k: int, axes: Any = None) -> Any:
    """The evidence for the number of segments, one panel per measure, ``k`` marked.

    Panels: silhouette, Calinski-Harabasz, Davies-Bouldin, the gap statistic (± its
    standard error, when computed), BIC (mixtures only) and stability (mean and least
    stable segment's Jaccard, with the 0.6 and 0.75 lines). Inadmissible k (a segment too
    small or unstable) are drawn hollow. Returns the array of Axes.
    """
    panels = [
        ("silhouette", "silhouette (higher is better)"),
        ("calinski_harabasz", "Calinski-Harabasz (higher is better)"),
        ("davies_bouldin", "Davies-Bouldin (lower is better)"),
        ("gap", "gap statistic (first peak)"),
        ("bic", "BIC (lower is better)"),
        ("min_stability", "stability, Jaccard"),
    ]
    panels = [(c, lab) for c, lab in panels if c in k_selection and k_selection[c].notna().any()]
    if axes is None:
        ncol = 3
        nrow = -(-len(panels) // ncol)
        _, grid = plt.subplots(nrow, ncol, figsize=(MAX_WIDTH_IN, 3.3 * nrow), squeeze=False)
        for ax in grid.ravel()[len(panels) :]:
            ax.remove()
        axes = grid.ravel()[: len(panels)]
    ks = k_selection["k"].to_numpy()
    ok = k_selection.get("admissible", pd.Series(True, index=k_selection.index)).to_numpy(bool)
    for ax, (col, label) in zip(axes, panels, strict=True):
        y = k_selection[col].to_numpy(float)
        if col == "gap" and "gap_se" in k_selection:
            ax.errorbar(ks, y, yerr=k_selection["gap_se"], marker="o", capsize=3)
        else:
            ax.plot(
                ks, y, marker="o", label="least stable segment" if col == "min_stability" else None
            )
        ax.scatter(ks[~ok], y[~ok], s=60, facecolors="white", edgecolors="C0", zorder=3)
        if col == "min_stability":
            if "stability" in k_selection:
                ax.plot(
                    ks,
                    k_selection["stability"],
                    marker=".",
                    ls=":",
                    color="C1",
                    label="mean over segments",
                )
            ax.axhline(0.75, color="#55A868", linestyle=":", label="stable (0.75)")
            ax.axhline(0.6, color="#C44E52", linestyle=":", label="unstable (0.6)")
            ax.set_ylim(0, 1.05)
            ax.legend(loc="lower left")
        ax.axvline(k, color="grey", linestyle="--")
        ax.set_xlabel("number of segments k")
        ax.set_ylabel(label)
        title = label.split(" (")[0].split(",")[0]
        ax.set_title(title[0].upper() + title[1:] + " by k")
    axes[0].figure.suptitle(
        f"Choosing the number of segments (dashed: k = {k}; hollow: not admissible)", y=1.0
    )
    axes[0].figure.tight_layout()
    _legible(axes[0].figure)
    return axes


def _wrap(text: str, width: int = 12) -> str:
    """``text`` on lines of at most ``width`` characters (a long name fits its cell)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


def plot_rfm_grid(segments: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Customers in each cell of recency score by combined frequency-money score, with the
    RFM segment names (``segment.RFM_GRID``) written in the cells."""
    from segkit.segment import RFM_GRID

    ax = _ax(ax, figsize=(9, 5.5))
    fm = (segments["f_score"].astype(int) + segments["m_score"].astype(int)) // 2
    counts = pd.crosstab(segments["r_score"].astype(int), fm).reindex(
        index=range(5, 0, -1), columns=range(1, 6), fill_value=0
    )
    share = counts / max(counts.to_numpy().sum(), 1)
    labels = np.array(
        [
            [f"{_wrap(RFM_GRID[r - 1][f - 1])}\n{share.loc[r, f]:.1%}" for f in range(1, 6)]
            for r in range(5, 0, -1)
        ]
    )
    sns.heatmap(
        share * 100,
        annot=labels,
        fmt="",
        cmap="Blues",
        cbar_kws={"label": "% of customers"},
        annot_kws={"fontsize": MIN_FONT_PT},
        ax=ax,
    )
    ax.set_title("RFM map: share of customers by recency and frequency-money score")
    ax.set_xlabel("FM score = (F + M) // 2 (5 = most orders and revenue)")
    ax.set_ylabel("R score (5 = most recent)")
    _legible(ax.figure)
    return ax


# profiling (segkit.profile)


def plot_index_heatmap(
    index: pd.DataFrame, ax: Axes | None = None, *, labels: dict[str, str] | None = None
) -> Axes:
    """Heatmap of ``profile.index_table`` (segment × feature, 100 = population average);
    ``labels``: readable feature names (``data.customers.labels``)."""
    from segkit.naming import feature_label

    ax = _ax(ax, figsize=(max(6, 0.9 * index.shape[1] + 3), 0.6 * len(index) + 2))
    shown = index.rename(columns=lambda c: feature_label(c, labels))
    _index_heatmap(shown, shown.round(0), ".0f", ax)
    _swatches(ax, np.arange(len(index)) + 0.5, index.index)
    ax.set_title("Segment profiles: index (100 = average customer)")
    ax.set_xlabel("feature")
    ax.set_ylabel("segment")
    _legible(ax.figure)
    return ax


def plot_snake(
    standardized: pd.DataFrame, ax: Axes | None = None, *, labels: dict[str, str] | None = None
) -> Axes:
    """Snake plot: standardized segment means (z, in population standard deviations);
    ``labels``: readable feature names (``data.customers.labels``)."""
    from segkit.naming import feature_label

    # the legend sits right of the axes: leave it a quarter of the report's width
    ax = _ax(ax, figsize=(min(max(6, 0.8 * standardized.shape[1] + 2), 0.75 * MAX_WIDTH_IN), 4))
    x = np.arange(standardized.shape[1])
    colours = segment_palette(standardized.index)
    for name, row in standardized.iterrows():
        ax.plot(x, row.to_numpy(), marker="o", label=str(name), color=colours[name])
    ax.axhline(0, color="grey", lw=0.8)
    ticks = [feature_label(c, labels) for c in standardized.columns]
    ax.set_xticks(x, ticks, rotation=45, ha="right")
    ax.set_title("Snake plot: standardized means per segment")
    ax.set_xlabel("feature")
    ax.set_ylabel("segment mean (standard deviations from average)")
    ax.legend(title="segment", loc="upper left", bbox_to_anchor=(1.01, 1))
    _legible(ax.figure)
    return ax


def plot_category_mix(
    categories: pd.DataFrame,
    attribute: str,
    ax: Axes | None = None,
    *,
    labels: dict[str, str] | None = None,
) -> Axes:
    """Stacked bars: share of each value of ``attribute`` per segment (``category_mix``);
    ``labels``: readable attribute names (``data.customers.labels``)."""
    from segkit.naming import feature_label

    ax = _ax(ax)
    sub = categories[categories["attribute"] == attribute]
    if sub.empty:
        raise ValueError(f"attribute == {attribute!r} not in categories")
    wide = sub.pivot_table(index="segment_name", columns="value", values="share", sort=False) * 100
    wide.plot.barh(stacked=True, ax=ax, width=0.8)
    _swatches(ax, np.arange(len(wide)), wide.index)
    name = feature_label(attribute, labels)
    ax.set_title(f"{name[0].upper()}{name[1:]} by segment")
    ax.set_xlabel("share of segment (%)")
    ax.set_ylabel("segment")
    ax.legend(title=name, loc="upper left", bbox_to_anchor=(1.01, 1))
    _legible(ax.figure)
    return ax


def plot_segment_shares(profiles: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Bars of each segment's share of customers (and of revenue, or of the ``cluster.value``
    column named in ``profiles.attrs["value_label"]``, when known), in %, in the segment's
    colour (customers light, value full)."""
    ax = _ax(ax)
    value = str(profiles.attrs.get("value_label") or "value")
    words = {"share_customers": "customers", "share_revenue": "revenue", "share_value": value}
    shares = {c: n for c, n in words.items() if c in profiles}
    _paired_bars(ax, profiles, "segment_name", shares)
    last = list(shares.values())[-1]
    ax.set_title(f"Segment size and {last} share" if len(shares) > 1 else "Segment size")
    ax.set_xlabel("share (%)")
    ax.set_ylabel("segment")
    _legible(ax.figure)
    return ax


def _paired_bars(ax: Axes, table: pd.DataFrame, label: str, shares: dict[str, str]) -> None:
    """Horizontal bars per segment, one per share column (in %), all in the segment's
    colour: the first light, the last full; the value written at the end of each bar."""
    from matplotlib.patches import Patch

    labels = table[label].astype(str).tolist()
    keys = table["segment"].tolist() if "segment" in table else labels
    colours = [segment_palette(keys)[k] for k in keys]
    y = np.arange(len(labels), dtype=float)
    h = 0.8 / max(len(shares), 1)
    alphas = np.linspace(0.45, 1.0, len(shares)) if len(shares) > 1 else [1.0]
    handles = []
    for j, (col, name) in enumerate(shares.items()):
        pct = table[col].to_numpy(float) * 100
        pos = y - 0.4 + h * (j + 0.5)
        ax.barh(pos, np.nan_to_num(pct), height=h, color=colours, alpha=alphas[j])
        for p, v in zip(pos, pct, strict=True):
            if np.isfinite(v):
                ax.annotate(
                    f"{v:.0f}%", (v, p), xytext=(3, 0), textcoords="offset points", va="center"
                )
        handles.append(Patch(facecolor="grey", alpha=alphas[j], label=name))
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first segment on top
    ax.margins(x=0.12)
    ax.legend(handles=handles, title="share of", loc="lower right")


def _outcome_text(kind: str, value: float, index: float) -> str:
    """A heatmap cell: the rate in % (or the mean) over its index; "" when not shown."""
    if not np.isfinite(value):
        return ""
    shown = (
        f"{value:.0%}"
        if kind == "rate" and value >= 0.1
        else (f"{value:.1%}" if kind == "rate" else f"{value:,.3g}")
    )
    return shown + (f"\n({index:.0f})" if np.isfinite(index) else "")


def plot_outcome_rates(rates: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Which segment accepted which campaign: ``profile.outcome_rates`` as a heatmap.

    Rows are segments, columns outcomes; colour is the index (100 = all customers, on a
    log2 scale so 50 and 200 are equally far), each cell shows the rate (or mean) and its
    index. Suppressed segments (too small to show) are blank.
    """
    from segkit.naming import feature_label

    rates = rates.assign(
        segment_name=rates["segment_name"]
        if "segment_name" in rates.columns
        else "Segment " + rates["segment"].astype(str),
        index=rates["index"].where(~rates["suppressed"].astype(bool)),
        estimate=rates["estimate"].where(~rates["suppressed"].astype(bool)),
    )
    rows = list(dict.fromkeys(rates["segment_name"]))
    cols = list(dict.fromkeys(rates["outcome"]))
    index = rates.pivot(index="segment_name", columns="outcome", values="index")
    index = index.reindex(index=rows, columns=cols).astype("float64")
    text = rates.assign(
        text=[
            _outcome_text(k, float(v), float(i))
            for k, v, i in zip(rates["kind"], rates["estimate"], rates["index"], strict=True)
        ]
    ).pivot(index="segment_name", columns="outcome", values="text")
    text = text.reindex(index=rows, columns=cols)
    ax = _ax(ax, figsize=(max(6, 1.3 * len(cols) + 3), 0.6 * len(rows) + 2))
    _index_heatmap(index, text.to_numpy(), "", ax)
    ax.set_xticklabels([feature_label(c) for c in cols], rotation=30, ha="right")
    keys = rates.drop_duplicates("segment_name").set_index("segment_name")
    keys = keys["segment"] if "segment" in keys else pd.Series(rows, index=rows)
    _swatches(ax, np.arange(len(rows)) + 0.5, [keys[r] for r in rows])
    ax.set_title("Which segment responded to what: rate (index, 100 = all customers)")
    ax.set_xlabel("outcome")
    ax.set_ylabel("segment")
    _legible(ax.figure)
    return ax


def plot_migration(
    migration: pd.DataFrame, ax: Axes | None = None, before: str = "earlier run"
) -> Axes:
    """Heatmap of ``profile.migration``: row shares (%) with customer counts annotated.

    ``before`` names the earlier segmentation in the labels ("earlier run", "2024-06-30").
    """
    ax = _ax(ax, figsize=(7, 5))
    order_from = list(dict.fromkeys(migration["from_segment"]))
    order_to = list(dict.fromkeys(migration["to_segment"]))
    share = migration.pivot(index="from_segment", columns="to_segment", values="row_share")
    count = migration.pivot(index="from_segment", columns="to_segment", values="customers")
    share = share.reindex(index=order_from, columns=order_to) * 100
    count = count.reindex(index=order_from, columns=order_to)
    sns.heatmap(
        share,
        annot=count.fillna(0).astype(int),
        fmt="d",
        cmap="Blues",
        vmin=0,
        vmax=100,
        cbar_kws={"label": "share of the earlier segment (%)"},
        ax=ax,
    )
    ax.set_title(f"Segment migration: customers from {before} (rows) to this run (columns)")
    ax.set_xlabel("segment in this run")
    ax.set_ylabel(f"segment in {before}")
    _legible(ax.figure)
    return ax


# ---------------------------------------------------------------- CLV

_MODEL_LABELS = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD"}


def plot_holdout_by_frequency(holdout: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Actual vs predicted holdout purchases per customer by calibration frequency
    (``clv.holdout_by_frequency``), as figure 4 of Fader, Hardie & Lee (2005)."""
    ax = _ax(ax)
    h = holdout[holdout["calibration_frequency"] != "total"]
    models = [c for c in h.columns if c in _MODEL_LABELS]
    ax.plot(h["calibration_frequency"], h["actual"], "k-o", label="actual")
    for m in models:
        ax.plot(h["calibration_frequency"], h[m], "--s", label=_MODEL_LABELS[m])
    ax.set_title("Holdout check: purchases per customer by calibration frequency")
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean repeat purchases in the holdout")
    ax.legend()
    _legible(ax.figure)
    return ax


def plot_tracking(tracking: pd.DataFrame, cumulative: bool = False, ax: Axes | None = None) -> Axes:
    """Weekly (or cumulative) repeat purchases of the calibration cohort, actual vs expected,
    with the end of the calibration period marked (``clv.tracking``)."""
    ax = _ax(ax, figsize=(8, 4))
    models = [c for c in tracking.columns if c in _MODEL_LABELS]
    if "complete" in tracking:
        tracking = tracking[tracking["complete"]]
    f = (lambda s: s.cumsum()) if cumulative else (lambda s: s)
    ax.plot(tracking["week"], f(tracking["actual"]), "k-", label="actual")
    for m in models:
        ax.plot(tracking["week"], f(tracking[m]), "--", label=_MODEL_LABELS[m])
    cal = tracking.loc[tracking["period"] == "calibration", "week"]
    if len(cal) and len(cal) < len(tracking):
        ax.axvline(cal.max() + 0.5, color="grey", ls=":", label="end of calibration")
    what = "Cumulative" if cumulative else "Weekly"
    ax.set_title(f"{what} repeat purchases: actual vs expected")
    ax.set_xlabel("week since the first purchase in the data")
    ax.set_ylabel("repeat purchases" + (" (cumulative)" if cumulative else " per week"))
    ax.legend()
    _legible(ax.figure)
    return ax


def _history_grid(fit, T: float, max_frequency: int, n: int = 30):
    x = np.arange(0, max_frequency + 1)
    tx = np.linspace(0, T, n)
    X, TX = np.meshgrid(x, tx)
    return x, tx, X, TX


def plot_frequency_recency(
    fit,
    T: float,
    horizon: float,
    max_frequency: int = 20,
    unit: str = "weeks",
    ax: Axes | None = None,
    horizon_label: str | None = None,
) -> Axes:
    """Expected purchases in the next ``horizon`` units for a customer observed for ``T``
    units, by frequency (x axis) and recency (y axis)."""
    ax = _ax(ax, figsize=(7, 5))
    x, tx, X, TX = _history_grid(fit, T, max_frequency)
    Z = fit.expected(horizon, X.ravel(), TX.ravel(), np.full(X.size, T)).reshape(X.shape)
    Z[(X > 0) & (TX == 0)] = np.nan  # repeat buyers have recency > 0
    m = ax.pcolormesh(x, tx, Z, shading="nearest", cmap="viridis")
    when = horizon_label or f"{horizon:.0f} {unit}"
    ax.figure.colorbar(m, ax=ax, label=f"expected purchases in the next {when}")
    ax.set_title(f"Expected purchases, next {when}\n(customers first seen {T:.0f} {unit} ago)")
    ax.set_xlabel("repeat purchases (frequency)")
    ax.set_ylabel(f"time of last purchase since the first ({unit})")
    _legible(ax.figure)
    return ax


def plot_p_alive_matrix(
    fit, T: float, max_frequency: int = 20, unit: str = "weeks", ax: Axes | None = None
) -> Axes:
    """Probability that a customer is still active, by frequency and recency."""
    ax = _ax(ax, figsize=(7, 5))
    x, tx, X, TX = _history_grid(fit, T, max_frequency)
    Z = fit.p_alive(X.ravel(), TX.ravel(), np.full(X.size, T)).reshape(X.shape)
    Z[(X > 0) & (TX == 0)] = np.nan
    m = ax.pcolormesh(x, tx, Z, shading="nearest", cmap="RdYlGn", vmin=0, vmax=1)
    ax.figure.colorbar(m, ax=ax, label="probability alive")
    ax.set_title(f"Probability still a customer\n(customers first seen {T:.0f} {unit} ago)")
    ax.set_xlabel("repeat purchases (frequency)")
    ax.set_ylabel(f"time of last purchase since the first ({unit})")
    _legible(ax.figure)
    return ax


def plot_p_alive_history(
    fit, purchases, T: float, unit: str = "weeks", ax: Axes | None = None
) -> Axes:
    """How one customer's probability alive evolves: it jumps to 1 (BG/NBD) or up at each
    purchase and decays in between. ``purchases`` are purchase times (the first at 0)."""
    ax = _ax(ax, figsize=(8, 3.5))
    times = np.sort(np.asarray(purchases, float))
    grid = np.union1d(np.linspace(0, T, 300), times)
    n_before = np.searchsorted(times, grid, side="right") - 1
    last = times[np.maximum(n_before, 0)]
    pa = fit.p_alive(n_before, last, grid)
    ax.plot(grid, pa, "-", color="C0", label="probability alive")
    for t in times:
        ax.axvline(t, color="grey", lw=0.6, ls="--")
    ax.set_ylim(0, 1.05)
    ax.set_title("Probability alive over one customer's history (dashed: purchases)")
    ax.set_xlabel(f"time since the first purchase ({unit})")
    ax.set_ylabel("probability alive")
    _legible(ax.figure)
    return ax


def plot_clv_by_segment(clv: pd.DataFrame, ax: Axes | None = None, min_size: int = 20) -> Axes:
    """Distribution of CLV per customer by segment (box plots on a log scale); segments
    smaller than ``min_size`` are left out (privacy)."""
    ax = _ax(ax, figsize=(8, 4))
    label = "segment_name" if "segment_name" in clv else "segment"
    floor = 1.0  # below one currency unit of value, customers are shown at 1
    d = clv.assign(clv=clv["clv"].clip(lower=floor))
    sizes = d[label].value_counts()
    d = d[d[label].isin(sizes[sizes >= min_size].index)]
    order = d.groupby(label)["clv"].median().sort_values(ascending=False).index
    keys = d.drop_duplicates(label).set_index(label)
    keys = keys["segment"] if "segment" in keys else pd.Series(order, index=order)
    colours = segment_palette([keys[o] for o in order])
    sns.boxplot(
        data=d,
        y=label,
        x="clv",
        hue=label,
        order=order,
        hue_order=list(order),
        palette={o: colours[keys[o]] for o in order},
        legend=False,
        saturation=1,  # the segment's own colour, as in the other charts
        orient="h",
        showfliers=False,
        whis=(5, 95),
        ax=ax,
    )
    _log_x(ax)
    ax.set_title("CLV per customer by segment (box: middle half; whiskers: 5th-95th pct)")
    ax.set_xlabel(
        money_label("CLV per customer over the horizon")
        + f"\nmargin, discounted; log scale; below {floor:g} shown at {floor:g}"
    )
    ax.set_ylabel("segment")
    _legible(ax.figure)
    return ax


def plot_segment_value(segments: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each segment's share of customers next to its share of expected value (%)."""
    ax = _ax(ax)
    label = "segment_name" if "segment_name" in segments else "segment"
    s = segments[~segments.get("suppressed", pd.Series(False, index=segments.index)).astype(bool)]
    shares = {"share_of_customers": "customers", "share_of_value": "expected value (CLV)"}
    _paired_bars(ax, s, label, shares)
    ax.set_title("Share of customers and of expected value by segment")
    ax.set_xlabel("share (%)")
    ax.set_ylabel("segment")
    _legible(ax.figure)
    return ax


# ---------------------------------------------------------------- A/B evaluation

#: Campaigns (arms) in shades of grey, so that colour always means a segment.
_ARM_COLOURS = ("#222222", "#8a8a8a", "#555555", "#bbbbbb")
_ARM_MARKERS = ("o", "s", "^", "v")


def _lift_unit(kind: str, metric: str) -> str:
    """The unit of a lift: percentage points for a rate, money for the value metric."""
    if kind == "proportion":
        return " (percentage points)"
    if metric == _CONTEXT.value_metric:
        return f" ({_CONTEXT.currency or 'currency units'} per customer)"
    return ""


def plot_forest(
    effects: pd.DataFrame,
    metric: str,
    segment_col: str,
    ax: Axes | None = None,
    labels: dict[str, str] | None = None,
) -> Axes:
    """Forest plot: the lift of each campaign over control with its 95 % interval, overall
    and per segment of ``segment_col`` (``abtest`` effects table)."""
    e = effects[(effects["metric"] == metric) & effects["evaluated"]]
    e = e[e["segment_col"].isin(["all", segment_col])]
    arms = sorted(e["arm"].unique())
    segs = ["all"] + sorted(s for s in e["segment"].unique() if s != "all")
    ax = _ax(ax, figsize=(8, 0.6 * len(segs) * max(len(arms), 1) + 1.2))
    kind = e["kind"].iloc[0] if len(e) else "mean"
    scale = 100 if kind == "proportion" else 1
    y = 0.0
    ticks, names, keys = [], [], []
    for s in segs:
        for j, arm in enumerate(arms):
            r = e[(e["segment"] == s) & (e["arm"] == arm)]
            if r.empty:
                continue
            r = r.iloc[0]
            _interval_bars(
                ax,
                [r["abs_lift"] * scale],
                [y],
                [r["abs_ci_low"] * scale],
                [r["abs_ci_high"] * scale],
                fmt=_ARM_MARKERS[j % 4] if s != "all" else "D",
                color=_ARM_COLOURS[j % 4],
                capsize=3,
            )
            ticks.append(y)
            label = (labels or {}).get(str(s), str(s))
            names.append(f"{label} · {arm}" if len(arms) > 1 else label)
            keys.append(s if s == "all" or segment_col == "segment" else None)
            y -= 1
        y -= 0.5
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(ticks, names)
    _swatches(ax, ticks, keys)
    ax.set_xlabel(f"lift in {metric} over control{_lift_unit(kind, metric)}, 95% interval")
    ax.set_title(f"Lift in {metric} by {segment_col} (diamond: all customers)")
    from matplotlib.lines import Line2D

    arm_keys = [
        Line2D([], [], marker=_ARM_MARKERS[j % 4], color=_ARM_COLOURS[j % 4], label=arm)
        for j, arm in enumerate(arms)
    ]
    ax.legend(handles=arm_keys, loc="best", title="campaign")
    _legible(ax.figure)
    return ax


def plot_roi(
    value: pd.DataFrame,
    segment_col: str,
    ax: Axes | None = None,
    labels: dict[str, str] | None = None,
) -> Axes:
    """Profit per contact (lift × margin − cost) by segment and campaign, with intervals."""
    v = value[value["segment_col"] == segment_col].copy()
    v["label"] = [(labels or {}).get(str(s), str(s)) for s in v["segment"]]
    ax = _ax(ax, figsize=(8, 0.5 * len(v) + 1.5))
    arms = sorted(v["arm"].unique())
    segs = list(dict.fromkeys(v["label"]))
    h = 0.8 / max(len(arms), 1)
    for j, arm in enumerate(arms):
        r = v[v["arm"] == arm].set_index("label").reindex(segs)
        pos = np.arange(len(segs)) + j * h
        ax.barh(pos, r["profit_per_contact"], height=h, color=_ARM_COLOURS[j % 4], label=arm)
        _interval_bars(
            ax,
            r["profit_per_contact"],
            pos,
            r["profit_per_contact_ci_low"],
            r["profit_per_contact_ci_high"],
            fmt="none",
            color="black",
            capsize=2,
        )
    ticks = np.arange(len(segs)) + h * (len(arms) - 1) / 2
    ax.set_yticks(ticks, segs)
    first = v.drop_duplicates("label").set_index("label")["segment"]
    keys = [s if str(s) == "all" or segment_col == "segment" else None for s in first[segs]]
    _swatches(ax, ticks, keys)
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlabel(money_label("profit per contact (lift × margin − cost)") + ", 95% interval")
    ax.set_title(f"Is the campaign worth its cost? Profit per contact by {segment_col}")
    ax.legend(title="campaign")
    _legible(ax.figure)
    return ax


# ----------------------------------------------------------------------------- 06 plan

#: Colour of each decision in the plots.
PLAN_DECISION_COLOURS = {
    "send": "C2",
    "not chosen": "C0",
    "not proven": "C1",
    "do not send": "C3",
    "too small": "grey",
}


def plan_best_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Per segment the row shown: the one sent most, else the highest profit per contact."""
    order = table.sort_values(
        ["segment", "contacts", "profit_per_contact"], ascending=[True, False, False], kind="stable"
    )
    return order.drop_duplicates("segment").reset_index(drop=True)


def plot_plan_profit(table: pd.DataFrame, ax: Axes | None = None, currency: str = "") -> Axes:
    """Profit per contact of each segment's campaign (the one sent, else the best), with
    its 95 % interval, coloured by the decision.

    ``table``: ``plan.csv`` (:data:`segkit.plan.PLAN_COLUMNS`).
    """
    rows = plan_best_rows(table)
    ax = _ax(ax, (8, 0.55 * len(rows) + 1.6))
    labels = [
        f"{r.segment_name} · {r.campaign} / {r.channel}"
        if isinstance(r.segment_name, str)
        else f"{r.segment} · {r.campaign} / {r.channel}"
        for r in rows.itertuples()
    ]
    pos = np.arange(len(rows))[::-1]
    for decision, colour in PLAN_DECISION_COLOURS.items():
        m = (rows["decision"] == decision).to_numpy()
        if not m.any():
            continue
        r = rows[m]
        _interval_bars(
            ax,
            r["profit_per_contact"],
            pos[m],
            r["profit_per_contact_low"],
            r["profit_per_contact_high"],
            fmt="o",
            color=colour,
            capsize=3,
            label=decision,
        )
    ax.set_yticks(pos, labels)
    _swatches(ax, pos, rows["segment_name"].where(rows["segment_name"].notna(), rows["segment"]))
    ax.axvline(0, color="grey", lw=1)
    what = "expected profit per contact, 95% interval"
    ax.set_xlabel(money_label(what, currency))
    ax.set_title("Profit per contact by segment (campaign / channel)")
    ax.legend(title="decision")
    _legible(ax.figure)
    return ax


def plot_plan_strategies(
    comparison: pd.DataFrame, ax: Axes | None = None, currency: str = ""
) -> Axes:
    """Expected profit of the plan, of sending everyone the best campaign and of sending
    nobody, with 95 % intervals (:func:`segkit.plan.compare`)."""
    ax = _ax(ax, (7, 2.6))
    c = comparison.reset_index(drop=True)
    pos = np.arange(len(c))[::-1]
    ax.barh(pos, c["expected_profit"], color=["C2", "C0", "grey"][: len(c)], alpha=0.7)
    _interval_bars(
        ax,
        c["expected_profit"],
        pos,
        c["expected_profit_low"],
        c["expected_profit_high"],
        fmt="none",
        color="black",
        capsize=3,
    )
    ax.set_yticks(pos, c["strategy"])
    ax.axvline(0, color="grey", lw=1)
    what = "expected incremental profit, 95% interval"
    ax.set_xlabel(money_label(what, currency))
    ax.set_title("The plan against sending everyone and sending nobody")
    _legible(ax.figure)
    return ax
