"""Provenance of a run: inputs' sha256, parameters, package versions, git commit, seed,
per-stage status and time, and the sha256 of every artifact (checked before a saved model
is used)."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import platform
import subprocess
from pathlib import Path
from typing import Any

from segkit.core import native, paths
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


def folder_sha256(folder: Path) -> str:
    """sha256 of a Parquet folder: over each data file's path and sha256, sorted by path.

    Files (in subfolders too) whose name starts with ``.`` or ``_`` are left out, as the
    readers leave them out (Spark's ``_SUCCESS`` and ``.crc`` files), so the same data
    give the same hash wherever the folder is copied.
    """
    h = hashlib.sha256()
    for p in _data_files(folder):
        h.update(f"{p.relative_to(folder).as_posix()}\0{sha256(p)}\n".encode())
    return h.hexdigest()


def _data_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def _input(spec: dict) -> dict[str, Any]:
    """The manifest entry of one input: a file's or folder's sha256, or what is not hashed."""
    text = str(spec["path"])
    if spec.get("format") == "table":
        return {"table": text, "sha256": "not hashed (a table of the Spark catalog)"}
    if "://" in text:
        return {"path": text, "sha256": "not hashed (read by the engine from remote storage)"}
    if paths.is_pattern(text):  # files by a pattern: each file's sha256, and one over them all
        each = {f.name: sha256(f) for f in paths.matched_files(text)}
        whole = hashlib.sha256("".join(f"{n}\0{h}\n" for n, h in each.items()).encode())
        return {"path": text, "sha256": whole.hexdigest(), "files": each}
    path = Path(text)
    if path.is_dir():
        return {"path": text, "sha256": folder_sha256(path), "files": len(_data_files(path))}
    return {"path": text, "sha256": sha256(path) if path.is_file() else "missing"}


def inputs(params: dict) -> dict[str, dict]:
    """Each input with its sha256 (a folder's over its files), or the demo's settings.

    A table of the Spark catalog (``format: table``) and a remote URI are recorded by
    name and said not to be hashed; "missing" means a local path that does not exist.
    """
    d = params["data"]
    out: dict[str, dict] = {}
    for name in ("transactions", "customers", "experiment"):
        spec = d[name]
        if spec:
            out[name] = _input(spec if isinstance(spec, dict) else {"path": spec})
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
        # segkit's DuckDB aggregate in C, or its SQL: the same numbers, at another speed
        "duckdb_aggregate": native.status(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git(),
        "ok": all(s["status"] != "failed" for s in stages),
        "seconds": round(seconds, 2),
        "stages": {s["stage"]: s for s in stages},
    }
