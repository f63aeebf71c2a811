"""The aggregation that grows with the data, written once as ibis expressions.

One definition runs on DuckDB (in process) or on Spark (``engine: spark``; local or a
cluster's session), and only aggregates come back to pandas:

- :mod:`~segkit.engine.clean`: reading and cleaning a typed (Parquet) transaction log
  with the rules of :func:`segkit.io.load_transactions`; the engine writes the clean
  rows and the rejects, only the counts by reason come back;
- :mod:`~segkit.engine.explore`: the exploration tables of :mod:`segkit.explore` (the
  log's summary, the monthly summary, the cohort retention);
- :mod:`~segkit.engine.features`: the per-customer features (BTYD summary, orders,
  revenue, shares …) of :func:`segkit.features.customer_features`;
- :mod:`~segkit.engine.scoring`: k-means scoring of every customer with a fitted
  :class:`~segkit.segment.segmenter.Segmenter` (fill, log1p, scaling, one-hot, nearest
  centre, range flags), written back as Parquet by the engine (``segkit score --engine
  spark``);
- :mod:`~segkit.engine.clv`: the CLV tracking counts (customers per first purchase day,
  repeat purchase days per week) of :func:`segkit.clv.diagnostics.tracking`;
- :mod:`~segkit.engine.abtest`: the per-segment x arm sufficient statistics of
  :func:`segkit.abtest.aggregation.sufficient_stats`;
- :mod:`~segkit.engine.sample`: the fit sample (customers ordered by a seeded hash of
  their id), as :func:`segkit.segment.fit_sample` chooses it in pandas;
- :mod:`~segkit.engine.backend`: the backends (:func:`connect`), the Spark session
  (UTC; the active one, spark-submit's, or one built from the ``spark`` parameters; one
  per run, shared with the stage kernels: :func:`share_session`), reading the inputs and
  writing Parquet through the engine (:func:`write_parquet`).

ibis and PySpark are the optional ``spark`` extra; importing :mod:`segkit.engine` needs
neither, using it does. The DuckDB SQL of :mod:`segkit.features` stays the default path.
"""

from segkit.engine.backend import (
    FAST_START,
    SPARK_DEFAULTS,
    connect,
    csv_to_parquet,
    is_ibis_backend,
    share_session,
    spark_session,
    table,
    write_parquet,
)

__all__ = [
    "FAST_START",
    "SPARK_DEFAULTS",
    "connect",
    "csv_to_parquet",
    "is_ibis_backend",
    "share_session",
    "spark_session",
    "table",
    "write_parquet",
]
