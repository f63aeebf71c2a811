"""segkit installs from a wheel and runs from any folder (slow; CI runs it).

A wheel is built from this checkout and installed, not editable, into a fresh virtual
environment (its dependencies borrowed from the test environment, so that nothing is
downloaded); then, from an empty folder, ``segkit run`` runs the demo (every stage), and
``segkit init`` makes a project whose own ``segkit run`` works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(base / "dist"),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = (base / "dist").glob("segkit-*.whl")
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    site = next((env_dir / "lib").glob("python3*/site-packages"))
    # the dependencies: the test environment's site-packages, as a plain path (its .pth
    # files, the editable segkit among them, are not read from there)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(env_dir / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
    )
    return env_dir


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SEGKIT_REPORTS_DIR", "PYTHONPATH")}
    # data files of the borrowed dependencies (nbconvert's templates, the kernel spec) live
    # under the test environment's prefix; a real install puts them under its own
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    return env


def test_wheel_carries_notebooks_params_and_data_and_stays_small(installed):
    (wheel,) = installed.parent.glob("dist/segkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "segkit/notebooks/02_cluster.ipynb" in names
    assert "segkit/notebooks/params/online_retail.yaml" in names
    assert "segkit/data/online_retail.parquet" in names and "segkit/data/SOURCES.md" in names
    assert wheel.stat().st_size < 15_000_000
    # every module of the package is in the wheel (pyproject lists the subpackages)
    for module in (ROOT / "segkit").rglob("*.py"):
        assert module.relative_to(ROOT).as_posix() in names


def test_installed_segkit_runs_the_demo_from_an_empty_folder(installed, tmp_path):
    py = installed / "bin" / "python"
    where = subprocess.run(
        [str(py), "-c", "import segkit; print(segkit.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=_env(),
    ).stdout
    assert str(installed) in where  # the wheel's segkit, not the checkout's
    done = subprocess.run(
        [str(installed / "bin" / "segkit"), "run", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "reports" / "demo" / "manifest.json").read_text())
    assert {s["status"] for s in manifest["stages"].values()} == {"ok"}
    assert (tmp_path / "reports" / "demo" / "05_abtest.html").is_file()
    assert "open reports/demo/index.html" in done.stdout


def test_init_makes_a_project_that_runs(installed, tmp_path):
    segkit = str(installed / "bin" / "segkit")
    subprocess.run([segkit, "init", "shop"], check=True, cwd=tmp_path, env=_env())
    project = tmp_path / "shop"
    assert (project / "params.yaml").is_file() and (
        project / "notebooks" / "01_explore.ipynb"
    ).is_file()
    done = subprocess.run(
        [segkit, "run", "--params", "params.yaml", "--stages", "explore,cluster,clv", "--quiet"],
        capture_output=True,
        text=True,
        cwd=project,
        env=_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((project / "reports" / "shop" / "manifest.json").read_text())
    assert manifest["inputs"]["transactions"]["path"] == str(
        project / "data" / "cdnow_sample.txt.gz"
    )
    assert manifest["stages"]["clv"]["status"] == "ok"
