"""segkit.stages.clv: the clv stage of a run (artifacts, skip, parameter errors)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from segkit.core.errors import SegkitError
from segkit.core.params import load_params
from segkit.stages import clv as clv_stage
from segkit.stages.run import Run, Skipped


def _run_with_customers(tmp_path, customers: pd.DataFrame, overrides=None) -> Run:
    """A run folder holding only a customers artifact (no stage runs before clv's checks)."""
    run = Run(tmp_path / "run", load_params("demo", overrides))
    run.artifacts.mkdir(parents=True)
    run.save("customers.parquet", customers)
    return run


def test_stage_writes_the_contract(tmp_path):
    run = Run.open(
        "demo",
        tmp_path / "run",
        {"data.demo.n_customers": 1500, "cluster.n_bootstrap": 3, "cluster.k_max": 5},
    )
    res = clv_stage.run(run)
    params = json.loads(run.path("clv_params.json").read_text())
    assert set(params["bgnbd"]) >= {"r", "alpha", "a", "b", "se", "loglik"}
    assert set(params["pareto_nbd"]["se"]) == {"r", "alpha", "s", "beta"}
    assert set(params["gamma_gamma"]) >= {"p", "q", "v", "se", "loglik"}
    per = pd.read_parquet(run.path("clv.parquet"))
    assert len(per) == 1500 and per["customer_id"].is_unique
    assert {"segment", "p_alive", "expected_purchases", "expected_spend", "clv"} <= set(per)
    seg = pd.read_csv(run.path("clv_segments.csv"))
    assert seg["customers"].sum() == 1500
    assert seg["share_of_value"].sum() == pytest.approx(1.0)
    assert res.findings and res.holdout is not None
    assert res.tracking["actual"].sum() == pytest.approx(
        pd.read_parquet(run.path("calibration.parquet"))[["frequency", "frequency_holdout"]]
        .sum()
        .sum()
    )
    saved = json.loads(run.path("findings_clv.json").read_text())
    assert saved["findings"] == res.findings and saved["status"] == "ok"


def test_stage_without_purchase_history_is_skipped(tmp_path):
    run = _run_with_customers(tmp_path, pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 40]}))
    res = clv_stage.run(run)
    assert isinstance(res, Skipped) and "no transaction log" in res.reason
    saved = json.loads(run.path("findings_clv.json").read_text())
    assert saved["status"] == "skipped"


def test_stage_without_purchase_model_is_a_clear_error(tmp_path):
    customers = pd.DataFrame(
        {"customer_id": ["a"], "frequency": [1.0], "recency": [2.0], "T": [5.0], "monetary": [9.0]}
    )
    run = _run_with_customers(tmp_path, customers, ["clv.models=[gamma_gamma]"])
    with pytest.raises(SegkitError, match=r"clv.models == \['gamma_gamma'\]: name at least one"):
        clv_stage.run(run)


def test_findings_wording():
    assert clv_stage._finding_correlation(0.5).startswith("Caution: spend per purchase")
    assert clv_stage._finding_correlation(float("nan")).startswith("Spend per purchase and")
    assert clv_stage._finding_models("bgnbd", ["bgnbd"], "W", use_spend=False) == (
        "CLV uses BG/NBD (the only purchase model fitted) fitted in weeks; no spend model."
    )


@pytest.mark.parametrize("sd, shown", [(5.0, "95% interval 91 to 110"), (1e9, "no useful")])
def test_the_headline_quotes_no_interval_the_parameters_leave_open(sd, shown):
    # 40 customers: the headline read "95% interval 0 to 811,664,205,791,…" (186 digits)
    pred = pd.DataFrame({"clv": [60.0, 40.0], "clv_delta_1": [sd, 0.0]})
    seg = pd.DataFrame(
        {
            "segment": [1],
            "segment_name": ["A"],
            "clv_per_customer": [50.0],
            "share_of_value": [1.0],
            "suppressed": [False],
        }
    )
    p = {"horizon_months": 12, "discount_rate": 0.1, "margin": 0.3}
    text = clv_stage._finding_value(pred, seg, p, factor=1.0)
    assert shown in text and not re.search(r"\d(,\d{3}){4}", text)  # no 13-digit number
    if shown == "no useful":
        assert "barely determine the total (an interval bound is over 1,000,000" in text


def test_a_model_the_data_cannot_identify_is_left_out_with_the_reason(tmp_path, monkeypatch):
    """Online Retail's Pareto/NBD runs off to a bound: the stage goes on with BG/NBD."""
    real = clv_stage.fit_purchases

    def fit(model, *args, **kwargs):
        if model == "pareto_nbd":
            raise SegkitError("Pareto/NBD: the data cannot identify ['s', 'beta']")
        return real(model, *args, **kwargs)

    monkeypatch.setattr(clv_stage, "fit_purchases", fit)
    run = Run.open("cdnow", tmp_path / "run", {"cluster.n_bootstrap": 3, "cluster.k_max": 4})
    res = clv_stage.run(run)
    assert "pareto_nbd" not in res.fits and res.model == "bgnbd"
    assert (
        "Pareto/NBD was left out: Pareto/NBD: the data cannot identify ['s', 'beta']"
        in res.findings
    )
    assert res.errors["model"].tolist() == ["BG/NBD"]  # the holdout check too

    def nothing(model, *args, **kwargs):
        raise SegkitError(f"{model}: cannot")

    monkeypatch.setattr(clv_stage, "fit_purchases", nothing)
    # no model at all: the stage is skipped with the reasons, the run goes on
    run2 = Run.open("cdnow", tmp_path / "run2", {"cluster.n_bootstrap": 3, "cluster.k_max": 4})
    res = clv_stage.run(run2)
    assert isinstance(res, Skipped)
    assert res.reason.startswith("no purchase model could be fitted on the purchase history of")
    assert res.reason.endswith("nobody stops (bgnbd: cannot; pareto_nbd: cannot).")


def test_customers_alike_in_rate_and_never_leaving_identify_no_model():
    """A shop whose customers all buy at one rate and none stops (a synthetic WooCommerce
    export, tests/bad_inputs/README.md): BG/NBD and Pareto/NBD both run off to their limits
    (no heterogeneity, no dropout), so no purchase model is identified and the stage says
    why instead of failing the run."""
    c = pd.read_csv(Path(__file__).parent / "bad_inputs" / "clv_not_identified.csv")
    with pytest.raises(
        clv_stage.NotIdentified,
        match=r"of 384 customers.*\(BG/NBD: the data cannot identify \['alpha'\]; Pareto/NBD: "
        r"the data cannot identify \['alpha', 's', 'beta'\]\)\.$",
    ):
        clv_stage._fit_each(c, ["bgnbd", "pareto_nbd"], seed=0, dropped={})
