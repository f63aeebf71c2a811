"""``segkit score --engine spark`` and the fit sample on the engines.

The reference is segkit's DuckDB path (``segkit score --engine duckdb``: the table streamed
in batches through :meth:`Segmenter.score` in numpy) and, for the fit sample, pandas and
hashlib (:func:`segkit.segment.fit_sample`, itself checked against a plain ``sorted``).
Spark runs on the test run's local[2] session (tests/conftest.py) and must write the
same rows, print the same counts, leave an existing output intact when scoring fails and
say clearly what it cannot score. Spark needs Java 17: without it the Spark cases are
skipped, except in CI (CI=true) where they fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.mixture import GaussianMixture
from test_segment_scoring import awkward
from test_segment_scoring import seg as seg  # noqa: F401 (the fixture)

from segkit import cli, engine, segment
from segkit.core.errors import SegkitError
from segkit.engine import sample as engine_sample
from segkit.engine import scoring
from segkit.segment import Segmenter

# ibis 12 and PySpark 4.0 on pandas 3: deprecation notices of theirs, not of segkit
pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
]
SPARK = {"master": "local[2]", "shuffle_partitions": 2, "java_options": engine.FAST_START}


@pytest.fixture(scope="module")
def spark(spark_backend):
    """The ibis backend on the test run's Spark session (tests/conftest.py)."""
    return spark_backend


@pytest.fixture(scope="module")
def files(seg, tmp_path_factory):
    """A run folder whose manifest says engine: spark, and customers to score as Parquet
    (out of range values, missing values, unseen levels; region_code as integers, which
    the engine scores as the numpy path does)."""
    folder = tmp_path_factory.mktemp("score")
    run = folder / "run"
    (run / "artifacts").mkdir(parents=True)
    seg.save(run / "artifacts" / "segmenter.json")
    (run / "manifest.json").write_text(
        json.dumps({"parameters": {"engine": "spark", "spark": SPARK}})
    )
    new = awkward(3000, 11)
    new["region_code"] = new["region_code"].astype("Int64")
    new = new.sample(frac=1.0, random_state=3)  # rows out of id order
    new.to_parquet(folder / "new.parquet", index=False)
    return {"folder": folder, "run": run, "src": folder / "new.parquet", "new": new}


def _read(path) -> pd.DataFrame:
    out = pd.read_parquet(path).sort_values("customer_id", ignore_index=True)
    for c in ("segment", "nearest_segment"):
        out[c] = out[c].astype("Int64")
    for c in ("customer_id", "segment_name", "flag"):
        out[c] = out[c].astype("str")
    return out


@pytest.fixture(scope="module")
def both(files, spark):
    """The outputs and summaries of segkit score on DuckDB (.parquet file) and on Spark
    (the run's engine, the default target: new.segments.parquet, a folder)."""
    folder, run, src = files["folder"], str(files["run"]), str(files["src"])
    capture = {}
    for name, argv in (
        ("duckdb", ["--engine", "duckdb", "--out", str(folder / "duck.parquet")]),
        ("spark", []),
    ):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert cli.main(["score", run, src, *argv]) == 0
        capture[name] = buf.getvalue().strip().splitlines()
    return capture, folder / "duck.parquet", folder / "new.segments.parquet"


def test_spark_writes_the_rows_duckdb_writes(both, files):
    printed, duck, spark_out = both
    assert spark_out.is_dir() and list(spark_out.glob("part-*.parquet"))  # Spark's folder
    ref, out = _read(duck), _read(spark_out)
    assert len(ref) == len(files["new"]) and ref["flag"].ne("").sum() > 100
    assert ref["flag"].str.contains("; ").any()  # customers with several reasons
    pd.testing.assert_frame_equal(out, ref)
    # the reference itself: the whole table scored at once in numpy
    whole = files["new"].sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(
        ref, Segmenter.load(files["run"]).score(whole).astype(ref.dtypes.to_dict())
    )


def test_the_summary_counts_are_equal(both):
    printed, duck, _ = both
    assert printed["spark"][:-1] == printed["duckdb"][:-1]
    ref = _read(duck)
    flagged = int(ref["segment"].isna().sum())
    assert f"flagged, not assigned (outside the fitted range): {flagged:,}" in printed["spark"]
    for k, n in ref["segment"].value_counts().items():
        assert f"segment {k} name {k}: {n:,}" in printed["spark"]
    reasons = ref.loc[ref["segment"].isna(), "flag"].str.split("; ").explode().value_counts()
    for reason, n in reasons.items():
        assert f"  {reason}: {n:,}" in printed["spark"]
    assert printed["spark"][-1] == f"wrote {both[2].as_posix()} ({len(ref):,} customers)"


def test_an_existing_output_is_left_intact_when_scoring_fails(both, files, spark, tmp_path):
    """A Parquet folder whose second file has `orders` as text: Spark fails while it
    reads, after the plan was accepted; the earlier output is untouched."""
    target = tmp_path / "scored.parquet"
    shutil.copytree(both[2], target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    bad = tmp_path / "bad"
    bad.mkdir()
    new = files["new"]
    new.iloc[:100].to_parquet(bad / "a.parquet", index=False)
    new.iloc[100:200].assign(orders="many").to_parquet(bad / "b.parquet", index=False)
    with pytest.raises(SegkitError, match=r"scored.parquet.*could not write Parquet"):
        scoring.score_to_parquet(spark, str(bad), Segmenter.load(files["run"]), str(target))
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "scored.parquet"]


def test_a_uri_target_is_replaced_through_the_engine(both, files, spark, tmp_path):
    """A URI (here file://) goes through Spark's Hadoop file system: written beside, then
    renamed over the old folder."""
    shutil.copytree(both[2], tmp_path / "out.parquet")  # an earlier output, 3000 rows
    few = tmp_path / "few.parquet"
    files["new"].iloc[:40].to_parquet(few, index=False)
    uri = (tmp_path / "out.parquet").as_uri()
    summary = scoring.score_to_parquet(spark, str(few), Segmenter.load(files["run"]), uri)
    assert summary.path == uri and summary.rows == 40
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.parquet", "out.parquet"]


def _fails(argv: list[str], capsys) -> str:
    """segkit's exit code 2 (unusable input) and the error it printed."""
    assert cli.main(argv) == 2
    return capsys.readouterr().err


def test_spark_errors_say_what_it_scores(files, spark, tmp_path, capsys):
    run = str(files["run"])
    csv = tmp_path / "new.csv"
    files["new"].to_csv(csv, index=False)
    err = _fails(["score", run, str(csv), "--out", str(tmp_path / "o.parquet")], capsys)
    assert "new.csv: engine: spark reads Parquet or a Spark table, not CSV" in err
    assert "segkit score --engine duckdb streams CSV" in err
    err = _fails(["score", run, str(files["src"]), "--out", "o.csv"], capsys)
    assert "--out o.csv: the engine writes a Parquet folder, not CSV; name it e.g. o.parquet" in err
    err = _fails(["score", run, "shop.customers"], capsys)
    assert "'shop.customers' is a table name: give the output path (--out)" in err
    err = _fails(["score", run, "shop.customers", "--out", str(tmp_path / "o.parquet")], capsys)
    assert "'shop.customers': neither a Parquet file or folder nor a table of the engine" in err
    assert not (tmp_path / "o.parquet").exists()


def test_a_gmm_segmenter_is_refused_on_spark(files, tmp_path, capsys):
    """Refused before a Spark session starts, naming the method and what to use."""
    data = files["new"][["recency", "orders", "revenue"]].fillna(1.0)
    prep = segment.preprocessor(["recency", "orders", "revenue"], [], logged=["revenue"])
    gm = GaussianMixture(2, random_state=0).fit(prep.fit_transform(data))
    gmm = Segmenter.from_fitted(
        method="gmm",
        prep=prep,
        model=gm,
        data=data,
        numeric=["recency", "orders", "revenue"],
        categorical=[],
        relabel={0: 1, 1: 2},
        names={1: "a", 2: "b"},
        n_customers=len(data),
        run="t",
    )
    path = gmm.save(tmp_path / "segmenter.json")
    err = _fails(["score", str(path), str(files["src"]), "--engine", "spark"], capsys)
    assert "engine scoring supports method kmeans, this segmenter is 'gmm'" in err


# ------------------------------------------------------------------------- fit sample


def test_spark_duckdb_and_pandas_choose_the_same_sample(spark, tmp_path):
    """Text and integer ids, shuffled: the same ids on Spark, DuckDB (ibis) and pandas, and
    those of a plain sort by the hex key."""
    rng = np.random.default_rng(5)
    for name, ids in (
        ("text", pd.Series([f"c{i}-é" for i in rng.permutation(5000)], dtype="str")),
        ("int", pd.Series(rng.permutation(5000) * 7919, dtype="int64")),
    ):
        frame = tmp_path / f"{name}.parquet"
        pd.DataFrame({"customer_id": ids, "x": np.arange(len(ids))}).to_parquet(frame)
        chosen = set(ids.iloc[segment.fit_sample(ids, 300, seed=42)].tolist())
        plain = sorted(ids.tolist(), key=lambda i: segment.sample_key(i, 42))[:300]
        assert chosen == set(plain)
        for con in (spark, engine.connect("duckdb")):
            t = engine.table(con, pd.read_parquet(frame), what="customers")  # a DataFrame
            got = engine_sample.fit_sample(t, 300, seed=42).to_pandas()["customer_id"]
            assert set(got.tolist()) == chosen
        for con in (spark, engine.connect("duckdb")):  # the same hex keys, id by id
            t = engine.table(con, str(frame))
            keyed = t.select("customer_id", key=engine_sample.sample_key(t, 42)).to_pandas()
            want = [segment.sample_key(i, 42) for i in keyed["customer_id"]]
            assert keyed["key"].tolist() == want


def test_duckdb_writes_through_the_same_swap(tmp_path, monkeypatch):
    """On DuckDB write_parquet replaces a file only once the new one is complete, and puts
    the old one back when the new one cannot be renamed into place."""
    from segkit.engine import backend

    con = engine.connect("duckdb")
    target = tmp_path / "out.parquet"
    for n in (3, 5):
        t = con.read_parquet(_frame(tmp_path, n))
        assert engine.write_parquet(t, target) == target.as_posix()
        assert pd.read_parquet(target)["x"].tolist() == list(range(n))
    renames = []

    def fail_second(self, src, dest):  # moving the old aside works, the new one does not
        renames.append((src, dest))
        return len(renames) != 2 and original(self, src, dest)

    original = backend._LocalFiles.rename
    monkeypatch.setattr(backend._LocalFiles, "rename", fail_second)
    with pytest.raises(SegkitError, match=r"out.parquet: could not rename the new output"):
        engine.write_parquet(con.read_parquet(_frame(tmp_path, 7)), target)
    assert pd.read_parquet(target)["x"].tolist() == list(range(5))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in3.parquet",
        "in5.parquet",
        "in7.parquet",
        "out.parquet",
    ]


def _frame(folder, n: int):
    path = folder / f"in{n}.parquet"
    pd.DataFrame({"x": range(n)}).to_parquet(path)
    return str(path)
