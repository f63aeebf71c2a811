"""A/B evaluation per segment: which campaign works for whom, and does it pay.

Submodules, by concern:

- :mod:`segkit.abtest.aggregation`: the experiment in DuckDB: one scan (arms, 0/1
  outcomes), metric inference and column checks, per-(segment, arm) sufficient statistics;
  the raw-file profile used to name arms and outcomes that cleaning removed;
- :mod:`segkit.abtest.statistics`: arm estimates (proportions, Welch means, CUPED, ratios
  by the delta method), comparisons, corrections, heterogeneity (Cochran's Q; for rates a
  logistic interaction likelihood-ratio test), sample-ratio mismatch, sample sizes, MDEs
  and the planning table;
- :mod:`segkit.abtest.balance`: standardized mean differences of the customer attributes
  between the arms (was the arm randomized?);
- :mod:`segkit.abtest.money`: profit per contact, ROI, the one-sided p-value that the
  profit is positive (corrected within each breakdown) and recommendations;
- :mod:`segkit.abtest.evaluation`: :func:`evaluate`, the above end to end.

The stage (run folders, artifacts, findings) is :mod:`segkit.stages.abtest`.

Examples
--------
>>> from segkit import abtest
>>> abtest.sample_size_proportions(0.05, 0.06)
8158
"""

from segkit.abtest.aggregation import (
    check_metric_columns,
    infer_metrics,
    raw_profile,
    stats_sql,
    sufficient_stats,
)
from segkit.abtest.balance import BALANCE_COLUMNS, SMD_LIMIT, balance
from segkit.abtest.evaluation import Evaluation, choose_control, evaluate
from segkit.abtest.money import money, recommend
from segkit.abtest.statistics import (
    EFFECT_COLUMNS,
    HETEROGENEITY_COLUMNS,
    KINDS,
    adjust,
    compare,
    effects,
    heterogeneity,
    logistic_interaction_lr,
    mde_mean,
    mde_proportion,
    planning,
    sample_size_means,
    sample_size_proportions,
    srm,
)

__all__ = [
    "BALANCE_COLUMNS",
    "EFFECT_COLUMNS",
    "SMD_LIMIT",
    "HETEROGENEITY_COLUMNS",
    "KINDS",
    "Evaluation",
    "adjust",
    "balance",
    "check_metric_columns",
    "choose_control",
    "compare",
    "effects",
    "evaluate",
    "heterogeneity",
    "infer_metrics",
    "logistic_interaction_lr",
    "mde_mean",
    "mde_proportion",
    "money",
    "planning",
    "raw_profile",
    "recommend",
    "sample_size_means",
    "sample_size_proportions",
    "srm",
    "stats_sql",
    "sufficient_stats",
]
