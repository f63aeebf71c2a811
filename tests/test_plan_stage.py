"""The plan stage (segkit.stages.plan) and `segkit plan` on run folders: consent and
suppression honoured, every customer counted, pseudonyms never the raw ids with the lookup
outside the run folder, reproducible, skipped without an experiment, and a rerun that
replaces the plan only when it succeeds."""

import contextlib
import hashlib
import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
import yaml

from segkit.cli import main
from segkit.core.errors import SegkitError
from segkit.pipeline import rerun
from segkit.stages import plan as plan_stage
from segkit.stages.registry import STAGES
from segkit.stages.run import Run, Skipped

N = 4000
LIFT = {"north": 6.0, "south": 0.0, "east": -1.0, "west": 4.0}


def write_inputs(folder):
    """customers.csv (region, consent, last contact) and experiment.csv (spend, with a
    lift of the 'mail' arm by region), and a suppression list of 50 raw ids."""
    rng = np.random.default_rng(3)
    ids = [f"C{i:05d}" for i in range(N)]
    region = rng.choice(list(LIFT), N)
    last = pd.Timestamp("2024-06-30") - pd.to_timedelta(rng.integers(0, 400, N), unit="D")
    pd.DataFrame(
        {
            "customer_id": ids,
            "region": region,
            "email_opt_in": rng.choice(["yes", "no", ""], N, p=[0.8, 0.15, 0.05]),
            "last_contact": last.strftime("%Y-%m-%d"),
        }
    ).to_csv(folder / "customers.csv", index=False)
    arm = np.where(np.arange(N) % 2, "mail", "control")
    spend = rng.gamma(2, 5, N) + (arm == "mail") * pd.Series(region).map(LIFT).to_numpy()
    pd.DataFrame({"customer_id": ids, "arm": arm, "spend": spend.round(2)}).to_csv(
        folder / "experiment.csv", index=False
    )
    pd.DataFrame({"customer_id": ids[:50]}).to_csv(folder / "suppress.csv", index=False)


def params(folder, **plan):
    return {
        "name": "plantest",
        "data": {
            "source": "files",
            "customers": {"path": str(folder / "customers.csv")},
            "experiment": {"path": str(folder / "experiment.csv"), "outcomes": ["spend"]},
        },
        "abtest": {
            "control": "control",
            "segment_cols": ["region"],
            "value_metric": "spend",
            "metrics": [{"name": "spend", "kind": "mean", "col": "spend"}],
        },
        "plan": {
            "segment_col": "region",
            "consent_column": "email_opt_in",
            "last_contact_column": "last_contact",
            "suppress_days": 30,
            "date": "2024-06-30",
            "suppression_file": str(folder / "suppress.csv"),
            **plan,
        },
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan-inputs")
    write_inputs(folder)
    return folder


@pytest.fixture(scope="module")
def made(inputs, tmp_path_factory):
    run = Run.open(params(inputs), tmp_path_factory.mktemp("plan-run") / "plantest")
    return run, plan_stage.run(run)


def expected_exclusions(inputs):
    c = pd.read_csv(inputs / "customers.csv", keep_default_na=False)
    no = c["email_opt_in"] != "yes"
    recent = (pd.Timestamp("2024-06-30") - pd.to_datetime(c["last_contact"])).dt.days < 30
    listed = c["customer_id"].isin(pd.read_csv(inputs / "suppress.csv")["customer_id"])
    return c, no, ~no & (recent | listed)


def test_every_customer_is_counted_and_consent_is_honoured(made, inputs):
    run, res = made
    c, no_consent, suppressed = expected_exclusions(inputs)
    counts = pd.read_csv(run.path("plan_counts.csv")).set_index("reason")["customers"]
    assert counts["total"] == N == counts.drop("total").sum()
    assert counts["no consent"] == no_consent.sum()
    assert counts["suppressed"] == suppressed.sum()
    contacts = pd.read_parquet(run.path("contacts.parquet"))
    allowed = set(c.loc[~no_consent & ~suppressed, "customer_id"])
    assert set(contacts["customer_id"]) <= allowed
    assert counts["contacted"] + counts["holdout"] == len(contacts)
    # north and west pay (lift 6 and 4 against a break-even of 0.1 / 0.3); east and south do not
    sent = res.table[res.table["decision"] == "send"]
    assert set(sent["segment"]) == {"north", "west"}
    assert set(contacts["segment"]) == {"north", "west"}


def test_contact_file_imports_as_it_is(made):
    run, _ = made
    raw = run.path("contacts.csv").read_bytes()
    raw.decode("utf-8")  # UTF-8
    lines = raw.decode().splitlines()
    assert lines[0] == (
        "customer_id,segment,segment_name,campaign,channel,holdout,expected_clv,reason_code,"
        "send_date"
    )
    assert not any(line.startswith("customer_id") for line in lines[1:])  # one header row
    csv = pd.read_csv(run.path("contacts.csv"), keep_default_na=False, dtype=str)
    assert set(csv["holdout"]) == {"true", "false"}
    assert set(csv["reason_code"]) == {"proven_profit", "random_holdout"}
    assert csv["send_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()  # ISO dates
    assert (csv["campaign"] == "mail").all() and (csv["channel"] == "email").all()
    plan = pd.read_csv(run.path("plan.csv"))
    assert plan.loc[plan["holdout"] > 0, "holdout"].sum() == (csv["holdout"] == "true").sum()


def test_same_seed_same_list_other_seed_other_holdout(made):
    run, _ = made
    first = run.path("contacts.csv").read_bytes()
    plan_stage.run(run)
    assert run.path("contacts.csv").read_bytes() == first
    other = Run(run.folder, {**run.params, "seed": run.seed + 1})
    plan_stage.run(other)
    again = pd.read_parquet(run.path("contacts.parquet"))
    before = pd.read_csv(pd.io.common.BytesIO(first), keep_default_na=False)
    assert set(again.loc[again["holdout"], "customer_id"]) != set(
        before.loc[before["holdout"] == "true", "customer_id"]
    )
    plan_stage.run(run)  # back to the module's plan


def test_pseudonymized_ids_and_the_lookup_outside_the_run(inputs, tmp_path, monkeypatch):
    salt = "s3cret-salt"
    monkeypatch.setenv("SEGKIT_SALT", salt)
    p = params(inputs)
    p["data"]["pseudonymize"] = True
    run = Run.open(p, tmp_path / "runs" / "pseudo")
    res = plan_stage.run(run)
    contacts = pd.read_csv(run.path("contacts.csv"), keep_default_na=False)
    raw = set(pd.read_csv(inputs / "customers.csv")["customer_id"])
    assert len(contacts) and not set(contacts["customer_id"]) & raw
    assert contacts["customer_id"].str.fullmatch(r"P[0-9a-f]{16}").all()
    lookup = tmp_path / "runs" / "pseudo.private" / "contacts_lookup.csv"
    assert res.lookup == lookup and lookup.is_file()
    assert run.folder not in lookup.parents
    assert stat.S_IMODE(lookup.stat().st_mode) == 0o600
    table = pd.read_csv(lookup)
    assert set(table["pseudonym"]) == set(contacts["customer_id"])
    for r in table.head(20).itertuples():  # the explore stage's rule, computed here anew
        assert r.pseudonym == "P" + hashlib.sha256((salt + r.customer_id).encode()).hexdigest()[:16]
    # the suppression list holds raw ids: honoured through their pseudonyms
    counts = pd.read_csv(run.path("plan_counts.csv")).set_index("reason")["customers"]
    _, _, suppressed = expected_exclusions(inputs)
    assert counts["suppressed"] == suppressed.sum()
    # nothing of the lookup in the run folder or its reports
    names = {p.name for p in run.folder.rglob("*")}
    assert "contacts_lookup.csv" not in names


def test_lookup_dir_inside_the_run_is_refused(inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_SALT", "x")
    p = params(inputs, lookup_dir=str(tmp_path / "r" / "artifacts" / "keys"))
    p["data"]["pseudonymize"] = True
    run = Run.open(p, tmp_path / "r")
    with pytest.raises(SegkitError, match="inside the run folder"):
        plan_stage.run(run)


def test_bad_settings_are_named(made):
    run, _ = made
    bad = Run(run.folder, {**run.params, "plan": {**run.params["plan"], "segment_col": "city"}})
    with pytest.raises(SegkitError, match=r"plan.segment_col == 'city'.*\['all', 'region'\]"):
        plan_stage.run(bad)
    bad = Run(run.folder, {**run.params, "plan": {**run.params["plan"], "consent_column": "ok"}})
    with pytest.raises(SegkitError, match=r"plan.consent_column\) is missing column 'ok'"):
        plan_stage.run(bad)
    bad = Run(
        run.folder, {**run.params, "plan": {**run.params["plan"], "cost_per_contact": {"sms": 1}}}
    )
    with pytest.raises(SegkitError, match=r"'sms' is neither a channel \['email'\] nor a campaign"):
        plan_stage.run(bad)
    bad = Run(
        run.folder,
        {**run.params, "plan": {**run.params["plan"], "suppression_file": "/no/such.csv"}},
    )
    with pytest.raises(SegkitError, match=r"plan.suppression_file: /no/such.csv does not exist"):
        plan_stage.run(bad)
    plan_stage.run(run)


def test_skipped_without_experiment_or_value(inputs, tmp_path):
    p = params(inputs)
    p["data"].pop("experiment")
    res = plan_stage.run(Run.open(p, tmp_path / "a"))
    assert isinstance(res, Skipped) and "data.experiment" in res.reason
    p = params(inputs)
    p["abtest"]["value_metric"] = None
    res = plan_stage.run(Run.open(p, tmp_path / "b"))
    assert isinstance(res, Skipped) and "abtest.value_metric" in res.reason
    assert "abtest.value_metric" in next(s for s in STAGES if s.name == "plan").enable


# ----------------------------------------------------------------------------- segkit plan


def fake_finished_run(made, folder):
    """A copy of the module's run as `segkit run` leaves it: params.yaml, manifest."""
    run, _ = made
    import shutil

    shutil.copytree(run.folder, folder)
    rows = {
        s.name: {"stage": s.name, "status": "ok", "seconds": 1.0, "error": None, "headline": ""}
        for s in STAGES
        if s.name != "plan"
    }
    (folder / "manifest.json").write_text(json.dumps({"written_by": "segkit", "stages": rows}))
    (folder / "params.yaml").write_text(yaml.safe_dump(run.params, sort_keys=False))
    return folder


def test_segkit_plan_reruns_only_the_plan_and_keeps_a_good_run(made, tmp_path):
    folder = fake_finished_run(made, tmp_path / "plantest")
    effects_inode = (folder / "artifacts" / "ab_effects.csv").stat().st_ino
    res = rerun(folder, "plan", ["plan.budget=50"], progress=False)
    assert res.ok, res.stages
    plan = pd.read_csv(folder / "artifacts" / "plan.csv")
    assert 0 < plan["cost"].sum() <= 50
    # the A/B artifacts were reused (hard links), not recomputed
    assert (folder / "artifacts" / "ab_effects.csv").stat().st_ino == effects_inode
    assert (folder / "06_plan.html").is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["stages"]["plan"]["status"] == "ok"
    assert manifest["parameters"]["plan"]["budget"] == 50
    good = (folder / "artifacts" / "plan.csv").read_bytes()
    # a failing plan leaves the good one in place and the attempt in <name>.failed
    res = rerun(folder, "plan", ["plan.consent_column=nope"], progress=False)
    assert not res.ok and res.folder.name == "plantest.failed"
    assert (folder / "artifacts" / "plan.csv").read_bytes() == good
    assert yaml.safe_load((folder / "params.yaml").read_text())["plan"]["budget"] == 50


def test_segkit_plan_on_a_spark_run_starts_no_spark_session(made, tmp_path, monkeypatch):
    """The plan reads nothing through the engine: `segkit plan` on a run with engine: spark
    does not start the shared Spark session (a JVM, ~10 s); a rerun of a stage that does
    read through it (abtest) enters the session around its kernel. No Spark is started:
    the session factory is a stand-in that counts its entries."""
    from segkit import engine
    from segkit.pipeline import runner

    entered: list = []

    @contextlib.contextmanager
    def share_session(settings=None):
        entered.append(settings)
        yield None

    monkeypatch.setattr(engine, "share_session", share_session)
    folder = fake_finished_run(made, tmp_path / "plantest")
    spark = {**yaml.safe_load((folder / "params.yaml").read_text()), "engine": "spark"}
    (folder / "params.yaml").write_text(yaml.safe_dump(spark, sort_keys=False))
    res = rerun(folder, "plan", progress=False)
    assert res.ok, res.stages
    assert entered == []

    class Stop(Exception):
        pass

    loops = []

    def stages_loop(params, chosen, *args):
        loops.append((chosen, len(entered)))  # the session entered before the kernel starts
        raise Stop  # no kernel: abtest would start Spark itself

    monkeypatch.setattr(runner, "_stages_loop", stages_loop)
    with pytest.raises(Stop):
        rerun(folder, "abtest", progress=False)
    assert loops == [(["abtest"], 1)]


def test_segkit_plan_refuses_other_parameters_and_other_folders(made, tmp_path, capsys):
    folder = fake_finished_run(made, tmp_path / "plantest")
    assert main(["plan", str(folder), "--set", "cluster.k=3", "--quiet"]) == 2
    assert "takes only plan.*" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["plan", str(tmp_path / "other"), "--quiet"]) == 2
    assert "not a run folder segkit wrote" in capsys.readouterr().err
    assert os.listdir(tmp_path / "other") == ["notes.txt"]
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["stages"]["abtest"]["status"] = "failed"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SegkitError, match=r"plan needs stage 'abtest', which is 'failed'"):
        rerun(folder, "plan", progress=False)


def test_report_tables_are_for_readers(made):
    run, res = made
    text = repr(plan_stage.plan_table(res.table, run))
    assert "p (Holm, whole plan)" in text and "NaN" not in text
    assert "artifacts/plan.csv" in plan_stage.plan_table(res.table, run)._repr_html_()
    counts = repr(plan_stage.counts_table(res.counts, run))
    assert "no consent" in counts and f"{N:,}" in counts
    assert "send nobody" in repr(plan_stage.comparison_table(res.comparison, run))


def test_lookup_goes_beside_the_final_folder_while_a_run_is_built(tmp_path):
    """`segkit run` builds in a hidden temporary sibling (.NAME.tmp-*, marked); the lookup
    belongs beside the folder the run becomes, not beside the temporary one."""
    params = {"plan": {"lookup_dir": None}}
    tmp = tmp_path / ".demo.tmp-abc123"
    tmp.mkdir()
    (tmp / ".segkit-tmp").write_text("1")
    assert plan_stage.lookup_folder(Run(tmp, params)) == tmp_path / "demo.private"
    plain = tmp_path / "demo"
    assert plan_stage.lookup_folder(Run(plain, params)) == tmp_path / "demo.private"


def test_the_suppression_list_is_read_as_the_loader_reads_ids(tmp_path):
    """Ids on the suppression list are cleaned as the loader cleans the customers' ids:
    trimmed, '17850.0' as '17850', an e-mail in lower case; empty cells left out."""
    path = tmp_path / "suppress.csv"
    path.write_text("customer_id\n Anna@Shop.COM \n17850.0\nC7\n\n")
    params = {
        "name": "s",
        "data": {"source": "files", "transactions": str(tmp_path / "tx.csv")},
        "plan": {"suppression_file": str(path)},
    }
    run = Run.open(params, tmp_path / "run")
    assert plan_stage._suppressed_ids(run) == {"anna@shop.com", "17850", "C7"}
