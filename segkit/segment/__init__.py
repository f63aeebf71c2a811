"""Clustering: segments from customer features, with evidence for the number.

Methods (``cluster.method``):

- ``kmeans`` (default): k-means on log-transformed, robustly scaled numeric features and
  one-hot categorical attributes.
- ``gmm``: Gaussian mixtures (full covariances) on the same matrix; BIC joins the evidence.
- ``kprototypes``: Huang's k-prototypes for mixed numeric and categorical data (squared
  distance on the scaled numeric features plus ``gamma`` per mismatched category), with a
  ``predict``; see :class:`KPrototypes`.
- ``rfm``: the rule-based RFM segmentation marketers know: recency, frequency and money
  quintile scores 1-5 and a named cell for every combination; see :data:`RFM_GRID`.

The number of segments is chosen within ``cluster.k_min..k_max`` by :func:`select_k`.
Segments are numbered by value per customer (1 = most valuable), so segment 1 means the
same on every rerun. The fitted :class:`Segmenter` is saved with the run
(``segmenter.json``: plain arrays, nothing executable) and assigns new customers to the
same segments (``segkit score``); a customer whose features fall outside what it was
fitted on is flagged and left unassigned rather than forced into a segment. The stage
itself (reading the run, writing artifacts, findings) is :mod:`segkit.stages.cluster`.

Submodules:

- :mod:`~segkit.segment.prepare`: default features, :func:`prepare` (checks, fills),
  :func:`preprocessor` and its fitted arrays :class:`Transform`.
- :mod:`~segkit.segment.roles`: what happened to each column of the customer table
  (:func:`feature_table`, ``cluster_features.csv``).
- :mod:`~segkit.segment.kprototypes`: :class:`KPrototypes`.
- :mod:`~segkit.segment.models`: :func:`make_model`, the metric space, fitted models as
  arrays (:func:`model_to_dict`, :func:`model_from_dict`).
- :mod:`~segkit.segment.selection`: the indices, the gap statistic, Jaccard stability,
  :func:`select_k`, :func:`explain_choice`.
- :mod:`~segkit.segment.rfm`: :data:`RFM_GRID`, :class:`RFMScorer`, :func:`rfm_table`.
- :mod:`~segkit.segment.sample`: :func:`fit_sample`, the customers a model is fitted on
  (a seeded hash of the id: the same on every engine and row order).
- :mod:`~segkit.segment.segmenter`: :class:`Segmenter` (scoring, the JSON file), the
  segment order, :func:`read_customers`.
"""

from segkit.segment.kprototypes import KPrototypes
from segkit.segment.models import METHODS, make_model, metric_space, model_from_dict, model_to_dict
from segkit.segment.prepare import (
    DEFAULT_FEATURES,
    LOG_FEATURES,
    VALUE_COLUMNS,
    Prepared,
    Transform,
    as_levels,
    default_features,
    onehot_layout,
    prepare,
    preprocessor,
)
from segkit.segment.rfm import (
    RFM_COLUMNS,
    RFM_GRID,
    RFM_SEGMENTS,
    RFMScorer,
    rfm_segment_name,
    rfm_table,
)
from segkit.segment.sample import fit_sample, sample_key
from segkit.segment.segmenter import (
    FILE_NAME,
    FORMAT_VERSION,
    UNASSIGNED,
    Segmenter,
    locate,
    order_labels,
    read_customers,
    value_column,
)
from segkit.segment.selection import (
    PROBE_SIZE,
    admissible,
    explain_choice,
    gap_choice,
    gap_statistic,
    indices,
    jaccard_stability,
    select_k,
    within_ss,
)

__all__ = [
    "DEFAULT_FEATURES",
    "FILE_NAME",
    "FORMAT_VERSION",
    "LOG_FEATURES",
    "METHODS",
    "PROBE_SIZE",
    "RFM_COLUMNS",
    "RFM_GRID",
    "RFM_SEGMENTS",
    "UNASSIGNED",
    "VALUE_COLUMNS",
    "KPrototypes",
    "Prepared",
    "RFMScorer",
    "Segmenter",
    "Transform",
    "admissible",
    "as_levels",
    "default_features",
    "explain_choice",
    "fit_sample",
    "gap_choice",
    "gap_statistic",
    "indices",
    "jaccard_stability",
    "locate",
    "make_model",
    "metric_space",
    "model_from_dict",
    "model_to_dict",
    "onehot_layout",
    "order_labels",
    "prepare",
    "preprocessor",
    "read_customers",
    "rfm_segment_name",
    "rfm_table",
    "sample_key",
    "select_k",
    "value_column",
    "within_ss",
]
