"""segkit's BTYD summary against lifetimes and pymc-marketing, in the same run.

On the 5.5-million-row log of ``bench_features.py`` (500 k customers), each in a fresh
process: the bare DuckDB GROUP BY (the floor) fetched three ways, ``segkit.features.
btyd_summary`` and its parts, and,
from another interpreter that has them installed (they are not segkit dependencies),
lifetimes' ``summary_data_from_transaction_data`` and pymc-marketing's ``rfm_summary``.
The other libraries work on a pandas frame: reading the Parquet file is not timed for
them, only the summary call. All compute frequency/recency/T/monetary per customer in
days up to 2024-01-01.

The floor is one GROUP BY customer with count, sum, min and max, and it is compared at its
fastest: fetched as Arrow (``to_arrow_table``), as pandas (``df``) and as Python tuples
(``fetchall``, what an earlier version of this benchmark used: the slowest fetch, which
flattered the ratio, issue 18). Every step reports wall and CPU seconds
(``time.process_time``: all threads of the process, DuckDB's included) and the load average
before it: the machine is shared, so CPU seconds are the figure to compare.

The parts of ``btyd_summary`` (same SQL as segkit/features.py, timed apart): ``btyd_check``
is the validation scan (``_end_of``: max timestamp, empty ids/amounts), ``btyd_sql_arrow``
the two GROUP BYs (customer-day, then customer) fetched as Arrow without ORDER BY.

Run: ``python benchmarks/bench_features_others.py [--others /path/to/python] [--repeat 3]``
(``--others``: a venv with ``pip install lifetimes pymc-marketing pyarrow``; without it
only segkit and the floors run). Each step's figure is the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_features import DATA, make_log  # noqa: E402

OTHER = """
import json, resource, sys, time
import pandas as pd
which, path = sys.argv[1], sys.argv[2]
tx = pd.read_parquet(path, columns=["customer_id", "timestamp", "amount"])
if which == "lifetimes":
    import lifetimes
    from lifetimes.utils import summary_data_from_transaction_data as f
    version = lifetimes.__version__
    kw = {"freq": "D"}
else:
    import pymc_marketing
    from pymc_marketing.clv import rfm_summary as f
    version = pymc_marketing.__version__
    kw = {"time_unit": "D"}
t0 = time.perf_counter()
out = f(tx, "customer_id", "timestamp", monetary_value_col="amount",
        observation_period_end="2024-01-01", **kw)
secs = time.perf_counter() - t0
print(json.dumps({"seconds": round(secs, 2), "customers": len(out), "version": version,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


STEP = """
import json, os, resource, sys, time
import duckdb
from segkit import features, io
step, path = sys.argv[1], sys.argv[2]
con = io.connect(memory_limit="2GB", temp_dir=os.environ["BENCH_TMP"])
floor = (f"SELECT customer_id, count(*), sum(amount), min(timestamp), max(timestamp) "
         f"FROM read_parquet('{path}') GROUP BY 1")
src = features.source_sql(con, path)
end = features._end_of(con, src, "customer_id", "timestamp", "amount", "2024-01-01")
btyd = features._btyd_sql(features._days_sql(src, "customer_id", "timestamp", "amount", end),
                          end, 1.0)
w0, c0 = time.perf_counter(), time.process_time()
if step == "floor_fetchall":
    n = len(con.sql(floor).fetchall())
elif step == "floor_df":
    n = len(con.sql(floor).df())
elif step == "floor_arrow":
    n = con.sql(floor).to_arrow_table().num_rows
elif step == "btyd":
    n = len(features.btyd_summary(path, "2024-01-01", "D", con=con))
elif step == "btyd_check":
    features._end_of(con, src, "customer_id", "timestamp", "amount", None)
    n = 0
elif step == "btyd_sql_arrow":
    n = con.sql(btyd).to_arrow_table().num_rows
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
print(json.dumps({"seconds": round(wall, 2), "cpu": round(cpu, 2), "customers": n,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""

STEPS = ("floor_fetchall", "floor_df", "floor_arrow", "btyd", "btyd_check", "btyd_sql_arrow")


def _run_step(step: str, path: Path, repeat: int) -> dict:
    """The best of ``repeat`` fresh processes (least CPU), with the load average before."""
    best: dict = {}
    for _ in range(repeat):
        load = round(os.getloadavg()[0], 1)
        out = subprocess.run(
            # -P: the current directory's segkit must not shadow PYTHONPATH (before/after runs)
            [sys.executable, "-P", "-c", STEP, step, str(path)],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "BENCH_TMP": str(DATA / "duckdb_tmp")},
        )
        if out.returncode or '{"' not in out.stdout:
            return {
                "error": f"exit {out.returncode}: " + (out.stderr.strip().splitlines() or ["?"])[-1]
            }
        # DuckDB's progress bar may precede the JSON on the same line
        res = json.loads(out.stdout[out.stdout.rindex('{"') :].splitlines()[0])
        res["load"] = load
        if not best or res["cpu"] < best["cpu"]:
            best = res
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--others", help="python with lifetimes / pymc-marketing")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    (DATA / "duckdb_tmp").mkdir(parents=True, exist_ok=True)
    path = DATA / "tx_5500000.parquet"
    make_log(path, 5_500_000, 500_000)
    rows = [(f"segkit {step}", _run_step(step, path, args.repeat)) for step in STEPS]
    others = ("lifetimes", "pymc_marketing") if args.others else ()
    for which in others:
        out = subprocess.run(
            [args.others, "-c", OTHER, which, str(path)], capture_output=True, text=True
        )
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            rows.append((which, {"error": last}))
        else:
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((f"{which} {res.pop('version')}", res))
    floors = [r for name, r in rows if name.startswith("segkit floor") and "cpu" in r]
    floor = min(r["cpu"] for r in floors)
    floor_wall = min(r["seconds"] for r in floors)
    lines = [
        "# bench_features_others: BTYD summary, segkit vs the floor, lifetimes, pymc-marketing",
        "",
        f"- date: {dt.date.today()}; 5,500,000 transactions, 500,000 customers (the log of "
        f"bench_features.py); each step in a fresh process, best of {args.repeat} by CPU",
        "- command: `.venv/bin/python benchmarks/bench_features_others.py"
        + (f" --others {args.others}`" if args.others else "`"),
        "",
        "| step | wall s | CPU s | x fastest floor (CPU) | customers | peak RSS (MB) | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | |")
            continue
        cpu = r.get("cpu")
        ratio = f"{cpu / floor:.2f}" if cpu is not None else ""
        lines.append(
            f"| {name} | {r['seconds']} | {cpu if cpu is not None else ''} | {ratio} | "
            f"{r['customers']:,} | {r['peak_rss_mb']:,} | {r.get('load', '')} |"
        )
    lines.append("")
    lines.append(f"fastest floor: {floor} CPU s, {floor_wall} s wall.")
    (HERE / "results" / "bench_features_others.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
