"""Every stage on DuckDB and on Spark local[2] writes the same artifacts.

The six stages (explore, cluster, profile, clv, abtest, plan) run in process through
``segkit.stages.registry.run_stage`` on three data sets, once with ``engine: duckdb`` and
once with ``engine: spark`` (the test run's Spark session of tests/conftest.py: local[2],
the fast JVM flags, 2 shuffle partitions), from the same Parquet inputs:

- CDNOW, the bundled ``cdnow`` parameter set: the sample file read once with segkit's own
  whitespace reader (``segkit.io.read_raw``) and written to typed Parquet, the dates
  parsed with the set's ``date_formats`` (``engine.csv_to_parquet`` cannot: DuckDB's CSV
  sniffer does not split CDNOW's space-aligned columns, and Spark reads typed Parquet);
  the table spec's reading keys (format, header, names, date_formats) say so, every other
  parameter is the bundled one;
- Online Retail, the bundled ``online_retail`` parameter set on a deterministic subset of
  the bundled file, for time (the six stages on the whole file, 541,909 rows, took 97 s
  on Spark local[2] and 37 s on DuckDB, 2 shared cores): the rows of every fifth customer
  (``CustomerID`` divisible by 5) and, of the rows without a customer id, those of every
  tenth invoice (``InvoiceNo`` ending in 0): 85,953 rows, 72,104 used, 872 customers;
- the synthetic retailer of the ``demo`` parameter set (``data.source: demo``, its inputs
  generated as Parquet), with 1,200 customers instead of 4,000 (9,358 transactions) and
  BG/NBD alone as the purchase model (Pareto/NBD's fit is the slowest step of a run, on
  the per-customer table alike on both engines). CDNOW: 6,919 transactions, 2,357
  customers.

The clustering of every run is made small by overrides (``cluster.k`` = 4 from a range of
3-4, 2 bootstrap resamples, 2 gap references); the rest are the sets' parameters.

Compared: every artifact file (``.parquet`` — a Spark-written folder and a file are both
read with pandas —, ``.csv`` and the values of every ``.json``): the same names on both
engines, the same columns and types, integers and text exactly, floats to 1e-9 relative,
rows sorted by their text and integer columns. A float may also differ by 1e-9 absolute:
the stages round floats to 9 decimals, where a last-bit difference of the engines' sums
can move the 9th decimal. No artifact is left out; not compared: the run folder's
``params.yaml`` (not an artifact; it names the engine), hidden entries of ``artifacts/``
(DuckDB's spill folder, an engine's temporary output) and the pipeline's manifest (its
timings; not written by an in-process run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from segkit import engine, io
from segkit.core.params import load_params
from segkit.core.sql import literal
from segkit.stages import registry
from segkit.stages.run import Run, Skipped

pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
]
SPARK = {"master": "local[2]", "shuffle_partitions": 2, "java_options": engine.FAST_START}
#: Small clustering for time: a fixed k, two resamples, two gap references.
CLUSTER = {"cluster.k": 4, "cluster.k_min": 3, "cluster.k_max": 4}
CLUSTER |= {"cluster.n_bootstrap": 2, "cluster.gap_references": 2}
#: The synthetic retailer: 1,200 customers, and BG/NBD without Pareto/NBD (see above).
SYNTHETIC = {"data.demo.n_customers": 1200, "clv.models": ["bgnbd", "gamma_gamma"]}
DATASETS = ("cdnow", "online_retail", "synthetic")
ENGINES = ("duckdb", "spark")
#: Floats: relative tolerance, and the absolute one of a value rounded to 9 decimals.
RTOL, ATOL = 1e-9, 1e-9


def _cdnow_parquet(folder: Path) -> dict[str, Any]:
    """The CDNOW sample as typed Parquet and the overrides that point the bundled parameter
    set at it: the file read with segkit's own reader (the bundled table spec), the date
    parsed with its ``date_formats``, CDs and amounts as numbers, the ids as written."""
    spec = load_params("cdnow")["data"]["transactions"]
    con = io.connect()
    rel, _ = io.read_raw(con, spec, "transactions")
    (fmt,) = spec["date_formats"]
    path = folder / "cdnow.parquet"
    rel.select(
        f"customer_id, cohort, strptime(date, {literal(fmt)}) AS date, "
        "CAST(cds AS INTEGER) AS cds, CAST(amount AS DOUBLE) AS amount"
    ).write_parquet(path.as_posix())
    return {
        "data.transactions.path": str(path),
        "data.transactions.format": "parquet",
        "data.transactions.header": True,
        "data.transactions.names": None,
        "data.transactions.date_formats": None,  # parsed: the column is a timestamp
    }


def _online_retail_parquet(folder: Path) -> dict[str, Any]:
    """The Online Retail subset of the module docstring, in the bundled file's row order."""
    spec = load_params("online_retail")["data"]["transactions"]
    tx = pd.read_parquet(spec["path"])
    keep = (tx["CustomerID"] % 5 == 0) | (
        tx["CustomerID"].isna() & tx["InvoiceNo"].astype(str).str.endswith("0")
    )
    path = folder / "online_retail.parquet"
    tx[keep].to_parquet(path, index=False)
    return {"data.transactions.path": str(path)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, tuple[str, dict[str, Any]]]:
    """Per data set: the parameter set and the overrides of its Parquet input."""
    folder = tmp_path_factory.mktemp("inputs")
    return {
        "cdnow": ("cdnow", _cdnow_parquet(folder)),
        "online_retail": ("online_retail", _online_retail_parquet(folder)),
        "synthetic": ("demo", SYNTHETIC),
    }


@pytest.fixture(scope="module", params=DATASETS)
def runs(request, inputs, spark_session, tmp_path_factory) -> dict[str, Any]:
    """Both engines' runs of one data set: every stage's result and the run folder."""
    params, over = inputs[request.param]
    out: dict[str, Any] = {"name": request.param}
    for name in ENGINES:
        folder = tmp_path_factory.mktemp(f"{request.param}-{name}")
        run = Run.open(params, folder, {**over, **CLUSTER, "engine": name, "spark": SPARK})
        results = {stage: registry.run_stage(stage, run) for stage in registry.NAMES}
        out[name] = (run, results)
    return out


# ------------------------------------------------------------------- comparing artifacts


def _artifacts(run: Run) -> dict[str, Path]:
    """Every artifact file of ``run`` (a Parquet folder counts as one), by relative name."""
    found: dict[str, Path] = {}
    for p in sorted(run.artifacts.rglob("*")):
        rel = p.relative_to(run.artifacts)
        if rel.parts[0].startswith(".") or any(
            q.suffix == ".parquet" and q.is_dir() for q in p.parents
        ):
            continue  # DuckDB's spill folder; files inside a Parquet folder
        if p.suffix in (".parquet", ".csv", ".json") and (p.is_file() or p.suffix == ".parquet"):
            found[rel.as_posix()] = p
    return found


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by the text and integer columns, then the rest."""
    keys = [c for c in df.columns if df[c].dtype.kind not in "fc"]
    keys += [c for c in df.columns if c not in keys]
    order = df.astype(str).sort_values(keys, kind="stable").index if keys else df.index
    return df.loc[order].reset_index(drop=True)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= max(RTOL * max(abs(a), abs(b)), ATOL)


def table_differences(out: pd.DataFrame, ref: pd.DataFrame) -> list[str]:
    """How ``out`` differs from ``ref`` (empty: equal), column by column."""
    if list(out.columns) != list(ref.columns):
        return [f"columns {list(out.columns)} != {list(ref.columns)}"]
    if len(out) != len(ref):
        return [f"{len(out)} rows != {len(ref)}"]
    diffs = []
    out, ref = _sorted(out), _sorted(ref)
    for c in ref.columns:
        a, b = out[c], ref[c]
        if a.dtype != b.dtype:
            diffs.append(f"{c}: type {a.dtype} != {b.dtype}")
        elif b.dtype.kind in "fc":
            x, y = a.to_numpy(float), b.to_numpy(float)
            bad = ~np.array([_close(u, v) for u, v in zip(x, y, strict=True)], dtype=bool)
            if bad.any():
                rel = np.abs(x - y) / np.maximum(np.abs(y), np.finfo(float).tiny)
                diffs.append(
                    f"{c}: {int(bad.sum())} of {len(x)} rows differ, largest relative "
                    f"difference {np.nanmax(rel[bad]):.3g} (e.g. {x[bad][0]!r} vs {y[bad][0]!r})"
                )
        else:
            same = a.astype(object).fillna("<NA>") == b.astype(object).fillna("<NA>")
            if not same.all():
                i = int(np.flatnonzero(~same.to_numpy())[0])
                diffs.append(
                    f"{c}: {int((~same).sum())} of {len(a)} rows differ "
                    f"(e.g. {a.iloc[i]!r} vs {b.iloc[i]!r})"
                )
    return diffs


def json_differences(out: Any, ref: Any, at: str = "") -> list[str]:
    """How two JSON values differ: numbers to the tolerances, the rest exactly."""
    if isinstance(ref, dict) and isinstance(out, dict):
        if set(out) != set(ref):
            return [f"{at}: keys {sorted(set(out) ^ set(ref))} in one only"]
        return [d for k in ref for d in json_differences(out[k], ref[k], f"{at}.{k}")]
    if isinstance(ref, list) and isinstance(out, list):
        if len(out) != len(ref):
            return [f"{at}: {len(out)} items != {len(ref)}"]
        return [
            d
            for i, (u, v) in enumerate(zip(out, ref, strict=True))
            for d in json_differences(u, v, f"{at}[{i}]")
        ]
    numbers = (int, float)
    if isinstance(ref, numbers) and isinstance(out, numbers) and not isinstance(ref, bool):
        if isinstance(ref, int) and isinstance(out, int):
            return [] if out == ref else [f"{at}: {out} != {ref}"]
        return [] if _close(float(out), float(ref)) else [f"{at}: {out!r} != {ref!r}"]
    return [] if out == ref else [f"{at}: {out!r} != {ref!r}"]


def artifact_differences(out: Path, ref: Path) -> list[str]:
    """How artifact ``out`` differs from ``ref`` (empty: equal)."""
    if ref.suffix == ".json":
        return json_differences(json.loads(out.read_text()), json.loads(ref.read_text()))
    return table_differences(_read(out), _read(ref))


def _pair(runs: dict[str, Any]) -> tuple[dict[str, Path], dict[str, Path]]:
    return _artifacts(runs["spark"][0]), _artifacts(runs["duckdb"][0])


# ------------------------------------------------------------------------------ tests


def test_both_engines_write_the_same_artifacts(runs):
    out, ref = _pair(runs)
    assert sorted(out) == sorted(ref)
    assert {"transactions.parquet", "customers.parquet", "segments.parquet", "clv.parquet"} <= set(
        ref
    )


def test_every_artifact_is_equal(runs):
    out, ref = _pair(runs)
    diffs = {
        name: d
        for name in sorted(set(out) & set(ref))
        if (d := artifact_differences(out[name], ref[name]))
    }
    assert not diffs, json.dumps(diffs, indent=1)


def test_the_same_segments(runs):
    out, ref = (
        pd.read_parquet(r[0].path("segments.parquet")) for r in (runs["spark"], runs["duckdb"])
    )
    assert len(ref) > 300 and ref["segment"].nunique() == 4
    pd.testing.assert_frame_equal(out, ref)


def test_the_same_ab_table(runs):
    """The A/B stage's effects on the synthetic retailer; skipped on both without one."""
    out, ref = (r[1]["abtest"] for r in (runs["spark"], runs["duckdb"]))
    if runs["name"] != "synthetic":
        assert isinstance(out, Skipped) and isinstance(ref, Skipped)
        return
    assert out.findings == ref.findings
    assert len(ref.effects) > 10
    assert not table_differences(out.effects, ref.effects)
    pd.testing.assert_frame_equal(
        pd.read_csv(runs["spark"][0].path("ab_effects.csv")),
        pd.read_csv(runs["duckdb"][0].path("ab_effects.csv")),
        rtol=RTOL,
    )


def test_the_stages_ran(runs):
    """Every stage ran (CDNOW and Online Retail have no experiment: no A/B test, no plan)."""
    ran = {s for s, r in runs["duckdb"][1].items() if not isinstance(r, Skipped)}
    expected = set(registry.NAMES) - ({"abtest", "plan"} if runs["name"] != "synthetic" else set())
    assert ran == expected
    assert ran == {s for s, r in runs["spark"][1].items() if not isinstance(r, Skipped)}


# ------------------------------------------------------------- CLV tracking on Spark


def test_tracking_on_spark_equals_the_definition(spark_session, tmp_path):
    """clv.tracking with engine: spark, and DuckDB on the folder Spark writes, against the
    customer-by-customer pandas definition (tests/test_clv_tracking.py)."""
    from test_clv_tracking import CAL, END, assert_tracking_equal, reference_tracking

    from segkit import clv, datasets, features

    tx = datasets.make_retailer(n_customers=500, seed=5).transactions
    file = tmp_path / "tx.parquet"
    tx.to_parquet(file)
    folder = tmp_path / "spark.parquet"  # a folder of part files, as Spark writes a table
    spark_session.read.parquet(str(file)).repartition(3).write.parquet(str(folder))
    assert folder.is_dir() and len(list(folder.glob("part-*.parquet"))) == 3
    cal = features.calibration_holdout(str(file), CAL, END, "W")
    fits = {"bgnbd": clv.fit_purchases("bgnbd", cal["frequency"], cal["recency"], cal["T"])}
    ref = reference_tracking(tx, fits, CAL, END, "W")
    kw = {"calibration_end": CAL, "observation_end": END, "time_unit": "W"}
    for path in (file, folder):
        assert_tracking_equal(clv.tracking(str(path), fits, engine="spark", spark=SPARK, **kw), ref)
    assert_tracking_equal(clv.tracking(str(folder), fits, **kw), ref)


def test_the_comparison_finds_what_differs():
    """The comparison of the artifacts can fail: floats past the tolerances, any integer,
    text, type, row count or JSON value; row order alone is no difference."""
    ref = pd.DataFrame({"id": ["a", "b"], "n": [1, 2], "x": [1.0, 3.0]})
    assert not table_differences(ref.iloc[::-1], ref)
    assert not table_differences(ref.assign(x=[1.0 + 5e-10, 3.0]), ref)
    assert table_differences(ref.assign(x=[1.0, 3.0 * (1 + 1e-8)]), ref)
    assert table_differences(ref.assign(n=[1, 3]), ref)
    assert table_differences(ref.assign(id=["a", "c"]), ref)
    assert table_differences(ref.assign(n=[1.0, 2.0]), ref)
    assert table_differences(ref.head(1), ref)
    assert not json_differences({"a": [1, 2.0 + 1e-12]}, {"a": [1, 2.0]})
    assert json_differences({"a": [1, 2.1]}, {"a": [1, 2.0]})
    assert json_differences({"a": "x"}, {"a": "y"})
    assert json_differences({"a": 1}, {"b": 1})


def test_the_runs_cover_every_read_of_the_transactions(runs):
    """The engine's reads of the transactions after exploration are in the compared
    artifacts: the CLV tracking (every set), the CLV model's check on an earlier window
    (Online Retail's model misses its holdout), the migration since profile.compare_date
    (the synthetic retailer)."""
    run = runs["spark"][0]
    assert run.has("clv_tracking.csv")
    check = json.loads(run.path("clv_params.json").read_text())["_meta"]["holdout_check"]
    if runs["name"] == "online_retail":
        assert check["fits"] is False and check["earlier"]["customers"] > 200
    if runs["name"] == "synthetic":
        assert run.params["profile"]["compare_date"] and run.has("migration.csv")
