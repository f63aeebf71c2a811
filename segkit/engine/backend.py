"""Engines as ibis backends: DuckDB in process, or Spark (local or a cluster's session).

:func:`connect` gives the backend of ``engine: duckdb | spark``; :func:`table` opens the
transaction log on it. On Spark the log is Parquet (any path Spark reads: a file, a folder,
object storage) or a table of the session's catalog: reading and sniffing CSV or Excel
stays with DuckDB (:func:`csv_to_parquet` converts). ibis and PySpark are the ``spark``
extra (``pip install "segkit[spark]"``, plus Java 17): nothing here is imported unless an
ibis engine is asked for.

Two traps of Spark SQL are closed here once: float literals are read as DECIMAL
(``10 / 7.0`` is ``decimal(9,6)``), so every float constant is :func:`flt`, a string cast
to DOUBLE; and dates depend on the session time zone, so the session is pinned to UTC.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS, ENGINES
from segkit.core.sql import literal

#: Spark settings of a session segkit builds (``spark`` parameters).
SPARK_DEFAULTS: dict[str, Any] = dict(DEFAULTS["spark"])
#: JVM flags that halve a local session's start-up (C1 only, serial GC): tests, small data.
FAST_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Suffixes of files Spark reads here; others (CSV, Excel) are converted with DuckDB first.
_NOT_PARQUET = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xls", ".xlsm", ".zip")


def ibis_module() -> Any:
    """The ``ibis`` module, or a SegkitError saying how to install the extra."""
    try:
        import ibis
    except ImportError:  # pragma: no cover (the test extra installs it)
        raise SegkitError(
            'engine: spark needs the spark extra: pip install "segkit[spark]" (and Java 17, '
            "e.g. apt-get install openjdk-17-jre-headless)"
        ) from None
    return ibis


def flt(value: float) -> Any:
    """A float constant as DOUBLE on every engine (Spark reads ``7.0`` as DECIMAL)."""
    return ibis_module().literal(repr(float(value))).cast("float64")


def not_finite(v: Any) -> Any:
    """``v`` is infinite or NaN (``isinf`` compiles to FALSE on ibis' Spark backend)."""
    return v.abs() > flt(sys.float_info.max)  # NaN compares above every number in SQL


def spark_session(settings: Mapping[str, Any] | None = None) -> Any:
    """The active SparkSession (spark-submit, Databricks), else one built from ``settings``.

    Either way the session time zone is set to UTC, so timestamps become the same dates on
    every engine. ``settings``: the ``spark`` parameters (:data:`SPARK_DEFAULTS`).
    """
    ibis_module()
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover
        raise SegkitError('engine: spark needs PySpark: pip install "segkit[spark]"') from None
    active = SparkSession.getActiveSession()
    if active is None:
        s = {**SPARK_DEFAULTS, **(settings or {})}
        b = SparkSession.builder.master(s["master"]).appName(s["app_name"])
        conf = {
            "spark.driver.memory": s["driver_memory"],
            "spark.sql.shuffle.partitions": str(s["shuffle_partitions"]),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            **({"spark.driver.extraJavaOptions": s["java_options"]} if s["java_options"] else {}),
            **{k: str(v) for k, v in (s.get("conf") or {}).items()},
        }
        for key, value in conf.items():
            b = b.config(key, value)
        try:
            active = b.getOrCreate()
        except Exception as e:  # the JVM did not start: no Java, wrong Java
            raise SegkitError(
                f"engine: spark could not start a Spark session ({type(e).__name__}: {e}); "
                "it needs Java 17 (apt-get install openjdk-17-jre-headless)"
            ) from None
    active.conf.set("spark.sql.session.timeZone", "UTC")
    return active


def connect(engine: str = "duckdb", spark: Mapping[str, Any] | None = None) -> Any:
    """An ibis backend: in-process DuckDB, or Spark (:func:`spark_session`).

    Raises
    ------
    SegkitError
        An unknown engine; ibis or PySpark not installed; Spark does not start.
    """
    if engine not in ENGINES:
        raise SegkitError(f"engine == {engine!r}, must be one of {list(ENGINES)}")
    ibis = ibis_module()
    if engine == "duckdb":
        return ibis.duckdb.connect()
    return ibis.pyspark.connect(spark_session(spark))


def is_ibis_backend(con: Any) -> bool:
    """Whether ``con`` is an ibis backend (not a DuckDB connection), without importing ibis."""
    return type(con).__module__.startswith("ibis.")


def _is_spark(con: Any) -> bool:
    return type(con).__module__.startswith("ibis.backends.pyspark")


def table(con: Any, source: Any, what: str = "transactions") -> Any:
    """``source`` as an ibis table of backend ``con``.

    ``source``: an ibis table, a pandas DataFrame, a Parquet file or folder (any path the
    engine reads), or the name of a table of the backend. On Spark a CSV or Excel file is a
    SegkitError saying to convert it (:func:`csv_to_parquet`).
    """
    ibis = ibis_module()
    if isinstance(source, ibis.Table):
        return source
    if hasattr(source, "columns") and hasattr(source, "dtypes"):  # a pandas DataFrame
        return con.create_table(f"_segkit_{what}", source, temp=True, overwrite=True)
    text = Path(source).as_posix() if isinstance(source, Path) else str(source)
    suffixes = [s.lower() for s in Path(text).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes or Path(text).is_dir() or "://" in text:
        return con.read_parquet(text)
    if suffixes and suffixes[-1] in _NOT_PARQUET:
        if _is_spark(con):
            raise SegkitError(
                f"{what} {text}: engine: spark reads Parquet or a Spark table, not CSV/Excel; "
                "convert it first, e.g. segkit.engine.csv_to_parquet(path, 'out.parquet'), "
                "or load it with segkit (the exploration stage writes transactions.parquet)"
            )
        return con.read_csv(text)
    if Path(text).is_file():
        return con.read_parquet(text)
    try:
        if "." in text:  # database.table
            database, name = text.rsplit(".", 1)
            return con.table(name, database=database)
        return con.table(text)
    except Exception:
        raise SegkitError(
            f"{what} {text!r}: neither a Parquet file or folder nor a table of the engine"
        ) from None


def csv_to_parquet(path: str | Path, out: str | Path | None = None) -> Path:
    """Convert a CSV file to Parquet with DuckDB (its sniffer), for engine: spark.

    ``out``: the Parquet file; None = beside ``path`` (``x.csv`` -> ``x.parquet``), or a
    temporary folder when that is not writable.
    """
    import duckdb

    src = Path(path)
    if not src.is_file():
        raise SegkitError(f"{src}: no such CSV file")
    dest = Path(out) if out else src.with_name(src.name.split(".")[0] + ".parquet")
    if out is None and not dest.parent.exists():  # pragma: no cover
        dest = Path(tempfile.mkdtemp()) / dest.name
    duckdb.connect().execute(
        f"COPY (SELECT * FROM read_csv({literal(src.as_posix())})) "
        f"TO {literal(dest.as_posix())} (FORMAT parquet)"
    )
    return dest
