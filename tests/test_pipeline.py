"""End to end: `segkit run` and `segkit batch` write run folders that keep their promises."""

import json
import re

import pytest

from segkit import cli, pipeline
from segkit.core import paths
from segkit.stages import get


def test_run_folder_has_manifest_reports_and_index(cdnow_run):
    m = json.loads((cdnow_run / "manifest.json").read_text())
    assert m["ok"] and m["seed"] == 42
    assert m["stages"]["explore"]["status"] == "ok"
    assert m["inputs"]["transactions"]["sha256"] == config_sha("data/cdnow_sample.txt.gz")
    assert m["packages"]["pandas"] and m["python"]
    assert m["duckdb_aggregate"].startswith(("on: btyd_state", "off ("))
    index = (cdnow_run / "index.html").read_text()
    assert '<a href="01_explore.html">01 Exploration</a>' in index and "2,357 customers" in index


def config_sha(path):
    from segkit import io

    return io.sha256(paths.SOURCE_ROOT / path)


def test_html_report_is_offline_code_free_and_small(cdnow_run):
    text = (cdnow_run / "01_explore.html").read_text()
    assert not re.search(r"<(script|link)\b[^>]*(src|href)=\"https?://", text)
    assert "explore_stage.run(run)" not in text and "import segkit" not in text  # code hidden
    assert "2,357 customers placed" in text  # findings shown
    assert (cdnow_run / "01_explore.html").stat().st_size < 2_000_000


def test_failed_run_keeps_the_previous_good_folder(cdnow_run, tmp_path):
    folder = tmp_path / "r"
    assert pipeline.run("cdnow", run_dir=folder, stages=["explore"], progress=False).ok
    bad = pipeline.run(
        "cdnow",
        ["data.transactions.path=tests/bad_inputs/header_only.csv"],
        folder,
        stages=["explore"],
        progress=False,
    )
    assert not bad.ok and bad.folder.name == "r.failed"
    m = json.loads((bad.folder / "manifest.json").read_text())
    assert "SegkitError: transactions (" in m["stages"]["explore"]["error"]
    assert "tests/bad_inputs/header_only.csv)" in m["stages"]["explore"]["error"]
    assert json.loads((folder / "manifest.json").read_text())["ok"]  # good run kept
    assert (bad.folder / "01_explore.html").exists()  # the error is visible in the report


def test_bad_parameters_fail_before_any_kernel(capsys):
    assert cli.main(["run", "--params", "cdnow", "--set", "cluster.k=two"]) == 2
    assert "--set cluster.k=two: cluster.k == 'two', must be of type int" in capsys.readouterr().err
    assert cli.main(["run", "--stages", "explore,nope"]) == 2


def test_batch_with_a_bad_point_runs_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_REPORTS_DIR", str(tmp_path))
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "name: g\nruns:\n  - params: cdnow\n"
        "    set: {cluster.n_bootstrap: 3, cluster.gap_references: 0}\n"
        "  - params: cdnow\n    name: broken\n"
        "    set: {data.transactions.path: tests/bad_inputs/empty.csv}\n"
    )
    assert cli.main(["batch", str(grid), "--workers", "1"]) == 1
    assert json.loads((tmp_path / "g" / "cdnow" / "manifest.json").read_text())["ok"]
    assert (tmp_path / "g" / "broken.failed" / "manifest.json").exists()
    assert "broken" in (tmp_path / "g" / "index.html").read_text()


def test_notebook_parameters_are_readable():
    import papermill as pm

    nb = paths.notebooks_dir() / "01_explore.ipynb"
    got = pm.inspect_notebook(str(nb))
    assert got["params"]["default"] == '"demo"' and got["params"]["inferred_type_name"] == "str"
    assert set(got) == {"params", "run_dir"}


def _kernel_children() -> list[int]:
    """Pids of ipykernel processes started by this test process (Linux /proc)."""
    import os
    from pathlib import Path

    out = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            stat = (proc / "stat").read_text().split()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[3]) == os.getpid() and b"ipykernel" in cmd:
            out.append(int(proc.name))
    return out


def test_later_stages_run_in_prestarted_kernels(cdnow_run):
    """Each stage's time splits into its cells and the rest (waiting for the kernel,
    papermill); every kernel was started ahead (later ones during the stage before), and the
    HTML was exported in the background."""
    stages = json.loads((cdnow_run / "manifest.json").read_text())["stages"]
    assert {s["kernel"] for s in stages.values()} == {"prestarted"}
    for name, s in stages.items():
        assert s["cells_seconds"] > 0 and s["overhead_seconds"] >= 0
        assert s["export_seconds"] > 0
        assert (cdnow_run / get(name).report).exists()
        assert s["cells_seconds"] + s["overhead_seconds"] == pytest.approx(s["seconds"], abs=0.02)
    assert not _kernel_children()  # every kernel shut down


def test_failed_stage_shuts_the_prestarted_kernel_down(tmp_path):
    bad = pipeline.run(
        "cdnow",
        ["data.transactions.path=tests/bad_inputs/header_only.csv"],
        tmp_path / "r",
        progress=False,
    )
    assert not bad.ok
    # everything downstream is skipped, also stages whose upstream was skipped for it
    assert [r.status for r in bad.stages] == ["failed"] + ["skipped"] * 5
    assert bad.stages[2].headline == "Needs cluster, which was skipped."
    assert not _kernel_children()
