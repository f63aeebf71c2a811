"""``segkit score --clv`` at scale: every customer's CLV on DuckDB (batches) and on Spark.

A run folder holds the k-means segmenter of ``bench_score.py`` and a CLV model fitted
with segkit's own functions (``segkit.clv.fit_purchases("bgnbd")`` and ``fit_spend``) on
50,000 customers simulated by ``bench_clv.simulate``: a BG/NBD process (rates
Gamma(0.8, 6), drop-out Beta(1.2, 4)) observed 26-104 weeks, times in whole days
expressed in weeks (the model's time unit, ``W``), Gamma-Gamma spend. ``clv_params.json``
is written as the CLV stage writes it (12 months, margin 0.3, discount rate 0.1, no
holdout check: no model-error band), and ``manifest.json`` says engine spark, local[2].

The customer table: the segmenter's features (``bench_score.table``) and, drawn by the
same simulation with another seed per million, ``frequency``, ``recency``, ``T`` and
``monetary``: as many distinct (frequency, recency, T) histories as whole-day times give
(counted and printed). The two parts are independent (scoring does not care).

Each command runs in a fresh process (as ``bench_score.py --cli``), one at a time:
``segkit score RUN customers.parquet --out scored.parquet --engine E [--clv]``. Measured:
wall; CPU (user + sys) of the child and its children as the parent's ``RUSAGE_CHILDREN``
sees them, and the same from inside the child just before it exits (its own rusage, the
children it reaped, and the CPU of the descendants still running, i.e. Spark's JVM, from
``/proc/PID/stat``); peak RSS: the child's own ``VmHWM``, the ``VmHWM`` of each live
descendant (the JVM) summed with it, and the process tree's summed ``VmRSS`` sampled
every 0.2 s by the parent. With Spark and DuckDB at the same size the printed total CLV and
every customer's ``clv`` are compared.

Run: ``nice -n 5 python benchmarks/bench_score_clv.py [--sizes 1000000 10000000]
[--spark 1000000] [--phases]``; results in ``benchmarks/results/bench_score_clv.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_clv import simulate  # noqa: E402
from bench_score import fit, table  # noqa: E402

from segkit.clv import fit_purchases, fit_spend, spend_frequency_correlation  # noqa: E402

#: The run's parameters: Spark local[2] as in tests/test_engine_score.py.
PARAMETERS = {"engine": "spark", "spark": {"master": "local[2]", "shuffle_partitions": 4}}
BTYD = ["frequency", "recency", "T", "monetary"]

# The child runs segkit's CLI, then reports from /proc before it exits: its own VmHWM, its
# CPU (self + reaped children) and each live descendant's (Spark's JVM) CPU and VmHWM.
CLI = """
import os, resource, sys
from segkit.cli import main
rc = main(sys.argv[1:])
def stat(pid):
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(')', 1)[1].split()
parents = {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            parents.setdefault(int(stat(d)[1]), []).append(int(d))
        except (OSError, IndexError):
            pass
todo, tree = [os.getpid()], []
while todo:
    kids = parents.get(todo.pop(), [])
    tree += kids
    todo += kids
tick, cpu, hwm = os.sysconf('SC_CLK_TCK'), 0.0, 0
for pid in tree:
    try:
        s = stat(pid)
        cpu += sum(int(v) for v in s[11:15]) / tick
        hwm += int([ln for ln in open(f'/proc/{pid}/status') if ln.startswith('VmHWM')][0].split()[1])
    except (OSError, IndexError):
        pass
me = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
own = sum(r.ru_utime + r.ru_stime for r in me)
self_hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0].split()[1]
print('bench', self_hwm, own, cpu, hwm, len(tree), file=sys.stderr)
sys.exit(rc)
"""


# With --phases: wall and CPU seconds of the steps, timed inside the child (the Spark
# steps' CPU here is the Python driver's only; the JVM's is in the totals).
PHASES = """
import functools, json, sys, time
import segkit.engine.backend as B, segkit.engine.scoring as S, segkit.engine.value as V
import segkit.segment.scorefile as F
from segkit.segment.segmenter import Segmenter
spent = {}
def timed(owner, name, label):
    f = getattr(owner, name)
    @functools.wraps(f)
    def wrapper(*a, **k):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return f(*a, **k)
        finally:
            s = spent.setdefault(label, [0, 0.0, 0.0])
            s[0] += 1
            s[1] += time.perf_counter() - t0
            s[2] += time.process_time() - c0
    setattr(owner, name, wrapper)
for owner, name, label in [
    (B, 'connect', 'start the engine'),
    (V, '_histories', 'distinct histories to pandas + their terms'),
    (V, 'purchase_terms', '  of which purchase_terms (numpy)'),
    (V, 'table', 'histories to an engine table'),
    (S, 'write_parquet', 'score, value and write (engine job)'),
    (S, 'summarize', 'summary (aggregates of the written Parquet)'),
    (Segmenter, 'score', 'Segmenter.score (batches)'),
    (F, 'with_value', 'ValueModel.predict + concat (batches)'),
    (F, 'write_csv', 'write CSV (batches)'),
    (F, '_write_parquet', 'write Parquet (batches)'),
]:
    timed(owner, name, label)
import atexit
atexit.register(lambda: print('phases', json.dumps(spent), file=sys.stderr))
"""


def clv_params(n: int = 50_000, seed: int = 0) -> dict[str, Any]:
    """``clv_params.json`` of a BG/NBD + Gamma-Gamma model fitted on ``n`` simulated
    customers, in the CLV stage's layout (``segkit.stages.clv``)."""
    df = simulate(n, seed)
    bg = fit_purchases("bgnbd", df["frequency"], df["recency"], df["T"])
    gg = fit_spend(df["frequency"], df["monetary"])
    out: dict[str, Any] = {"bgnbd": bg.to_dict(), "gamma_gamma": gg.to_dict()}
    out["_meta"] = {
        "time_unit": "W",
        "clv_model": "bgnbd",
        "horizon_months": 12,
        "margin": 0.3,
        "discount_rate": 0.1,
        "spend_frequency_correlation": spend_frequency_correlation(df["frequency"], df["monetary"]),
        "calibration": {},
        "holdout_check": None,
    }
    return out


def run_folder(folder: Path) -> Path:
    """A run folder: segmenter.json, clv_params.json, manifest.json (engine spark)."""
    (folder / "artifacts").mkdir(parents=True)
    seg, _, _ = fit()
    seg.save(folder / "artifacts" / "segmenter.json")
    params = clv_params()
    (folder / "artifacts" / "clv_params.json").write_text(json.dumps(params, indent=1))
    (folder / "manifest.json").write_text(json.dumps({"parameters": PARAMETERS}))
    bg = {k: round(v, 4) for k, v in params["bgnbd"].items() if k in ("r", "alpha", "a", "b")}
    gg = {k: round(v, 4) for k, v in params["gamma_gamma"].items() if k in ("p", "q", "v")}
    print(f"CLV model fitted on 50,000 simulated customers: bgnbd {bg}, gamma_gamma {gg}")
    return folder


def customers(path: Path, n: int, chunk: int = 1_000_000) -> int:
    """Write ``n`` customers (segmenter features + BTYD summary) to ``path``; return the
    number of distinct (frequency, recency, T) histories."""
    writer, keys = None, []
    for i, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        df = table(m, 100 + i)
        btyd = simulate(m, 1000 + i)
        for c in BTYD:
            df[c] = btyd[c].to_numpy()
        df["customer_id"] = [f"c{start + j}" for j in range(m)]
        # histories in whole days: an exact integer key
        days = np.rint(btyd[["recency", "T"]].to_numpy() * 7).astype(np.int64)
        keys.append(np.unique(btyd["frequency"].to_numpy(np.int64) * 10**6 + days @ [1000, 1]))
        part = pa.Table.from_pandas(df, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, part.schema)
        writer.write_table(part)
    assert writer is not None
    writer.close()
    return len(np.unique(np.concatenate(keys)))


def _tree_rss_kb(root: int) -> int:
    """Summed VmRSS (kB) of ``root`` and its descendants now."""
    parents: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/status") as f:
                line = [ln for ln in f if ln.startswith("VmRSS")]
        except (OSError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(d))
        rss[int(d)] = int(line[0].split()[1]) if line else 0
    total, todo = rss.get(root, 0), [root]
    while todo:
        for kid in parents.get(todo.pop(), []):
            total += rss.get(kid, 0)
            todo.append(kid)
    return total


def measure(
    run: Path, src: Path, out: Path, engine: str, clv: bool, timeout: float, phases: bool = False
) -> dict:
    """``segkit score`` in a fresh process: wall, CPU, peak RSS, what it printed (and with
    ``phases`` the time of its steps)."""
    code = (PHASES if phases else "") + CLI
    cmd = [sys.executable, "-P", "-c", code, "score", str(run), str(src), "--out", str(out)]
    cmd += ["--engine", engine] + (["--clv"] if clv else [])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        done.set()
        return {"engine": engine, "clv": clv, "stopped_after_s": timeout, "load_before": load}
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[3:])} failed ({proc.returncode}):\n{stderr[-3000:]}")
    lines = stderr.splitlines()
    hwm, own, tree_cpu, tree_hwm, n_tree = [ln for ln in lines if ln.startswith("bench ")][
        -1
    ].split()[1:]
    steps = {}
    if phases:
        spent = json.loads([ln for ln in lines if ln.startswith("phases ")][-1][len("phases ") :])
        steps = {k: [n, round(w, 2), round(c, 2)] for k, (n, w, c) in spent.items()}
    return {
        "engine": engine,
        "clv": clv,
        "wall": round(wall, 1),
        "cpu_rusage_children": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
        "cpu_inside": round(float(own) + float(tree_cpu), 2),
        "cpu_live_descendants": round(float(tree_cpu), 2),
        "peak_rss_mb": round(int(hwm) / 1024),
        "peak_rss_tree_hwm_mb": round((int(hwm) + int(tree_hwm)) / 1024),
        "peak_rss_tree_sampled_mb": round(peak[0] / 1024),
        "live_descendants": int(n_tree),
        "load_before": load,
        "load_after": os.getloadavg(),
        "phases (calls, wall s, CPU s)": steps,
        "stdout": stdout.strip(),
        "command": "segkit " + " ".join(cmd[4:]),
    }


def _clv_line(stdout: str) -> str:
    return next((ln for ln in stdout.splitlines() if ln.startswith("CLV over")), "")


def _clv_column(path: Path) -> np.ndarray:
    t = pq.read_table(path, columns=["customer_id", "clv"]).to_pandas()
    return t.sort_values("customer_id")["clv"].to_numpy(float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--spark", type=int, nargs="*", default=[1_000_000], help="sizes on Spark")
    ap.add_argument("--timeout", type=float, default=600.0, help="stop a command after (s)")
    ap.add_argument("--phases", action="store_true", help="time the steps inside the child")
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        run = run_folder(Path(tmp) / "run")
        for n in args.sizes:
            src = Path(tmp) / f"customers_{n}.parquet"
            t0 = time.perf_counter()
            distinct = customers(src, n)
            print(
                f"{n:,} customers: {distinct:,} distinct (frequency, recency, T) histories "
                f"({src.stat().st_size / 2**20:,.0f} MB Parquet, {time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
            engines = ["duckdb"] + (["spark"] if n in args.spark else [])
            results = {}
            for engine in engines:
                for clv in (False, True):
                    out = Path(tmp) / f"scored_{engine}_{clv}.parquet"
                    r = measure(run, src, out, engine, clv, args.timeout, args.phases)
                    r["customers"] = n
                    results[engine, clv] = r
                    print(json.dumps(r, default=str), flush=True)
                    for step, (calls, wall, cpu) in r.get(
                        "phases (calls, wall s, CPU s)", {}
                    ).items():
                        print(f"  {engine} clv={clv} {step}: {calls} calls, {wall} s, CPU {cpu} s")
            if ("spark", True) in results and "wall" in results["duckdb", True]:
                duck, spark = (results[e, True] for e in ("duckdb", "spark"))
                a = _clv_column(Path(tmp) / "scored_duckdb_True.parquet")
                b = _clv_column(Path(tmp) / "scored_spark_True.parquet")
                rel = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b)).clip(1e-300)
                print(f"total CLV line, duckdb: {_clv_line(duck['stdout'])}")
                print(f"total CLV line, spark:  {_clv_line(spark['stdout'])}")
                print(
                    f"same line: {_clv_line(duck['stdout']) == _clv_line(spark['stdout'])}; "
                    f"per-customer clv: {len(a):,} vs {len(b):,} rows, max relative "
                    f"difference {np.nanmax(rel):.2e}, sums {a.sum():,.6f} vs {b.sum():,.6f}",
                    flush=True,
                )
            for p in Path(tmp).glob("scored_*"):
                if p.is_dir():
                    for f in p.iterdir():
                        f.unlink()
                    p.rmdir()
                else:
                    p.unlink()
            src.unlink()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
