"""The synthetic retailer from a thousand to tens of millions of transactions.

``segkit.datasets.write_retailer`` writes the log chunk by chunk to Parquet; this measures
wall time, rows written and the process's peak RSS for each size, each in a fresh
process so that the peaks do not mix.

Run: ``python benchmarks/bench_datasets.py [--customers 130 130000 2600000]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
from segkit.datasets import write_retailer
t = time.perf_counter()
info = write_retailer(sys.argv[1], int(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t, "customers": info["customers"],
                  "transactions": info["transactions"],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, nargs="+", default=[130, 130_000, 2_600_000])
    args = ap.parse_args()
    print("| customers | transactions | seconds | peak RSS (MB) |")
    print("|---:|---:|---:|---:|")
    for n in args.customers:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, tmp, str(n)], capture_output=True, text=True
            )
            if out.returncode:
                print(f"| {n:,} | failed: {out.stderr.strip().splitlines()[-1]} | | |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"| {r['customers']:,} | {r['transactions']:,} | {r['seconds']:.1f} "
                f"| {r['peak_mb']:,.0f} |"
            )


if __name__ == "__main__":
    main()
