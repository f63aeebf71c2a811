"""Speed of the A/B evaluation on 10 million experiment rows, and coverage of the true
effects of the synthetic retailer over repeated seeds.

Run on demand (not in the tests)::

    nice -n 10 .venv/bin/python benchmarks/bench_abtest.py            # 10M rows, 50 seeds
    nice -n 10 .venv/bin/python benchmarks/bench_abtest.py --rows 1000000 --seeds 10

Speed: a Parquet file of ``--rows`` rows (3 arms, 10 segments, a 0/1 visit, a 0/1
conversion, a spend with a pre-period covariate) is written to ``benchmarks/data/``
(gitignored); ``abtest.evaluate`` is timed on it with 3 metrics (proportion, proportion,
CUPED mean) overall and by segment, DuckDB reading the file directly. Target: under 10 s.

Coverage: for each seed, ``make_retailer(6000, seed)``; effects by the TRUE segment
(4 segments x 2 campaigns x 3 metrics = 24 intervals per seed); the share of 95 %
intervals that contain the generator's true effect. Results:
``benchmarks/results/bench_abtest.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from segkit import abtest, datasets  # noqa: E402
from segkit.core.params import DEFAULTS  # noqa: E402
from segkit.core.sql import literal  # noqa: E402


def write_rows(path: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    writer = None
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        arm = rng.integers(0, 3, k)
        seg = rng.integers(0, 10, k)
        visit = rng.random(k) < 0.1 + 0.02 * arm + 0.005 * seg
        conv = visit & (rng.random(k) < 0.2)
        pre = rng.gamma(2.0, 20.0, k)
        spend = np.where(conv, 0.5 * pre + rng.gamma(2.0, 15.0, k), 0.0)
        t = pa.table(
            {
                "customer_id": np.arange(start, start + k),
                "arm": np.array(["control", "a", "b"])[arm],
                "segment": seg,
                "visit": visit.astype(np.int8),
                "conversion": conv.astype(np.int8),
                "spend": spend,
                "pre_spend": pre,
            }
        )
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    writer.close()


def speed(rows: int) -> list[str]:
    data = HERE / "data"
    data.mkdir(exist_ok=True)
    path = data / f"experiment_{rows}.parquet"
    if not path.exists():
        write_rows(path, rows)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW x AS SELECT * FROM read_parquet({literal(path.as_posix())})")
    p = {**DEFAULTS["abtest"], "control": "control"}
    p["metrics"] = [
        {"name": "visit", "kind": "proportion", "col": "visit"},
        {"name": "conversion", "kind": "proportion", "col": "conversion"},
        {"name": "spend", "kind": "mean", "col": "spend", "covariate": "pre_spend"},
    ]
    t0 = time.perf_counter()
    res = abtest.evaluate(con, "x", p, ["segment"])
    s = time.perf_counter() - t0
    n_rows = len(res.effects)
    return [
        f"| evaluate {rows:,} rows × 10 segments × 3 metrics × 2 campaigns | {s:.2f} s | {n_rows} result rows |"
    ]


def coverage(seeds: int) -> list[str]:
    hits = total = 0
    per_metric: dict[str, list[int]] = {}
    for seed in range(seeds):
        shop = datasets.make_retailer(6000, seed=seed)
        d = shop.experiment.merge(shop.truth.segments, on="customer_id")
        con = duckdb.connect()
        con.register("d", d)
        p = {**DEFAULTS["abtest"], "control": "control", "min_n": 20}
        p["metrics"] = [
            {"name": "visit", "kind": "proportion", "col": "visit"},
            {"name": "conversion", "kind": "proportion", "col": "conversion"},
            {"name": "spend", "kind": "mean", "col": "spend"},
        ]
        e = abtest.evaluate(con, "d", p, ["true_segment"]).effects
        e = e[e.segment_col == "true_segment"].copy()
        e["segment"] = e["segment"].astype(int)
        m = e.merge(shop.truth.effects, on=["segment", "arm", "metric"])
        inside = (m["abs_ci_low"] <= m["abs_effect"]) & (m["abs_effect"] <= m["abs_ci_high"])
        hits += int(inside.sum())
        total += len(m)
        for metric, g in m.assign(inside=inside).groupby("metric"):
            h = per_metric.setdefault(metric, [0, 0])
            h[0] += int(g["inside"].sum())
            h[1] += len(g)
    lines = [f"| all metrics | {hits}/{total} | {hits / total:.3f} |"]
    lines += [f"| {k} | {h}/{n} | {h / n:.3f} |" for k, (h, n) in sorted(per_metric.items())]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seeds", type=int, default=50)
    args = ap.parse_args()
    sp = speed(args.rows)
    print("\n".join(sp))
    cov = coverage(args.seeds)
    print("\n".join(cov))
    out = HERE / "results" / "bench_abtest.md"
    out.write_text(
        f"""# A/B evaluation benchmark ({dt.date.today()})

`benchmarks/bench_abtest.py --rows {args.rows} --seeds {args.seeds}` on
{platform.machine()}, Python {platform.python_version()}, DuckDB {duckdb.__version__}.

## Speed (target: 10M rows, 10 segments, 3 metrics under 10 s)

| what | wall time | |
|---|---|---|
{chr(10).join(sp)}

## Coverage of the synthetic retailer's true effects (95 % intervals)

`make_retailer(6000, seed)` for seeds 0..{args.seeds - 1}; effects by true segment.

| metric | covered | rate |
|---|---|---|
{chr(10).join(cov)}
"""
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
