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

The parts of ``btyd_summary`` (same SQL as segkit/features.py, timed apart):
``check_end_of`` / ``check_window`` the validation scans (with and without the ids),
``btyd_sql_arrow`` the two GROUP BYs (customer-day, then customer) fetched as Arrow without
ORDER BY; ``btyd_before`` the previous version of the function spelled out. The variants
(issue 18) are other ways to the same summary or to part of it (``incomplete``: without the
first day's revenue or the day count), and ``dedupe_only`` the bare SELECT DISTINCT of the
(customer, day) pairs that every exact plan makes. Steps marked ``threads=1`` run with
DuckDB's ``SET threads = 1`` (the floor too, so that each is compared with a floor measured
the same way). The results file keeps its hand-written ``## Reading`` section.

Run: ``python benchmarks/bench_features_others.py [--others /path/to/python] [--repeat 5]
[--steps floor_arrow btyd ...]`` (``--others``: a venv with ``pip install lifetimes
pymc-marketing pyarrow``; without it only segkit and the floors run). Each step's figure is
the best of ``--repeat`` runs (least CPU).
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
import pandas as pd
from segkit import features, io
step, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = io.connect(memory_limit="2GB", temp_dir=os.environ["BENCH_TMP"])
con.execute("SET enable_progress_bar = false")
if threads:
    con.execute(f"SET threads = {threads}")
cid, ts, amt = "customer_id", "timestamp", "amount"
src = features.source_sql(con, path)
floor = (f"SELECT customer_id, count(*), sum(amount), min(timestamp), max(timestamp) "
         f"FROM {src} GROUP BY 1")
end = features._end_of(con, src, cid, ts, amt, "2024-01-01")
cols = "customer_id, frequency, recency, T, monetary"
btyd = features._btyd_sql(features._days_sql(src, cid, ts, amt, end), end, 1.0)
btyd_nowhere = btyd.replace(f"WHERE CAST(\\"{ts}\\" AS DATE) <= DATE '2024-01-01'", "")
assert btyd_nowhere != btyd
day = "CAST(timestamp AS DATE)"
epoch_day = "CAST(epoch_us(timestamp) // 86400000000 AS INTEGER)"  # timestamps after 1970
end_day = (end - pd.Timestamp("1970-01-01")).days
sql = {
    "btyd_sql_arrow": btyd,
    "btyd_sql_nowhere_arrow": btyd_nowhere,
    "int_day_arrow": "SELECT customer_id, count(*) - 1 AS frequency, "
    f"(max(day) - min(day)) / 1.0 AS recency, ({end_day} - min(day)) / 1.0 AS T, "
    "CASE WHEN count(*) > 1 THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) "
    f"ELSE 0 END AS monetary FROM (SELECT customer_id, {epoch_day} AS day, "
    f"sum(amount) AS value FROM {src} GROUP BY 1, 2) GROUP BY 1",
    "dedupe_only": f"SELECT count(*) FROM (SELECT DISTINCT customer_id, {day} FROM {src})",
    "count_distinct_arrow": f"SELECT customer_id, count(DISTINCT {day}), sum(amount), "
    f"min({day}), max({day}) FROM {src} GROUP BY 1",
    "bitstring_arrow": f"SELECT customer_id, bit_count(bitstring_agg(CAST({day} - "
    f"DATE '2022-01-01' AS INTEGER), 0, 729)), sum(amount), min({day}), max({day}) "
    f"FROM {src} GROUP BY 1",
    "list_arrow": f"SELECT customer_id, len(list_distinct(days)), total FROM (SELECT "
    f"customer_id, list({day}) AS days, sum(amount) AS total FROM {src} GROUP BY 1)",
    "window_arrow": f"SELECT customer_id, count(*), sum(amount) FILTER (WHERE day = d0) "
    f"FROM (SELECT customer_id, {day} AS day, amount, min({day}) OVER (PARTITION BY "
    f"customer_id) AS d0 FROM {src}) GROUP BY 1",
    "hash_levels_arrow": "SELECT h, count(*) - 1, max(day) - min(day), min(day), "
    "CASE WHEN count(*) > 1 THEN (sum(value) - arg_min(value, day)) / (count(*) - 1) ELSE 0 "
    f"END FROM (SELECT hash(customer_id) AS h, {day} AS day, sum(amount) AS value FROM {src} "
    "GROUP BY 1, 2) GROUP BY 1",
    "dedupe_count_arrow": f"SELECT customer_id, count(*) FROM (SELECT DISTINCT customer_id, "
    f"{day} FROM {src}) GROUP BY 1",
    "hash_key_arrow": f"SELECT h, min(c0) AS customer_id, max(c1), count(*), min(day), "
    "max(day), sum(value), arg_min(value, day) FROM (SELECT hash(customer_id) AS h, "
    f"{day} AS day, sum(amount) AS value, min(customer_id) AS c0, max(customer_id) AS c1 "
    f"FROM {src} GROUP BY 1, 2) GROUP BY 1",
}
w0, c0 = time.perf_counter(), time.process_time()
if step == "floor_fetchall":
    n = len(con.sql(floor).fetchall())
elif step == "floor_df":
    n = len(con.sql(floor).df())
elif step == "floor_arrow":
    n = con.sql(floor).to_arrow_table().num_rows
elif step == "btyd":
    n = len(features.btyd_summary(path, "2024-01-01", "D", con=con))
elif step == "btyd_before":  # the previous btyd_summary: _end_of, WHERE, ORDER BY, df
    features._end_of(con, src, cid, ts, amt, "2024-01-01")
    n = len(con.execute(f"SELECT {cols} FROM ({btyd}) ORDER BY customer_id").df())
elif step == "check_end_of":
    features._end_of(con, src, cid, ts, amt, None)
    n = 0
elif step == "check_window":
    features._window(con, src, cid, ts, amt, "2024-01-01")
    n = 0
elif step == "dedupe_only":
    n = con.sql(sql[step]).fetchall()[0][0]
elif step == "btyd_sql_order_df":
    n = len(con.execute(f"SELECT {cols} FROM ({btyd}) ORDER BY customer_id").df())
elif step == "btyd_sql_arrow_sort":
    import pyarrow.compute as pc
    t = con.sql(f"SELECT {cols} FROM ({btyd})").to_arrow_table()
    n = len(t.take(pc.sort_indices(t, [("customer_id", "ascending")])).to_pandas())
elif step == "numpy_codes":  # outside DuckDB: ids coded by Arrow, days deduped by pandas
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    t = pq.read_table(path, columns=[cid, ts, amt])
    enc = pc.dictionary_encode(t[cid].combine_chunks())
    codes, k = enc.indices.to_numpy(), len(enc.dictionary)
    d = t[ts].cast(pa.timestamp("ms")).to_numpy().astype("datetime64[D]").astype(np.int64)
    keep = d <= end_day  # purchase days up to the observation end, as the SQL's WHERE
    codes, d, a = codes[keep], d[keep], t[amt].to_numpy()[keep]
    d0 = d.min()
    d -= d0
    span = int(d.max()) + 1
    days = np.bincount(pd.unique(codes.astype(np.int64) * span + d) // span, minlength=k)
    first, last = np.full(k, span), np.full(k, -1)
    np.minimum.at(first, codes, d)
    np.maximum.at(last, codes, d)
    on_first = d == first[codes]
    rest = np.bincount(codes, a, k) - np.bincount(codes[on_first], a[on_first], k)
    out = pd.DataFrame({"customer_id": enc.dictionary.to_pandas(), "frequency": days - 1,
                        "recency": (last - first) / 1.0, "T": (end_day - d0 - first) / 1.0,
                        "monetary": np.where(days > 1, rest / np.maximum(days - 1, 1), 0.0)})
    n = len(out)
else:
    n = con.sql(sql[step]).to_arrow_table().num_rows
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
if step == "numpy_codes" and os.environ.get("BENCH_CHECK"):  # the same summary, untimed
    ref = features.btyd_summary(path, "2024-01-01", "D", con=con).set_index("customer_id")
    got = out.set_index("customer_id").loc[ref.index]
    assert (got["frequency"].to_numpy() == ref["frequency"].to_numpy()).all()
    for c in ("recency", "T", "monetary"):
        np.testing.assert_allclose(got[c].to_numpy(), ref[c].to_numpy(), rtol=1e-9)
    print("numpy_codes equals btyd_summary", file=sys.stderr)
print(json.dumps({"seconds": round(wall, 2), "cpu": round(cpu, 2), "customers": n,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""

#: (step, DuckDB threads: 0 = the default, the cores), what it measures
STEPS = (
    ("floor_fetchall", 0, "floor: GROUP BY customer (count, sum, min, max), fetchall"),
    ("floor_df", 0, "floor, fetched as pandas"),
    ("floor_arrow", 0, "floor, fetched as Arrow"),
    ("floor_arrow", 1, "floor, fetched as Arrow, DuckDB threads = 1"),
    ("btyd", 0, "`features.btyd_summary` (this version)"),
    ("btyd", 1, "`features.btyd_summary`, DuckDB threads = 1"),
    ("btyd_before", 0, "the previous `btyd_summary`: `_end_of`, WHERE, ORDER BY, df"),
    ("check_end_of", 0, "part: `_end_of`, the full validation scan (ids too)"),
    ("check_window", 0, "part: `_window`, the validation scan without the ids"),
    ("btyd_sql_arrow", 0, "part: the two GROUP BYs (customer-day, customer), Arrow"),
    ("btyd_sql_order_df", 0, "part: the same with ORDER BY, as pandas"),
    ("btyd_sql_arrow_sort", 0, "variant: the same sorted by pyarrow, as pandas"),
    ("btyd_sql_arrow", 1, "part: the two GROUP BYs, Arrow, DuckDB threads = 1"),
    ("btyd_sql_nowhere_arrow", 0, "variant: the two GROUP BYs without WHERE day <= end"),
    ("int_day_arrow", 0, "variant: epoch-day INTEGER key instead of DATE"),
    ("hash_key_arrow", 0, "variant: key hash(id) (min/max id kept to detect collisions)"),
    ("hash_levels_arrow", 1, "incomplete: the two GROUP BYs on hash(id), no id, threads = 1"),
    ("dedupe_count_arrow", 1, "bound: distinct days per customer only, threads = 1"),
    ("count_distinct_arrow", 0, "incomplete: one GROUP BY, count(DISTINCT day), no monetary"),
    ("bitstring_arrow", 0, "incomplete: one GROUP BY, bitstring_agg of days, no monetary"),
    ("list_arrow", 0, "incomplete: one GROUP BY, list of days, list_distinct, no monetary"),
    ("window_arrow", 0, "incomplete: first day by a window, first-day revenue, no day count"),
    ("numpy_codes", 0, "variant: outside DuckDB (Arrow codes, pandas unique, bincounts)"),
    ("dedupe_only", 0, "bound: SELECT DISTINCT customer, day (count only)"),
    ("dedupe_only", 1, "bound: the same, DuckDB threads = 1"),
)


def _run_once(step: str, threads: int, path: Path) -> dict:
    """One fresh process: its wall and CPU seconds, with the 1-minute load average before."""
    load = round(os.getloadavg()[0], 1)
    out = subprocess.run(
        # -P: the current directory's segkit must not shadow PYTHONPATH (before/after runs)
        [sys.executable, "-P", "-c", STEP, step, str(path), str(threads)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BENCH_TMP": str(DATA / "duckdb_tmp")},
    )
    if out.returncode or '{"' not in out.stdout:
        return {
            "error": f"exit {out.returncode}: " + (out.stderr.strip().splitlines() or ["?"])[-1]
        }
    res = json.loads(out.stdout[out.stdout.rindex('{"') :].splitlines()[0])
    return {**res, "load": load}


def _run_steps(steps: list[tuple[str, int, str]], path: Path, repeat: int) -> list[dict]:
    """The best run (least CPU) of each step over ``repeat`` rounds, the steps taking turns
    in each round so that a change in the machine's load falls on all of them alike."""
    best: list[dict] = [{} for _ in steps]
    for _ in range(repeat):
        for i, (step, threads, _what) in enumerate(steps):
            if "error" in best[i]:
                continue
            res = _run_once(step, threads, path)
            if "error" in res or not best[i] or res["cpu"] < best[i]["cpu"]:
                best[i] = res
    return best


def _reading(path: Path) -> str:
    """The hand-written reading of the previous results (from ``## Reading`` on), kept."""
    text = path.read_text() if path.exists() else ""
    return text[text.index("\n## Reading") :] if "\n## Reading" in text else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--others", help="python with lifetimes / pymc-marketing")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", nargs="*", help="only these steps (default: all)")
    args = ap.parse_args()
    (DATA / "duckdb_tmp").mkdir(parents=True, exist_ok=True)
    path = DATA / "tx_5500000.parquet"
    make_log(path, 5_500_000, 500_000)
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    steps = [s for s in STEPS if not args.steps or s[0] in args.steps]
    rows = [
        (f"segkit {step}" + (f" (threads={threads})" if threads else ""), what, res)
        for (step, threads, what), res in zip(
            steps, _run_steps(steps, path, args.repeat), strict=True
        )
    ]
    others = ("lifetimes", "pymc_marketing") if args.others else ()
    for which in others:
        out = subprocess.run(
            [args.others, "-c", OTHER, which, str(path)], capture_output=True, text=True
        )
        if out.returncode:
            last = (out.stderr.strip().splitlines() or ["?"])[-1]
            rows.append((which, "the summary call alone", {"error": last}))
        else:
            res = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((f"{which} {res.pop('version')}", "the summary call alone", res))
    floors = [r for name, _, r in rows if name.startswith("segkit floor") and "cpu" in r]
    floor = min((r["cpu"] for r in floors), default=None)
    floor_wall = min((r["seconds"] for r in floors), default=None)
    load_after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# bench_features_others: BTYD summary, segkit vs the floor, lifetimes, pymc-marketing",
        "",
        f"- date: {dt.date.today()}; 5,500,000 transactions, 500,000 customers (the log of "
        f"bench_features.py); each step in a fresh process, best of {args.repeat} by CPU "
        "(`time.process_time`: every thread of the process), the steps taking turns in "
        "each of the rounds",
        "- command: `.venv/bin/python benchmarks/bench_features_others.py"
        + (f" --others {args.others}`" if args.others else "`")
        + f"; niceness {os.nice(0)}; {os.cpu_count()} cores, shared with other work",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_after}; the `load` "
        "column is the 1-minute load before the best run",
        "",
        "| step | what | wall s | CPU s | x fastest floor (CPU) | customers | peak RSS (MB) "
        "| load |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, what, r in rows:
        if "error" in r:
            lines.append(f"| {name} | {what} | failed: {r['error']} | | | | | |")
            continue
        cpu = r.get("cpu")
        ratio = f"{cpu / floor:.2f}" if cpu is not None and floor else ""
        lines.append(
            f"| {name} | {what} | {r['seconds']} | {cpu if cpu is not None else ''} | {ratio} "
            f"| {r['customers']:,} | {r['peak_rss_mb']:,} | {r.get('load', '')} |"
        )
    lines.append("")
    lines.append(f"fastest floor: {floor} CPU s, {floor_wall} s wall.")
    out_path = HERE / "results" / "bench_features_others.md"
    text = "\n".join(lines) + "\n" + _reading(out_path)
    out_path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
