"""One experiment evaluated end to end: checks, effects overall and per segment, value.

:func:`evaluate` strings the other modules together: one scan of the experiment
(:mod:`~segkit.abtest.aggregation`), the effects, corrections, heterogeneity and
sample-ratio checks (:mod:`~segkit.abtest.statistics`) and, with a value metric, profit and
recommendations (:mod:`~segkit.abtest.money`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import pandas as pd

from segkit.abtest import aggregation as agg
from segkit.abtest import money as mon
from segkit.abtest import statistics as st
from segkit.core.errors import SegkitError
from segkit.core.params import metric_specs

#: Arm names that read as a control group when ``abtest.control`` is not set.
CONTROL_NAMES = ("control", "none", "no e-mail", "holdout")


class Evaluation(NamedTuple):
    """The tables of one evaluated experiment."""

    effects: pd.DataFrame  # ab_effects.csv
    srm: pd.DataFrame
    heterogeneity: pd.DataFrame
    value: pd.DataFrame | None
    recommendations: pd.DataFrame | None
    metrics: list[dict]
    control: str
    planning: pd.DataFrame
    missing: dict[str, int]  # metric -> rows left out for a missing value
    value_scope: str | None  # value per "segments", overall ("all"), or None (no value)


def choose_control(arms: list[str], given: str | None) -> str:
    """The control arm: ``given`` if it is an arm, else the arm named like a control.

    Raises
    ------
    SegkitError
        ``given`` is not an arm, or it is None and no arm is named like a control.

    Examples
    --------
    >>> choose_control(["No E-Mail", "Mens E-Mail"], None)
    'No E-Mail'
    """
    if given is not None:
        if given not in arms:
            raise SegkitError(f"abtest.control == {given!r} is not an arm; arms are {arms}")
        return given
    guess = [a for a in arms if a.lower() in CONTROL_NAMES]
    if not guess:
        raise SegkitError(
            f"abtest.control is not set and no arm looks like a control; arms are {arms}"
        )
    return guess[0]


def _metrics(sc: agg.Scan, params: dict, segment_cols: Sequence[str], exclude) -> list[dict]:
    if params["metrics"]:
        given = metric_specs(params["metrics"]) or []
        return agg.check_metric_columns(given, sc.columns)
    exp_cols = [c for c in sc.columns if c not in segment_cols and c not in exclude]
    metrics = agg.infer_metrics(exp_cols, sc.dtypes, sc.binary)
    if not metrics:
        raise SegkitError(f"experiment has no numeric outcome column; columns are {sc.columns}")
    return metrics


def _check_value_metric(value_metric: str | None, metrics: list[dict]) -> None:
    names = [m["name"] for m in metrics]
    if value_metric and value_metric not in names:
        raise SegkitError(
            f"abtest.value_metric == {value_metric!r} is not a metric; metrics are {names}"
        )


def _effects_tables(
    con: Any, relation: str, metrics: list[dict], control: str, segment_cols, params: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Effects (adjusted) and sample-ratio checks, overall and per segment column."""
    kw = {k: params[k] for k in ("alpha", "power", "target_lift", "min_n")}
    tables, srms = [], []
    for col in [None, *segment_cols]:
        suff = agg.sufficient_stats(con, relation, col, metrics)
        tables.append(st.effects(suff, metrics, control, col or "all", **kw))
        srms.append(st.srm(suff).assign(segment_col=col or "all"))
    table = st.adjust(pd.concat(tables, ignore_index=True), params["correction"], params["alpha"])
    return table, pd.concat(srms, ignore_index=True)


def value_rows(table: pd.DataFrame, value_metric: str, segmented: bool) -> tuple[pd.DataFrame, str]:
    """The effect rows the value is computed on, and their scope.

    The segment rows (``"segments"``) when ``segmented`` and at least one segment is
    evaluated for ``value_metric``; else the overall rows (``"all"``).
    """
    evaluated = table["evaluated"] & (table["metric"] == value_metric)
    seg = table["segment_col"] != "all"
    if segmented and (evaluated & seg).any():
        return table[seg], "segments"
    return table[~seg], "all"


def _value(
    table: pd.DataFrame,
    params: dict,
    *,
    segmented: bool,
    sizes: dict[str, pd.Series] | None,
    margin: float,
    labels: dict[str, dict] | None,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """Value table, recommendations and scope; all None without a value metric or when
    even the overall comparison is not evaluated."""
    vm = params["value_metric"]
    if not vm:
        return None, None, None
    rows, scope = value_rows(table, vm, segmented)
    if not rows["evaluated"][rows["metric"] == vm].any():
        return None, None, None
    value = mon.money(
        rows, vm, sizes or {}, params["cost_per_contact"], margin, params["correction"]
    )
    recs = mon.recommend(value, params["alpha"])
    return value, mon.label_segments(recs, labels), scope


def evaluate(
    con: Any,
    relation: str,
    params: dict,
    segment_cols: list[str],
    segment_sizes: dict[str, pd.Series] | None = None,
    margin: float = 0.3,
    labels: dict[str, dict] | None = None,
    exclude: Sequence[str] = (),
) -> Evaluation:
    """Evaluate the experiment in DuckDB ``relation`` overall and per segment.

    Parameters
    ----------
    con
        DuckDB connection holding ``relation``.
    relation
        Table or view with ``arm``, the outcomes, covariates and the segment columns.
    params
        The ``abtest`` parameters (control, metrics, correction, alpha, power,
        cost_per_contact, value_metric, min_n, target_lift).
    segment_cols
        Columns to break the effects down by.
    segment_sizes, margin
        Customers per segment in the customer base (column -> value counts), and the
        profit margin: for the value of ``params["value_metric"]``.
    labels
        Segment column -> {value: name}, for the recommendations' ``label``.
    exclude
        Joined columns that are not outcomes (customer attributes used as covariates).

    Returns
    -------
    Evaluation
        With a value metric and no evaluated segment (all below ``min_n``), the value is
        the overall one (``value_scope == "all"``); with nothing evaluated, no value.

    Raises
    ------
    SegkitError
        Fewer than two arms, an unknown control, a metric column that does not exist, an
        unknown value metric, no numeric outcome, a proportion that is not 0/1, an arm
        without values of an outcome.
    """
    sc = agg.scan(con, relation)
    if len(sc.arms) < 2:
        raise SegkitError(
            f"experiment has {len(sc.arms)} arm(s) {sc.arms}; an A/B test needs two or more"
        )
    control = choose_control(sc.arms, params["control"])
    metrics = _metrics(sc, params, segment_cols, exclude)
    _check_value_metric(params["value_metric"], metrics)
    agg.check_outcomes(con, relation, metrics, sc)
    missing = agg.missing_counts(con, relation, metrics)
    table, srm_table = _effects_tables(con, relation, metrics, control, segment_cols, params)
    value, recs, scope = _value(
        table,
        params,
        segmented=bool(segment_cols),
        sizes=segment_sizes,
        margin=margin,
        labels=labels,
    )
    plan = st.planning(
        table, alpha=params["alpha"], power=params["power"], target_lift=params["target_lift"]
    )
    het = st.heterogeneity(table, params["correction"], params["alpha"])
    return Evaluation(table, srm_table, het, value, recs, metrics, control, plan, missing, scope)
