"""Tests for segkit.stages.profile: the profile stage on small run folders."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from segkit import io
from segkit.core.errors import SegkitError
from segkit.stages import profile as profile_stage
from segkit.stages.run import Run


def _rule_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Segment 1 is exactly 'orders >= 5 and days_since_last <= 30'; 10 customers per cell."""
    orders = [5] * 10 + [5] * 10 + [4] * 10 + [4] * 10
    days = [30] * 10 + [31] * 10 + [30] * 10 + [31] * 10
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(40)],
            "orders": orders,
            "days_since_last": days,
        }
    )
    return df, pd.Series([1] * 10 + [2] * 30)


def test_run_stage_writes_artifacts(tmp_path):
    df, seg = _rule_frame()
    df = df.assign(revenue=np.where(seg == 1, 100.0, 10.0))
    segments = pd.DataFrame({"customer_id": df["customer_id"], "segment": seg})
    old = tmp_path / "old"
    (old / "artifacts").mkdir(parents=True)
    segments.assign(segment=2).to_parquet(old / "artifacts" / "segments.parquet")
    run = Run.open(
        {"name": "t", "profile": {"compare_run": str(old), "tree_depth": 2, "min_segment_size": 5}},
        run_dir=tmp_path / "run",
        overrides={"cluster.names": {1: "Best"}},
    )
    run.save("customers.parquet", df)
    run.save("segments.parquet", segments)
    res = profile_stage.run(run)
    for name in (
        "profiles.csv",
        "index_table.csv",
        "rules.csv",
        "actions.csv",
        "segment_names.json",
        "migration.csv",
        "findings_profile.json",
    ):
        assert (run.artifacts / name).exists(), name
    assert res.names[1] == "Best"
    # segment 1: 10 of 40 customers, 1000 of 1300 revenue
    assert res.findings[0] == "'Best': 25% of customers, 77% of revenue"
    assert res.fidelity == 1.0
    # everyone was in segment 2 before: 10 moved to 1, 30 stayed
    m = res.migration.set_index(["from_segment", "to_segment"])["customers"]
    assert m[("2", "1")] == 10 and m[("2", "2")] == 30
    assert "75% of customers stayed" in res.findings[-1]


def test_run_stage_missing_compare_run(tmp_path):
    df, seg = _rule_frame()
    run = Run.open(
        {"name": "t", "profile": {"compare_run": str(tmp_path / "nope")}}, run_dir=tmp_path / "r"
    )
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": df["customer_id"], "segment": seg}))
    with pytest.raises(SegkitError, match="profile.compare_run == .*nope"):
        profile_stage.run(run)


def test_run_stage_suppresses_small_segments(tmp_path):
    df, seg = _rule_frame()  # segment 1 has 10 customers, segment 2 has 30
    run = Run.open({"name": "t"}, run_dir=tmp_path / "r")  # profile.min_segment_size = 20
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": df["customer_id"], "segment": seg}))
    res = profile_stage.run(run)
    assert res.profiles["segment"].tolist() == [2, 0]
    assert res.findings[0] == f"'{res.names[2]}' is the largest segment: 75% of customers"
    assert res.profiles["n"].tolist() == [30, 10]
    assert res.rules["segment"].unique().tolist() == [2]  # no rule describes the small one
    assert res.actions["segment"].tolist() == [2]
    assert list(res.index.index) == [res.names[2]]
    assert res.findings[-1] == (  # the excluded segment named with its size
        "10 customers in segments smaller than 20 are not profiled in detail, "
        f"to protect their privacy: segment 1 '{res.names[1]}' (10 customers)."
    )
    assert res.migration is None and not (run.artifacts / "migration.csv").exists()


def test_migration_since_an_earlier_date(tmp_path):
    """profile.compare_date: segments as of that date, rebuilt from the transactions."""
    params = {
        "name": "t",
        "data": {"source": "demo", "demo": {"n_customers": 400}},
        "cluster": {"k_min": 3, "k_max": 5, "n_bootstrap": 3, "gap_references": 2},
        "profile": {"compare_date": "2023-06-30"},
    }
    run = Run.open(params, tmp_path / "r")
    res = profile_stage.run(run)
    mig = res.migration
    tx = run.load("transactions")
    first = tx.groupby("customer_id")["timestamp"].min()
    late = int((first.dt.normalize() > pd.Timestamp("2023-06-30")).sum())
    assert mig.loc[mig["from_segment"] == "new", "customers"].sum() == late
    assert mig["customers"].sum() == tx["customer_id"].nunique()
    assert mig.loc[mig["to_segment"] == "gone", "customers"].sum() == 0
    assert any(f.startswith("Since 2023-06-30,") for f in res.findings)
    with pytest.raises(SegkitError, match=r"compare_date == 2020-01-01 is before the first"):
        profile_stage.segments_at(run, "2020-01-01")


def test_segments_at_closes_its_connection(tmp_path, monkeypatch):
    """The DuckDB connection of :func:`segments_at` is closed when it returns and when it
    raises (it was left open, with its memory and spill folder, until garbage collection)."""
    params = {
        "name": "t",
        "data": {"source": "demo", "demo": {"n_customers": 200}},
        "cluster": {"k_min": 2, "k_max": 3, "n_bootstrap": 2, "gap_references": 2},
    }
    run = Run.open(params, tmp_path / "r")
    run.load("segmenter")  # runs explore and cluster
    opened: list[duckdb.DuckDBPyConnection] = []
    connect = io.connect

    def recording(*args, **kwargs):
        opened.append(connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(io, "connect", recording)
    before, _ = profile_stage.segments_at(run, "2023-06-30")
    assert len(before) > 0
    with pytest.raises(SegkitError, match=r"compare_date == 2020-01-01 is before the first"):
        profile_stage.segments_at(run, "2020-01-01")
    assert len(opened) == 2
    for con in opened:
        with pytest.raises(duckdb.ConnectionException, match="closed"):
            con.execute("SELECT 1")


def test_compare_date_without_transactions_is_a_clear_error(tmp_path):
    df, seg = _rule_frame()
    run = Run.open({"name": "t", "profile": {"compare_date": "2024-01-01"}}, run_dir=tmp_path / "r")
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": df["customer_id"], "segment": seg}))
    with pytest.raises(SegkitError, match="compare_date needs a transaction log"):
        profile_stage.run(run)


def test_no_segments_skips_the_stage(tmp_path):
    df, _ = _rule_frame()
    run = Run.open({"name": "t"}, run_dir=tmp_path / "r")
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": [], "segment": []}))
    res = profile_stage.run(run)
    assert res.reason == "there are no segments to profile"
    assert run.load("findings_profile")["status"] == "skipped"


# ---------------------------------------------------------------------- outcome rates


@pytest.fixture(scope="module")
def crm_run(tmp_path_factory):
    """The synthetic CRM export (known segments and response rates), loaded like the
    exploration stage does and clustered by the cluster stage."""
    from segkit import datasets, io
    from segkit.stages import cluster

    folder = tmp_path_factory.mktemp("crm")
    ct = datasets.make_customer_table(2000, seed=42)
    ct.table.to_csv(folder / "crm.csv", index=False)
    spec = {"path": str(folder / "crm.csv"), "id_from_row": True}
    params = {
        "name": "crm",
        "data": {"source": "files", "customers": spec},
        "cluster": {"k_min": 2, "k_max": 6, "n_bootstrap": 5, "gap_references": 3},
    }
    run = Run.open(params, folder / "run")
    customers = io.load_customers(spec).used.df()
    run.save("customers.parquet", customers)
    cluster.run(run)
    truth = pd.Series(ct.truth["true_segment"].to_numpy(), index=customers["customer_id"])
    return run, profile_stage.run(run), ct, truth


def test_outcome_rates_recover_the_known_rates(crm_run):
    """Each found segment's rate against the rate its customers were drawn with: the
    true rates mixed in the proportions of the true segments it holds (the outcomes depend
    only on the true segment). All 12 (segment, outcome) intervals hold their truth."""
    run, res, ct, truth = crm_run
    rates = res.outcome_rates
    assert rates is not None and (run.artifacts / "outcome_rates.csv").exists()
    assert set(rates["outcome"]) == {"Response", "AcceptedCmp1", "Complain"}
    assert (rates["kind"] == "rate").all() and not rates["suppressed"].any()
    found = run.load("segments").set_index("customer_id")["segment"].reindex(truth.index)
    mix = pd.crosstab(found, truth, normalize="index")  # found segment × true segment
    true = ct.rates.pivot(index="segment", columns="outcome", values="rate")
    expected = mix.to_numpy() @ true.loc[mix.columns].to_numpy()
    expected = pd.DataFrame(expected, index=mix.index, columns=true.columns)
    for _, row in rates.iterrows():
        want = expected.loc[row["segment"], row["outcome"]]
        assert row["ci_low"] <= want <= row["ci_high"], (row.to_dict(), want)
    pure = mix.max(axis=1)  # the segment the cluster stage found almost without mixing
    best = pure.idxmax()
    assert pure[best] > 0.99
    true_seg = int(mix.loc[best].idxmax())
    got = rates.set_index(["segment", "outcome"]).loc[(best, "Response"), "estimate"]
    assert got == pytest.approx(true.loc[true_seg, "Response"], abs=0.05)


def test_outcome_findings_name_the_top_segment_and_say_association(crm_run):
    run, res, _, _ = crm_run
    rates = res.outcome_rates
    top = rates[rates["outcome"] == "AcceptedCmp1"].sort_values("estimate").iloc[-1]
    words = [f for f in res.findings if "highest rate of accepted cmp1" in f]
    assert len(words) == 1
    assert words[0].startswith(f"Segment {top['segment']} ")
    assert f"(index {top['index']:.0f}, 95% interval" in words[0]
    assert "clearly above" in words[0] and "not clearly" not in words[0]
    assert "associations, not effects" in res.findings[-1]
    saved = pd.read_csv(run.artifacts / "outcome_rates.csv")
    assert saved["estimate"].tolist() == pytest.approx(rates["estimate"].tolist())


def test_outcome_findings_with_an_experiment_do_not_warn():
    rates = pd.DataFrame(
        {
            "segment": [1, 2],
            "segment_name": ["A $1", "B"],
            "outcome": ["Response"] * 2,
            "kind": ["rate"] * 2,
            "customers": [100, 100],
            "estimate": [0.3, 0.1],
            "ci_low": [0.22, 0.05],
            "ci_high": [0.39, 0.17],
            "overall": [0.2, 0.2],
            "index": [150.0, 50.0],
            "suppressed": [False, False],
        }
    )
    words = profile_stage.outcome_findings(rates, labels={"Response": "replied"}, experiment=True)
    assert words == [
        "Segment 1 'A \\$1' has the highest rate of replied: 30% (index 150, 95% interval "
        "22% to 39%); clearly above the 20% of all customers."
    ]
    words = profile_stage.outcome_findings(rates, labels={}, experiment=False)
    assert len(words) == 2 and "associations, not effects" in words[1]


def test_outcome_columns_declared_artifact_inferred(tmp_path):
    df, seg = _rule_frame()
    df = df.assign(Response=[0, 1] * 20, AcceptedCmp2=[1, 0] * 20, score=range(40))
    run = Run.open({"name": "t"}, run_dir=tmp_path / "r")
    assert profile_stage.outcome_columns(run, df) == ["Response", "AcceptedCmp2"]  # by name
    run.save(
        "cluster_features.csv",
        pd.DataFrame(
            {"feature": ["orders", "score"], "role": ["feature", "outcome"], "used": [1, 0]}
        ),
    )
    assert profile_stage.outcome_columns(run, df) == ["score"]  # as the cluster stage said
    spec = {"customers": {"path": "x.csv", "outcomes": ["Response", "gone"]}}
    run = Run.open({"name": "t", "data": {"source": "files", **spec}}, run_dir=tmp_path / "s")
    assert profile_stage.outcome_columns(run, df) == ["Response"]  # as listed, when present


def test_no_outcomes_no_outcome_rates(tmp_path):
    df, seg = _rule_frame()
    run = Run.open({"name": "t"}, run_dir=tmp_path / "r")
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": df["customer_id"], "segment": seg}))
    res = profile_stage.run(run)
    assert res.outcome_rates is None and not (run.artifacts / "outcome_rates.csv").exists()
    assert not any("association" in f for f in res.findings)


# ------------------------------------------------------------- a customer table's view


def test_view_codes_value_and_left_out_columns(tmp_path):
    """Codes declared in cluster.categorical or with labelled levels become levels; ids,
    constants and outcomes leave the feature profile; cluster.value is the money."""
    n = 40
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "ID": np.arange(n) * 7 + 3,
            "Region": [1, 2, 3, 1] * 10,
            "Channel": [1, 2] * 20,
            "flat": 3,
            "Response": [0, 1, 0, 0] * 10,
            "spend_a": np.arange(n, dtype=float),
            "spend_b": np.arange(n, dtype=float) * 2,
        }
    )
    spec = {
        "path": "x.csv",
        "derive": {"total": "spend_a + spend_b"},
        "labels": {"Channel=2": "retail", "total": "total spend"},
    }
    params = {
        "name": "t",
        "data": {"source": "files", "customers": spec},
        "cluster": {"categorical": ["Region"], "value": "total"},
        "profile": {"min_segment_size": 5},
    }
    run = Run.open(params, run_dir=tmp_path / "r")
    v = profile_stage.view(run, df)
    assert profile_stage.code_columns(run, df, v.readable) == ["Region", "Channel"]
    assert v.value == "total" and v.outcomes == ["Response"]
    assert set(v.table.columns) == {
        "customer_id",
        "Region",
        "Channel",
        "spend_a",
        "spend_b",
        "total",
    }
    assert sorted(v.table["Channel"].unique()) == ["1", "retail"]
    seg = pd.Series([1] * 10 + [2] * 30)  # segment 1: spend 0..9 of 0..39
    run.save("customers.parquet", df)
    run.save("segments.parquet", pd.DataFrame({"customer_id": df["customer_id"], "segment": seg}))
    res = profile_stage.run(run)
    # total = 3 × spend_a: segment 1 holds 3 × 45 of 3 × 780
    assert res.profiles["share_value"].tolist() == pytest.approx([45 / 780, 735 / 780])
    assert res.findings[0] == f"'{res.names[2]}': 75% of customers, 94% of total spend"
    assert "mean_Region" not in res.profiles.columns and "pct_Channel=retail" in res.profiles
