"""Run folders that never lose a user's files nor the previous good run.

A run is built in a hidden temporary sibling (``.<name>.tmp-*``) and swapped into place only
when it is complete; a failed run goes to ``<name>.failed``. Around that:

- **names** (run, grid and point names) are one safe path component, checked before
  anything runs (:func:`check_name`);
- a folder is replaced only when it is empty or segkit wrote it (its ``manifest.json`` says
  ``"written_by": "segkit"``); anything else is refused and left untouched;
- a **lock** per run folder: a second run into the same folder refuses with a message;
- **leftovers** of an interrupted run (a temporary folder whose process is gone, a
  ``<name>.old`` left between the two renames) are recovered at the next run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from segkit.core.errors import SegkitError

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MARKER = ".segkit-tmp"  # in a temporary run folder: the pid of the process writing it


def check_name(name: object, what: str = "name") -> str:
    """``name`` if it is one safe path component (letters, digits, ``._-``), else an error.

    >>> check_name("online_retail-k5")
    'online_retail-k5'
    >>> check_name("../../x", "run name")
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: run name == '../../x': must be one folder name of letters, digits, '.', '_' or '-' (at most 100, starting with a letter or digit).
    """
    if not isinstance(name, str) or not _SAFE.match(name) or name.endswith((".old", ".failed")):
        raise SegkitError(
            f"{what} == {name!r}: must be one folder name of letters, digits, '.', '_' or '-' "
            "(at most 100, starting with a letter or digit)."
        )
    return name


def written_by_segkit(folder: Path) -> bool:
    """Whether ``folder`` is empty or holds a run segkit wrote (its manifest says so)."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    if not any(folder.iterdir()):
        return True
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # manifests before "written_by" existed carry these keys
    return isinstance(data, dict) and (
        data.get("written_by") == "segkit" or {"parameters", "stages", "inputs"} <= set(data)
    )


def check_replaceable(folder: Path) -> None:
    """Refuse a target folder that segkit did not write, naming a file in it."""
    if folder.exists() and not written_by_segkit(folder):
        if not folder.is_dir():
            raise SegkitError(f"run folder {folder} exists and is not a folder; choose another")
        sample = sorted(p.name for p in folder.iterdir())[:3]
        raise SegkitError(
            f"run folder {folder} holds files segkit did not write ({', '.join(sample)}…); "
            "nothing was touched. Choose another --run-dir, or an empty folder."
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(final: Path) -> list[str]:
    """Clean up after an interrupted run into ``final``; returns what was done, in words."""
    done: list[str] = []
    parent = final.parent
    if not parent.is_dir():
        return done
    for tmp in parent.glob(f".{final.name}.tmp-*"):
        marker = tmp / MARKER
        try:
            pid = int(marker.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if tmp.is_dir() and not _alive(pid) and (marker.exists() or not any(tmp.iterdir())):
            shutil.rmtree(tmp, ignore_errors=True)
            done.append(f"removed the unfinished run {tmp.name}")
    for target in (final, final.with_name(final.name + ".failed")):
        old = target.with_name(target.name + ".old")
        if old.is_dir() and written_by_segkit(old):
            if not target.exists():
                old.rename(target)
                done.append(f"restored the previous run {target.name} from {old.name}")
            else:
                shutil.rmtree(old, ignore_errors=True)
                done.append(f"removed the stale {old.name}")
    return done


@contextlib.contextmanager
def locked(final: Path) -> Iterator[None]:
    """Hold the lock of run folder ``final``; a second holder is refused with a message."""
    final.parent.mkdir(parents=True, exist_ok=True)
    lock = final.parent / f".{final.name}.lock"
    fh = open(lock, "a+")  # noqa: SIM115 - held for the duration of the run
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise SegkitError(
                f"another segkit run (pid {holder}) is writing {final}; wait for it to finish "
                "or choose another --run-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()


def new_temporary(final: Path) -> Path:
    """A hidden temporary folder beside ``final``, marked with this process's pid."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a run folder is shared like any other
    (tmp / MARKER).write_text(str(os.getpid()))
    return tmp


def swap_in(tmp: Path, target: Path) -> Path:
    """Move the finished ``tmp`` to ``target``, replacing a segkit folder there."""
    (tmp / MARKER).unlink(missing_ok=True)
    backup = target.with_name(target.name + ".old")
    if backup.exists():
        shutil.rmtree(backup)
    if target.exists():
        target.rename(backup)
    tmp.rename(target)
    shutil.rmtree(backup, ignore_errors=True)
    return target


def disk_message(exc: OSError, where: Path) -> str | None:
    """One line for a full or read-only disk, or None for other errors."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on the disk of {where} while writing {exc.filename or where}"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write to {exc.filename or where}: {os.strerror(exc.errno)}"
    return None
