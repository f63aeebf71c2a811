"""Where segkit finds its bundled files and where runs go, wherever it is installed.

- Bundled notebooks, parameter sets and data ship inside the package (a wheel puts them
  under ``segkit/notebooks`` and ``segkit/data``); in a source checkout they are the
  repository's ``notebooks/`` and ``data/``. :func:`bundled` finds either.
- Run folders go under ``./reports/`` of the project: the working directory, or its parent
  when the working directory is a project's ``notebooks/`` folder (JupyterLab and nbval
  start kernels there). ``SEGKIT_REPORTS_DIR`` overrides it.
- Relative paths in a parameter file are relative to that file's folder
  (:func:`resolve_against`).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from segkit.core.errors import SegkitError

PACKAGE_DIR = Path(str(files("segkit")))
#: The source checkout holding the package, when there is one (for git provenance only).
SOURCE_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None

_BUNDLED = ("notebooks", "data")

#: Suffixes of JSON files (before a ``.gz``): an array of records, or one record per line.
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")


def bundled(name: str) -> Path:
    """Folder of bundled ``notebooks`` or ``data``: in the package, else in the checkout."""
    if name not in _BUNDLED:
        raise SegkitError(f"bundled folder {name!r}: must be one of {list(_BUNDLED)}.")
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise SegkitError(
        f"segkit's bundled {name}/ folder is missing (looked in {PACKAGE_DIR} and its parent); "
        "reinstall segkit."
    )


def notebooks_dir() -> Path:
    """The bundled stage notebooks."""
    return bundled("notebooks")


def params_dir() -> Path:
    """The bundled parameter sets (``demo.yaml``, ``online_retail.yaml`` …)."""
    return notebooks_dir() / "params"


def data_dir() -> Path:
    """The bundled data sets."""
    return bundled("data")


def project_dir(cwd: Path | None = None) -> Path:
    """The project folder: ``cwd``, or its parent when ``cwd`` is a ``notebooks/`` folder."""
    here = Path(cwd or Path.cwd()).resolve()
    if here.name == "notebooks" and (
        (here.parent / "reports").is_dir() or (here.parent / "params.yaml").is_file()
    ):
        return here.parent
    return here


def reports_dir() -> Path:
    """Where run folders go: ``$SEGKIT_REPORTS_DIR``, else ``<project>/reports``."""
    env = os.environ.get("SEGKIT_REPORTS_DIR")
    return Path(env).expanduser().resolve() if env else project_dir() / "reports"


def is_pattern(path: str | Path) -> bool:
    """``path`` names several files by a pattern (``orders_*.csv``, ``sales_202?.xlsx``);
    a file that exists is itself, whatever its name (``export [1].csv``)."""
    p = Path(path).expanduser()
    return any(ch in p.name for ch in "*?[") and not p.is_file()


def matched_files(path: str | Path) -> list[Path]:
    """The files a pattern names, in name order (the order their rows are read in); the
    path itself when it is no pattern."""
    p = Path(path).expanduser().resolve()
    if not is_pattern(path):
        return [p]
    return sorted(f for f in p.parent.glob(p.name) if f.is_file())


def resolve_against(path: str | Path, base: Path) -> str:
    """``path`` made absolute against ``base`` (a parameter file's folder, or the cwd)."""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def parquet_source(path: str | Path) -> str:
    """A path DuckDB's ``read_parquet`` reads: the file, or a glob of a Parquet folder.

    Spark writes a table as a folder of ``part-*.parquet`` files (with ``_SUCCESS`` and
    checksum files beside them); DuckDB reads such a folder through a glob of its Parquet
    files, subfolders (partitions) included.

    >>> parquet_source("no/such/tx.parquet")
    'no/such/tx.parquet'
    """
    p = Path(path)
    return f"{p.as_posix()}/**/*.parquet" if p.is_dir() else p.as_posix()
