"""Who is in each segment, in words a marketing team can act on.

Submodules, by concern:

- :mod:`segkit.profile.profiles`: :func:`profile` (size, share of customers and of value
  (revenue or ``cluster.value``), means/medians, indexes, categorical mix; segments under
  ``min_segment_size`` folded into one "other/suppressed" row for privacy), :func:`profiled`,
  :func:`index_table` (segment mean / population mean × 100), :func:`category_mix` and
  :func:`with_levels` (integer codes such as a region 1/2/3 as categories, never numbers);
- :mod:`segkit.profile.rules`: :func:`describe_rules`, plain-English rules from a shallow
  surrogate decision tree, with precision, recall and coverage per rule and the tree's
  fidelity to the segments;
- :mod:`segkit.profile.actions`: :func:`suggest_actions`, retain, develop, win back,
  nurture or leave alone, with the reason, from recency/frequency/money; for a customer
  table (:func:`attribute_action`) from the value index of ``cluster.value`` and the
  outcome rates (reward and upsell, fix service first, use the offer they respond to,
  low-cost channel only…);
- :mod:`segkit.profile.transitions`: :func:`migration`, the transition matrix between two
  segmentations (incl. new/gone customers);
- :mod:`segkit.profile.outcomes`: :func:`outcome_rates`, the rate (0/1 outcomes) or mean
  of each outcome per segment, with its 95% interval and index; segments under
  ``min_size`` show no numbers (privacy).

The stage that runs these on a run's segments is :mod:`segkit.stages.profile`.
:func:`segment_names` and :func:`feature_label` live in :mod:`segkit.naming` and are
re-exported here.
"""

from segkit.naming import feature_label, segment_names
from segkit.profile.actions import (
    DEALS_INDEX,
    HIGH_VALUE,
    LOW_VALUE,
    Response,
    attribute_action,
    suggest_actions,
)
from segkit.profile.outcomes import OUTCOME_RATE_COLUMNS, outcome_rates
from segkit.profile.profiles import (
    SUPPRESSED,
    category_mix,
    index_table,
    profile,
    profiled,
    value_share_column,
    with_levels,
)
from segkit.profile.rules import Condition as Condition  # importable as before, not in __all__
from segkit.profile.rules import Labels, Rules, describe_rules
from segkit.profile.transitions import migration

__all__ = [
    "DEALS_INDEX",
    "HIGH_VALUE",
    "LOW_VALUE",
    "OUTCOME_RATE_COLUMNS",
    "SUPPRESSED",
    "Labels",
    "Response",
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
