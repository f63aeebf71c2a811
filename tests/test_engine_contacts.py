"""The plan's contact list drawn on the engine (``segkit score --contacts``).

The reference is the plan stage itself: ``contacts.parquet`` and ``plan_counts.csv`` of a
run, drawn in pandas (:func:`segkit.plan.customers.assign`). From the same customers and
the run's ``plan.csv``, :mod:`segkit.engine.contacts` must give the same contact list (the
same customers, campaigns, channels and holdouts) and the same counts per reason, on
DuckDB and on Spark ``local[2]``: with consent, a suppression list and a last-contact date
(a plan by region), and through ``segkit score --clv --contacts`` on a run whose plan
sends (the demo with cheaper contacts). Spark needs Java 17: without it the Spark cases
are skipped, except in CI (CI=true) where they fail.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from test_plan_stage import params as plan_params
from test_plan_stage import write_inputs

from segkit import cli, engine
from segkit.engine import contacts as on_engine
from segkit.stages import clv as clv_stage
from segkit.stages import plan as plan_stage
from segkit.stages.run import Run

pytestmark = [
    pytest.mark.filterwarnings("ignore:The 'future.infer_string' option:Warning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated:Warning"),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table:DeprecationWarning"),
]
KEY = ["holdout", "segment", "customer_id"]


@pytest.fixture(scope="module")
def by_region(tmp_path_factory):
    """A plan by region with consent, a suppression list and a last contact (the plan
    stage's own test data, tests/test_plan_stage.py)."""
    inputs = tmp_path_factory.mktemp("contacts-inputs")
    write_inputs(inputs)
    run = Run.open(plan_params(inputs), tmp_path_factory.mktemp("contacts-run") / "plantest")
    plan_stage.run(run)
    return run


def _same_list(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got.sort_values(KEY, ignore_index=True)
    want = want.sort_values(KEY, ignore_index=True)
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 0
    for c in got.columns:
        if c == "expected_clv":
            a, b = got[c].to_numpy(float), want[c].to_numpy(float)
            assert np.array_equal(np.isnan(a), np.isnan(b))
            ok = ~np.isnan(a)
            # the stage's values come from clv.parquet, rounded there to 9 decimals
            assert np.allclose(a[ok], b[ok], rtol=1e-9, atol=5.1e-10), c
        else:
            assert got[c].astype(str).tolist() == want[c].astype(str).tolist(), c


def _draw(con, run):
    given = plan_stage.engine_inputs(run)
    t = engine.table(con, run.path("customers.parquet"), what="customers")
    every = on_engine.contact_expr(
        t,
        given["plan"],
        seed=given["seed"],
        segment_col=given["segment_col"],
        value_col=None,
        exclusions=given["exclusions"],
        send_date=given["send_date"],
    )
    return on_engine.contact_list(every).to_pandas(), on_engine.reason_counts(every)


@pytest.mark.parametrize("where", ["duckdb", "spark"])
def test_engine_draws_the_stages_contact_list(by_region, where, request):
    con = (
        engine.connect("duckdb") if where == "duckdb" else request.getfixturevalue("spark_backend")
    )
    got, counts = _draw(con, by_region)
    want = pd.read_parquet(by_region.path("contacts.parquet"))
    _same_list(got, want)
    stage_counts = pd.read_csv(by_region.path("plan_counts.csv"))
    assert counts.to_dict("list") == stage_counts.to_dict("list")
    assert {"no consent", "suppressed"} <= set(stage_counts.loc[stage_counts.customers > 0].reason)


def test_a_different_seed_draws_other_customers(by_region):
    """The draw depends on the seed: the same counts, other customers held out (the plan
    here contacts or holds out every contactable customer of the targeted regions)."""
    given = plan_stage.engine_inputs(by_region)
    con = engine.connect("duckdb")
    t = engine.table(con, by_region.path("customers.parquet"), what="customers")
    kw = {k: given[k] for k in ("segment_col", "exclusions", "send_date")}
    a = on_engine.contact_list(
        on_engine.contact_expr(t, given["plan"], seed=1, value_col=None, **kw)
    ).to_pandas()
    b = on_engine.contact_list(
        on_engine.contact_expr(t, given["plan"], seed=2, value_col=None, **kw)
    ).to_pandas()
    assert len(a) == len(b) and a["holdout"].sum() == b["holdout"].sum() > 0
    assert set(a.loc[a["holdout"], "customer_id"]) != set(b.loc[b["holdout"], "customer_id"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo run through CLV and a plan that sends (cheaper contacts, a lower bar)."""
    over = {
        "data.demo.n_customers": 3000,
        "cluster.n_bootstrap": 3,
        "cluster.k_max": 5,
        "abtest.cost_per_contact": 0.01,
        "plan.alpha": 0.25,
        "plan.min_holdout": 20,
        "plan.min_segment_size": 50,
    }
    run = Run.open("demo", tmp_path_factory.mktemp("contacts-demo") / "demo", over)
    clv_stage.run(run)
    plan_stage.run(run)
    return run


def _cli(args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["score", *args]) == 0
    return out.getvalue()


def test_score_contacts_on_both_engines(demo, spark_backend, tmp_path):
    """``segkit score --clv --contacts``: the stage's contact list and counts, the CLV as
    the expected value, on DuckDB (CSV scored output) and on Spark (Parquet folders)."""
    want = pd.read_parquet(demo.path("contacts.parquet"))
    assert len(want) > 0 and want["expected_clv"].notna().all()
    counts = pd.read_csv(demo.path("plan_counts.csv"))
    src = str(demo.path("customers.parquet"))
    for where in ("duckdb", "spark"):
        out = tmp_path / f"{where}.contacts.parquet"
        scored = tmp_path / (f"{where}.scored" + (".csv" if where == "duckdb" else ".parquet"))
        printed = _cli(
            [str(demo.folder), src, "--engine", where, "--clv", "--out", str(scored)]
            + ["--contacts", str(out)]
        )
        _same_list(pd.read_parquet(out), want)
        for r in counts.itertuples(index=False):
            assert f"  {r.reason}: {r.customers:,}\n" in printed, (where, r.reason)


def test_score_contacts_without_a_plan_fails_before_scoring(demo, tmp_path, capsys):
    """A run with a segmenter but no plan: a clear error, and nothing scored or written."""
    folder = tmp_path / "run_without"
    (folder / "artifacts").mkdir(parents=True)
    segmenter = demo.path("segmenter.json")
    (folder / "artifacts" / "segmenter.json").write_bytes(segmenter.read_bytes())
    (folder / "params.yaml").write_text((demo.folder / "params.yaml").read_text())
    out = tmp_path / "scored.csv"
    code = cli.main(
        ["score", str(folder), str(demo.path("customers.parquet")), "--out", str(out)]
        + ["--contacts", str(tmp_path / "c.parquet")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "has no campaign plan" in err and "segkit plan" in err
    assert not out.exists() and not (tmp_path / "c.parquet").exists()
