"""Kernels for the stage notebooks: started ahead of time, quiet, capped, cleaned up.

Starting a Jupyter kernel and importing segkit's stack takes about 2 s on 2 cores; a
papermill run pays that before its first cell. segkit starts the next stage's kernel (and
imports matplotlib, pandas and the stage's module in it, silently) while the current stage
runs, then hands it to papermill (``km=``), which runs the notebook in it as usual. The
time a stage still waits for its kernel counts as its overhead. ``SEGKIT_PRESTART=0`` turns
the head start off (the kernel is then started when the stage begins).

Every kernel:

- talks over IPC (Unix sockets in a private folder), not TCP: no ports to clash between
  concurrent runs, and no "Kernel is running over TCP without encryption" warning;
- gets the thread budget in its environment (:mod:`segkit.core.threads`);
- is shut down, and its connection file and sockets removed, whatever happens.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from segkit.core import threads


class Kernel:
    """One kernel for one stage; ``warm=True`` imports the stage's stack in the background."""

    def __init__(self, stage: str, cwd: Path, *, warm: bool = True, n_threads: int = 1):
        import zmq
        from jupyter_client import KernelManager

        self.stage = stage
        self.ok = False
        self._dir = Path(tempfile.mkdtemp(prefix=_PREFIX))
        (self._dir / "owner.pid").write_text(str(os.getpid()))
        # its own zmq context, not the process-wide singleton: a batch worker forked from a
        # process that already used the singleton would inherit it broken and hang
        km: Any = KernelManager(kernel_name="python3", transport="ipc", context=zmq.Context())
        km.connection_file = str(self._dir / "kernel.json")
        km.ip = str(self._dir / "ipc")  # socket files <ip>-<port>, absolute: cwd-independent
        self.km: Any = km
        try:
            km.start_kernel(cwd=str(cwd), env=threads.environment(n_threads))
        except Exception:  # noqa: BLE001 - reported by take(): the stage then fails cleanly
            self.km = None
            self.close()
            return
        self._thread = threading.Thread(target=self._warm, args=(warm,), daemon=True)
        self._thread.start()

    def _warm(self, imports: bool) -> None:
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=120)
            if not imports:
                self.ok = True
                return
            reply = kc.execute_interactive(
                f"import matplotlib.pyplot, pandas, segkit, segkit.plots, "
                f"segkit.stages.{self.stage}",
                silent=True,
                store_history=False,
                timeout=180,
            )
            self.ok = reply["content"]["status"] == "ok"
        except Exception:  # noqa: BLE001 - a kernel that is not ready is not used
            self.ok = False
        finally:
            kc.stop_channels()

    def take(self) -> Any:
        """The ready kernel manager, or None when it could not start."""
        if self.km is None:
            return None
        self._thread.join()
        if not self.ok:
            self.close()
            return None
        return self.km

    def close(self) -> None:
        """Shut the kernel down and remove its connection file and sockets."""
        km, self.km = self.km, None
        if km is not None:
            if hasattr(self, "_thread"):
                self._thread.join(timeout=5)
            shutdown(km)
        shutil.rmtree(self._dir, ignore_errors=True)


class _NoInterruptedTasks(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" for a task that Ctrl-C or
    SIGTERM stopped. The interrupt is handled (the run cleaned up, the previous one intact),
    but the KeyboardInterrupt raised inside nbclient's task also stays in that task, and
    asyncio printed its traceback when it collected it: a crash to the eye. Seen once in CI
    (tests/test_pipeline_folders.py); any other asyncio error still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, KeyboardInterrupt)


def quiet_interrupted_tasks() -> None:
    """Put :class:`_NoInterruptedTasks` on asyncio's logger, once."""
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _NoInterruptedTasks) for f in log.filters):
        log.addFilter(_NoInterruptedTasks())


def shutdown(km: Any) -> None:
    """Stop a kernel now and close its zmq context (and the clients' sockets)."""
    try:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        km.cleanup_resources()
    except Exception:  # noqa: BLE001 - best effort: the process may be gone already
        pass
    finally:
        km.context.destroy(linger=0)
        for f in (km.connection_file,):
            if f and os.path.exists(f):
                os.remove(f)


_PREFIX = "segkit-kernel-"


def sweep_stale() -> int:
    """Remove the kernel folders (connection file, sockets) of segkit processes that are
    gone, e.g. killed with ``kill -9``; returns how many were removed."""
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        try:
            pid = int((folder / "owner.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def prestart_enabled() -> bool:
    """Whether kernels start ahead of their stage (``SEGKIT_PRESTART``, default on)."""
    return os.environ.get("SEGKIT_PRESTART", "1") != "0"
