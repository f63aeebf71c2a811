"""The core layer: checks, SQL quoting, paths, files and the thread budget."""

from __future__ import annotations

import json
import os

import duckdb
import pytest

from segkit.core import paths, threads
from segkit.core.checks import check_columns, check_not_empty, check_scalar
from segkit.core.errors import SegkitError
from segkit.core.files import atomic_write_text, sha256, write_json
from segkit.core.sql import ident, idents, literal, literals


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: check_scalar(1, "k_min", int, ge=2), r"^k_min == 1, must be >= 2\.$"),
        (lambda: check_scalar(True, "k", int), r"^k == True, must be of type int\.$"),
        (lambda: check_scalar("x", "m", str, in_={"a", "b"}), r"must be one of \['a', 'b'\]"),
        (lambda: check_scalar(1.0, "alpha", float, lt=1), r"alpha == 1.0, must be < 1"),
    ],
)
def test_check_scalar_names_the_value_and_the_rule(call, match):
    with pytest.raises(SegkitError, match=match):
        call()


def test_check_scalar_accepts_ints_for_floats():
    assert check_scalar(3, "margin", float, gt=0) == 3


def test_check_columns_and_empty():
    import pandas as pd

    df = pd.DataFrame({"id": [1], "date": ["x"]})
    with pytest.raises(
        SegkitError, match=r"t is missing column 'amount'; columns are \['id', 'date'\]"
    ):
        check_columns(df, ["id", "amount"], "t")
    with pytest.raises(SegkitError, match=r"t has no rows after cleaning\."):
        check_not_empty(df.head(0), "t", "after cleaning")


@pytest.mark.parametrize(
    "name", ["plain", "with space", 'double "quote"', "it's", "x; DROP TABLE t; --", "ünï"]
)
def test_identifiers_stay_plain_text(name):
    con = duckdb.connect()
    got = con.execute(f"SELECT 1 AS {ident(name)}").df()
    assert list(got.columns) == [name]


@pytest.mark.parametrize(
    "value", ["O'Brien", "x' OR 1=1 --", "'); SELECT * FROM read_csv('/etc/passwd'); --", "a\\b"]
)
def test_literals_stay_plain_text(value):
    con = duckdb.connect()
    assert con.execute(f"SELECT {literal(value)} AS v").fetchone()[0] == value


def test_literal_types_and_lists():
    import datetime as dt

    assert literal(None) == "NULL" and literal(True) == "TRUE" and literal(2.5) == "2.5"
    assert literal(dt.date(2024, 1, 2)) == "DATE '2024-01-02'"
    assert idents(["a", "b"]) == '"a", "b"' and literals([1, "x"]) == "1, 'x'"
    with pytest.raises(SegkitError, match="not a finite number"):
        literal(float("nan"))
    with pytest.raises(SegkitError, match="must be a non-empty string"):
        ident("")
    with pytest.raises(SegkitError, match="no SQL literal"):
        literal(object())


def test_reports_dir_is_the_project_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGKIT_REPORTS_DIR", raising=False)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "reports").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # where JupyterLab starts a kernel
    assert paths.reports_dir() == tmp_path / "reports"
    monkeypatch.chdir(tmp_path)
    assert paths.reports_dir() == tmp_path / "reports"
    monkeypatch.setenv("SEGKIT_REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert paths.reports_dir() == tmp_path / "elsewhere"


def test_bundled_folders_are_found():
    assert (paths.notebooks_dir() / "01_explore.ipynb").is_file()
    assert (paths.params_dir() / "demo.yaml").is_file()
    assert (paths.data_dir() / "SOURCES.md").is_file()
    with pytest.raises(SegkitError, match="must be one of"):
        paths.bundled("secrets")


def test_files_are_written_whole(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": [1.5], "b": 1}
    atomic_write_text(tmp_path / "t.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "t.txt"]  # no temp left
    # sha256 of the one byte "x", as `printf x | sha256sum` prints it
    assert (
        sha256(tmp_path / "t.txt")
        == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
    )


def test_thread_budget_respects_the_user(monkeypatch):
    monkeypatch.delenv("SEGKIT_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 8)
    assert threads.budget() == 4 and threads.budget(workers=2) == 2 and threads.budget(16) == 1
    monkeypatch.setenv("SEGKIT_THREADS", "3")
    assert threads.budget() == 3
    env = threads.environment(2, base={"OMP_NUM_THREADS": "6", "MKL_NUM_THREADS": ""})
    assert env["OMP_NUM_THREADS"] == "6" and env["OPENBLAS_NUM_THREADS"] == "2"
    assert env["MKL_NUM_THREADS"] == "2"  # set but empty: not a choice
    assert threads.environment(1, base={"OMP_NUM_THREADS": "4,2"})["OMP_NUM_THREADS"] == "4,2"


def test_importing_segkit_caps_the_pools_of_this_process():
    from threadpoolctl import threadpool_info

    import segkit  # noqa: F401 - applied at import

    budget = int(os.environ["OMP_NUM_THREADS"])
    assert all(pool["num_threads"] <= max(budget, 1) for pool in threadpool_info())
