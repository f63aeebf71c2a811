"""Segment profiles: size, shares of customers and of value, means, indexes, category mix.

- :func:`profile`: one row per segment; segments under ``min_segment_size`` are folded into
  one "other/suppressed" row (privacy); :func:`profiled` drops that row again.
- :func:`index_table`: segment mean / population mean × 100 (or the standardized means);
  :func:`category_mix`: the categorical attributes in long form.
- :func:`with_levels`: integer codes (a region 1/2/3) as categories, never as numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.core.params import MIN_SEGMENT_SIZE
from segkit.naming import (
    align_segments,
    categorical_columns,
    feature_label,
    numeric_columns,
    segment_names,
)

SUPPRESSED = 0  # segment number of the "other/suppressed" row


def profile(
    customers: pd.DataFrame,
    segments: pd.Series | pd.DataFrame,
    min_segment_size: int = MIN_SEGMENT_SIZE,
    *,
    names: dict[int, str] | None = None,
    value_col: str | None = "revenue",
    value_label: str = "",
) -> pd.DataFrame:
    """One row per segment: size, shares, mean/median/index/z of every numeric feature.

    Parameters
    ----------
    customers : one row per customer with ``customer_id`` and features/attributes.
    segments : frame with ``customer_id`` and ``segment`` (every id must be a customer),
        or one segment per row of ``customers``.
    min_segment_size : segments with fewer customers are not profiled in detail: they are
        pooled into one row (``segment == 0``, "other (suppressed)") holding only their
        count and share of customers (privacy: no aggregate of a handful of people).
    names : segment number -> name; derived with :func:`segment_names` when None.
    value_col : the column whose sum per segment is its share of value (``cluster.value``;
        revenue of a transaction log); None or absent: no value share.
    value_label : how the value reads in charts ("total spend"); "" = from its name.

    Returns
    -------
    DataFrame with ``segment, segment_name, n, share_customers`` and the value share:
    ``share_revenue`` when ``value_col`` is "revenue", else ``share_value`` (the frame's
    ``attrs`` hold ``value_col`` and ``value_label`` for the size chart); per
    numeric feature ``f``: ``mean_f, median_f, index_f`` (segment mean / population mean
    × 100; NaN when the population mean is not positive), ``z_f`` (standardized mean), and
    per categorical attribute value ``pct_<attr>=<value>`` (share of the segment).
    """
    check_scalar(min_segment_size, "min_segment_size", int, ge=1)
    seg = align_segments(customers, segments, "segments")
    names = names if names is not None else segment_names(customers, seg)
    num, cat = numeric_columns(customers), categorical_columns(customers)
    sizes = seg.value_counts().sort_index()
    shown = [int(s) for s in sizes.index if sizes[s] >= min_segment_size]
    small = [int(s) for s in sizes.index if sizes[s] < min_segment_size]
    keep = seg.isin(shown)
    x = customers.loc[keep, num]
    g = x.groupby(seg[keep])
    out = pd.DataFrame({"segment": shown})
    out["segment_name"] = [names.get(s, f"Segment {s}") for s in shown]
    out["n"] = sizes.loc[shown].to_numpy()
    out["share_customers"] = out["n"] / len(customers)
    value = value_col if value_col and value_col in customers.columns else ""
    share = value_share_column(value)
    if share:
        total = customers[value].sum()
        rev = customers.loc[keep, value].groupby(seg[keep]).sum()
        out[share] = (rev.reindex(shown) / total).to_numpy() if total > 0 else np.nan
    pop_mean, pop_std = customers[num].mean(), customers[num].std()
    means, medians = g.mean().loc[shown], g.median().loc[shown]
    cols: dict[str, Any] = {}
    for c in num:
        cols[f"mean_{c}"] = means[c].to_numpy()
        cols[f"median_{c}"] = medians[c].to_numpy()
    for c in num:
        m = pop_mean[c]
        cols[f"index_{c}"] = (means[c] / m * 100).to_numpy() if m > 0 else np.nan
    for c in num:
        sd = pop_std[c]
        cols[f"z_{c}"] = ((means[c] - pop_mean[c]) / sd).to_numpy() if sd > 0 else 0.0
    for c in cat:
        mix = pd.crosstab(seg[keep], customers.loc[keep, c].astype("string"), normalize="index")
        for v in mix.columns:
            cols[f"pct_{c}={v}"] = mix[v].reindex(shown).fillna(0.0).to_numpy()
    out = pd.concat([out, pd.DataFrame(cols, index=out.index)], axis=1)
    if small:
        n_small = int(sizes.loc[small].sum())
        row = {
            "segment": SUPPRESSED,
            "segment_name": f"other ({len(small)} segment{'s' * (len(small) != 1)} under "
            f"{min_segment_size} customers, suppressed)",
            "n": n_small,
            "share_customers": n_small / len(customers),
        }
        out = pd.concat([out, pd.DataFrame([row])], ignore_index=True)
    if share:
        out.attrs.update(value_col=value, value_label=value_label or feature_label(value))
    return out


def value_share_column(value_col: str | None) -> str:
    """The column of :func:`profile` holding each segment's share of ``value_col``.

    >>> value_share_column("revenue"), value_share_column("total_spend"), value_share_column(None)
    ('share_revenue', 'share_value', '')
    """
    if not value_col:
        return ""
    return "share_revenue" if value_col == "revenue" else "share_value"


def profiled(profiles: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`profile` for segments profiled in detail (not the suppressed row).

    >>> p = pd.DataFrame({"segment": [1, 0], "segment_name": ["Best", "other"]})
    >>> profiled(p)["segment"].tolist()
    [1]
    """
    check_columns(profiles, ["segment", "segment_name"], "profiles")
    return profiles[profiles["segment"] != SUPPRESSED]


def index_table(profiles: pd.DataFrame, prefix: str = "index_") -> pd.DataFrame:
    """Segment × feature table of indexes (100 = population average) from :func:`profile`.

    Rows are segment names (suppressed segments excluded), columns feature names.
    ``prefix="z_"`` gives the standardized means used by the snake plot instead.
    """
    p = profiled(profiles)
    cols = [c for c in p.columns if c.startswith(prefix)]
    if not cols:
        raise SegkitError(f"profiles has no {prefix}* columns; columns are {list(p.columns)}")
    t = p.set_index("segment_name")[cols]
    t.columns = [c[len(prefix) :] for c in cols]
    return t.dropna(axis=1, how="all")


def category_mix(profiles: pd.DataFrame) -> pd.DataFrame:
    """Long table ``segment_name, attribute, value, share`` of the categorical attributes."""
    p = profiled(profiles)
    cols = [c for c in p.columns if c.startswith("pct_")]
    long = p.melt(id_vars="segment_name", value_vars=cols, var_name="key", value_name="share")
    if cols:
        parts = long["key"].str[4:].str.split("=", n=1, expand=True)
        long["attribute"], long["value"] = parts[0], parts[1]
    else:
        long["attribute"] = pd.Series(dtype="string")
        long["value"] = pd.Series(dtype="string")
    return long[["segment_name", "attribute", "value", "share"]]


def with_levels(
    customers: pd.DataFrame, columns: list[str], labels: dict[str, str] | None = None
) -> pd.DataFrame:
    """A copy of ``customers`` whose ``columns`` are categories (text levels), not numbers.

    Integer codes (a region 1/2/3, a channel 1/2) have no mean: profiled as numbers they
    would give "index of Region 102". Each code becomes its level ("2", not "2.0"), or its
    label when ``labels`` has one (``{"Channel=2": "retail"}``); missing stays missing. A
    text column gets its labelled levels (``{"Education=PhD": "doctorate"}``), others stay.
    Columns absent from ``customers`` (or boolean) are ignored; the input is not changed.

    >>> t = pd.DataFrame({"customer_id": ["a", "b", "c"], "Channel": [1.0, 2.0, None]})
    >>> with_levels(t, ["Channel"], {"Channel=2": "retail"})["Channel"].tolist()
    ['1', 'retail', <NA>]
    """
    labels = labels or {}
    out = customers.copy()
    for c in columns:
        if c not in out.columns or pd.api.types.is_bool_dtype(out[c]):
            continue
        values, numeric = out[c], pd.api.types.is_numeric_dtype(out[c])
        whole = values.dropna()
        if numeric and len(whole) and bool((whole == np.round(whole)).all()):
            values = values.astype("Int64")
        text = values.astype("string")
        named = {v: labels[f"{c}={v}"] for v in text.dropna().unique() if f"{c}={v}" in labels}
        if numeric or named:
            out[c] = text.replace(named) if named else text
    return out
