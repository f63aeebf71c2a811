"""The table of each stage notebook: the columns a reader needs, labelled, then :func:`show`.

One formatter per table, by stage: 01 explore (:func:`quality`, :func:`feature_summary`),
02 cluster (:func:`k_selection`, :func:`sizes`, :func:`feature_table`, :func:`rfm`),
03 profile (:func:`profile_means`, :func:`rules`, :func:`actions`,
:func:`outcome_rates`), 04 clv (:func:`clv_segments`, :func:`holdout_errors`,
:func:`holdout`, :func:`clv_params`), 05 abtest (:func:`recommendations`,
:func:`heterogeneity`, :func:`srm`, :func:`planning`, :func:`effects`). The cell rules
are those of :mod:`segkit.stages.tables.cells`; notebooks call them as
``tables.<name>`` (:mod:`segkit.stages.tables` re-exports both modules).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from segkit.naming import feature_label
from segkit.stages.run import readable_labels
from segkit.stages.tables.cells import (
    DASH,
    NOT_IDENTIFIED,
    Col,
    Table,
    auto_decimals,
    currency_of,
    fmt_interval,
    fmt_money,
    fmt_num,
    fmt_pct,
    fmt_sig,
    is_missing,
    show,
    untrusted,
)

if TYPE_CHECKING:
    from segkit.stages.run import Run

# ----------------------------------------------------------------------------- 01 explore


def quality(df: pd.DataFrame) -> Table:
    """Rows read, used and set aside per input (``result.quality``)."""
    cols = [
        Col("input", "input"),
        Col("rows_in", "rows read", "int"),
        Col("rows_used", "rows used", "int"),
        Col("rows_rejected", "rows set aside", "int"),
    ]
    return show(df.reset_index(), cols)


def feature_summary(df: pd.DataFrame, run: Run | None = None) -> Table:
    """The summary of each numeric customer feature (``result.features``), reduced to the
    centre and spread a reader needs; every statistic is in ``feature_summary.csv``."""
    full = df.rename_axis("feature").reset_index()
    labels = readable_labels(run) if run else None
    shown = full.assign(label=[feature_label(str(f), labels) for f in full["feature"]])
    cols = [
        Col("label", "feature"),
        Col("count", "customers with a value", "int"),
        Col("missing", "missing", "int"),
        Col("mean", "mean", "num"),
        Col("25%", "25th percentile", "num"),
        Col("50%", "median", "num"),
        Col("75%", "75th percentile", "num"),
        Col("max", "largest", "num"),
    ]
    return show(shown, cols, run=run, full="feature_summary.csv")


# ----------------------------------------------------------------------------- 02 cluster


def k_selection(df: pd.DataFrame, run: Run | None = None) -> Table:
    """The choice-of-k table, one row per k (the full table: ``k_selection.csv``)."""
    cols = [
        Col("k", "segments (k)", "int"),
        Col("silhouette", "silhouette", "num:3"),
        Col("calinski_harabasz", "Calinski-Harabasz", "num:0"),
        Col("davies_bouldin", "Davies-Bouldin", "num:3"),
        Col("gap", "gap", "num:3"),
        Col("bic", "BIC", "num:0"),
        Col("min_stability", "stability (lowest segment)", "num:2"),
        Col("min_size", "smallest segment", "int"),
        Col("admissible", "admissible", "bool"),
        Col("votes", "best by"),
        Col("recommended", "chosen", "bool"),
    ]
    return show(df, cols, run=run, full="k_selection.csv", dash_note="– no measure voted for it.")


def _value_cols(df: pd.DataFrame) -> list[Col]:
    return [
        Col(c, f"mean {feature_label(c[5:])} per customer", "money")
        for c in df.columns
        if str(c).startswith("mean_")
    ]


def sizes(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Size and value per segment (``result.sizes``)."""
    cols = [
        Col("segment", "segment", "int"),
        Col("segment_name", "name"),
        Col("customers", "customers", "int"),
        Col("share", "share of customers", "pct"),
        *_value_cols(df),
    ]
    return show(df, cols, run=run)


def feature_table(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Every column of the customer table and what clustering did with it."""
    cols = [
        Col("feature", "column"),
        Col("role", "role"),
        Col("used", "clustered", "bool"),
        Col("transform", "transform"),
        Col("reason", "why"),
    ]
    return show(
        df, cols, run=run, full="cluster_features.csv", dash_note="– not clustered: no transform."
    )


def rfm(df: pd.DataFrame) -> Table:
    """The RFM segments: size, share of revenue and the usual action."""
    cols = [
        Col("rfm_segment", "RFM segment"),
        Col("customers", "customers", "int"),
        Col("share_customers", "share of customers", "pct"),
        Col("share_revenue", "share of revenue", "pct"),
        Col("action", "usual action"),
    ]
    return show(df, cols)


# ----------------------------------------------------------------------------- 03 profile

#: The features a profile table shows (when present), and those that are money.
PROFILE_KEYS: tuple[str, ...] = ("orders", "revenue", "aov", "days_since_last", "tenure_days")
PROFILE_KEYS += ("age", "recency", "history")
MONEY_FEATURES = {"revenue", "aov", "monetary", "history"}


def _mean_median(mean: Any, median: Any, currency: str | None) -> str:
    """ "mean (median)" with the decimals of the mean; money when ``currency`` is not None."""
    if is_missing(mean):
        return DASH
    if currency is None:
        d = auto_decimals(float(mean))
        return f"{fmt_num(mean, d)} ({fmt_num(median, d)})"
    d = 2 if abs(float(mean)) < 100 else 0
    return f"{fmt_money(mean, currency, d)} ({fmt_money(median, currency, d)})"


def profile_means(profiles: pd.DataFrame, run: Run | None = None) -> Table:
    """Mean (median) of the main features per segment, transposed: a row per feature, a
    column per segment, so that any number of segments fits the page width."""
    key = [c for c in PROFILE_KEYS if f"mean_{c}" in profiles]
    if "days_since_last" in key:  # transaction data: "recency" is the BTYD one, in time units
        key.remove("recency")
    currency, labels = currency_of(run), readable_labels(run) if run else None
    rows = []
    for c in key:
        cells = [
            _mean_median(m, md, currency if c in MONEY_FEATURES else None)
            for m, md in zip(profiles[f"mean_{c}"], profiles[f"median_{c}"], strict=True)
        ]
        rows.append([feature_label(c, labels), *cells])
    head = ["feature", *[str(n) for n in profiles["segment_name"]]]
    notes = ["Each cell: mean (median) of the segment's customers."]
    if any(DASH in r for r in rows):
        notes.append("– segment below the minimum size: not detailed (privacy).")
    return Table(head, rows, [False] + [True] * (len(head) - 1), notes=notes)


def rules(df: pd.DataFrame, run: Run | None = None) -> Table:
    """The rules that describe each segment, in full (``rules.csv``)."""
    cols = [
        Col("segment", "segment", "int"),
        Col("segment_name", "name"),
        Col("rule", "rule"),
        Col("customers", "customers matching", "int"),
        Col("precision", "precision", "pct"),
        Col("recall", "recall", "pct"),
        Col("coverage", "share of all customers", "pct"),
    ]
    return show(df, cols, run=run, full="rules.csv")


def actions(df: pd.DataFrame) -> Table:
    """The suggested action per segment and why (with the value index once CLV is known)."""
    cols = [
        Col("segment", "segment", "int"),
        Col("segment_name", "name"),
        Col("action", "action"),
        Col("reason", "why"),
        Col("value_index", "value index (100 = average)", "num:0"),
    ]
    return show(df, cols, dash_note="– no value index: the segment has no CLV.")


def outcome_rates(df: pd.DataFrame | None) -> Table | None:
    """The outcomes per segment: rate (as %) or mean, with its interval and index."""
    if df is None:
        return None
    out = df.copy()
    rate = out["kind"].eq("rate")
    for c in ("estimate", "overall"):
        out[c] = [fmt_pct(v) if r else fmt_num(v) for v, r in zip(out[c], rate, strict=True)]
    out["interval"] = [
        fmt_interval(lo, hi, "pct" if r else "num")
        for lo, hi, r in zip(out["ci_low"], out["ci_high"], rate, strict=True)
    ]
    cols = [
        Col("segment", "segment", "int"),
        Col("segment_name", "name"),
        Col("outcome", "outcome"),
        Col("customers", "customers", "int"),
        Col("estimate", "rate or mean", "pre"),
        Col("interval", "95% interval", "pre"),
        Col("overall", "all customers", "pre"),
        Col("index", "index (100 = all)", "num:0"),
    ]
    note = "– segment below the minimum size (privacy), or no value to compare with."
    return show(out, cols, dash_note=note)


# ----------------------------------------------------------------------------- 04 clv


def clv_segments(df: pd.DataFrame, run: Run | None = None) -> Table:
    """What each segment is worth (``clv_segments.csv`` holds every column)."""
    cols = [
        Col("segment", "segment", "int"),
        Col("segment_name", "name"),
        Col("customers", "customers", "int"),
        Col("share_of_customers", "share of customers", "pct"),
        Col("share_of_value", "share of value", "pct"),
        Col("clv_total", "CLV, whole segment", "money"),
        Col("clv_per_customer", "CLV per customer", "money"),
        Col("clv_median", "median CLV", "money"),
        Col("p_alive", "probability still a customer", "pct"),
        Col("expected_purchases", "expected purchases", "num"),
    ]
    note = "– segment below the minimum size: not detailed (privacy)."
    return show(df, cols, run=run, full="clv_segments.csv", dash_note=note)


def holdout_errors(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Each purchase model's holdout check: predicted against actual repeat purchases."""
    out = df.assign(error=df["error_pct"] / 100)
    cols = [
        Col("model", "model"),
        Col("actual_total", "actual purchases", "num:0"),
        Col("predicted_total", "predicted purchases", "num:0"),
        Col("error", "error", "pct"),
        Col("mae", "mean absolute error per customer", "num"),
        Col("rmse", "root mean square error", "num"),
        Col("bic", "BIC (lower fits better)", "num:0"),
    ]
    return show(out, cols, run=run, full="clv_models.csv")


def holdout(df: pd.DataFrame) -> Table:
    """Mean holdout purchases by calibration frequency, actual and per model."""
    from segkit.clv import MODELS

    cols = [
        Col("calibration_frequency", "repeat purchases in calibration"),
        Col("customers", "customers", "int"),
        Col("actual", "actual", "num"),
    ]
    cols += [Col(m, spec.label, "num") for m, spec in MODELS.items() if m in df]
    notes = [
        "Mean purchases per customer in the holdout period; "
        "the last row: the total over all customers."
    ]
    return show(
        df.assign(calibration_frequency=df["calibration_frequency"].astype(str)), cols, notes=notes
    )


def clv_params(result: Any) -> Table:
    """The fitted parameters with their 95 % intervals; a parameter the fit flags as
    weakly identified, or whose interval bound is over 10^6 times the estimate, reads
    "not identified" with the reason instead of numbers nobody should quote."""
    weak = {(f.spec.label, p) for f in result.fits.values() for p in f.weak}
    rows = []
    for _, r in result.params.iterrows():
        why = untrusted(r["estimate"], r["ci_low"], r["ci_high"])
        if (r["model"], r["parameter"]) in weak:
            why = "weakly identified: its 95% interval spans a factor over 10,000"
        if why:
            rows.append([r["model"], r["parameter"], NOT_IDENTIFIED, DASH, why])
            continue
        interval = fmt_interval(r["ci_low"], r["ci_high"])
        rows.append(
            [r["model"], r["parameter"], fmt_sig(r["estimate"]), fmt_sig(r["se"], 3), interval]
        )
    notes = []
    if any(row[2] == NOT_IDENTIFIED for row in rows):
        notes.append(
            "not identified: the data barely constrain this parameter; predictions that "
            "rest on it (e.g. probability alive) are unreliable. – no standard error shown."
        )
    head = ["model", "parameter", "estimate", "standard error", "95% interval"]
    return Table(head, rows, [False, False, True, True, False], notes=notes)


# ----------------------------------------------------------------------------- 05 abtest


def _grouping(df: pd.DataFrame) -> list[Col]:
    """A "grouping" column when the table mixes segment columns (segment, RFM, …)."""
    if "segment_col" in df and df["segment_col"].nunique() > 1:
        return [Col("segment_col", "grouping")]
    return []


def recommendations(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Per segment, the most profitable campaign and the decision."""
    cols = [
        *_grouping(df),
        Col("label", "segment"),
        Col("campaign", "campaign"),
        Col("action", "decision"),
        Col("customers", "customers", "int"),
        Col("profit_per_contact", "profit per contact", "money"),
        Col(("profit_ci_low", "profit_ci_high"), "95% interval", "money", "profit_per_contact"),
        Col("p_profit_adjusted", "p (adjusted)", "p"),
        Col("expected_profit", "expected profit", "money"),
    ]
    return show(df, cols, run=run, full="ab_recommendations.csv")


def heterogeneity(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Does a campaign's effect differ between segments: the test, its p-values."""
    cols = [
        *_grouping(df),
        Col("metric", "metric"),
        Col("arm", "campaign"),
        Col("segments", "segments", "int"),
        Col("test", "test"),
        Col("p_value", "p", "p"),
        Col("p_adjusted", "p (adjusted)", "p"),
        Col("significant", "differs", "bool"),
        Col("note", "note"),
    ]
    return show(df, cols, run=run, full="ab_heterogeneity.csv", dash_note="– nothing to note.")


def srm(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Sample-ratio check: customers per arm, overall and per segment."""
    arms = [c for c in df.columns if str(c).startswith("n_")]
    cols = [
        *_grouping(df),
        Col("segment", "segment"),
        *[Col(c, f"customers: {c[2:]}", "int") for c in arms],
        Col("chi2", "chi²", "num:2"),
        Col("p_value", "p", "p"),
        Col("mismatch", "mismatch", "bool"),
    ]
    return show(df.assign(segment=df["segment"].astype(str)), cols, run=run, full="ab_srm.csv")


def planning(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Customers each arm needs to detect the target lift, against those it has."""
    cols = [
        Col("metric", "metric"),
        Col("arm", "campaign"),
        Col("control_mean", "control mean", "num"),
        Col("target_rel_lift", "lift to detect", "pct"),
        Col("n_per_arm_needed", "customers needed per arm", "int"),
        Col("n_per_arm_actual", "customers per arm", "int"),
        Col("power", "power", "pct"),
    ]
    return show(df, cols, run=run, full="ab_planning.csv")


def _effect_cells(r: pd.Series, money: bool, currency: str) -> tuple[str, str, str, str]:
    """Control mean, campaign mean, lift and its interval, in the metric's unit."""
    if r["kind"] == "proportion":
        means = fmt_pct(r["mean_control"]), fmt_pct(r["mean_treatment"])
        lift = f"{100 * float(r['abs_lift']):.1f} pts" if not is_missing(r["abs_lift"]) else DASH
        return (*means, lift, fmt_interval(r["abs_ci_low"], r["abs_ci_high"], "pts"))
    unit = "money" if money else "num"
    f: Callable[[Any], str] = (lambda v: fmt_money(v, currency)) if money else fmt_num
    interval = fmt_interval(r["abs_ci_low"], r["abs_ci_high"], unit, currency)
    if untrusted(r["abs_lift"], r["abs_ci_low"], r["abs_ci_high"]):
        interval = NOT_IDENTIFIED
    return f(r["mean_control"]), f(r["mean_treatment"]), f(r["abs_lift"]), interval


def effects(df: pd.DataFrame, run: Run | None = None) -> Table:
    """Each campaign's effect on each metric over all customers (the rows of
    ``ab_effects.csv`` with segment "all"; the file holds every segment and column)."""
    rows = df[df["segment_col"] == "all"]
    value_metric = ((run.params.get("abtest") or {}).get("value_metric")) if run else None
    currency = currency_of(run)
    cells = [_effect_cells(r, r["metric"] == value_metric, currency) for _, r in rows.iterrows()]
    out = rows.assign(
        control_txt=[c[0] for c in cells],
        campaign_txt=[c[1] for c in cells],
        lift_txt=[c[2] for c in cells],
        ci_txt=[c[3] for c in cells],
    )
    cols = [
        Col("metric", "metric"),
        Col("arm", "campaign"),
        Col("control_txt", "control", "pre"),
        Col("campaign_txt", "with the campaign", "pre"),
        Col("lift_txt", "lift", "pre"),
        Col("ci_txt", "95% interval", "pre"),
        Col("rel_lift", "relative lift", "pct"),
        Col("p_adjusted", "p (adjusted)", "p"),
        Col("power", "power", "pct"),
    ]
    notes = ["Lift of a rate in percentage points (pts); p adjusted across campaigns."]
    return show(out, cols, run=run, full="ab_effects.csv", notes=notes)
