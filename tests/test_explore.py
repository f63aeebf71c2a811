"""Stage 01: artifacts, data quality that reconciles, and the exploration helpers."""

import json

import numpy as np
import pandas as pd
import pytest

from segkit import Run, explore, plots
from segkit.core.errors import SegkitError


def tx_frame():
    # a: Jan, Feb, Apr; b: Jan; c: Feb, Mar.  Cohorts: Jan {a, b}, Feb {c}.
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c"],
            "timestamp": pd.to_datetime(
                ["2024-01-03", "2024-02-10", "2024-04-02", "2024-01-20", "2024-02-05", "2024-03-09"]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 8.0, 2.0],
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        }
    )


def test_cohort_retention_by_hand():
    got = explore.cohort_retention(tx_frame(), max_months=3, observation_end="2024-04-30")
    assert got.loc["2024-01", "size"] == 2 and got.loc["2024-02", "size"] == 1
    assert got.loc["2024-01", [0, 1, 2, 3]].tolist() == [1.0, 0.5, 0.0, 0.5]
    assert got.loc["2024-02", [0, 1, 2]].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(got.loc["2024-02", 3])  # May 2024 is after the observation end


def test_cohort_partial_last_month_is_not_a_zero():
    got = explore.cohort_retention(tx_frame(), max_months=3, observation_end="2024-04-15")
    assert np.isnan(got.loc["2024-01", 3])  # April is cut short by the observation end


def test_monthly_summary_by_hand():
    got = explore.monthly_summary(tx_frame())
    assert got["revenue"].tolist() == [15.0, 28.0, 2.0, 30.0]
    assert got["customers"].tolist() == [2, 2, 1, 1]
    assert got["new_customers"].tolist() == [2, 1, 0, 0]
    assert got["orders"].tolist() == [2, 2, 1, 1]


def test_revenue_concentration_and_gini():
    c = pd.DataFrame({"revenue": [1.0] * 8 + [46.0, 46.0]})
    got = explore.revenue_concentration(c)
    assert (got["top_10"], got["top_20"]) == (0.46, 0.92)
    # Gini from the mean-difference formula, computed independently
    x = c["revenue"].to_numpy()
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert got["gini"] == pytest.approx(gini, abs=1e-6)
    with pytest.raises(SegkitError, match="no positive revenue"):
        explore.revenue_concentration(pd.DataFrame({"revenue": [0.0, 0.0]}))


def test_quality_table_reconciles():
    q = {
        "transactions": {
            "rows_in": 10,
            "rows_used": 6,
            "rows_rejected": 4,
            "rejected": {"duplicate_row": 1, "cancellation": 3},
        },
        "customers": {"rows_in": 3, "rows_used": 3, "rows_rejected": 0, "rejected": {}},
    }
    t = explore.quality_table(q)
    assert list(t.columns) == [
        "rows_in",
        "rows_used",
        "rows_rejected",
        "cancellation",
        "duplicate_row",
    ]
    assert t.loc["customers"].tolist() == [3, 3, 0, 0, 0]
    assert (t["rows_in"] == t["rows_used"] + t.iloc[:, 3:].sum(axis=1)).all()


def test_cdnow_stage_writes_the_contract(tmp_path):
    run = Run.open("cdnow", tmp_path / "run")
    res = explore.run_stage(run)
    dq = json.loads((run.artifacts / "data_quality.json").read_text())
    tq = dq["transactions"]
    assert tq["rows_in"] == tq["rows_used"] + sum(tq["rejected"].values()) == 6919
    cust = pd.read_parquet(run.artifacts / "customers.parquet")
    assert {"customer_id", "frequency", "recency", "T", "monetary", "orders", "revenue"} <= set(
        cust
    )
    assert len(cust) == dq["summary"]["customers"] == 2357
    cal = pd.read_parquet(run.artifacts / "calibration.parquet")
    assert cal["frequency"].sum() == 2457  # see test_features: the published summary
    assert res.findings[0].startswith("2,357 customers placed")
    assert len(pd.read_parquet(run.artifacts / "rejects.parquet")) == 0


def test_hillstrom_stage_without_transactions(tmp_path):
    run = Run.open("hillstrom", tmp_path / "run")
    res = explore.run_stage(run)
    cust = run.load("customers")
    assert len(cust) == 64000 and "frequency" not in cust
    assert {"zip_code", "newbie", "history"} <= set(cust)
    exp = run.load("experiment")
    assert sorted(exp["arm"].unique()) == ["Mens E-Mail", "No E-Mail", "Womens E-Mail"]
    assert res.monthly is None and "no transaction log" in res.findings[0]


def test_rejects_and_pseudonymized_ids(tmp_path):
    params = {
        "name": "bad",
        "data": {
            "source": "files",
            "transactions": {
                "path": "tests/bad_inputs/semicolon.csv",
                "columns": {"customer_id": "customer", "timestamp": "date", "amount": "value"},
            },
            "pseudonymize": True,
        },
    }
    run = Run.open(params, tmp_path / "run")
    explore.run_stage(run)
    rej = pd.read_parquet(run.artifacts / "rejects.parquet")
    assert rej["reason"].tolist() == ["non_numeric_amount"] + ["non_positive_amount"] * 3
    assert rej["values"].iloc[0] == "customer=2 | date=2024-01-06 | value=abc"
    cust = pd.read_parquet(run.artifacts / "customers.parquet")
    assert cust["customer_id"].str.match(r"^P[0-9a-f]{16}$").all()
    tx = pd.read_parquet(run.artifacts / "transactions.parquet")
    assert set(tx["customer_id"]) == set(cust["customer_id"])


def test_experiment_alone_is_a_clear_error(tmp_path):
    params = {
        "name": "x",
        "data": {"source": "files", "experiment": {"path": "tests/bad_inputs/experiment_bad.csv"}},
    }
    run = Run.open(params, tmp_path / "run")
    with pytest.raises(SegkitError, match="experiment alone gives no customers"):
        explore.run_stage(run)


def test_exploration_plots_are_labelled():
    tx = tx_frame()
    ax = plots.plot_monthly(explore.monthly_summary(tx))
    assert ax.get_title() and "revenue" in ax.get_ylabel()
    ax = plots.plot_cohort_retention(explore.cohort_retention(tx, 3))
    assert ax.get_xlabel() == "months since first purchase"
    conc = explore.revenue_concentration(pd.DataFrame({"revenue": [1.0, 2.0, 30.0]}))
    ax = plots.plot_concentration(conc)
    assert "Gini" in ax.get_title() and ax.get_ylabel() == "% of revenue"
    q = explore.quality_table(
        {"t": {"rows_in": 3, "rows_used": 2, "rows_rejected": 1, "rejected": {"cancellation": 1}}}
    )
    ax = plots.plot_quality(q)
    assert ax.get_xlabel() == "rows set aside"
