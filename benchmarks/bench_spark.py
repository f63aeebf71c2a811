"""Customer features on DuckDB (segkit's SQL), ibis on DuckDB, and ibis on Spark local[2].

Run on demand (not in the tests; the Spark step needs the spark extra and Java 17)::

    nice -n 10 .venv/bin/python benchmarks/bench_spark.py              # 10M rows
    nice -n 10 .venv/bin/python benchmarks/bench_spark.py --rows 50000000

On the synthetic log of ``bench_features.py`` (``make_log``: 10 rows on average
per customer, 12 categories, 3 channels, Parquet in ``benchmarks/data/``), each step in a
fresh process, the same features up to 2024-01-01:

- ``duckdb``: ``segkit.features.customer_features`` (DuckDB SQL, memory limit 2 GB), the
  default path;
- ``ibis-duckdb``: ``segkit.engine.features.customer_features`` on ibis' DuckDB backend;
- ``spark``: the same ibis definition on Spark ``local[2]`` (driver heap 4 GB, full JIT);
  the session start-up is timed apart from the features.

Per step: wall seconds, CPU seconds of the process and all its children (the JVM is a
child of the Python driver), and peak RSS of the process tree, sampled every 0.1 s (so
the JVM's heap counts), plus the 1-minute load average before and after (the machine is
shared: figures under load are slower than on idle cores). Writes
``benchmarks/results/bench_spark.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_features import DATA, make_log  # noqa: E402

END = "2024-01-01"


class Meter:
    """Wall, CPU and peak RSS of this process and its children (sampled in a thread)."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self) -> list:
        return [self.proc, *self.proc.children(recursive=True)]

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.1)

    def rss(self) -> int:
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except Exception:  # a child that just ended
                pass
        return total

    def cpu(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:
                pass
        return total

    def start(self) -> Meter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _features(step: str, path: str, backend) -> int:
    from segkit import engine, features, io
    from segkit.engine import features as ef

    if step == "duckdb":
        con = io.connect(memory_limit="2GB", temp_dir=DATA / "duckdb_tmp")
        return len(features.customer_features(path, END, "D", con=con))
    return len(ef.customer_features(engine.table(backend, path), END, "D"))


def _step(step: str, path: str) -> dict:
    """Run one step in this process: start-up (Spark) and features, measured apart."""
    from segkit import engine

    m = Meter().start()
    out: dict = {"load_before": round(os.getloadavg()[0], 1)}
    w0, c0 = time.perf_counter(), m.cpu()
    backend = None
    if step != "duckdb":
        spark = {"master": "local[2]", "driver_memory": "4g", "shuffle_partitions": 8}
        backend = engine.connect("spark" if step == "spark" else "duckdb", spark)
    w1, c1 = time.perf_counter(), m.cpu()
    out["customers"] = _features(step, path, backend)
    w2, c2 = time.perf_counter(), m.cpu()
    m.stop()
    out.update(
        startup_wall=round(w1 - w0, 1),
        startup_cpu=round(c1 - c0, 1),
        wall=round(w2 - w1, 1),
        cpu=round(c2 - c1, 1),
        peak_rss_mb=round(max(m.peak, m.rss()) / 2**20),
        load_after=round(os.getloadavg()[0], 1),
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--steps", default="duckdb,ibis-duckdb,spark")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.path)))
        return
    DATA.mkdir(exist_ok=True)
    path = DATA / f"tx_{args.rows}.parquet"
    make_log(path, args.rows, args.rows // 10)
    rows = []
    for step in args.steps.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--step", step, "--path", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"step {step} failed")
        res = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"step": step, **res})
        print(step, res, flush=True)
    write(rows, args.rows)


def write(rows: list[dict], n_rows: int) -> None:
    """Append this size's table to ``benchmarks/results/bench_spark.md``."""
    out = HERE / "results" / "bench_spark.md"
    head = out.read_text() if out.exists() else _header()
    lines = [
        f"## {n_rows:,} transactions, {n_rows // 10:,} customers ({dt.date.today()})",
        "",
        "| engine | customers | start-up wall s | start-up CPU s | features wall s | "
        "features CPU s | peak RSS MB (tree) | load avg before/after |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['customers']:,} | {r['startup_wall']} | {r['startup_cpu']} | "
            f"{r['wall']} | {r['cpu']} | {r['peak_rss_mb']:,} | "
            f"{r['load_before']} / {r['load_after']} |"
        )
    out.write_text(head.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


def _header() -> str:
    return "\n".join(
        [
            "# bench_spark: customer features on DuckDB, ibis-DuckDB and Spark local[2]",
            "",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
            f"python {platform.python_version()}; shared with other jobs (see load averages)",
            "- command: `nice -n 10 .venv/bin/python benchmarks/bench_spark.py [--rows N]`",
            "- data: `bench_features.make_log` (half uniform, half Zipf customers, 12 categories, "
            "3 channels), Parquet; features up to 2024-01-01, each engine in a fresh process",
            "- CPU: user + system seconds of the Python process and its children (the JVM); "
            "peak RSS: the process tree sampled every 0.1 s",
            "",
        ]
    )


if __name__ == "__main__":
    main()
