"""environment.yml (conda) and pyproject.toml (pip) declare the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def pip_deps() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    return dict(_split(r) for r in reqs)


def conda_deps() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and not dep.startswith(("python", "pip")):
            name, spec = _split(dep)
            out[name] = spec
    return out


def test_same_packages_and_versions():
    assert conda_deps() == pip_deps()


def test_python_version_agrees():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda_py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert conda_py == "python=3.11"
    assert project["requires-python"] == ">=3.11"


def test_lock_file_pins_every_declared_package():
    lock = {
        _split(line.split("==")[0])[0]
        for line in (ROOT / "requirements-lock.txt").read_text().splitlines()
        if "==" in line
    }
    missing = set(pip_deps()) - lock
    assert not missing, f"requirements-lock.txt lacks {sorted(missing)}"


def test_the_duckdb_engine_needs_no_extra():
    """``segkit score --contacts`` on DuckDB draws through ibis (segkit.engine.contacts):
    ibis and its DuckDB backend's packages are core dependencies, PySpark only an extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_split(r)[0] for r in project["dependencies"]}
    assert {"ibis-framework", "duckdb", "pyarrow", "pyarrow-hotfix", "rich"} <= core
    assert "pyspark" not in core
