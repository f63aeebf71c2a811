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

import os
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS, ENGINES
from segkit.core.sql import literal

#: Spark settings of a session segkit builds (``spark`` parameters).
SPARK_DEFAULTS: dict[str, Any] = dict(DEFAULTS["spark"])
#: JVM flags that halve a local session's start-up (C1 only, serial GC): tests, small data.
FAST_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Where PySpark finds a running JVM's gateway (set by spark-submit, or by share_session).
_GATEWAY_VARS = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")
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
    """The active SparkSession (Databricks, a notebook that made one), else the session of
    the JVM this process was handed (a stage kernel of ``segkit run``: :func:`share_session`),
    else spark-submit's (its ``--master`` and ``--conf`` win), else one built from
    ``settings``.

    Either way the session time zone is set to UTC, so timestamps become the same dates on
    every engine. ``settings``: the ``spark`` parameters (:data:`SPARK_DEFAULTS`).
    """
    ibis_module()
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover
        raise SegkitError('engine: spark needs PySpark: pip install "segkit[spark]"') from None
    active = SparkSession.getActiveSession() or _parent_session()
    if active is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        # spark-submit's driver: its --master, --conf and memory settings win over ours
        active = SparkSession.builder.getOrCreate()
    if active is None:
        s = {**SPARK_DEFAULTS, **(settings or {})}
        b = SparkSession.builder.master(s["master"]).appName(s["app_name"])
        conf = {
            "spark.driver.memory": s["driver_memory"],
            "spark.sql.shuffle.partitions": str(s["shuffle_partitions"]),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.driver.extraJavaOptions": _quiet(s["java_options"]),
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
    active.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    return active


#: Spark's log for a session segkit builds: warnings, without the two every local start
#: prints (the hostname resolving to a loopback address, no native Hadoop library), so a run
#: prints its progress lines rather than the JVM's. Root at WARN, the level PySpark sets
#: for a shell anyway: any other level makes it announce "Setting default log level".
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.host.name = org.apache.spark.util.Utils
logger.host.level = error
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
"""


def _quiet(java_options: str) -> str:
    """``java_options`` plus segkit's log configuration, unless they configure log4j."""
    if "log4j" in java_options:
        return java_options
    fd, name = tempfile.mkstemp(prefix="segkit-log4j2-", suffix=".properties")
    with os.fdopen(fd, "w") as f:
        f.write(_LOG4J2)
    return f"{java_options} -Dlog4j2.configurationFile=file:{name}".strip()


def _parent_session() -> Any:
    """The session of the JVM this process was handed, or None.

    A process started by ``spark-submit``, or a stage kernel of ``segkit run`` with
    ``engine: spark`` (:func:`share_session`), finds the gateway of a running JVM in
    ``PYSPARK_GATEWAY_PORT``/``PYSPARK_GATEWAY_SECRET``. When that JVM already holds a
    SparkSession, this process attaches to it rather than build a second SparkContext
    (which Spark refuses in one JVM): the whole run is one Spark application, started once.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return None
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    gateway = launch_gateway()  # connects to the JVM named in the environment
    jvm: Any = gateway.jvm
    default = jvm.org.apache.spark.sql.SparkSession.getDefaultSession()
    if not default.isDefined():  # spark-submit's driver before any session: build one
        return None
    jsession = default.get()
    jsc = jvm.org.apache.spark.api.java.JavaSparkContext.fromSparkContext(jsession.sparkContext())
    return SparkSession(SparkContext(gateway=gateway, jsc=jsc), jsession)


@contextmanager
def share_session(settings: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """One Spark session for this process and the processes it starts meanwhile.

    :func:`spark_session` (the active or parent session, else one built from ``settings``),
    with its JVM's gateway put in the environment, so that stage kernels started inside the
    ``with`` attach to it (:func:`_parent_session`) instead of each starting a JVM of its
    own. The environment is restored afterwards; the session is left running.
    """
    session = spark_session(settings)
    params = session.sparkContext._gateway.gateway_parameters
    saved = {k: os.environ.get(k) for k in _GATEWAY_VARS}
    os.environ["PYSPARK_GATEWAY_PORT"] = str(params.port)
    os.environ["PYSPARK_GATEWAY_SECRET"] = str(params.auth_token)
    try:
        yield session
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
