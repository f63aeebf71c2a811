"""A thread budget for every process segkit starts, so a busy machine stays usable.

BLAS and OpenMP pools (numpy, scikit-learn's k-means) start one spinning thread per core.
On a machine whose cores are busy with other work, threads that spin while waiting for a
core make the same computation tens of times slower (measured: the clustering stage took
755 s in a JupyterLab kernel beside other work, 60 s with one thread). segkit therefore caps
them: at import (for the kernels of the notebooks, JupyterLab included), in the kernels
``segkit run`` and ``segkit batch`` start (through their environment), and in the tests.

The budget is ``SEGKIT_THREADS`` when set, else half the cores this process may use
(at least 1): on 2 cores, 1 thread. A variable the user set (``OMP_NUM_THREADS`` …) is
left as it is.
"""

from __future__ import annotations

import os

#: Environment variables read by the BLAS/OpenMP runtimes when they load.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def budget(workers: int = 1) -> int:
    """Threads per process when ``workers`` processes share this machine."""
    given = os.environ.get("SEGKIT_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    return max(1, usable_cores() // 2 // max(1, workers))


def environment(n: int | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the thread variables set to ``n``.

    Variables already set in ``base`` are kept: the user's choice wins.
    """
    env = dict(os.environ if base is None else base)
    n = budget() if n is None else n
    for var in THREAD_VARS:
        if _first_int(env.get(var)) is None:  # unset, empty or unreadable: ours
            env[var] = str(n)
    env.setdefault("SEGKIT_THREADS", str(n))
    return env


def apply(n: int | None = None) -> int:
    """Cap this process: environment for runtimes not loaded yet, threadpoolctl for the rest."""
    n = budget() if n is None else n
    os.environ.update({k: v for k, v in environment(n).items() if k in THREAD_VARS})
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a dependency; the environment still applies
        return n
    threadpool_limits(limits=_first_int(os.environ["OPENBLAS_NUM_THREADS"]), user_api="blas")
    threadpool_limits(limits=_first_int(os.environ["OMP_NUM_THREADS"]), user_api="openmp")
    return n


def _first_int(value: str | None) -> int | None:
    """The thread count a variable sets (OpenMP allows a list like "4,2": its first)."""
    head = (value or "").split(",")[0].strip()
    return int(head) if head.isdigit() and int(head) > 0 else None
