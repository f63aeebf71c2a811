"""Parameters are validated before any kernel starts; run folders keep what they should."""

import pandas as pd
import pytest
import yaml

from segkit import Run, load_params, show_findings
from segkit.core.errors import SegkitError
from segkit.core.params import DEFAULTS, parse_override


@pytest.mark.parametrize("name", ["demo", "online_retail", "cdnow", "hillstrom", "wholesale"])
def test_bundled_parameter_sets_are_valid(name):
    p = load_params(name)
    assert p["name"] == name
    assert set(p) == set(DEFAULTS)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (
            ["cluster.kk=3"],
            r"--set cluster.kk=3: unknown parameter 'cluster.kk'; did you mean 'cluster.k'",
        ),
        (["colour=red"], r"unknown parameter 'colour'"),
        (["cluster.k=three"], r"^--set cluster.k=three: cluster.k == 'three', must be of type int"),
        (["cluster.method=dbscan"], r"cluster.method == 'dbscan', must be one of"),
        (["cluster.k_min=5", "cluster.k_max=4"], r"cluster.k_max == 4, must be >= 5"),
        (["clv.margin=1.5"], r"clv.margin == 1.5, must be <= 1"),
        (["data.time_unit=M"], r"data.time_unit == 'M', must be one of \['D', 'W'\]"),
        (["data.calibration_end=2024-13-01"], r"data.calibration_end == '2024-13-01'"),
        (["clv.models=[bgnbd, weibull]"], r"clv.models: unknown model 'weibull'.*Accepted"),
        (["clv.models=[bgnbd, paretonbd]"], r"did you mean 'pareto_nbd'"),
        (
            ["abtest.metrics=[{kind: nope, col: x}]"],
            r"abtest.metrics\[0\].kind == 'nope', must be one",
        ),
        (
            ["abtest.metrics=[{kind: ratio, num: x}]"],
            r"abtest.metrics\[0\] \(ratio\) needs \['num', 'den'\]",
        ),
        (["abtest.metrics=[{kind: mean, column: x}]"], r"unknown key 'column'; did you mean 'col'"),
        (
            ["data.transactions={path: x.csv, colums: {}}"],
            r"unknown key 'data.transactions.colums'; did you mean 'data.transactions.columns'",
        ),
        (
            ["data.transactions={path: x.csv, columns: {customer: id}}"],
            r"unknown column role in data.transactions.columns 'customer'; did you mean 'customer_id'",
        ),
        (
            ["data.customers={path: x.csv, format: xls}"],
            r"data.customers.format == 'xls', must be one of",
        ),
        (
            ["cluster.features=revenue"],
            r"cluster.features == 'revenue', must be a list of column names",
        ),
        (["cluster.k_max=1"], r"^--set cluster.k_max=1: cluster.k_max == 1, must be >= 3"),
        (["abtest.alpha=0"], r"abtest.alpha == 0, must be > 0"),
        (["data.source=files"], r"data.source == 'files' needs at least one of"),
    ],
)
def test_bad_parameters_are_clear_errors(overrides, match):
    with pytest.raises(SegkitError, match=match):
        load_params("demo", overrides)


def test_overrides_parse_yaml_values():
    assert parse_override("cluster.k=5") == (["cluster", "k"], 5)
    assert parse_override("clv.models=[bgnbd]") == (["clv", "models"], ["bgnbd"])
    with pytest.raises(SegkitError, match="expected key=value"):
        parse_override("cluster.k")
    assert load_params("demo", {"cluster.k": 4})["cluster"]["k"] == 4


def test_unknown_parameter_set_lists_the_bundled_ones():
    with pytest.raises(
        SegkitError,
        match=r"parameter set 'nope' not found: not a file, nor a bundled set; bundled sets are \[",
    ):
        load_params("nope")


def test_yaml_that_is_not_a_mapping(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(SegkitError, match="expected a mapping of parameters, found list"):
        load_params(f)


def test_run_folder_clears_artifacts_when_parameters_change(tmp_path):
    run = Run.open("cdnow", tmp_path / "r")
    run.save("x.csv", pd.DataFrame({"a": [1]}))
    assert Run.open("cdnow", tmp_path / "r").has("x.csv")  # same parameters: kept
    run2 = Run.open("cdnow", tmp_path / "r", overrides=["seed=7"])
    assert not run2.has("x.csv")  # other parameters: derived data cleared
    assert yaml.safe_load((tmp_path / "r" / "params.yaml").read_text())["seed"] == 7


def test_run_load_rebuilds_a_missing_artifact_through_its_stage(tmp_path):
    run = Run.open("cdnow", tmp_path / "r")
    customers = run.load("customers")  # runs segkit.explore
    assert len(customers) == 2357 and run.has("data_quality.json")
    with pytest.raises(SegkitError, match=r"artifact 'nothing' not found"):
        run.load("nothing")
    with pytest.raises(SegkitError, match=r"unknown extension"):
        run.save("x.txt", "text")


def test_show_findings_markdown():
    class R:
        findings = ["Headline.", "Detail one.", "Detail two."]

    md = show_findings(R()).data
    assert "**Headline.**" in md and "- Detail two." in md


def test_a_grid_is_not_a_parameter_set():
    with pytest.raises(SegkitError, match=r"is a batch grid .*segkit batch"):
        load_params("bundled")


def test_relative_paths_resolve_against_the_parameter_file(tmp_path, monkeypatch):
    (tmp_path / "proj" / "data").mkdir(parents=True)
    f = tmp_path / "proj" / "params.yaml"
    f.write_text("data:\n  source: files\n  customers: {path: data/c.csv}\n")
    monkeypatch.chdir(tmp_path)  # elsewhere: the file's folder still counts
    p = load_params(f)
    assert p["data"]["customers"]["path"] == str(tmp_path / "proj" / "data" / "c.csv")
    # an override's relative path is relative to where the command runs
    p = load_params(f, ["data.customers.path=other.csv"])
    assert p["data"]["customers"]["path"] == str(tmp_path / "other.csv")


def test_bundled_sets_tell_grids_from_parameter_sets():
    from segkit.core.params import bundled_sets

    sets = bundled_sets()
    assert sets["bundled"] == "grid" and sets["demo"] == "parameter set"


@pytest.mark.parametrize("given", ["cancelled", {"status": "cancelled"}, {"status": []}])
def test_exclude_values_must_map_columns_to_lists(given):
    from segkit.core.params import table_spec

    with pytest.raises(
        SegkitError,
        match=r"data.transactions.exclude_values == .* must be a mapping column: \[values\]",
    ):
        table_spec({"path": "x.csv", "exclude_values": given}, "transactions")


def test_exclude_values_names_a_column_the_file_lacks(tmp_path):
    from segkit import io

    path = tmp_path / "orders.csv"
    path.write_text("customer_id,timestamp,amount\nc1,2024-01-01,5\n")
    spec = {"path": str(path), "exclude_values": {"Status": ["cancelled"]}}
    with pytest.raises(
        SegkitError,
        match=r"exclude_values names column 'Status', which the file does not have; columns are \['customer_id', 'timestamp', 'amount'\]",
    ):
        io.load_transactions(spec, "2024-12-31")
