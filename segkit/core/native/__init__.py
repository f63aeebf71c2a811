"""segkit's DuckDB aggregate in C (``btyd_state``), compiled on first use.

:func:`segkit.features.btyd_summary` computes the BTYD summary in one GROUP BY per customer
with ``btyd_state``, and ``customer_features`` and ``calibration_holdout`` use it too (see
``btyd_state.c`` for what it computes and why it is not SQL). The source is compiled once
per source, DuckDB version and platform with the system's C compiler (``$CC``, else ``cc``,
``gcc`` or ``clang``) against DuckDB's stable C extension API (the headers in ``include/``,
MIT, from DuckDB's source), into a cache folder (``$SEGKIT_CACHE``, else
``$XDG_CACHE_HOME/segkit``, else ``~/.cache/segkit``), and loaded into a connection opened
with ``allow_unsigned_extensions`` (segkit signs nothing; it loads only this file).

Without a compiler, on a connection that does not allow unsigned extensions, or with
``SEGKIT_NATIVE=0``, :func:`load` returns False and the caller runs its SQL: the same
numbers (tests/test_native.py), at the SQL's speed. :func:`status` says which, and why.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import duckdb

NAME = "btyd_state"
HERE = Path(__file__).resolve().parent
SOURCE = HERE / f"{NAME}.c"
INCLUDE = HERE / "include"
C_API = (1, 2, 0)  # the oldest DuckDB C extension API with every function the source calls

_lock = threading.Lock()
_built: dict[str, Path | None] = {}  # where it is built -> it, or None: could not be
_why: dict[str, str] = {}  # where it is built -> why it could not be


def enabled() -> bool:
    """False when ``SEGKIT_NATIVE=0``: every caller then runs its SQL."""
    return os.environ.get("SEGKIT_NATIVE", "1").strip() != "0"


def cache_dir() -> Path:
    """Where compiled extensions are kept (see the module docstring)."""
    if os.environ.get("SEGKIT_CACHE"):
        return Path(os.environ["SEGKIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "segkit"


def compiler() -> str | None:
    """The C compiler to use: ``$CC``, else the first of cc, gcc, clang on the PATH."""
    if os.environ.get("CC"):
        return os.environ["CC"]
    return next((p for p in map(shutil.which, ("cc", "gcc", "clang")) if p), None)


@functools.cache
def _platform() -> str:
    with duckdb.connect() as con:
        row = con.execute("PRAGMA platform").fetchone()
    return str(row[0]) if row else "unknown"


@functools.cache
def _key(platform: str, cc: str) -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), duckdb.__version__.encode(), platform.encode(), cc.encode()):
        h.update(part + b"\0")
    for header in sorted(INCLUDE.glob("*.h")):
        h.update(header.read_bytes())
    return h.hexdigest()[:16]


def _metadata(platform: str) -> bytes:
    """The footer DuckDB reads before it loads an extension (DuckDB's
    scripts/append_metadata.cmake): eight 32-byte fields in reverse order (format "4",
    platform, C API version, extension version, ABI type "C_STRUCT"), then an empty
    256-byte signature, in a WebAssembly custom section named duckdb_signature."""

    def field(text: str) -> bytes:
        raw = text.encode()
        if len(raw) > 32:
            raise ValueError(f"extension metadata field {text!r} is longer than 32 bytes")
        return raw + b"\0" * (32 - len(raw))

    version = "v{}.{}.{}".format(*C_API)
    fields = ["4", platform, version, "segkit", "C_STRUCT", "", "", ""]
    return (
        b"\0"
        + bytes([147, 4, 16])  # the section's length (531, LEB128) and its name's (16)
        + b"duckdb_signature"
        + bytes([128, 4])  # the fields' length (512, LEB128)
        + b"".join(field(f) for f in reversed(fields))
        + b"\0" * 256
    )


def _build(target: Path, cc: str, platform: str) -> None:
    """Compile to a temporary file beside ``target``, then rename it into place: a
    concurrent process (pytest-xdist, two runs) sees the old file or the new, never half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{NAME}-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    major, minor, patch = C_API
    cmd = [
        cc, "-O2", "-fPIC", "-shared", "-I", str(INCLUDE),
        f"-DDUCKDB_EXTENSION_NAME={NAME}",
        f"-DDUCKDB_EXTENSION_API_VERSION_MAJOR={major}",
        f"-DDUCKDB_EXTENSION_API_VERSION_MINOR={minor}",
        f"-DDUCKDB_EXTENSION_API_VERSION_PATCH={patch}",
        str(SOURCE), "-o", tmp,
    ]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if run.returncode:
            raise RuntimeError(f"{Path(cc).name} failed: {run.stderr.strip()[-600:]}")
        with open(tmp, "ab") as f:
            f.write(_metadata(platform))
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _target(cc: str) -> Path:
    platform = _platform()
    return cache_dir() / _key(platform, cc) / f"{NAME}.duckdb_extension"


def extension() -> Path | None:
    """The compiled extension, built on the first call; None if it cannot be (see
    :func:`status`)."""
    cc = compiler()
    if cc is None:
        return None
    target = _target(cc)
    with _lock:
        if str(target) not in _built:
            try:
                if not target.exists():
                    _build(target, cc, _platform())
                _built[str(target)] = target
            except (OSError, RuntimeError, subprocess.SubprocessError) as e:
                _built[str(target)] = None
                _why[str(target)] = f"could not compile {SOURCE.name}: {e}"
        return _built[str(target)]


def connect(**config: str) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection that may load segkit's extension (``config`` added)."""
    return duckdb.connect(config={"allow_unsigned_extensions": "true", **config})


def _load(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    loaded = con.execute(
        f"SELECT loaded FROM duckdb_extensions() WHERE extension_name = '{NAME}'"
    ).fetchall()
    if not (loaded and loaded[0][0]):
        con.load_extension(str(path))


def load(con: duckdb.DuckDBPyConnection) -> bool:
    """Load ``btyd_state`` into ``con``: True when it can be called there."""
    if not enabled():
        return False
    path = extension()
    if path is None:
        return False
    try:
        _load(con, path)
    except duckdb.Error:
        return False  # e.g. a connection without allow_unsigned_extensions
    return True


def status() -> str:
    """One line: whether segkit's aggregate is in use here, and if not, why."""
    if not enabled():
        return "off (SEGKIT_NATIVE=0): segkit runs its SQL"
    cc = compiler()
    if cc is None:
        return "off (no C compiler: set CC, or install cc, gcc or clang): segkit runs its SQL"
    path = extension()
    if path is None:
        return f"off ({_why[str(_target(cc))]}): segkit runs its SQL"
    try:
        with connect() as con:
            _load(con, path)
    except duckdb.Error as e:
        why = str(e).splitlines()[0]
        return (
            f"off (DuckDB did not load {path}: {why}; delete that folder to build it again): "
            "segkit runs its SQL"
        )
    return f"on: {NAME} compiled by {cc} in {path}"
