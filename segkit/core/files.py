"""Files written whole or not at all, JSON that round-trips, checksums."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars, timestamps and paths turned into JSON types."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, pd.Timestamp | dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename: never half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as stable, sorted, indented JSON (numpy scalars converted), atomically."""
    text = json.dumps(jsonable(obj), indent=2, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write_text(Path(path), text)


def sha256(path: str | Path) -> str:
    """sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
