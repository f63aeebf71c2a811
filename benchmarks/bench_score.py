"""Scoring at scale: ``Segmenter.score`` and ``segkit score`` against scikit-learn's floor.

A k-means segmenter (k = 4, 8 numeric features and one categorical attribute, fitted on
20,000 customers as the clustering stage does) scores customers drawn from the same four
groups, some outside the fitted ranges (the fit saw only its sample), some with a
missing value or an unseen level.

- ``inproc``: on the same in-memory table of ``--customers`` rows, CPU seconds
  (``time.process_time``) of ``Segmenter.score`` beside the floor: the fitted
  ``ColumnTransformer.transform`` + ``KMeans.predict`` + the relabelling (a lookup array).
  The labels must be identical.
- ``cli``: ``segkit score RUN customers.parquet`` in a fresh process on ``--cli``
  customers (default 10 million): wall, CPU (user + sys of the child) and peak RSS.

Run: ``python benchmarks/bench_score.py [--customers 2000000] [--cli 10000000]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_segment import customers as numeric_customers  # noqa: E402

from segkit.segment import Segmenter  # noqa: E402
from segkit.segment.prepare import preprocessor  # noqa: E402
from segkit.segment.segmenter import order_labels  # noqa: E402

NUMERIC = [
    "days_since_last",
    "orders",
    "revenue",
    "aov",
    "tenure_days",
    "age",
    "share_channel_web",
    "share_category_fashion",
]
LOGGED = ["days_since_last", "orders", "revenue", "aov"]
CHANNELS = np.array(["web", "store", "app", "phone"])
REGIONS = np.array(["north", "south", "east", "west", "centre"])
CATEGORICAL = ["channel", "region", "income_band"]


def table(n: int, seed: int) -> pd.DataFrame:
    """``n`` customers: the 8 numeric features of bench_segment and a channel; a few
    missing values and unseen levels."""
    df, _ = numeric_customers(n, seed)
    rng = np.random.default_rng(seed + 1)
    ch = CHANNELS[rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])].astype(object)
    ch[rng.random(n) < 0.001] = "fax"  # not seen in fitting
    ch[rng.random(n) < 0.001] = None
    df["channel"] = ch
    df["region"] = REGIONS[rng.integers(0, 5, n)]
    df["income_band"] = np.where(
        df["revenue"] > 500, "high", np.where(df["age"] < 40, "low", "mid")
    )
    df.loc[rng.random(n) < 0.002, "orders"] = np.nan
    return df


def fit(seed: int = 0, n: int = 20_000) -> tuple[Segmenter, object, KMeans]:
    """A k-means segmenter fitted on ``n`` customers, with its sklearn parts."""
    sample = table(n, seed)
    data = sample[NUMERIC + CATEGORICAL].copy()
    data["channel"] = data["channel"].fillna("missing")
    data["orders"] = data["orders"].fillna(data["orders"].median())
    prep = preprocessor(NUMERIC, CATEGORICAL, logged=LOGGED)
    X = prep.fit_transform(data)
    km = KMeans(4, n_init=4, random_state=seed).fit(X)
    relabel = order_labels(data, km.labels_, "revenue")
    seg = Segmenter.from_fitted(
        method="kmeans",
        prep=prep,
        model=km,
        data=data,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        relabel=relabel,
        names={s: f"segment {s}" for s in relabel.values()},
        n_customers=n,
        run="bench",
    )
    return seg, prep, km


def cpu() -> float:
    return time.process_time()


def inproc(n: int) -> dict:
    seg, prep, km = fit()
    df = table(n, 7)
    t0 = cpu()
    out = seg.score(df)
    t_seg = cpu() - t0
    t0 = cpu()
    data = df[NUMERIC + CATEGORICAL].copy()
    data["channel"] = data["channel"].fillna("missing")
    data["orders"] = data["orders"].fillna(seg.medians["orders"])
    lut = np.zeros(max(seg.relabel) + 1, dtype=np.int64)
    lut[list(seg.relabel)] = list(seg.relabel.values())
    labels = lut[km.predict(prep.transform(data))]
    t_floor = cpu() - t0
    same = bool((out["nearest_segment"].to_numpy(dtype=np.int64) == labels).all())
    return {
        "customers": n,
        "segkit_cpu": t_seg,
        "floor_cpu": t_floor,
        "ratio": t_seg / t_floor,
        "identical_labels": same,
        "flagged": int(out["segment"].isna().sum()),
    }


# The child reports its own peak RSS: VmHWM of /proc/self/status, the high-water mark of
# its own address space. (ru_maxrss is not: Linux carries the parent's RSS at fork into
# the child's ru_maxrss, so a child forked from this 1.5 GB process reported 1.5 GB.)
CLI = (
    "import sys; from segkit.cli import main; rc = main(sys.argv[1:]); "
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]; "
    "print('peak_rss_kb', hwm.split()[1], file=sys.stderr); sys.exit(rc)"
)


def cli(n: int, fmt: str = "parquet", chunk: int = 1_000_000) -> dict:
    seg, _, _ = fit()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        path = Path(tmp) / "customers.parquet"
        writer = None
        for i, start in enumerate(range(0, n, chunk)):
            part = pa.Table.from_pandas(table(min(chunk, n - start), 100 + i), preserve_index=False)
            part = part.set_column(
                0, "customer_id", pa.array([f"c{start + j}" for j in range(part.num_rows)])
            )
            writer = writer or pq.ParquetWriter(path, part.schema)
            writer.write_table(part)
        assert writer is not None
        writer.close()
        seg_path = seg.save(Path(tmp) / "segmenter.json")
        out = Path(tmp) / "scored.csv"
        if fmt == "csv":
            pq.read_table(path).to_pandas().to_csv(path.with_suffix(".csv"), index=False)
            path = path.with_suffix(".csv")
        # -P: the current directory's segkit must not shadow PYTHONPATH (before/after runs)
        cmd = [
            sys.executable,
            "-P",
            "-c",
            CLI,
            "score",
            str(seg_path),
            str(path),
            "--out",
            str(out),
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = sum(1 for _ in out.open()) - 1
    return {
        "customers": n,
        "format": fmt,
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mb": int(proc.stderr.split("peak_rss_kb")[-1].split()[0]) / 1024,
        "rows_written": lines,
        "stdout": proc.stdout.strip(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=2_000_000)
    ap.add_argument("--cli", type=int, default=10_000_000)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    if args.customers:
        print(inproc(args.customers))
    if args.cli:
        print(cli(args.cli))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
