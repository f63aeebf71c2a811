"""Plain-English rules per segment from a shallow surrogate decision tree.

:func:`describe_rules` fits the tree, turns each leaf's path into merged conditions in
words ("orders ≥ 5 and last purchase ≤ 30 days ago") and measures precision, recall and
coverage per rule and the tree's fidelity to the segments. :func:`fmt_number` and
:data:`Labels` are shared with :mod:`segkit.profile.actions`.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_scalar
from segkit.naming import (
    align_segments,
    categorical_columns,
    feature_label,
    feature_unit,
    is_share,
    numeric_columns,
    segment_names,
)

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


def fmt_number(v: float) -> str:
    """A number in a rule or a reason: whole with separators from 100, else 3 digits.

    >>> fmt_number(12345.6), fmt_number(0.12345)
    ('12,346', '0.123')
    """
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
        text = f"{'≤' if op == '<=' else '>'} {fmt_number(t)}"
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
    return f"{label} > {fmt_number(lo)} and ≤ {fmt_number(hi)}" + (f" {unit}" if unit else "")


def _merge_conditions(
    merged: dict[tuple[str, str], float],
    integer: dict[str, bool],
    binary: dict[str, bool],
    labels: Labels = None,
    pairs: dict[str, tuple[str, str]] | None = None,
) -> list[str]:
    """Path conditions in words: one phrase per feature or categorical attribute.

    ``pairs``: attributes with two levels and no missing value, whose "is not A" reads
    "is B"."""
    words: list[str] = []
    pairs = pairs or {}
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
        elif len(neg) == 1 and attr in pairs:  # "womens is 1", not "is not 0"
            words.append(f"{label} is {[v for v in pairs[attr] if v != neg[0]][0]}")
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
    cat = categorical_columns(customers)
    levels = {c: customers[c].dropna().astype("string").unique() for c in cat}
    pairs = {
        c: (str(v[0]), str(v[1]))
        for c, v in levels.items()
        if len(v) == 2 and customers[c].notna().all()
    }
    t = tree.tree_
    sizes = pd.Series(y).value_counts()
    rows = []
    for leaf, conds in _tree_paths(t, list(x.columns)).items():
        members = leaf_of == leaf
        target = int(tree.classes_[np.argmax(t.value[leaf][0])])
        words = _merge_conditions(_tightest(conds), integer, binary, readable, pairs)
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
