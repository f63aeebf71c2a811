"""Test runs write their run folders to a temporary directory, never to reports/; the Spark
tests share one session; the pipeline and browser tests share one CDNOW run."""

import os
import shutil
import tempfile

import pytest

os.environ.setdefault("SEGKIT_REPORTS_DIR", tempfile.mkdtemp(prefix="segkit-test-reports-"))

from segkit.engine import FAST_START  # noqa: E402 - after the reports folder is set

# ---------------------------------------------------------------- Spark (engine tests)

#: The test session's Spark settings: local[2], few partitions for small data, the JVM
#: flags that halve the start-up.
SPARK_TEST = {
    "master": "local[2]",
    "shuffle_partitions": 2,
    "java_options": FAST_START,
}


@pytest.fixture(scope="session")
def spark_session():
    """One Spark local[2] session for the whole test run, stopped at its end.

    The engine modules (test_engine*.py) run one after another and share it: one JVM
    start-up (5-10 s) rather than one per module. Without Java the Spark cases are
    skipped, except in CI (CI=true), where they fail.
    """
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Java 17 for the Spark tests (.ci/run installs it)")
        pytest.skip("no Java: apt-get install openjdk-17-jre-headless")
    from segkit import engine

    session = engine.spark_session(SPARK_TEST)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_backend(spark_session):
    """The ibis backend on :func:`spark_session`."""
    from segkit import engine

    return engine.connect("spark", SPARK_TEST)


# ---------------------------------------------------------------- one CDNOW run (read only)


@pytest.fixture(scope="session")
def cdnow_run(tmp_path_factory):
    """``segkit run --params cdnow`` once for the test session (3 bootstrap rounds, money in
    dollars), for the tests that read a complete run folder (tests/test_pipeline.py,
    tests/test_browser.py); they must not change it."""
    from segkit import cli

    folder = tmp_path_factory.mktemp("runs") / "cdnow"
    over = ["--set", "cluster.n_bootstrap=3", "--set", "report.currency=$"]
    code = cli.main(["run", "--params", "cdnow", *over, "--run-dir", str(folder), "--quiet"])
    assert code == 0
    return folder
