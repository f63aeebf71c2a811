"""Who is in each segment, in words a marketing team can act on.

- :func:`segment_names`: a descriptive, unique name per segment from its profile.
- :func:`profile`: size, share of customers and of value (revenue or ``cluster.value``),
  means/medians, categorical mix;
  segments under ``min_segment_size`` are folded into one "other/suppressed" row (privacy).
- :func:`index_table`: segment mean / population mean × 100.
- :func:`describe_rules`: plain-English rules from a shallow surrogate decision tree, with
  precision, recall and coverage per rule and the tree's fidelity to the segments.
- :func:`with_levels`: integer codes (a region 1/2/3) as categories, never as numbers.
- :func:`suggest_actions`: retain, develop, win back, nurture or leave alone, with the reason,
  from recency/frequency/money; for a customer table (:func:`attribute_action`) from the
  value index of ``cluster.value`` and the outcome rates (reward and upsell, fix service
  first, use the offer they respond to, low-cost channel only…).
- :func:`migration`: transition matrix between two segmentations (incl. new/gone customers).
- :func:`outcome_rates`: rate (0/1 outcomes) or mean of each outcome per segment, with its
  95% interval and index; segments under ``min_size`` show no numbers (privacy).

The stage that runs these on a run's segments is :mod:`segkit.stages.profile`.
:func:`segment_names` and :func:`feature_label` live in :mod:`segkit.naming` and are
re-exported here.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.core.params import MIN_SEGMENT_SIZE
from segkit.naming import (
    align_segments,
    categorical_columns,
    feature_label,
    feature_unit,
    is_share,
    numeric_columns,
    segment_names,
)

__all__ = [
    "OUTCOME_RATE_COLUMNS",
    "SUPPRESSED",
    "Rules",
    "category_mix",
    "describe_rules",
    "feature_label",
    "index_table",
    "migration",
    "outcome_rates",
    "profile",
    "profiled",
    "segment_names",
    "attribute_action",
    "suggest_actions",
    "value_share_column",
    "with_levels",
]

# ----------------------------------------------------------------------- profiles

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
            "segment_name": f"other ({len(small)} segments under {min_segment_size} customers, "
            "suppressed)",
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


# -------------------------------------------------------------------------- rules

# BTYD columns say what orders/days_since_last/tenure_days/aov say, in harder words.
_BTYD_TWINS = {"frequency": "orders", "recency": "days_since_last", "T": "tenure_days"}


def _tree_inputs(customers: pd.DataFrame) -> pd.DataFrame:
    num = [
        c
        for c in numeric_columns(customers)
        if customers[c].notna().all()  # rules on imputed values would read wrong
        and not (c in _BTYD_TWINS and _BTYD_TWINS[c] in customers.columns)
        and not (c == "monetary" and "aov" in customers.columns)
    ]
    x = customers[num].astype("float64")
    cat = categorical_columns(customers)
    if cat:
        dummies = pd.get_dummies(customers[cat].astype("string"), prefix_sep="=", dtype="float64")
        x = pd.concat([x, dummies], axis=1)
    return x


Labels = dict[str, str] | None  # column -> readable name (data.customers.labels)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


_YEAR = re.compile(r"year|birth|yob", re.IGNORECASE)


def _whole(v: float, feature: str) -> str:
    """A whole number with thousands separators, except a year ("1,984" reads wrong).

    >>> _whole(12345.0, "Income"), _whole(1984.0, "Year_Birth")
    ('12,345', '1984')
    """
    return f"{v:.0f}" if _YEAR.search(feature) else f"{v:,.0f}"


def _condition(feature: str, op: str, t: float, integer: bool, labels: Labels = None) -> str:
    if "=" in feature:  # one-hot column "attr=value": <= 0.5 means "not"
        attr, value = feature.split("=", 1)
        return f"{feature_label(attr, labels)} is {'not ' if op == '<=' else ''}{value}"
    label, unit = feature_label(feature, labels), feature_unit(feature)
    if is_share(feature):
        return f"{label} {'≤' if op == '<=' else '>'} {t:.0%}"
    if integer:
        a, b = _whole(np.floor(t), feature), _whole(np.floor(t) + 1, feature)
        text = f"≤ {a}" if op == "<=" else f"≥ {b}"
    else:
        text = f"{'≤' if op == '<=' else '>'} {_fmt(t)}"
    return f"{label} {text}" + (f" {unit}" if unit else "")


def _between(feature: str, lo: float, hi: float, integer: bool, labels: Labels = None) -> str:
    """``lo < x <= hi`` in words: "last purchase 30-39 days ago", "aov > 20 and ≤ 50"."""
    label, unit = feature_label(feature, labels), feature_unit(feature)
    if is_share(feature):
        return f"{label} > {lo:.0%} and ≤ {hi:.0%}"
    if integer:
        a, b = _whole(np.floor(lo) + 1, feature), _whole(np.floor(hi), feature)
        text = a if a == b else f"{a}-{b}"
        return f"{label} {text}" + (f" {unit}" if unit else "")
    return f"{label} > {_fmt(lo)} and ≤ {_fmt(hi)}" + (f" {unit}" if unit else "")


def _merge_conditions(
    merged: dict[tuple[str, str], float],
    integer: dict[str, bool],
    binary: dict[str, bool],
    labels: Labels = None,
) -> list[str]:
    """Path conditions in words: one phrase per feature or categorical attribute."""
    words: list[str] = []
    cats: dict[str, tuple[list[str], list[str]]] = {}
    for f in dict.fromkeys(f for f, _ in merged):
        lo, hi = merged.get((f, ">")), merged.get((f, "<="))
        if "=" in f:  # one-hot "attr=value": > 0.5 is "is value", <= 0.5 "is not value"
            attr, value = f.split("=", 1)
            pos, neg = cats.setdefault(attr, ([], []))
            (pos if lo is not None else neg).append(value)
        elif binary[f] and not is_share(f):
            words.append(f"{feature_label(f, labels)} = {1 if lo is not None else 0}")
        elif lo is not None and hi is not None:
            words.append(_between(f, lo, hi, integer[f], labels))
        else:
            op = ">" if lo is not None else "<="
            words.append(_condition(f, op, merged[(f, op)], integer[f], labels))
    for attr, (pos, neg) in cats.items():
        label = feature_label(attr, labels)
        if pos:  # "is X" implies every "is not Y" on the same attribute
            words.append(f"{label} is {pos[0]}")
        elif len(neg) == 1:
            words.append(f"{label} is not {neg[0]}")
        else:
            words.append(f"{label} is neither {', '.join(neg[:-1])} nor {neg[-1]}")
    return words


Condition = tuple[str, str, float]  # (feature, "<=" or ">", threshold)


def _tree_paths(t: Any, columns: list[str]) -> dict[int, list[Condition]]:
    """Leaf node -> the conditions on the path from the root of sklearn tree ``t``."""
    paths: dict[int, list[Condition]] = {}

    def walk(node: int, conds: list[Condition]) -> None:
        if t.children_left[node] == -1:
            paths[node] = conds
            return
        f, thr = columns[t.feature[node]], float(t.threshold[node])
        walk(t.children_left[node], [*conds, (f, "<=", thr)])
        walk(t.children_right[node], [*conds, (f, ">", thr)])

    walk(0, [])
    return paths


def _tightest(conds: list[Condition]) -> dict[tuple[str, str], float]:
    """The tightest bound per feature and direction of a path's conditions."""
    merged: dict[tuple[str, str], float] = {}
    for f, op, thr in conds:
        key = (f, op)
        merged[key] = (
            min(merged.get(key, thr), thr) if op == "<=" else max(merged.get(key, thr), thr)
        )
    return merged


class Rules(NamedTuple):
    """Surrogate-tree description of the segments."""

    rules: pd.DataFrame  # segment, segment_name, rule, customers, precision, recall, coverage
    fidelity: float  # accuracy of the tree against the segments (all customers)
    tree: Any  # the fitted sklearn DecisionTreeClassifier
    features: list[str]


def describe_rules(
    customers: pd.DataFrame,
    labels: pd.Series | pd.DataFrame,
    depth: int = 3,
    *,
    seed: int = 0,
    names: dict[int, str] | None = None,
    readable: Labels = None,
) -> Rules:
    """Plain-English rules per segment from a shallow surrogate decision tree.

    A ``DecisionTreeClassifier(max_depth=depth, random_state=seed)`` is fitted to predict the
    segment from the customer features (numeric features without missing values, plus
    one-hot categorical attributes); each leaf becomes a rule for the segment it predicts,
    its conditions merged per feature ("orders ≥ 5 and last purchase ≤ 30 days ago").
    ``readable`` (``data.customers.labels``) names the features in the rules.

    Returns
    -------
    Rules with a table of one row per leaf rule: ``precision`` (share of the customers the
    rule covers that are in the segment), ``recall`` (share of the segment the rule covers),
    ``coverage`` (share of all customers the rule covers); and ``fidelity``, the accuracy of
    the tree's segment against the true one. A segment no leaf predicts gets one row with
    rule "(no simple rule at this depth)".
    """
    from sklearn.tree import DecisionTreeClassifier

    check_scalar(depth, "depth", int, ge=1, le=10)
    seg = align_segments(customers, labels, "labels")
    names = names if names is not None else segment_names(customers, seg)
    x = _tree_inputs(customers)
    if x.shape[1] == 0:
        raise SegkitError(
            "customers has no usable features for rules (numeric without missing values or "
            f"categorical); columns are {list(customers.columns)}"
        )
    y = seg.to_numpy()
    tree = DecisionTreeClassifier(max_depth=depth, random_state=seed, min_samples_leaf=5)
    tree.fit(x.to_numpy(), y)
    pred = tree.predict(x.to_numpy())
    leaf_of = tree.apply(x.to_numpy())
    integer = {c: bool(np.all(np.mod(x[c].to_numpy(), 1) == 0)) for c in x.columns}
    binary = {c: bool(x[c].isin([0, 1]).all()) for c in x.columns}
    t = tree.tree_
    sizes = pd.Series(y).value_counts()
    rows = []
    for leaf, conds in _tree_paths(t, list(x.columns)).items():
        members = leaf_of == leaf
        target = int(tree.classes_[np.argmax(t.value[leaf][0])])
        words = _merge_conditions(_tightest(conds), integer, binary, readable)
        rows.append(
            {
                "segment": target,
                "rule": " and ".join(words) if words else "all customers",
                "customers": int(members.sum()),
                "precision": float((y[members] == target).mean()),
                "recall": float((y[members] == target).sum() / sizes[target]),
                "coverage": float(members.mean()),
            }
        )
    table = pd.DataFrame(rows)
    for s in sorted(set(sizes.index) - set(table["segment"])):
        table.loc[len(table)] = {
            "segment": s,
            "rule": "(no simple rule at this depth)",
            "customers": 0,
            "precision": np.nan,
            "recall": 0.0,
            "coverage": 0.0,
        }
    table = table.sort_values(["segment", "recall"], ascending=[True, False], ignore_index=True)
    table.insert(1, "segment_name", table["segment"].map(lambda s: names.get(int(s), str(s))))
    return Rules(table, float((pred == y).mean()), tree, list(x.columns))


# ------------------------------------------------------------------------ actions

_VALUE_COLS = ("clv_per_customer", "mean_clv", "clv_mean", "value_per_customer", "clv")


def suggest_actions(
    profiles: pd.DataFrame,
    clv_segments: pd.DataFrame | None = None,
    *,
    rates: pd.DataFrame | None = None,
    value_col: str | None = None,
    labels: Labels = None,
) -> pd.DataFrame:
    """A short suggested action per segment, with the reason, from its indexes.

    **Transaction data** (the profiles have recency, frequency or money indexes):
    recency (``index_days_since_last``), frequency (``index_orders`` or
    ``index_frequency``), money (``index_revenue``/``index_monetary``/``index_aov``) and
    tenure (``index_tenure_days``), 100 = population average:

    - recent (≤ 80), frequent and high-spending (≥ 120 both): **retain and reward**;
    - lapsed (≥ 130) but frequent or high-spending (≥ 100): **win back**;
    - lapsed and low on both: **leave alone / low-cost**;
    - recent with short tenure (≤ 60) and few orders: **nurture new**;
    - otherwise: **develop / cross-sell**.

    With ``clv_segments`` (``segment`` plus a value-per-customer column such as
    ``clv_per_customer``), a lapsed low segment whose value index is ≥ 150 is moved to win
    back and a win-back segment whose value index is < 50 to leave alone.

    **A customer table** (no purchase history): from the value index of ``value_col``
    (``cluster.value``) and the outcome ``rates`` (:func:`outcome_rates`), see
    :func:`attribute_action`. ``labels`` name the columns in the reasons.
    """
    p = profiled(profiles)

    def idx(*cols: str) -> pd.Series:
        for c in cols:
            if f"index_{c}" in p.columns:
                return p[f"index_{c}"].astype("float64")
        return pd.Series(np.nan, index=p.index)

    r, f = idx("days_since_last"), idx("orders", "frequency")
    m, ten = idx("revenue", "monetary", "aov"), idx("tenure_days")
    if r.isna().all() and f.isna().all() and m.isna().all():
        return _attribute_actions(p, rates, value_col, labels)
    value = _value_index(p, clv_segments)
    rows = []
    for i in p.index:
        action, reason = _action(r[i], f[i], m[i], ten[i])
        action, reason = _with_value(action, reason, value[i])
        rows.append(
            {
                "segment": int(p.at[i, "segment"]),
                "segment_name": p.at[i, "segment_name"],
                "action": action,
                "reason": reason,
                "value_index": value[i],
            }
        )
    return pd.DataFrame(rows)


def _value_index(p: pd.DataFrame, clv_segments: pd.DataFrame | None) -> pd.Series:
    """Each profiled segment's value per customer / the customer-weighted mean × 100."""
    value = pd.Series(np.nan, index=p.index)
    if clv_segments is None:
        return value
    check_columns(clv_segments, ["segment"], "clv_segments")
    vcol = next((c for c in _VALUE_COLS if c in clv_segments.columns), None)
    if vcol is None:
        raise SegkitError(
            f"clv_segments has no value column (one of {list(_VALUE_COLS)}); "
            f"columns are {list(clv_segments.columns)}"
        )
    v = p["segment"].map(clv_segments.set_index("segment")[vcol])
    pop = np.average(v.dropna(), weights=p.loc[v.notna(), "n"]) if v.notna().any() else 0
    return v / pop * 100 if pop > 0 else value


def _action(ri: float, fi: float, mi: float, ti: float) -> tuple[str, str]:
    """Action and reason from the recency, frequency, money and tenure indexes."""
    if np.isnan(ri) and np.isnan(fi) and np.isnan(mi):
        return "test and learn", "no purchase history to go by; compare offers with an A/B test"
    if ri <= 80 and fi >= 120 and mi >= 120:
        reason = f"buys recently (recency index {ri:.0f}), often ({fi:.0f}) and a lot ({mi:.0f})"
        return "retain and reward", reason
    if ri >= 130 and (fi >= 100 or mi >= 100):
        reason = f"valuable (frequency {fi:.0f}, spend {mi:.0f}) but lapsed (recency {ri:.0f})"
        return "win back", reason
    if ri >= 130:
        reason = f"lapsed (recency {ri:.0f}) with low frequency ({fi:.0f}) and spend ({mi:.0f})"
        return "leave alone / low-cost", reason
    if ri <= 100 and ti <= 60 and fi < 100:
        reason = f"recent first purchases (tenure index {ti:.0f}), few orders ({fi:.0f})"
        return "nurture new", reason
    reason = f"active (recency {ri:.0f}) with room to grow (frequency {fi:.0f}, spend {mi:.0f})"
    return "develop / cross-sell", reason


def _with_value(action: str, reason: str, vi: float) -> tuple[str, str]:
    """The action revisited with the segment's value index ``vi`` (NaN: unchanged)."""
    if np.isnan(vi):
        return action, reason
    if action == "leave alone / low-cost" and vi >= 150:
        return "win back", reason + f"; but expected value is high (index {vi:.0f})"
    if action == "win back" and vi < 50:
        return "leave alone / low-cost", reason + f"; but expected value is low (index {vi:.0f})"
    return action, reason + f"; expected value index {vi:.0f}"


# --------------------------------------------------------- actions for a customer table

#: Value index (segment mean of ``cluster.value`` / all customers' × 100) from which a
#: segment counts as high value, and up to which as low value.
HIGH_VALUE, LOW_VALUE = 120.0, 80.0
#: Index from which a deals feature (purchases on deals, discounts, coupons…) says a
#: segment goes for deals.
DEALS_INDEX = 150.0
_COMPLAINT = re.compile(r"complain", re.IGNORECASE)
_DEALS = re.compile(r"deal|discount|promo|coupon|voucher", re.IGNORECASE)


class Response(NamedTuple):
    """One outcome of one segment against all customers (a row of :func:`outcome_rates`)."""

    outcome: str
    kind: str  # "rate" or "mean"
    estimate: float
    low: float  # 95% interval
    high: float
    overall: float  # all customers
    direction: int  # +1: the interval lies above ``overall``; -1: below; 0: overlaps it


def _amount(kind: str, v: float) -> str:
    """A rate in % (one decimal under 10%), a mean to three significant digits."""
    if kind == "rate":
        return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"
    return _fmt(v)


def _responses(rates: pd.DataFrame | None, segment: int) -> list[Response]:
    """The segment's outcomes with a known interval, in the order of ``rates``."""
    if rates is None:
        return []
    rows = rates[(rates["segment"] == segment) & ~rates["suppressed"].astype(bool)]
    out = []
    for r in rows.itertuples():
        if not (np.isfinite(r.ci_low) and np.isfinite(r.ci_high) and np.isfinite(r.overall)):
            continue
        sign = 1 if r.ci_low > r.overall else (-1 if r.ci_high < r.overall else 0)
        out.append(
            Response(str(r.outcome), str(r.kind), r.estimate, r.ci_low, r.ci_high, r.overall, sign)
        )
    return out


def _response_text(r: Response, labels: Labels) -> str:
    """ "response 34% vs 18% of all customers (95% interval 30%-38%)"."""
    return (
        f"{feature_label(r.outcome, labels)} {_amount(r.kind, r.estimate)} vs "
        f"{_amount(r.kind, r.overall)} of all customers (95% interval "
        f"{_amount(r.kind, r.low)}-{_amount(r.kind, r.high)})"
    )


def _value_text(p: pd.DataFrame, i: Any, value_col: str | None, labels: Labels) -> str:
    """ "value index 138 (mean total spend 45,847 vs 33,227 for all customers)"."""
    if not value_col or not np.isfinite(_index_of(p, i, value_col)):
        return "no value column (cluster.value) says what these customers are worth"
    vi = _index_of(p, i, value_col)
    mean = float(p.at[i, f"mean_{value_col}"])
    label = feature_label(value_col, labels)
    return (
        f"value index {vi:.0f} (mean {label} {_fmt(mean)} vs {_fmt(mean / vi * 100)} for all "
        "customers)"
    )


def _index_of(p: pd.DataFrame, i: Any, col: str | None) -> float:
    key = f"index_{col}"
    return float(p.at[i, key]) if col and key in p.columns and pd.notna(p.at[i, key]) else np.nan


def _deals(p: pd.DataFrame, i: Any, labels: Labels) -> str:
    """The segment's strongest deals feature at index ≥ :data:`DEALS_INDEX`, in words."""
    found = [
        (float(p.at[i, c]), c[len("index_") :])
        for c in p.columns
        if c.startswith("index_") and _DEALS.search(c[len("index_") :]) and pd.notna(p.at[i, c])
    ]
    best = max(found, default=(np.nan, ""))
    return f"{feature_label(best[1], labels)} index {best[0]:.0f}" if best[0] >= DEALS_INDEX else ""


def attribute_action(
    vi: float, responses: list[Response], deals: str = "", labels: Labels = None
) -> tuple[str, str]:
    """(action, the outcomes that decided it in words; "" when none stood out) for a
    segment of a customer table.

    ``vi`` is the value index (NaN: no value column), ``responses`` the segment's outcomes
    (a complaint outcome is one named like "complain"), ``deals`` a deals feature the
    segment stands out on ("" = none). A response counts as high or low only when its 95%
    interval excludes the all-customer rate:

    - complaints clearly above all customers: **fix service first**;
    - high value (index ≥ :data:`HIGH_VALUE`): high response **reward and upsell**; low
      response **retain with service, contact sparingly**; neither **retain and reward**;
    - otherwise a clearly high response, or deals: **use the offer they respond to**;
    - low value (index ≤ :data:`LOW_VALUE`), or no value column, with a low response:
      **low-cost channel only**; low value and no clear response, the same;
    - average value: low response **develop at low cost, contact sparingly**, else
      **develop / cross-sell**; no value column and no clear response: **test and learn**.

    >>> attribute_action(150.0, [Response("Response", "rate", .3, .25, .35, .2, 1)])[0]
    'reward and upsell'
    """
    complaints = [r for r in responses if _COMPLAINT.search(r.outcome) and r.direction > 0]
    answers = [r for r in responses if not _COMPLAINT.search(r.outcome)]
    high = sorted((r for r in answers if r.direction > 0), key=lambda r: -r.estimate / r.overall)
    low = [r for r in answers if r.direction < 0]
    words = [_response_text(r, labels) for r in complaints + high + low]
    why = "; ".join(words)
    if complaints:
        return "fix service first", why
    if vi >= HIGH_VALUE:
        if high:
            return "reward and upsell", why
        return (
            ("retain with service, contact sparingly", why) if low else ("retain and reward", why)
        )
    if high or deals:
        what = ", ".join([feature_label(r.outcome, labels) for r in high] + ["deals"] * bool(deals))
        why = "; ".join(w for w in (why, deals) if w)
        return f"use the offer they respond to ({what})", why
    if vi <= LOW_VALUE or (np.isnan(vi) and low):
        return "low-cost channel only", why
    if low:
        return "develop at low cost, contact sparingly", why
    return ("test and learn" if np.isnan(vi) else "develop / cross-sell"), why


def _attribute_actions(
    p: pd.DataFrame, rates: pd.DataFrame | None, value_col: str | None, labels: Labels
) -> pd.DataFrame:
    """:func:`suggest_actions` for a customer table: value index and outcome rates."""
    rows = []
    for i in p.index:
        segment = int(p.at[i, "segment"])
        vi = _index_of(p, i, value_col)
        responses = _responses(rates, segment)
        action, why = attribute_action(vi, responses, _deals(p, i, labels), labels)
        if not why:
            why = (
                "no outcomes (campaign acceptance, response…) to go by"
                if rates is None
                else "no outcome clearly above or below all customers (95% intervals)"
            )
        reason = "; ".join(w for w in (_value_text(p, i, value_col, labels), why) if w)
        rows.append((segment, p.at[i, "segment_name"], action, reason, vi))
    return pd.DataFrame(
        rows, columns=["segment", "segment_name", "action", "reason", "value_index"]
    )


# ---------------------------------------------------------------------- migration


def migration(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Transition matrix of customers between two segmentations, in long form.

    Parameters
    ----------
    before, after : frames with ``customer_id`` and ``segment`` (e.g. last month's and this
        month's ``segments.parquet``).

    Returns
    -------
    DataFrame ``from_segment, to_segment, customers, row_share`` over every pair of a
    ``before`` segment (or "new": customers only in ``after``) and an ``after`` segment (or
    "gone": customers only in ``before``); segments as strings; ``row_share`` = customers /
    all customers of ``from_segment``. The pair new -> gone is left out.
    """
    for name, df in (("before", before), ("after", after)):
        check_columns(df, ["customer_id", "segment"], name)
        if df["customer_id"].duplicated().any():
            dup = df.loc[df["customer_id"].duplicated(), "customer_id"].head(3).tolist()
            raise SegkitError(f"{name} has duplicated customer_id values, e.g. {dup}")
    b = before.set_index("customer_id")["segment"].astype("int64").astype("string")
    a = after.set_index("customer_id")["segment"].astype("int64").astype("string")
    both = pd.concat([b.rename("from"), a.rename("to")], axis=1)
    both["from"] = both["from"].fillna("new")
    both["to"] = both["to"].fillna("gone")
    order = lambda s: sorted(s, key=int)  # noqa: E731
    froms = order(b.unique()) + ["new"]
    tos = order(a.unique()) + ["gone"]
    counts = pd.crosstab(both["from"], both["to"]).reindex(index=froms, columns=tos, fill_value=0)
    long = counts.stack().rename("customers").reset_index()
    long.columns = ["from_segment", "to_segment", "customers"]
    long = long[~((long["from_segment"] == "new") & (long["to_segment"] == "gone"))]
    totals = long.groupby("from_segment")["customers"].transform("sum")
    long["row_share"] = np.where(totals > 0, long["customers"] / totals.where(totals > 0, 1), 0.0)
    long["customers"] = long["customers"].astype("int64")
    return long.reset_index(drop=True)


# -------------------------------------------------------------------- outcome rates

#: Columns of :func:`outcome_rates` (``outcome_rates.csv``), in order.
OUTCOME_RATE_COLUMNS = [
    "segment",
    "segment_name",
    "outcome",
    "kind",
    "customers",
    "estimate",
    "ci_low",
    "ci_high",
    "overall",
    "index",
    "suppressed",
]


def _is_binary(values: pd.Series) -> bool:
    v = values.dropna()
    return bool(len(v) and v.isin([0, 1]).all())


def _estimate(values: pd.Series, binary: bool, alpha: float) -> tuple[int, float, float, float]:
    """(customers, estimate, ci_low, ci_high) of the non-missing ``values``: a Wilson
    interval for a rate, a t interval for a mean (NaN bounds under two customers)."""
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    v = values.dropna().astype("float64")
    n = len(v)
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    if binary:
        lo, hi = proportion_confint(int(v.sum()), n, alpha=alpha, method="wilson")
        return n, float(v.mean()), float(lo), float(hi)
    if n < 2:
        return n, float(v.mean()), np.nan, np.nan
    half = stats.t.ppf(1 - alpha / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return n, float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def outcome_rates(
    customers: pd.DataFrame,
    segments: pd.Series | pd.DataFrame,
    outcomes: list[str] | tuple[str, ...],
    *,
    alpha: float = 0.05,
    min_size: int = MIN_SEGMENT_SIZE,
    names: dict[int, str] | None = None,
) -> pd.DataFrame:
    """The rate (0/1 outcomes) or mean (numeric outcomes) of each outcome per segment.

    Parameters
    ----------
    customers : one row per customer with ``customer_id`` and the ``outcomes`` columns.
    segments : frame with ``customer_id`` and ``segment``, or one segment per row.
    outcomes : numeric outcome columns (campaign acceptance, response, complaints, spend…).
        A column whose non-missing values are all 0 or 1 is a rate, any other a mean.
    alpha : 1 - confidence of the intervals (0.05: 95% intervals).
    min_size : segments with fewer customers show no numbers (privacy, as :func:`profile`).
    names : segment number -> name; "Segment k" when absent.

    Returns
    -------
    DataFrame with :data:`OUTCOME_RATE_COLUMNS`, one row per (segment, outcome), segments
    in order, outcomes as given: ``kind`` "rate" or "mean"; ``customers`` with a
    non-missing value; ``estimate`` the rate or mean with its interval ``ci_low..ci_high``
    (Wilson score for rates, Student t for means); ``overall`` the same over all customers;
    ``index`` = estimate / overall × 100 (NaN when overall is not positive). Rows of a
    suppressed segment have ``suppressed`` True and no numbers.

    Raises
    ------
    SegkitError
        An outcome is not a column of ``customers`` or is not numeric.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": list("abcd"), "Response": [1, 0, 1, 1]})
    >>> r = outcome_rates(t, pd.Series([1, 1, 2, 2]), ["Response"], min_size=1)
    >>> r[["segment", "kind", "customers", "estimate", "index"]]
       segment  kind  customers  estimate       index
    0        1  rate          2       0.5   66.666667
    1        2  rate          2       1.0  133.333333
    """
    check_scalar(alpha, "alpha", float, gt=0, lt=1)
    check_scalar(min_size, "min_size", int, ge=1)
    outcomes = list(outcomes)
    check_columns(customers, outcomes, "customers")
    for c in outcomes:
        if not pd.api.types.is_numeric_dtype(customers[c]):
            raise SegkitError(
                f"outcome {c!r} is not numeric (dtype {customers[c].dtype}); an outcome "
                "is a 0/1 result or a number"
            )
    seg = align_segments(customers, segments, "segments")
    sizes = seg.value_counts().sort_index()
    values = {c: customers[c].astype("float64") for c in outcomes}
    binary = {c: _is_binary(values[c]) for c in outcomes}
    overall = {c: _estimate(values[c], binary[c], alpha)[1] for c in outcomes}
    rows = []
    for s in sizes.index:
        members = (seg == s).to_numpy()
        hidden = bool(sizes[s] < min_size)
        for c in outcomes:
            n, est, lo, hi = (
                (pd.NA, np.nan, np.nan, np.nan)
                if hidden
                else _estimate(values[c][members], binary[c], alpha)
            )
            rows.append(
                (int(s), (names or {}).get(int(s), f"Segment {s}"), c)
                + ("rate" if binary[c] else "mean", n, est, lo, hi, overall[c], np.nan, hidden)
            )
    out = pd.DataFrame(rows, columns=OUTCOME_RATE_COLUMNS)
    out["customers"] = out["customers"].astype("Int64")
    ok = out["overall"] > 0
    out.loc[ok, "index"] = out.loc[ok, "estimate"] / out.loc[ok, "overall"] * 100
    return out.reset_index(drop=True)
