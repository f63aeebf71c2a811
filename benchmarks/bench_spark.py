"""Features, scoring and A/B sums on DuckDB, ibis on DuckDB, and ibis on Spark local[2].

Run on demand (not in the tests; the Spark engine needs the spark extra and Java 17)::

    nice -n 10 .venv/bin/python benchmarks/bench_spark.py              # 10M rows
    nice -n 10 .venv/bin/python benchmarks/bench_spark.py --rows 50000000
    nice -n 10 .venv/bin/python benchmarks/bench_spark.py --rows 50000000 --engines spark

Inputs, in ``benchmarks/data/`` (gitignored), made once per size and untimed:

- the transaction log of ``bench_features.py`` (``make_log``: 10 rows on average per
  customer, 12 categories, 3 channels), Parquet;
- the customer table: the first engine's features, written to Parquet after its features
  step (untimed), which every engine then scores;
- a k-means segmenter (k = 4, 7 numeric features, fitted on a 20,000-customer sample of
  that table as ``bench_score.py`` fits one), saved as JSON;
- an experiment of as many rows as transactions (4 arms, 8 segments and a missing one, a
  0/1 ``visit``, a ``spend`` with missing values and its ``pre_spend`` covariate).

Each engine runs in a fresh process: the session start-up (ibis' DuckDB backend, or the
Spark session and its JVM) timed apart, then three steps:

- ``features``: the customer features up to 2024-01-01. ``duckdb``:
  ``segkit.features.customer_features`` (DuckDB SQL, ``memory_limit`` 2 GB, spilling to
  ``benchmarks/data/duckdb_tmp``), the default path; ``ibis-duckdb`` and ``spark``:
  ``segkit.engine.features.customer_features`` (ibis' DuckDB backend with DuckDB's default
  memory limit, 80 % of RAM; Spark ``local[2]``, driver heap 4 GB, 8 shuffle partitions,
  full JIT). The frame comes back to pandas, as the function returns it.
- ``scoring``: every customer of the customer table. ``duckdb``: what ``segkit score``
  runs (``segkit.segment.scorefile.score_to_csv``: Parquet batches scored with
  ``Segmenter.score``, written to CSV); the engines: ``segkit.engine.scoring.score_expr``
  (the expression behind ``scoring.score``, sorted by customer) written to Parquet by the
  engine, nothing collected to pandas.
- ``abtest``: ``segkit.abtest.aggregation.sufficient_stats`` per segment x arm with the
  three metrics of ``tests/test_engine.py`` (a proportion, a mean with a covariate, a
  ratio). ``duckdb``: a view over the Parquet file on a connection with ``memory_limit``
  2 GB; the engines: the Parquet file read by the backend.

Per step: wall seconds, CPU seconds (user + sys) of the process and all its children (the
JVM is a child of the Python driver), and the peak RSS of the process tree during the step,
sampled every 0.1 s (so the JVM's heap counts; what the process still holds from an earlier
step counts too), plus the 1-minute load average before and after (the machine is shared:
figures under load are slower than on idle cores). The outputs are checked across engines
by counts and checksums (sums of orders, revenue, segment numbers, metric sums) and the A/B
table against DuckDB's, value by value. Writes ``benchmarks/results/bench_spark.md`` (one
section per size; the text from "## Reading the figures" on is kept).
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
ENGINES = ("duckdb", "ibis-duckdb", "spark")
STEPS = ("features", "scoring", "abtest")
#: The Spark session of every Spark run here (driver heap 4 GB, full JIT: the tests'
#: FAST_START flags start faster but run long jobs slower).
SPARK = {"master": "local[2]", "driver_memory": "4g", "shuffle_partitions": 8}
#: segkit's DuckDB path: as bench_features.py, 2 GB and spilling to disk.
DUCKDB_MEMORY = "2GB"
#: The metrics of tests/test_engine.py: a proportion, a mean with covariate, a ratio.
METRICS = [
    {"name": "visit", "kind": "proportion", "col": "visit"},
    {"name": "spend", "kind": "mean", "col": "spend", "covariate": "pre_spend"},
    {"name": "spend_per_visit", "kind": "ratio", "num": "spend", "den": "visit"},
]
#: The segmenter's features (customer_features columns); the first four log-transformed.
NUMERIC = [
    "days_since_last",
    "orders",
    "revenue",
    "aov",
    "tenure_days",
    "mean_ipt_days",
    "share_channel_web",
]
LOGGED = NUMERIC[:4]
FIT_SAMPLE = 20_000  # customers the segmenter is fitted on, as bench_score.py
K = 4
ARMS = ["control", "a", "b", "c"]
SEGMENTS = 8


class Meter:
    """Wall, CPU and peak RSS of this process and its children, window by window."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._mark = (0.0, 0.0)

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
        """User + system seconds of the process and its children, live or ended."""
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
                if p is self.proc:  # children already waited for (none expected)
                    total += t.children_user + t.children_system
            except Exception:
                pass
        return total

    def start(self) -> Meter:
        self._thread.start()
        return self

    def begin(self) -> dict:
        """Start a window: its load average before; the peak restarts from now."""
        self.peak = self.rss()
        self._mark = (time.perf_counter(), self.cpu())
        return {"load_before": round(os.getloadavg()[0], 1)}

    def end(self) -> dict:
        """Close the window: wall, CPU and peak RSS since :meth:`begin`, load after."""
        wall, cpu = time.perf_counter() - self._mark[0], self.cpu() - self._mark[1]
        return {
            "wall": round(wall, 1),
            "cpu": round(cpu, 1),
            "peak_rss_mb": round(max(self.peak, self.rss()) / 2**20),
            "load_after": round(os.getloadavg()[0], 1),
        }

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def paths(n_rows: int) -> dict[str, Path]:
    """The inputs of one size in ``benchmarks/data/``."""
    return {
        "tx": DATA / f"tx_{n_rows}.parquet",
        "customers": DATA / f"customers_{n_rows}.parquet",
        "segmenter": DATA / f"segmenter_{n_rows}.json",
        "experiment": DATA / f"experiment_{n_rows}.parquet",
    }


def make_experiment(path: Path, n_rows: int, seed: int = 1) -> None:
    """``n_rows`` experiment rows in 2M-row chunks: 4 arms, 8 segments (2 % missing), a 0/1
    visit, a spend (3 % missing, 0 without a visit) and its pre-period covariate."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        return
    rng = np.random.default_rng(seed)
    chunk = 2_000_000
    writer = None
    tmp = path.with_suffix(".tmp")
    for lo in range(0, n_rows, chunk):
        n = min(chunk, n_rows - lo)
        arm = rng.integers(0, len(ARMS), n)
        seg = rng.integers(1, SEGMENTS + 1, n)
        visit = rng.random(n) < 0.1 + 0.01 * arm + 0.005 * seg
        pre = rng.gamma(2.0, 20.0, n)
        spend = np.where(visit, 0.5 * pre + rng.gamma(2.0, 15.0, n), 0.0)
        table = pa.table(
            {
                "customer_id": pa.array(np.arange(lo, lo + n)),
                "arm": pa.array(np.array(ARMS)[arm]),
                "segment": pa.array(seg.astype(str), mask=rng.random(n) < 0.02),
                "visit": pa.array(visit.astype(np.int8)),
                "spend": pa.array(np.round(spend, 2), mask=rng.random(n) < 0.03),
                "pre_spend": pa.array(np.round(pre, 2)),
            }
        )
        writer = writer or pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    tmp.rename(path)


def fit_segmenter(customers: Path, target: Path, seed: int = 0) -> None:
    """k-means (k = 4) on a sample of the customer table, saved to ``target``."""
    import pyarrow.parquet as pq
    from sklearn.cluster import KMeans

    from segkit.segment import Segmenter
    from segkit.segment.prepare import preprocessor
    from segkit.segment.segmenter import order_labels

    table = pq.read_table(customers, columns=NUMERIC).to_pandas()
    data = table.sample(min(FIT_SAMPLE, len(table)), random_state=seed).reset_index(drop=True)
    data = data.fillna(data.median())  # one-order customers have no inter-purchase time
    prep = preprocessor(NUMERIC, [], logged=LOGGED)
    km = KMeans(K, n_init=4, random_state=seed).fit(prep.fit_transform(data))
    relabel = order_labels(data, km.labels_, "revenue")
    Segmenter.from_fitted(
        method="kmeans",
        prep=prep,
        model=km,
        data=data,
        numeric=NUMERIC,
        categorical=[],
        relabel=relabel,
        names={s: f"segment {s}" for s in relabel.values()},
        n_customers=len(data),
        run="bench_spark",
    ).save(target)


def _features(engine_name: str, tx: Path, backend) -> object:
    from segkit import engine, features, io
    from segkit.engine import features as ef

    if engine_name == "duckdb":
        con = io.connect(memory_limit=DUCKDB_MEMORY, temp_dir=DATA / "duckdb_tmp")
        return features.customer_features(str(tx), END, "D", con=con)
    return ef.customer_features(engine.table(backend, str(tx)), END, "D")


def _features_check(frame) -> dict:
    return {
        "customers": len(frame),
        "sum_orders": int(frame["orders"].sum()),
        "sum_revenue": round(float(frame["revenue"].sum()), 2),
    }


def _scoring(engine_name: str, p: dict[str, Path], backend, out: Path) -> None:
    from segkit import engine
    from segkit.engine import scoring
    from segkit.segment import Segmenter
    from segkit.segment.scorefile import score_to_csv

    seg = Segmenter.load(p["segmenter"])
    if engine_name == "duckdb":
        score_to_csv(seg, p["customers"], out)
        return
    expr = scoring.score_expr(engine.table(backend, str(p["customers"])), seg)
    if engine_name == "spark":
        backend.to_parquet(expr, str(out), mode="overwrite")  # a folder of part files
    else:
        backend.to_parquet(expr, str(out))


def _scoring_check(out: Path) -> dict:
    """Counts and sums of the scored file, read back with DuckDB (untimed)."""
    import duckdb

    src = (
        f"read_csv('{out.as_posix()}', all_varchar=false)"
        if out.suffix == ".csv"
        else f"read_parquet('{out.as_posix()}{'/*.parquet' if out.is_dir() else ''}')"
    )
    row = (
        duckdb.connect()
        .execute(
            "SELECT count(*), count(segment), sum(segment), sum(nearest_segment), "
            f"count(*) FILTER (WHERE coalesce(flag, '') <> '') FROM {src}"
        )
        .fetchone()
    )
    keys = ("scored", "assigned", "sum_segment", "sum_nearest", "flagged")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def _abtest(engine_name: str, experiment: Path, backend):
    from segkit import io
    from segkit.abtest import aggregation as agg

    if engine_name == "duckdb":
        con = io.connect(memory_limit=DUCKDB_MEMORY, temp_dir=DATA / "duckdb_tmp")
        con.execute(f"CREATE VIEW x AS SELECT * FROM read_parquet('{experiment.as_posix()}')")
        return agg.sufficient_stats(con, "x", "segment", METRICS)
    backend.read_parquet(str(experiment), table_name="x")
    return agg.sufficient_stats(backend, "x", "segment", METRICS)


def _abtest_check(stats) -> dict:
    return {
        "groups": len(stats),
        "ab_rows": int(stats["rows"].sum()),
        "sum_visits": int(round(stats["m0_sy"].sum())),
        "sum_spend": round(float(stats["m1_sy"].sum()), 2),
    }


def _run_engine(engine_name: str, n_rows: int) -> dict:
    """Start-up and the three steps of one engine in this process."""
    import gc

    from segkit import engine

    p = paths(n_rows)
    tag = f"{engine_name}_{n_rows}"
    m = Meter().start()
    res: dict = {}
    w = m.begin()
    backend = None
    if engine_name != "duckdb":
        backend = engine.connect("spark" if engine_name == "spark" else "duckdb", SPARK)
    res["startup"] = {**w, **m.end()}

    w = m.begin()
    frame = _features(engine_name, p["tx"], backend)
    res["features"] = {**w, **m.end(), **_features_check(frame)}
    if not p["customers"].exists():  # the first engine's table is every engine's input
        frame.to_parquet(p["customers"])
    del frame
    gc.collect()
    if not p["segmenter"].exists():
        fit_segmenter(p["customers"], p["segmenter"])

    out = DATA / (f"scored_{tag}.csv" if engine_name == "duckdb" else f"scored_{tag}.parquet")
    w = m.begin()
    _scoring(engine_name, p, backend, out)
    res["scoring"] = {**w, **m.end(), **_scoring_check(out)}

    w = m.begin()
    stats = _abtest(engine_name, p["experiment"], backend)
    res["abtest"] = {**w, **m.end(), **_abtest_check(stats)}
    stats.to_parquet(DATA / f"ab_{tag}.parquet")
    m.stop()
    return res


def _compare_ab(n_rows: int, engine_name: str) -> float | None:
    """Largest relative difference of the engine's A/B table from DuckDB's (None: no
    DuckDB table); integers and text must be equal, else a SystemExit."""
    import numpy as np
    import pandas as pd

    ref_path = DATA / f"ab_duckdb_{n_rows}.parquet"
    if engine_name == "duckdb" or not ref_path.exists():
        return None
    ref = pd.read_parquet(ref_path)
    out = pd.read_parquet(DATA / f"ab_{engine_name}_{n_rows}.parquet")
    if list(out.columns) != list(ref.columns) or len(out) != len(ref):
        raise SystemExit(f"A/B table of {engine_name}: other columns or rows than DuckDB's")
    worst = 0.0
    for c in ref.columns:
        if ref[c].dtype.kind == "f":
            a, b = out[c].to_numpy(float), ref[c].to_numpy(float)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))))
        elif not (out[c].astype(str) == ref[c].astype(str)).all():
            raise SystemExit(f"A/B table of {engine_name}: column {c} differs from DuckDB's")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.engine:
        print(json.dumps(_run_engine(args.engine, args.rows)))
        return
    DATA.mkdir(exist_ok=True)
    p = paths(args.rows)
    make_log(p["tx"], args.rows, args.rows // 10)
    make_experiment(p["experiment"], args.rows)
    store = DATA / f"bench_spark_{args.rows}.json"
    for name in args.engines.split(","):
        done = subprocess.run(
            [sys.executable, __file__, "--engine", name, "--rows", str(args.rows)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"engine {name} failed")
        res = json.loads(done.stdout.strip().splitlines()[-1])
        res["date"] = str(dt.date.today())
        res["abtest"]["max_rel_diff"] = _compare_ab(args.rows, name)
        # read again: another run of this script (other engines) may have written since
        results = json.loads(store.read_text()) if store.exists() else {}
        results[name] = res
        store.write_text(json.dumps(results, indent=1))
        print(name, json.dumps(res), flush=True)
        write()


def write() -> None:
    """Rewrite ``benchmarks/results/bench_spark.md`` from every size measured."""
    out = HERE / "results" / "bench_spark.md"
    old = out.read_text() if out.exists() else ""
    tail = old[old.index("## Reading the figures") :] if "## Reading the figures" in old else ""
    sections = [_header()]
    stores = sorted(DATA.glob("bench_spark_*.json"), key=lambda s: int(s.stem.split("_")[-1]))
    for store in stores:
        n_rows = int(store.stem.split("_")[-1])
        results = json.loads(store.read_text())
        sections.append("\n".join(_section(n_rows, results)))
    text = "\n\n".join(sections) + "\n"
    out.write_text(text + ("\n" + tail if tail else ""))
    print(text)


def _section(n_rows: int, results: dict) -> list[str]:
    names = [e for e in ENGINES if e in results]
    dates = sorted({results[e]["date"] for e in names})
    lines = [
        f"## {n_rows:,} transactions, {n_rows // 10:,} customers drawn, "
        f"{n_rows:,} experiment rows ({', '.join(dates)})",
        "",
        "| engine | step | wall s | CPU s | peak RSS MB (tree) | load avg before/after |",
        "|---|---|---:|---:|---:|---|",
    ]
    for e in names:
        for step in ("startup", *STEPS):
            r = results[e][step]
            lines.append(
                f"| {e} | {'start-up' if step == 'startup' else step} | {r['wall']} | "
                f"{r['cpu']} | {r['peak_rss_mb']:,} | {r['load_before']} / {r['load_after']} |"
            )
    lines += [
        "",
        "Same outputs (features: customers, sum of orders, sum of revenue; scoring: customers "
        "scored, assigned, flagged, sum of segment and of nearest segment; A/B: segment x arm "
        "groups, rows, sum of visits, sum of spend, largest relative difference of any sum "
        "from DuckDB's table):",
        "",
        "| engine | customers | orders | revenue | scored | assigned | flagged | sum segment | "
        "sum nearest | groups | A/B rows | visits | spend | max rel. diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in names:
        f, s, a = results[e]["features"], results[e]["scoring"], results[e]["abtest"]
        diff = a.get("max_rel_diff")
        lines.append(
            f"| {e} | {f['customers']:,} | {f['sum_orders']:,} | {f['sum_revenue']:,.2f} | "
            f"{s['scored']:,} | {s['assigned']:,} | {s['flagged']:,} | {s['sum_segment']:,} | "
            f"{s['sum_nearest']:,} | {a['groups']} | {a['ab_rows']:,} | {a['sum_visits']:,} | "
            f"{a['sum_spend']:,.2f} | {'ref.' if e == 'duckdb' else '-' if diff is None else f'{diff:.1e}'} |"
        )
    return lines


def _header() -> str:
    return "\n".join(
        [
            "# bench_spark: features, scoring and A/B sums on DuckDB, ibis-DuckDB and "
            "Spark local[2]",
            "",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
            f"python {platform.python_version()}; shared with other jobs (see load averages)",
            "- command: `nice -n 10 .venv/bin/python benchmarks/bench_spark.py [--rows N] "
            "[--engines duckdb,ibis-duckdb,spark]` (the engines in that order by default)",
            "- data: `bench_features.make_log` (half uniform, half Zipf customers, 12 categories, "
            "3 channels), Parquet; features up to 2024-01-01; the customer table of the first "
            "engine scored by a k-means segmenter (k = 4, 7 numeric features, fitted on 20,000 "
            "customers); an experiment of as many rows (4 arms, 8 segments and a missing one, "
            "a proportion, a mean with covariate, a ratio)",
            "- each engine in a fresh process: start-up (Spark session and JVM), then features, "
            "scoring, A/B sums. DuckDB SQL: `memory_limit` 2 GB, spilling to disk; ibis-DuckDB: "
            "DuckDB's default limit (80 % of RAM); Spark: `local[2]`, driver heap 4 GB, 8 "
            "shuffle partitions, full JIT",
            "- CPU: user + system seconds of the Python process and its children (the JVM); "
            "peak RSS: the process tree sampled every 0.1 s during the step (what the process "
            "holds from earlier steps included)",
        ]
    )


if __name__ == "__main__":
    main()
