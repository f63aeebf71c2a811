"""Tests for segkit.stages.explore: artifacts, data quality and pseudonymized ids."""

import hashlib
import json

import pandas as pd
import pytest

from segkit import Run
from segkit.core.errors import SegkitError
from segkit.stages import explore as explore_stage


def test_cdnow_stage_writes_the_contract(tmp_path):
    run = Run.open("cdnow", tmp_path / "run")
    res = explore_stage.run(run)
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
    res = explore_stage.run(run)
    cust = run.load("customers")
    assert len(cust) == 64000 and "frequency" not in cust
    assert {"zip_code", "newbie", "history"} <= set(cust)
    exp = run.load("experiment")
    assert sorted(exp["arm"].unique()) == ["Mens E-Mail", "No E-Mail", "Womens E-Mail"]
    assert res.monthly is None and "no transaction log" in res.findings[0]


def test_rejects_keep_the_raw_row(tmp_path):
    params = {
        "name": "bad",
        "data": {
            "source": "files",
            "transactions": {
                "path": "tests/bad_inputs/semicolon.csv",
                "columns": {"customer_id": "customer", "timestamp": "date", "amount": "value"},
            },
        },
    }
    run = Run.open(params, tmp_path / "run")
    explore_stage.run(run)
    rej = pd.read_parquet(run.artifacts / "rejects.parquet")
    assert rej["reason"].tolist() == ["non_numeric_amount"] + ["non_positive_amount"] * 3
    assert rej["values"].iloc[0] == "customer=2 | date=2024-01-06 | value=abc"
    cust = pd.read_parquet(run.artifacts / "customers.parquet")
    assert cust["customer_id"].tolist() == ["1"]


# Raw ids no hash could contain by chance (a pseudonym is P + hex digits).
ALICE, BOB, CAROL, DAN = "alice@example.com", "bob.jones", "carol-17", "dan.o'neil"


def _private_inputs(folder):
    """Transactions, attributes and an experiment whose rejects hold every raw id."""
    folder.mkdir()
    (folder / "tx.csv").write_text(
        "email,date,value\n"
        f"{ALICE},2024-01-05,10\n"
        f"{ALICE},2024-02-05,abc\n"  # rejected: non-numeric amount
        f" {BOB} ,2024-01-06,20\n"
        f"{BOB},2024-01-07,-5\n"  # rejected: non-positive amount
        f"{CAROL},2024-01-08,0\n"  # rejected, and Carol has no used row at all
        f"{DAN},2024-01-09,7\n"
    )
    (folder / "customers.csv").write_text(
        f"email,tier\n{ALICE},gold\n{ALICE},silver\n{BOB},gold\n{CAROL},bronze\n"
    )
    (folder / "experiment.csv").write_text(
        f"customer_id,arm,spend\n{ALICE},control,1\n{BOB},,2\n{DAN},mail,3\n"
    )
    return {
        "source": "files",
        "transactions": {
            "path": str(folder / "tx.csv"),
            "columns": {"customer_id": "email", "timestamp": "date", "amount": "value"},
        },
        "customers": {"path": str(folder / "customers.csv"), "columns": {"customer_id": "email"}},
        "experiment": {"path": str(folder / "experiment.csv")},
        "pseudonymize": True,
    }


def _all_text(artifacts) -> str:
    """Every cell and every text file of a run's artifacts, as one string."""
    parts = []
    for path in sorted(artifacts.rglob("*")):
        if path.suffix == ".parquet":
            parts.append(pd.read_parquet(path).astype(str).to_csv())
        elif path.suffix in (".csv", ".json"):
            parts.append(path.read_text())
    return "\n".join(parts)


def test_pseudonymized_artifacts_hold_no_raw_id(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_SALT", "a-secret-for-tests")
    run = Run.open({"name": "p", "data": _private_inputs(tmp_path / "in")}, tmp_path / "run")
    explore_stage.run(run)
    text = _all_text(run.artifacts)
    for raw in (ALICE, BOB, CAROL, DAN, "alice", "bob.jones", "carol-17", "neil"):
        assert raw not in text, raw
    rej = pd.read_parquet(run.artifacts / "rejects.parquet")
    assert rej["input"].tolist() == ["customers", "experiment", *["transactions"] * 3]
    assert rej["values"].str.match(r"^(email|customer_id)=P[0-9a-f]{16} \| ").all()
    # a rejected row carries the same pseudonym as the customer's used rows: P + 16 hex
    # digits of sha256(salt || id), the id cleaned as segkit.io cleans it (" bob.jones ")
    cust = pd.read_parquet(run.artifacts / "customers.parquet")
    for raw, reason in ((ALICE, "non_numeric_amount"), (BOB, "non_positive_amount")):
        pseudonym = "P" + hashlib.sha256(f"a-secret-for-tests{raw}".encode()).hexdigest()[:16]
        assert pseudonym in set(cust["customer_id"])
        row = rej[(rej["input"] == "transactions") & (rej["reason"] == reason)].iloc[0]
        assert row["values"].startswith(f"email={pseudonym} | ")


def test_pseudonymize_without_a_salt_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGKIT_SALT", raising=False)
    run = Run.open({"name": "p", "data": _private_inputs(tmp_path / "in")}, tmp_path / "run")
    with pytest.raises(SegkitError, match=r"SEGKIT_SALT is not set.*secrets\.token_hex\(16\)"):
        explore_stage.run(run)
    assert not (run.artifacts / "customers.parquet").exists()
    monkeypatch.setenv("SEGKIT_SALT", "")
    with pytest.raises(SegkitError, match="data.pseudonymize is true but SEGKIT_SALT"):
        explore_stage.run(run)


def test_pseudonyms_depend_on_the_salt_only(tmp_path, monkeypatch):
    data = _private_inputs(tmp_path / "in")
    ids = []
    for name, salt in (("a", "salt-1"), ("b", "salt-1"), ("c", "salt-2")):
        monkeypatch.setenv("SEGKIT_SALT", salt)
        run = Run.open({"name": name, "data": data}, tmp_path / name)
        ids.append(explore_stage.run(run).customers["customer_id"].tolist())
    assert ids[0] == ids[1]  # same salt, same pseudonyms across runs
    assert not set(ids[0]) & set(ids[2])  # another salt, other pseudonyms


def test_experiment_alone_is_a_clear_error(tmp_path):
    params = {
        "name": "x",
        "data": {"source": "files", "experiment": {"path": "tests/bad_inputs/experiment_bad.csv"}},
    }
    run = Run.open(params, tmp_path / "run")
    with pytest.raises(SegkitError, match="experiment alone gives no customers"):
        explore_stage.run(run)


def test_pseudonymized_demo_truth_matches_the_customers(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_SALT", "a-secret-for-tests")
    params = {"name": "d", "data": {"demo": {"n_customers": 200}, "pseudonymize": True}}
    run = Run.open(params, tmp_path / "run")
    res = explore_stage.run(run)
    truth = pd.read_parquet(run.artifacts / "truth_segments.parquet")
    assert truth["customer_id"].str.match(r"^P[0-9a-f]{16}$").all()
    assert set(res.customers["customer_id"]) <= set(truth["customer_id"])
    assert (
        not pd.read_parquet(run.artifacts / "experiment.parquet")["customer_id"]
        .str.startswith("C")
        .any()
    )


def test_the_latin1_fallback_is_said_in_the_findings(tmp_path):
    from pathlib import Path

    bad = Path(__file__).parent / "bad_inputs" / "latin1.csv"
    spec = {
        "path": str(bad),
        "columns": {
            "customer_id": "customer",
            "timestamp": "date",
            "amount": "value",
            "country": "country",
        },
    }
    run = Run.open(
        {"name": "l1", "data": {"source": "files", "transactions": spec}}, tmp_path / "r"
    )
    res = explore_stage.run(run)
    assert any("is not UTF-8; it was read as latin-1" in f for f in res.findings)
