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
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS, ENGINES
from segkit.core.paths import JSON_SUFFIXES
from segkit.core.sql import literal

#: Spark settings of a session segkit builds (``spark`` parameters).
SPARK_DEFAULTS: dict[str, Any] = dict(DEFAULTS["spark"])
#: JVM flags that halve a local session's start-up (C1 only, serial GC): tests, small data.
FAST_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: Where PySpark finds a running JVM's gateway (set by spark-submit, or by share_session).
_GATEWAY_VARS = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET")
#: Suffixes of files read with DuckDB's readers, never as Parquet (CSV, JSON, Excel; on
#: Spark they are converted with DuckDB first).
NOT_PARQUET = (".csv", ".tsv", ".txt", ".gz", ".xlsx", ".xls", ".xlsm", ".zip", *JSON_SUFFIXES)


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
            # not a spark-warehouse/ folder in the user's working directory
            "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "segkit-spark-warehouse"),
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
    session.sparkContext.setLogLevel("WARN")  # spark-submit's INFO would bury the progress
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
        # not con.create_table(temp=True): ibis' Spark backend has no temporary tables,
        # and on DuckDB ibis 12 emits an invalid DROP VIEW for a DataFrame
        if _is_spark(con):  # a temporary view of the session
            name = "_segkit_" + "".join(c if c.isalnum() else "_" for c in what)
            con._session.createDataFrame(source).createOrReplaceTempView(name)
            return con.table(name)
        return ibis.memtable(source)  # registered with DuckDB when it runs
    text = Path(source).as_posix() if isinstance(source, Path) else str(source)
    suffixes = [s.lower() for s in Path(text).suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes or Path(text).is_dir() or "://" in text:
        return con.read_parquet(text)
    if suffixes and suffixes[-1] in NOT_PARQUET:
        if _is_spark(con):
            hint = (
                "or load it with segkit (the exploration stage writes transactions.parquet)"
                if what == "transactions"
                else "or read it with engine duckdb (segkit score --engine duckdb streams CSV)"
            )
            raise SegkitError(
                f"{what} {text}: engine: spark reads Parquet or a Spark table, not CSV/JSON/Excel; "
                f"convert it first, e.g. segkit.engine.csv_to_parquet(path, 'out.parquet'), {hint}"
            )
        if any(s in JSON_SUFFIXES for s in suffixes[-2:]):
            return con.read_json(text)
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


def is_remote(path: str | Path) -> bool:
    """Whether ``path`` is a URI (``s3a://``, ``abfss://``, ``dbfs:/``, ``file://`` ...)
    rather than a path of this machine's file system."""
    text = str(path)
    return "://" in text or text.startswith("dbfs:")


def sibling(path: str | Path, tag: str) -> str:
    """A hidden name beside ``path`` (same folder or bucket prefix): ``.<name>.<tag>``."""
    text = str(path).rstrip("/")
    head, _, name = text.rpartition("/")
    return f"{head}/.{name}.{tag}" if head else f".{name}.{tag}"


def write_parquet(table: Any, path: str | Path) -> str:
    """Write ibis table ``table`` as Parquet at ``path`` through its engine; return the path.

    On Spark the executors write a folder of part files (nothing comes to the driver); on
    DuckDB one file. An existing ``path`` is replaced only once the new output is complete:
    the engine writes a hidden sibling (``.<name>.tmp-<random>``), then the old output is
    renamed aside (``.<name>.old-<random>``), the new one renamed into place and the old
    one deleted (put back if the second rename fails). On Spark the renames go through the
    session's Hadoop file system, so ``path`` means what it means to Spark (a local path,
    the cluster's default file system, ``s3a://``, ``abfss://``, ``dbfs:/`` ...); on object
    stores a rename is a copy, slower but never leaving a partial output under ``path``.
    Where there is no JVM to reach (Spark Connect) Spark overwrites ``path`` in place, and
    a failure part-way leaves it partial. A failed write removes its temporary output.

    Raises
    ------
    SegkitError
        The engine could not write, or the new output could not be renamed into place (the
        message names the paths and the engine's error).
    """
    con = table.get_backend()
    text = str(path).rstrip("/") if is_remote(path) else Path(path).as_posix()
    fs: _LocalFiles | _HadoopFiles | None
    if _is_spark(con):
        fs = _hadoop_fs(con, text)
        if fs is None:  # pragma: no cover (Spark Connect: no JVM to rename with)
            _write(table, text, overwrite=True)
            return text
    elif is_remote(text):  # DuckDB writes a remote file in one request
        _write(table, text)
        return text
    else:
        fs = _LocalFiles()
    tmp, old = (sibling(text, f"{tag}-{uuid.uuid4().hex[:12]}") for tag in ("tmp", "old"))
    try:
        _write(table, tmp)
    except BaseException:
        fs.remove(tmp)
        raise
    moved = fs.exists(text)
    if moved and not fs.rename(text, old):
        fs.remove(tmp)
        raise SegkitError(f"{text}: could not move the existing output aside to {old}")
    if not fs.rename(tmp, text):
        if moved:
            fs.rename(old, text)
        fs.remove(tmp)
        raise SegkitError(f"{text}: could not rename the new output {tmp} into place")
    if moved:
        fs.remove(old)
    return text


class _LocalFiles:
    """exists / rename / remove on this machine's file system (DuckDB's outputs)."""

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def rename(self, src: str, dest: str) -> bool:
        try:
            Path(src).rename(dest)
        except OSError:
            return False
        return True

    def remove(self, path: str) -> None:
        if Path(path).is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            Path(path).unlink(missing_ok=True)


class _HadoopFiles:
    """exists / rename / remove through the Hadoop FileSystem of a Spark session."""

    def __init__(self, fs: Any, path_class: Any) -> None:
        self.fs, self.path = fs, path_class

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.path(path)))

    def rename(self, src: str, dest: str) -> bool:
        return bool(self.fs.rename(self.path(src), self.path(dest)))

    def remove(self, path: str) -> None:
        self.fs.delete(self.path(path), True)


def _write(table: Any, path: str, overwrite: bool = False) -> None:
    con = table.get_backend()
    try:
        if _is_spark(con):
            table.to_parquet(path, mode="overwrite" if overwrite else "errorifexists")
        else:
            table.to_parquet(path)
    except SegkitError:
        raise
    except Exception as e:  # the engine's own error (Py4J, DuckDB IO): said in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise SegkitError(
            f"{path}: the engine could not write Parquet ({type(e).__name__}: {first})"
        ) from e


def _hadoop_fs(con: Any, uri: str) -> _HadoopFiles | None:
    """The Hadoop file system of ``uri`` in the session of ``con``, or None without a JVM."""
    session = getattr(con, "_session", None)
    jvm = getattr(session, "_jvm", None)
    jsc = getattr(session, "_jsc", None)
    if jvm is None or jsc is None:  # pragma: no cover (Spark Connect)
        return None
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    return _HadoopFiles(hadoop_path(uri).getFileSystem(jsc.hadoopConfiguration()), hadoop_path)
