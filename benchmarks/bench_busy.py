"""segkit on a busy machine: the demo ``segkit run`` alone and beside CPU-bound neighbours,
with segkit's thread budget and without it (every BLAS/OpenMP pool as wide as the cores,
which is what segkit did before the budget).

Target (issue "first hour"): beside a neighbour, at most 2.5x the time alone.

Run: ``python benchmarks/bench_busy.py [--neighbours N] [--params demo]`` (about 3 minutes
on 2 cores; prints a Markdown table). A neighbour is a process spinning on one core, as
other work on a shared machine or CI runner does. ``--customer-table 2000`` runs instead a
CRM export of 2,000 customers × 20 columns (:func:`segkit.datasets.make_customer_table` plus
three more spend and visit columns) through explore, cluster and profile with the default
clustering parameters, as a user with a customer table would.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEGKIT = [sys.executable, "-m", "segkit.cli"]
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "SEGKIT_THREADS")


def _spin() -> None:  # a CPU-bound neighbour
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def run_once(params: str, capped: bool) -> tuple[float, int, float]:
    """Wall seconds, exit code and the cluster stage's seconds of one ``segkit run``."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if not capped:  # every pool as wide as the machine: the behaviour before the budget
        cores = str(os.cpu_count() or 1)
        env.update(
            {"SEGKIT_THREADS": cores, "OMP_NUM_THREADS": cores, "OPENBLAS_NUM_THREADS": cores}
        )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        done = subprocess.run(
            [*SEGKIT, "run", "--params", params, "--quiet", "--run-dir", f"{tmp}/r"],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        import json

        manifest = Path(tmp) / "r" / "manifest.json"
        cluster = (
            json.loads(manifest.read_text())["stages"]["cluster"]["seconds"]
            if manifest.exists()
            else float("nan")
        )
    return wall, done.returncode, cluster


def customer_table(folder: Path, n: int) -> str:
    """Write an ``n`` × 20 CRM export and its parameter file into ``folder``; the file's path."""
    import numpy as np
    import yaml

    from segkit.datasets import make_customer_table

    table = make_customer_table(n, seed=42).table
    rng = np.random.default_rng(7)
    table["MntGoldProds"] = np.round(rng.lognormal(np.log(40), 0.8, n))
    table["NumCatalogPurchases"] = rng.poisson(2.5, n)
    table["NumWebVisitsMonth"] = rng.poisson(5.0, n)
    table.to_csv(folder / "crm.csv", index=False)
    spend = "MntWines + MntMeatProducts + MntFruits + MntGoldProds"
    params = {
        "name": "crm",
        "data": {
            "source": "files",
            "customers": {
                "path": str(folder / "crm.csv"),
                "columns": {"customer_id": "ID"},
                "derive": {"total_spend": spend, "age": "2014 - Year_Birth"},
            },
        },
        "cluster": {"value": "total_spend"},
    }
    (folder / "crm.yaml").write_text(yaml.safe_dump(params))
    return str(folder / "crm.yaml")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="demo")
    ap.add_argument("--neighbours", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--customer-table", type=int, default=0, metavar="N")
    args = ap.parse_args()
    keep = tempfile.TemporaryDirectory()
    if args.customer_table:
        args.params = customer_table(Path(keep.name), args.customer_table)
    rows = []
    for capped in (True, False):
        alone = run_once(args.params, capped)
        procs = [mp.Process(target=_spin, daemon=True) for _ in range(args.neighbours)]
        for p in procs:
            p.start()
        try:
            busy = run_once(args.params, capped)
        finally:
            for p in procs:
                p.terminate()
        rows.append((capped, alone, busy))
    print(
        f"`segkit run --params {args.params}`, {os.cpu_count()} cores, "
        f"{args.neighbours} spinning neighbour(s) in the busy case\n"
    )
    print(
        "| threads | alone (s) | cluster stage alone (s) | beside neighbours (s) | cluster stage (s) | ratio |"
    )
    print("|---|---|---|---|---|---|")
    for capped, alone, busy in rows:
        label = "segkit budget" if capped else "uncapped (before)"
        print(
            f"| {label} | {alone[0]:.1f} | {alone[2]:.1f} | {busy[0]:.1f} | {busy[2]:.1f} "
            f"| {busy[0] / alone[0]:.2f} |" + ("" if alone[1] == busy[1] == 0 else " FAILED")
        )


if __name__ == "__main__":
    main()
