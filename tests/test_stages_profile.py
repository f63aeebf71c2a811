"""Tests for segkit.stages.profile: the profile stage on small run folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    assert res.findings[-1] == (
        "10 customers in segments smaller than 20 are not profiled in detail, "
        "to protect their privacy."
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
