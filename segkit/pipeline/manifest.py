"""Provenance of a run: inputs' sha256, parameters, package versions, git commit, seed,
per-stage status and time, and the sha256 of every artifact (checked before a saved model
is used)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path
from typing import Any

from segkit.core import paths
from segkit.core.files import sha256

PACKAGES = (
    "segkit duckdb pandas numpy scipy scikit-learn statsmodels seaborn matplotlib "
    "papermill nbconvert nbformat pyarrow threadpoolctl"
).split()


def versions() -> dict[str, str]:
    """Installed versions of segkit's main dependencies."""
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def git() -> dict[str, Any]:
    """Commit of the source checkout segkit runs from, if any, and whether it is dirty."""
    root = paths.SOURCE_ROOT
    if root is None or not (root / ".git").exists():
        return {"commit": None, "dirty": None}
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", "-C", str(root), *a], capture_output=True, text=True, check=True
        ).stdout.strip()
        return {
            "commit": run("rev-parse", "HEAD"),
            "dirty": bool(run("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def inputs(params: dict) -> dict[str, dict]:
    """Each input file with its sha256, or the demo generator's settings."""
    d = params["data"]
    out: dict[str, dict] = {}
    for name in ("transactions", "customers", "experiment"):
        spec = d[name]
        if spec:
            path = Path(spec["path"])
            out[name] = {
                "path": str(path),
                "sha256": sha256(path) if path.is_file() else "missing",
            }
    if d["source"] == "demo":
        out["demo"] = {"generator": "segkit.datasets.make_retailer", **d["demo"]}
    return out


def artifacts(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder/artifacts``, by relative path."""
    base = folder / "artifacts"
    if not base.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): sha256(p)
        for p in sorted(base.rglob("*"))
        if p.is_file() and not p.name.endswith(".tmp")
    }


def build(params: dict, folder: Path, stages: list[dict], seconds: float) -> dict[str, Any]:
    """The manifest of a finished run."""
    return {
        "written_by": "segkit",
        "name": params["name"],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seed": params["seed"],
        "parameters": params,
        "inputs": inputs(params),
        "artifacts": artifacts(folder),
        "packages": versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git(),
        "ok": all(s["status"] != "failed" for s in stages),
        "seconds": round(seconds, 2),
        "stages": {s["stage"]: s for s in stages},
    }
