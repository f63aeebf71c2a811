"""segkit.engine: the ibis definitions give segkit's own DuckDB results, on DuckDB and Spark.

The reference is segkit's DuckDB path (segkit.features, Segmenter.score in numpy,
segkit.abtest.aggregation in DuckDB SQL) on ~10k transactions of the synthetic retailer;
each ibis definition runs on DuckDB through ibis and on Spark local[2] (the test run's
session, tests/conftest.py, started with the fast JVM flags). Features are equal to 1e-9 (relative),
segments and flags identical, A/B counts exact and sums equal to 1e-12 (relative).
Spark needs Java 17: without it the Spark cases are skipped, except in CI (CI=true) where
they fail.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from segkit import datasets, engine, features
from segkit.abtest import aggregation as agg
from segkit.core.errors import SegkitError
from segkit.core.params import load_params
from segkit.engine import abtest as engine_ab
from segkit.engine import features as engine_features
from segkit.engine import scoring
from segkit.engine.backend import flt
from segkit.segment.prepare import DEFAULT_FEATURES, prepare, preprocessor
from segkit.segment.segmenter import Segmenter, order_labels

# ibis 12 and PySpark 4.0 on pandas 3: deprecation notices of theirs, not of segkit
pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
]
SPARK = {"master": "local[2]", "shuffle_partitions": 2, "java_options": engine.FAST_START}
METRICS = [
    {"name": "visit", "kind": "proportion", "col": "visit"},
    {"name": "spend", "kind": "mean", "col": "spend", "covariate": "pre_spend"},
    {"name": "spend_per_visit", "kind": "ratio", "num": "spend", "den": "visit"},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """~10k transactions, the customer table and an experiment, as Parquet."""
    folder = tmp_path_factory.mktemp("engine")
    r = datasets.make_retailer(n_customers=1400, seed=7)
    tx = folder / "tx.parquet"
    r.transactions.to_parquet(tx)
    n = len(r.experiment)
    exp = r.experiment.assign(
        segment=np.where(np.arange(n) % 9 == 0, None, (np.arange(n) % 4 + 1).astype(str))
    )
    exp.loc[::13, "spend"] = np.nan  # missing outcomes are left out of the spend sums
    exp.to_parquet(folder / "exp.parquet")
    return {
        "folder": folder,
        "tx": tx,
        "r": r,
        "exp": folder / "exp.parquet",
        "rows": len(r.transactions),
    }


@pytest.fixture(scope="module", params=["ibis-duckdb", "spark"])
def backend(request):
    """Each engine the ibis definitions run on (Spark: the module's session)."""
    if request.param == "ibis-duckdb":
        return engine.connect("duckdb")
    return request.getfixturevalue("spark_backend")


def _assert_same_table(out: pd.DataFrame, ref: pd.DataFrame, rtol: float) -> None:
    """Same columns and types; integers and text exactly, floats to ``rtol`` (relative)."""
    assert list(out.columns) == list(ref.columns)
    assert out.dtypes.to_dict() == ref.dtypes.to_dict()
    assert len(out) == len(ref)
    for c in ref.columns:
        if ref[c].dtype.kind == "f":
            np.testing.assert_allclose(out[c], ref[c], rtol=rtol, atol=0, err_msg=c)
        else:
            assert (
                out[c].astype(object).fillna("<NA>") == ref[c].astype(object).fillna("<NA>")
            ).all(), c


def test_the_log_is_about_10k_transactions(data):
    assert 9_000 <= data["rows"] <= 12_000


@pytest.mark.parametrize("unit", ["D", "W"])
def test_customer_features_equal_segkit_duckdb(data, backend, unit):
    ref = features.customer_features(str(data["tx"]), time_unit=unit)
    out = engine_features.customer_features(engine.table(backend, str(data["tx"])), time_unit=unit)
    assert ref["frequency"].gt(0).mean() > 0.5 and len(ref) > 1000  # the data are not trivial
    _assert_same_table(out, ref, rtol=1e-9)


def test_a_customer_without_revenue_gets_the_same_shares(backend, tmp_path):
    """0 / 0 is NaN in DuckDB and an error under Spark's ANSI mode: the same NaN on both."""
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]),
            "amount": [0.0, 0.0, 5.0],
            "channel": ["web", "app", "web"],
        }
    )
    path = tmp_path / "zero.parquet"
    tx.to_parquet(path)
    ref = features.customer_features(str(path))
    assert ref["share_channel_web"].isna().tolist() == [True, False]  # the DuckDB SQL's NaN
    out = engine_features.customer_features(engine.table(backend, str(path)))
    _assert_same_table(out, ref, rtol=1e-9)


def test_features_dispatch_on_engine_spark(data, spark_backend):
    """features.customer_features(engine="spark") and calibration_holdout (active session)."""
    end = "2024-12-31"
    ref = features.customer_features(str(data["tx"]), end)
    out = features.customer_features(str(data["tx"]), end, engine="spark", spark=SPARK)
    _assert_same_table(out, ref, rtol=1e-9)
    ref = features.calibration_holdout(str(data["tx"]), "2024-06-30", end, "W")
    out = features.calibration_holdout(
        str(data["tx"]), "2024-06-30", end, "W", engine="spark", spark=SPARK
    )
    _assert_same_table(out, ref, rtol=1e-9)


def _segmenter(customers: pd.DataFrame) -> Segmenter:
    """A k-means segmenter fitted as the clustering stage does: prepare, transform, fit."""
    num = DEFAULT_FEATURES + [c for c in customers.columns if c.startswith("share_")]
    prep = prepare(customers, num, ["region", "income_band"])
    pre = preprocessor(prep.numeric, prep.categorical, prep.logged, prep.bounds)
    km = KMeans(5, n_init=3, random_state=0).fit(pre.fit_transform(prep.data))
    relabel = order_labels(customers, km.labels_, "revenue")
    return Segmenter.from_fitted(
        method="kmeans",
        prep=pre,
        model=km,
        data=prep.data,
        numeric=prep.numeric,
        categorical=prep.categorical,
        relabel=relabel,
        names={s: f"segment {s}" for s in relabel.values()},
        n_customers=len(customers),
        run="test",
    )


@pytest.fixture(scope="module")
def scored(data):
    """A fitted segmenter and customers to score, some outside the fitted ranges."""
    r = data["r"]
    customers = features.customer_features(str(data["tx"])).merge(r.customers, on="customer_id")
    seg = _segmenter(customers)
    new = customers.copy()
    new.loc[0, "revenue"] = 1e9
    new.loc[1, "days_since_last"] = -3
    new.loc[2, "orders"] = np.nan  # filled with the fitted median
    new.loc[3, "region"] = "Atlantis"  # a level not seen in fitting
    new.loc[4, "region"] = None  # the level 'missing', not seen either
    new.loc[5, "aov"] = np.inf
    path = data["folder"] / "customers.parquet"
    new.to_parquet(path)
    return seg, seg.score(new).sort_values("customer_id", ignore_index=True), path


def test_scoring_gives_the_segmenters_segments_and_flags(scored, backend):
    seg, ref, path = scored
    out = scoring.score(engine.table(backend, str(path)), seg)
    assert ref["flag"].ne("").sum() >= 5 and ref["segment"].nunique() == 5
    _assert_same_table(out, ref, rtol=0)


def test_ab_sufficient_stats_equal_duckdb(data, backend):
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW x AS SELECT * FROM read_parquet('{data['exp'].as_posix()}')")
    backend.read_parquet(str(data["exp"]), table_name="x")
    assert agg.scan(backend, "x").arm_rows == agg.scan(con, "x").arm_rows
    assert agg.missing_counts(backend, "x", METRICS) == agg.missing_counts(con, "x", METRICS)
    for group in (None, "segment"):
        ref = agg.sufficient_stats(con, "x", group, METRICS)
        out = agg.sufficient_stats(backend, "x", group, METRICS)
        assert agg.MISSING_SEGMENT in ref["segment"].tolist() or group is None
        _assert_same_table(out, ref, rtol=1e-12)


def test_on_engine_hands_a_duckdb_relation_to_spark(data, spark_backend):
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW y AS SELECT * FROM read_parquet('{data['exp'].as_posix()}')")
    back, rel = agg.on_engine(con, "y", "spark", SPARK)
    assert engine.is_ibis_backend(back) and rel == "y"
    ref = agg.sufficient_stats(con, "y", "segment", METRICS)
    _assert_same_table(agg.sufficient_stats(back, rel, "segment", METRICS), ref, rtol=1e-12)
    assert agg.on_engine(con, "y", "duckdb") == (con, "y")


def test_spark_refuses_csv_with_advice(data, spark_backend, tmp_path):
    csv = tmp_path / "tx.csv"
    data["r"].transactions.head(50).to_csv(csv, index=False)
    with pytest.raises(SegkitError, match=r"tx\.csv: engine: spark reads Parquet.*csv_to_parquet"):
        features.customer_features(str(csv), engine="spark", spark=SPARK)
    converted = engine.csv_to_parquet(csv, tmp_path / "tx.parquet")
    out = features.customer_features(str(converted), engine="spark", spark=SPARK)
    assert len(out) == data["r"].transactions.head(50)["customer_id"].nunique()


def test_engine_errors_name_the_problem(data):
    with pytest.raises(SegkitError, match=r"engine == 'sparky', must be one of"):
        engine.connect("sparky")
    with pytest.raises(SegkitError, match=r"not a DuckDB relation"):
        import duckdb

        rel = duckdb.connect().sql(f"SELECT * FROM read_parquet('{data['tx'].as_posix()}')")
        features.customer_features(rel, engine="spark")
    t = engine.table(engine.connect("duckdb"), str(data["tx"]))
    with pytest.raises(SegkitError, match=r"missing column 'amt' \(amount_col\)"):
        engine_features.customer_features(t, amount_col="amt")
    seg = Segmenter.__new__(Segmenter)
    seg.method, seg.transform = "gmm", None
    with pytest.raises(SegkitError, match=r"supports method kmeans"):
        scoring.score(t, seg)


def test_engine_parameters_are_validated():
    assert load_params("demo")["engine"] == "duckdb"  # the embedded default
    assert load_params("demo", ["engine=spark"])["spark"]["master"] == "local[2]"
    with pytest.raises(SegkitError, match=r"engine == 'flink', must be one of"):
        load_params("demo", ["engine=flink"])
    with pytest.raises(SegkitError, match=r"spark.shuffle_partitions == 0, must be >= 1"):
        load_params("demo", ["spark.shuffle_partitions=0"])
    with pytest.raises(SegkitError, match=r"spark.conf == 3, must be a mapping"):
        load_params("demo", ["spark.conf=3"])


def test_float_constants_stay_double_on_spark(spark_backend):
    """Spark reads 7.0 as DECIMAL(2,1); engine.backend.flt keeps constants DOUBLE."""
    t = engine_ab.ibis_module().memtable({"d": [10, 3]})
    expr = t.select(x=t.d.cast("float64") / flt(7.0), y=t.d.cast("float64") * flt(0.1))
    assert "CAST('7.0' AS DOUBLE)" in str(spark_backend.compile(expr))
    out = spark_backend.execute(expr)
    assert out["x"].tolist() == [10 / 7, 3 / 7] and out["y"].tolist() == [10 * 0.1, 3 * 0.1]


def test_abtest_stage_with_engine_spark_gives_the_same_effects(tmp_path, spark_backend):
    """The A/B stage with engine: spark (scan, checks and sums on Spark) reaches the same
    effects and findings as with DuckDB."""
    from test_abtest_stage import write_inputs

    from segkit.stages import abtest as abtest_stage
    from segkit.stages.run import Run

    write_inputs(tmp_path, ghost=0)
    over = {
        "data.source": "files",
        "data.customers": {"path": str(tmp_path / "customers.csv")},
        "data.experiment": {"path": str(tmp_path / "experiment.csv")},
        "abtest.control": "control",
        "abtest.segment_cols": ["region"],
        "abtest.min_n": 20,
    }
    res = {
        name: abtest_stage.run(
            Run.open(None, tmp_path / name, {**over, "engine": name, "spark": SPARK})
        )
        for name in ("duckdb", "spark")
    }
    assert res["spark"].findings == res["duckdb"].findings
    pd.testing.assert_frame_equal(res["spark"].effects, res["duckdb"].effects, rtol=1e-9)
    assert set(res["duckdb"].effects["segment_col"]) == {"all", "region"}


def test_a_child_process_attaches_to_the_shared_session(spark_backend):
    """segkit run starts one session and its stage kernels attach to it (one application)."""
    import subprocess
    import sys

    child = (
        "from segkit import engine\n"
        "s = engine.spark_session({'master': 'local[1]', 'app_name': 'not-this-one'})\n"
        "print(s.sparkContext.applicationId, s.range(5).count(),"
        " s.conf.get('spark.sql.session.timeZone'))\n"
    )
    with engine.share_session(SPARK) as session:
        assert os.environ["PYSPARK_GATEWAY_PORT"]
        out = subprocess.run(
            [sys.executable, "-c", child], capture_output=True, text=True, timeout=300
        )
        app = session.sparkContext.applicationId
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [app, "5", "UTC"]
    assert "PYSPARK_GATEWAY_PORT" not in os.environ  # restored: later sessions are their own
    assert session.range(3).count() == 3  # the child's exit left the session running
