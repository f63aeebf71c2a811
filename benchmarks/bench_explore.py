"""The exploration stage at 100k and 1M customers: its cost must grow linearly.

The synthetic retailer (``datasets.write_retailer``: about 7.65 transactions per customer,
and a customer table with age, gender, region and income band) is written once per size
under ``--data``; then, in a fresh process per size, ``segkit.stages.explore.run`` loads,
cleans, normalizes the categories, builds the features and writes the artifacts. Reported:
wall and CPU seconds (``time.process_time``: every thread of the process, DuckDB's
included), peak RSS, the load average, and with ``--profile`` the cumulative seconds of the
steps issue 18 named (``_normalize_categories``, ``_with_attributes``, the features),
in CPU seconds (cProfile with ``time.process_time`` as its clock).

Run: ``python benchmarks/bench_explore.py [--sizes 100000 1000000] [--profile]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import cProfile, json, os, pstats, resource, sys, tempfile, time
from pathlib import Path
from segkit import Run
from segkit.stages import explore
folder, profile = Path(sys.argv[1]), sys.argv[2] == "1"
params = {"name": "bench", "data": {"source": "files",
          "transactions": str(folder / "transactions.parquet"),
          "customers": str(folder / "customers.parquet")}}
with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
    run = Run.open(params, Path(tmp) / "run")
    prof = cProfile.Profile(time.process_time) if profile else None  # CPU seconds
    w0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    res = explore.run(run)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
steps = {}
if prof:
    st = pstats.Stats(prof).stats
    for (file, line, fn), (cc, nc, tt, ct, callers) in st.items():
        if fn in ("_normalize_categories", "_with_attributes", "customer_features",
                  "_explore_transactions", "_load_tables", "monthly_summary",
                  "cohort_retention", "_tidy"):
            steps[fn] = round(steps.get(fn, 0) + ct, 2)
print(json.dumps({"wall": round(wall, 2), "cpu": round(cpu, 2), "steps": steps,
                  "customers": res.summary.get("customers"),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def _last_json(stdout: str) -> dict:
    """The last JSON object the child printed (DuckDB's progress bar may precede it on the
    same line)."""
    return json.loads(stdout[stdout.rindex('{"wall"') :].splitlines()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--data", default="/tmp/segkit_bench_explore")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    from segkit import datasets

    rows = []
    for n in args.sizes:
        folder = Path(args.data) / f"retailer_{n}"
        if not (folder / "customers.parquet").is_file():
            info = datasets.write_retailer(folder, n)
            print(f"wrote {folder}: {info['transactions']:,} transactions", file=sys.stderr)
        load = os.getloadavg()
        out = subprocess.run(
            # -P: the current directory's segkit must not shadow PYTHONPATH (before/after runs)
            [sys.executable, "-P", "-c", CHILD, str(folder), "1" if args.profile else "0"],
            capture_output=True,
            text=True,
            check=True,
        )
        res = _last_json(out.stdout)
        res.update(n=n, load_before=[round(x, 2) for x in load])
        rows.append(res)
        print(json.dumps(res))
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        size = b["n"] / a["n"]
        print(
            f"x{size:g} customers: wall x{b['wall'] / a['wall']:.1f}, "
            f"CPU x{b['cpu'] / a['cpu']:.1f}"
        )


if __name__ == "__main__":
    main()
