"""The ``segkit`` command: help a newcomer can use, errors that name what is wrong."""

from __future__ import annotations

import pytest

from segkit import cli


def test_help_lists_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "batch", "init", "score", "params", "notebooks"):
        assert command in out
    assert "exit codes: 0 ok" in out and "130 interrupted" in out


@pytest.mark.parametrize("command", ["run", "batch", "init", "score", "params", "notebooks"])
def test_every_command_has_a_description_and_an_example(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and f"segkit {command}" in out


def test_run_help_lists_stages_and_bundled_sets(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "explore (01_explore.ipynb), cluster (02_cluster.ipynb)" in out
    assert "Bundled parameter sets: cdnow, demo, hillstrom, online_retail" in out


def test_params_lists_sets_and_tells_grids_apart(capsys):
    assert cli.main(["params", "--list"]) == 0
    out = capsys.readouterr().out
    assert "bundled          grid" in out and "demo             parameter set" in out
    assert cli.main(["params", "bundled"]) == 2
    assert "is a batch grid (it has 'runs'), not a parameter set" in capsys.readouterr().err


def test_a_bad_set_is_named(capsys):
    assert cli.main(["params", "demo", "--set", "cluster.k=abc"]) == 2
    assert "--set cluster.k=abc: cluster.k == 'abc', must be of type int" in capsys.readouterr().err


def test_params_prints_the_resolved_set(capsys):
    assert cli.main(["params", "hillstrom", "--set", "clv.horizon_months=6"]) == 0
    out = capsys.readouterr().out
    assert "name: hillstrom" in out and "horizon_months: 6" in out


def test_notebooks_does_not_rewrite_without_yes(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(["notebooks"]) == 2
    assert "rewrites the committed notebooks: add --yes" in capsys.readouterr().err


def test_init_refuses_a_folder_with_files(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("mine")
    assert cli.main(["init", str(tmp_path)]) == 2
    assert "is not empty; segkit init needs a new or empty folder" in capsys.readouterr().err


def test_init_writes_a_project_that_validates(tmp_path, capsys):
    assert cli.main(["init", str(tmp_path / "shop")]) == 0
    assert "segkit run --params params.yaml" in capsys.readouterr().out
    from segkit.core.params import load_params

    p = load_params(tmp_path / "shop" / "params.yaml")
    assert p["name"] == "shop"
    assert p["data"]["transactions"]["path"] == str(
        tmp_path / "shop" / "data" / "cdnow_sample.txt.gz"
    )
    nb = (tmp_path / "shop" / "notebooks" / "02_cluster.ipynb").read_text()
    assert '\\"../params.yaml\\"' in nb and '"outputs": []' in nb


def test_init_from_a_file_prints_what_was_inferred_and_the_next_command(tmp_path, capsys):
    from segkit.core.params import load_params
    from segkit.core.paths import data_dir

    src = data_dir() / "wholesale_customers.csv.gz"
    assert cli.main(["init", str(tmp_path / "crm"), "--from", str(src)]) == 0
    out = capsys.readouterr().out
    assert "wholesale_customers.csv.gz: a customer table: 440 customers" in out
    assert "value: total_spend" in out
    assert out.rstrip().endswith("segkit run --params params.yaml")
    p = load_params(tmp_path / "crm" / "params.yaml")
    assert p["name"] == "crm" and p["data"]["customers"]["id_from_row"] is True
    assert not (tmp_path / "crm" / "data" / "cdnow_sample.txt.gz").exists()


def test_init_help_says_what_from_does(capsys):
    with pytest.raises(SystemExit):
        cli.main(["init", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--from FILE" in out and "segkit init my-crm --from crm_export.csv" in out
    assert "transaction log, a customer table or an experiment" in out


def test_init_from_a_file_it_cannot_read_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "export.csv"
    bad.write_text("only\n1\n2\n")
    assert cli.main(["init", str(tmp_path / "p"), "--from", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"segkit init --from '{bad}': cannot tell what the file is: it has one column" in err
    assert not (tmp_path / "p").exists()


def test_score_help_names_the_engines_and_outputs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["score", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--engine {duckdb,spark}" in out and "the run's engine parameter" in out
    assert "a Parquet folder with spark (default <customers>.segments.parquet)" in out
    with pytest.raises(SystemExit):
        cli.main(["score", "reports/x", "c.parquet", "--engine", "flink"])
    assert "invalid choice: 'flink' (choose from 'duckdb', 'spark')" in capsys.readouterr().err


def _log_and_table(tmp_path):
    log, table = tmp_path / "orders.csv", tmp_path / "customers.csv"
    rows = [f"c{i % 50},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{5 + i % 40}" for i in range(300)]
    log.write_text("customer_id,date,amount\n" + "\n".join(rows) + "\n")
    table.write_text(
        "customer_id,age,region\n" + "\n".join(f"c{i},{20 + i},r{i % 3}" for i in range(50))
    )
    return log, table


@pytest.mark.parametrize("folder_last", [False, True])
def test_init_from_takes_several_files_after_one_flag(tmp_path, capsys, folder_last):
    # `--from a.csv b.csv` was "unrecognized arguments: b.csv"
    log, table = _log_and_table(tmp_path)
    project = str(tmp_path / "shop")
    files = ["--from", str(log), str(table)]
    assert cli.main(["init", *files, project] if folder_last else ["init", project, *files]) == 0
    out = capsys.readouterr().out
    assert "orders.csv: a transaction log" in out and "customers.csv: a customer table" in out
    text = (tmp_path / "shop" / "params.yaml").read_text()
    todo = text.count("TODO") - 1  # the header says "check the TODO lines"
    assert todo >= 2 and f"check the {todo} TODO line(s)" in out  # the file's, not 1 of them


def test_init_without_a_folder_says_how(tmp_path, capsys):
    log, _ = _log_and_table(tmp_path)
    assert cli.main(["init", "--from", str(log)]) == 2
    assert "name the project folder to create" in capsys.readouterr().err


@pytest.mark.parametrize(
    "inherited, installed",
    [("default", True), ("ignored", False), ("custom", False)],
)
def test_ctrl_c_handler_only_replaces_pythons_default(inherited, installed):
    """segkit's SIGINT handler replaces Python's default one (which asyncio.Runner would
    swap out) but keeps an ignored SIGINT ignored, as a `cmd &` from a script or nohup
    starts it, and leaves an embedding program's own handler alone."""
    import signal

    def own(signum, frame):  # an embedding program's handler
        pass

    before = signal.getsignal(signal.SIGINT)
    start = {"default": signal.default_int_handler, "ignored": signal.SIG_IGN, "custom": own}
    signal.signal(signal.SIGINT, start[inherited])
    try:
        replaced = cli._own_sigint()
        now = signal.getsignal(signal.SIGINT)
        assert (now is cli._interrupt) is installed
        assert replaced is (start[inherited] if installed else None)
        if not installed:
            assert now is start[inherited]
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_reader_that_leaves_ends_the_command_quietly(tmp_path, monkeypatch, capsys):
    """`segkit params cdnow | head -1`: when the reader closes the pipe, the command stops
    with 141 (128 + SIGPIPE, as shell tools do), without a traceback."""
    import io
    import sys

    class ClosedPipe(io.TextIOWrapper):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    spare = open(tmp_path / "out", "wb")  # noqa: SIM115 - the fd stands in for stdout's
    monkeypatch.setattr(sys, "stdout", ClosedPipe(spare))
    assert cli.main(["params", "cdnow"]) == 141
    assert capsys.readouterr().err == ""
