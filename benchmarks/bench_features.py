"""Speed and memory of the customer features (segkit.features) at growing sizes.

Run on demand (not in the tests)::

    nice -n 10 .venv/bin/python benchmarks/bench_features.py            # 1M, 5.5M, 20M rows
    nice -n 10 .venv/bin/python benchmarks/bench_features.py --big      # + 50M rows

For each size it writes a synthetic transaction log to ``benchmarks/data/`` (Parquet,
gitignored), then times, each in a fresh process (so peak RSS is that step's own):

- ``floor``: the bare DuckDB aggregation any feature step must do (one GROUP BY customer
  with count, sum, min and max) — the cost floor;
- ``btyd``: ``features.btyd_summary`` (segkit's aggregate ``btyd_state``, one GROUP BY);
- ``features``: ``features.customer_features`` (BTYD + orders, revenue, shares by channel
  and category), with DuckDB's memory limit at 2 GB and spilling to disk;
- ``calibration``: ``features.calibration_holdout`` (weeks, calibration up to 2023-06-30,
  a 26-week holdout: two ``btyd_state`` in one GROUP BY);
- ``btyd_sql``, ``features_sql``, ``calibration_sql``: the same with ``SEGKIT_NATIVE=0``
  (segkit's SQL: a customer-day GROUP BY, then the customer's).

Seconds are wall and CPU (``time.process_time``: every thread of the step's process).

It writes the table to ``benchmarks/results/bench_features.md`` (the text from "Reading" on
is kept). Targets: time grows
linearly with rows (features within 5x the floor at every size); DuckDB's own memory stays
under its limit (2 GB), so peak RSS is that limit plus the result frame (one row per
customer, ~30 columns: about 1.5 GB at 5M customers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def make_log(path: Path, n_rows: int, n_customers: int, seed: int = 0) -> None:
    """A transaction log of ``n_rows`` over ``n_customers``, written in 1M-row chunks."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)  # benchmarks/data is not in a fresh clone
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01T00:00:00", "s")
    span = 2 * 365 * 86400
    channels = np.array(["web", "store", "app"])
    categories = np.array([f"cat{i:02d}" for i in range(12)])
    writer = None
    tmp = path.with_suffix(".tmp")
    for lo in range(0, n_rows, 1_000_000):
        n = min(1_000_000, n_rows - lo)
        # half uniform (every customer appears), half Zipf (a few heavy buyers)
        cid = np.where(
            rng.random(n) < 0.5, rng.integers(0, n_customers, n), rng.zipf(1.3, n) % n_customers
        )
        table = pa.table(
            {
                "customer_id": pa.array(np.char.add("C", cid.astype(str))),
                "order_id": pa.array(np.char.add("O", np.arange(lo, lo + n).astype(str))),
                "timestamp": pa.array(start + rng.integers(0, span, n).astype("timedelta64[s]")),
                "amount": pa.array(np.round(rng.gamma(2.0, 25.0, n) + 0.5, 2)),
                "channel": pa.array(channels[rng.integers(0, 3, n)]),
                "category": pa.array(categories[rng.integers(0, 12, n)]),
            }
        )
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    writer.close()
    tmp.rename(path)


def _step(step: str, path: str) -> dict:
    """Run one step in this process; return seconds and peak RSS."""
    import duckdb

    from segkit import features, io

    con = io.connect(memory_limit="2GB", temp_dir=DATA / "duckdb_tmp")
    t0, c0 = time.perf_counter(), time.process_time()
    if step == "floor":
        n = len(
            con.sql(
                f"SELECT customer_id, count(*), sum(amount), min(timestamp), max(timestamp) "
                f"FROM read_parquet('{path}') GROUP BY 1"
            ).fetchall()
        )
    elif step.startswith("btyd"):
        n = len(features.btyd_summary(path, "2024-01-01", "D", con=con))
    elif step.startswith("calibration"):
        n = len(features.calibration_holdout(path, "2023-06-30", "2024-01-01", "W", con=con))
    else:
        n = len(features.customer_features(path, "2024-01-01", "D", con=con))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MB on Linux
    del duckdb
    return {
        "seconds": round(secs, 2),
        "cpu": round(cpu, 2),
        "peak_rss_mb": round(rss),
        "customers": n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also run 50M rows")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        print(json.dumps(_step(args.step, args.path)))
        return
    DATA.mkdir(exist_ok=True)
    sizes = [(1_000_000, 100_000), (5_500_000, 500_000), (20_000_000, 2_000_000)]
    if args.big:
        sizes.append((50_000_000, 5_000_000))
    rows = []
    for n_rows, n_cust in sizes:
        path = DATA / f"tx_{n_rows}.parquet"
        t0 = time.perf_counter()
        make_log(path, n_rows, n_cust)
        print(f"{n_rows:>11,} rows: log ready in {time.perf_counter() - t0:.1f}s", flush=True)
        steps = ("floor", "btyd", "btyd_sql", "features", "features_sql", "calibration")
        for step in (*steps, "calibration_sql"):
            env = {**os.environ, "SEGKIT_NATIVE": "0" if step.endswith("_sql") else "1"}
            out = subprocess.run(
                [sys.executable, __file__, "--step", step, "--path", str(path)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({"rows": n_rows, "step": step, **res})
            print(f"{'':13}{step:>9}: {res}", flush=True)
    lines = [
        "# bench_features: customer features in DuckDB",
        "",
        f"- date: {dt.date.today()}; machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.platform()}; python {platform.python_version()}",
        "- command: `nice -n 10 .venv/bin/python benchmarks/bench_features.py"
        + (" --big`" if args.big else "`"),
        "- data: synthetic log (half uniform, half Zipf customers, 12 categories, 3 channels), Parquet; "
        "DuckDB memory_limit 2GB, spilling to benchmarks/data/duckdb_tmp",
        "",
        f"- load average (1, 5, 15 min) after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        "",
        "| rows | customers | step | wall s | CPU s | peak RSS (MB) | x floor (CPU) |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    floor = {r["rows"]: r["cpu"] for r in rows if r["step"] == "floor"}
    for r in rows:
        lines.append(
            f"| {r['rows']:,} | {r['customers']:,} | {r['step']} | {r['seconds']} | {r['cpu']} "
            f"| {r['peak_rss_mb']:,} | {r['cpu'] / floor[r['rows']]:.2f} |"
        )
    out_path = HERE / "results" / "bench_features.md"
    old = out_path.read_text() if out_path.exists() else ""
    reading = old[old.index("\nReading") :] if "\nReading" in old else ""
    out_path.write_text("\n".join(lines) + "\n" + reading)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
