"""Tables for people: the stage reports' tables formatted for the reader, not the analyst.

Submodules, by concern:

- :mod:`segkit.stages.tables.cells`: the formatting core: one cell as text
  (:func:`fmt_int`, :func:`fmt_num`, :func:`fmt_money`, :func:`fmt_pct`, :func:`fmt_p`,
  :func:`fmt_bool`, :func:`fmt_interval`, :func:`fmt_sig`; :func:`untrusted` for a number
  the data do not pin down), a column spec :class:`Col`, the formatted :class:`Table`
  (HTML and a deterministic plain text) and :func:`show`, which formats a DataFrame; the
  rules every table follows are in its docstring;
- :mod:`segkit.stages.tables.by_stage`: one formatter per table of the stage notebooks
  (:func:`k_selection`, :func:`profile_means`, :func:`clv_params`, :func:`effects`…): the
  columns a reader needs, labelled, the full table linked as a CSV artifact.

Notebooks import this package and call both kinds as ``tables.<name>``.

Examples
--------
>>> from segkit.stages import tables
>>> tables.fmt_money(1234567.891, "€"), tables.fmt_interval(0.070, 0.083, "pts")
('€1,234,568', '7.0 to 8.3 pts')
"""

from segkit.stages.tables.by_stage import (
    MONEY_FEATURES,
    PROFILE_KEYS,
    actions,
    clv_params,
    clv_segments,
    effects,
    feature_summary,
    feature_table,
    heterogeneity,
    holdout,
    holdout_errors,
    k_selection,
    outcome_rates,
    planning,
    profile_means,
    quality,
    recommendations,
    rfm,
    rules,
    sizes,
    srm,
)
from segkit.stages.tables.cells import (
    CELL_KINDS,
    DASH,
    DASH_NOTE,
    INTERVAL_KINDS,
    NOT_IDENTIFIED,
    TEXT_WIDTH,
    UNTRUSTED_RATIO,
    Col,
    Table,
    auto_decimals,
    currency_of,
    fmt_bool,
    fmt_int,
    fmt_interval,
    fmt_money,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_sig,
    is_missing,
    show,
    untrusted,
)

__all__ = [
    # cells
    "CELL_KINDS",
    "DASH",
    "DASH_NOTE",
    "INTERVAL_KINDS",
    "NOT_IDENTIFIED",
    "TEXT_WIDTH",
    "UNTRUSTED_RATIO",
    "Col",
    "Table",
    "auto_decimals",
    "currency_of",
    "fmt_bool",
    "fmt_int",
    "fmt_interval",
    "fmt_money",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "fmt_sig",
    "is_missing",
    "show",
    "untrusted",
    # by stage
    "MONEY_FEATURES",
    "PROFILE_KEYS",
    "actions",
    "clv_params",
    "clv_segments",
    "effects",
    "feature_summary",
    "feature_table",
    "heterogeneity",
    "holdout",
    "holdout_errors",
    "k_selection",
    "outcome_rates",
    "planning",
    "profile_means",
    "quality",
    "recommendations",
    "rfm",
    "rules",
    "sizes",
    "srm",
]
