"""segkit's BTYD summary against lifetimes and pymc-marketing, in the same run.

On the 5.5-million-row log of ``bench_features.py`` (500 k customers), each in a fresh
process: the bare DuckDB GROUP BY (the floor), ``segkit.features.btyd_summary``, and,
from another interpreter that has them installed (they are not segkit dependencies),
lifetimes' ``summary_data_from_transaction_data`` and pymc-marketing's ``rfm_summary``.
The other libraries work on a pandas frame: reading the Parquet file is not timed for
them, only the summary call. All compute frequency/recency/T/monetary per customer in
days up to 2024-01-01.

Run: ``python benchmarks/bench_features_others.py --others /path/to/python``
(e.g. a venv with ``pip install lifetimes pymc-marketing pyarrow``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--others", required=True, help="python with lifetimes / pymc-marketing")
    args = ap.parse_args()
    DATA.mkdir(exist_ok=True)
    path = DATA / "tx_5500000.parquet"
    make_log(path, 5_500_000, 500_000)
    rows = []
    for step in ("floor", "btyd"):
        out = subprocess.run(
            [sys.executable, str(HERE / "bench_features.py"), "--step", step, "--path", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append((f"segkit {step}", json.loads(out.stdout.strip().splitlines()[-1])))
    for which in ("lifetimes", "pymc_marketing"):
        out = subprocess.run(
            [args.others, "-c", OTHER, which, str(path)], capture_output=True, text=True
        )
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            rows.append((which, {"error": last}))
        else:
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((f"{which} {res.pop('version')}", res))
    lines = [
        "# bench_features_others: BTYD summary, segkit vs lifetimes vs pymc-marketing",
        "",
        f"- date: {dt.date.today()}; 5,500,000 transactions, 500,000 customers (the log of "
        "bench_features.py); each step in a fresh process",
        f"- command: `.venv/bin/python benchmarks/bench_features_others.py --others {args.others}`",
        "",
        "| step | seconds | customers | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in rows:
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | |")
        else:
            lines.append(f"| {name} | {r['seconds']} | {r['customers']:,} | {r['peak_rss_mb']:,} |")
    (HERE / "results" / "bench_features_others.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
