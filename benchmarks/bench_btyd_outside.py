"""Issue 18: can a BTYD summary computed outside DuckDB SQL come within 1.3x of the floor?

Two more ways, beside the ones of ``bench_features_others.py`` (which has the floor, the
SQL variants and the numpy pass ``numpy_codes``), on the same 5.5-million-row log:

- ``polars_two``: polars (lazy, Parquet scan) with the two GROUP BYs of the SQL, customer-day
  then customer; ``polars_one``: one GROUP BY per customer with ``n_unique`` of the days and
  the first day's revenue as a filtered sum.
- ``numba_pass``: one streaming pass in numba over Arrow row groups, the aggregate DuckDB
  lacks: a hash table of the customer ids (their bytes), and per customer a record with
  first and last day, revenue, first-day revenue and up to 12 distinct days inline, further
  days in a hash set of (customer, day). Memory grows with customers, not rows.

- ``btyd``: ``features.btyd_summary`` with segkit's own DuckDB aggregate ``btyd_state``
  (``segkit.core.native``, C, one GROUP BY); ``btyd_sql``: the same function on its SQL (a
  connection that does not load the aggregate); ``btyd_state``: the aggregate alone,
  fetched as the floor is; ``floor_sorted``: for context, the floor with what
  ``btyd_summary`` adds to its result (sorted by id, a pandas frame). The ratios are to the
  fastest floor, ``floor``.
- ``calibration``, ``features`` (and ``_sql``): the CLV stage's calibration/holdout split and
  the customer features, which take the aggregate too (weeks; on its SQL), for the README.

polars and numba are not segkit dependencies: they run in another interpreter
(``--others``: a venv with ``pip install polars numba pyarrow duckdb pandas``; needed only
for their steps, see ``--steps``). The floor (DuckDB, one GROUP BY customer, Arrow,
threads = 1) and the segkit steps run from this venv. Each step in a fresh process, best
of ``--repeat`` by CPU seconds (``time.process_time``, every thread), and beside the ratio
of the bests the median, over rounds, of a step's CPU over the floor's in the same round
(the steps take turns; this machine's speed drifts). Imports are not timed (nor are
DuckDB's for the floor); numba's import and the load of its compiled cache are reported
apart (``setup``). ``BENCH_CHECK=1`` checks that
the numba, polars and ``btyd`` summaries equal ``btyd_summary``'s SQL (untimed).

Run: ``python benchmarks/bench_btyd_outside.py --others /path/to/python [--repeat 3]
[--steps floor btyd ...]``; writes ``results/bench_btyd_outside.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_features import DATA, make_log  # noqa: E402

END_DAY = 19723  # 2024-01-01, days since 1970-01-01: the observation end of every step

#: The summary of a step equals btyd_summary's SQL (``BENCH_CHECK=1``; untimed): the same
#: customers (in the same order when ``ordered``), frequency exactly, the rest to 1e-9.
CHECK = """
def check(out, step, ordered=False):
    import numpy as np, pandas as pd
    ref = pd.read_parquet(os.environ["BENCH_REF"]).set_index("customer_id")
    got = out.set_index("customer_id")
    assert len(got) == len(ref)
    assert not ordered or (got.index.to_numpy() == ref.index.to_numpy()).all()
    got = got.loc[ref.index]
    assert (got["frequency"].to_numpy() == ref["frequency"].to_numpy()).all()
    for c in ("recency", "T", "monetary"):
        np.testing.assert_allclose(got[c].to_numpy(), ref[c].to_numpy(), rtol=1e-9)
    print(step, "equals btyd_summary's SQL", file=sys.stderr)
"""

SEGKIT = (
    CHECK
    + """
import json, os, resource, sys, time
import duckdb
from segkit import features
from segkit.core import native
step, path = sys.argv[1], sys.argv[2]
s0 = time.process_time()
if step in ("btyd", "btyd_state", "calibration", "features"):  # compiled on the first run
    con = native.connect()
    assert native.load(con), native.status()
else:  # a connection without the aggregate: the *_sql steps run the SQL
    con = duckdb.connect()
con.execute("SET threads = 1")
setup = time.process_time() - s0
w0, c0 = time.perf_counter(), time.process_time()
floor = ("SELECT customer_id, count(*), sum(amount), min(timestamp), max(timestamp) "
         f"FROM read_parquet('{path}') GROUP BY 1")
if step == "floor":
    n = con.sql(floor).to_arrow_table().num_rows
elif step == "floor_sorted":  # the floor with btyd_summary's ORDER BY and pandas frame
    n = len(con.sql(floor + " ORDER BY 1").to_arrow_table().to_pandas())
elif step == "btyd_state":
    n = con.sql("SELECT customer_id, btyd_state(CAST(timestamp AS DATE), amount, "
                f"DATE '2024-01-01') FROM read_parquet('{path}') GROUP BY 1").to_arrow_table().num_rows
elif step.startswith("calibration"):
    n = len(features.calibration_holdout(path, "2023-06-30", "2024-01-01", "W", con=con))
elif step.startswith("features"):
    n = len(features.customer_features(path, "2024-01-01", "W", con=con))
else:
    out = features.btyd_summary(path, "2024-01-01", "D", con=con)
    n = len(out)
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # before the check
if os.environ.get("BENCH_CHECK") and step in ("btyd", "btyd_sql"):
    check(out, step, ordered=True)
print(json.dumps({"seconds": wall, "cpu": cpu, "setup": setup, "customers": n,
                  "peak_rss_mb": rss}))
"""
)

OTHERS = (
    CHECK
    + r'''
import json, os, resource, sys, time
step, path, END_DAY = sys.argv[1], sys.argv[2], int(sys.argv[3])
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
s0 = time.process_time()
if step == "numba_pass":
    from numba import njit

    INL = 12  # distinct days kept inline in a customer's record

    @njit(cache=True)
    def _hash(data, a, b):  # FNV-1a over the id's bytes, mixed
        h = np.uint64(14695981039346656037)
        for i in range(a, b):
            h = (h ^ np.uint64(data[i])) * np.uint64(1099511628211)
        return h ^ (h >> np.uint64(29))

    @njit(cache=True)
    def _slot(key, mask):  # Fibonacci hashing of a (customer, day) key
        return ((np.uint64(key) * np.uint64(11400714819323198485)) >> np.uint64(32)) & mask

    @njit(cache=True)
    def feed(offs, data, days, amts, tab, kof, kbuf, nk, rec, fl, ptab, npair, end_day):
        """Rows into the tables; returns (rows done, customers, pairs, what must grow)."""
        mask, pmask = np.uint64(tab.shape[0] - 1), np.uint64(ptab.size - 1)
        for r in range(days.size):
            d = days[r]
            if d > end_day:
                continue
            a, b = offs[r], offs[r + 1]
            h = _hash(data, a, b)
            s = h & mask
            while True:  # open addressing on the id
                c = tab[s, 1]
                if c == 0:
                    if nk + 1 >= rec.shape[0]:
                        return r, nk, npair, 1
                    if kof[nk] + (b - a) > kbuf.size:
                        return r, nk, npair, 2
                    kbuf[kof[nk]:kof[nk] + b - a] = data[a:b]
                    kof[nk + 1] = kof[nk] + b - a
                    tab[s, 0], tab[s, 1] = np.int64(h), nk + 1
                    c = nk + 1
                    rec[nk, 0], rec[nk, 1], rec[nk, 2], rec[nk, 3] = d, d, 0, 0
                    fl[nk, 0], fl[nk, 1] = 0.0, 0.0
                    nk += 1
                    break
                if tab[s, 0] == np.int64(h) and kof[c] - kof[c - 1] == b - a:
                    same = True
                    for i in range(b - a):
                        if kbuf[kof[c - 1] + i] != data[a + i]:
                            same = False
                            break
                    if same:
                        break
                s = (s + np.uint64(1)) & mask
            k = c - 1
            ninl, seen = rec[k, 3], False
            for j in range(min(ninl, INL)):
                if rec[k, 4 + j] == d:
                    seen = True
                    break
            if not seen and ninl < INL:
                rec[k, 4 + ninl], rec[k, 3] = d, ninl + 1
                rec[k, 2] += 1
            elif not seen:
                key = (np.int64(k) << 20) | np.int64(d & 0xFFFFF)
                ps = _slot(key, pmask)
                while ptab[ps] != -1 and ptab[ps] != key:
                    ps = (ps + np.uint64(1)) & pmask
                if ptab[ps] == -1:
                    if 2 * (npair + 1) > ptab.size:
                        return r, nk, npair, 3
                    ptab[ps] = key
                    npair += 1
                    rec[k, 2] += 1
            amt = amts[r]
            fl[k, 0] += amt
            if d < rec[k, 0]:
                rec[k, 0], fl[k, 1] = d, amt
            elif d == rec[k, 0]:
                fl[k, 1] += amt
            if d > rec[k, 1]:
                rec[k, 1] = d
            if 2 * nk > tab.shape[0]:
                return r + 1, nk, npair, 4
        return days.size, nk, npair, 0

    @njit(cache=True)
    def rehash_ids(size, kof, kbuf, nk):
        tab = np.zeros((size, 2), np.int64)
        mask = np.uint64(size - 1)
        for k in range(nk):
            h = _hash(kbuf, kof[k], kof[k + 1])
            s = h & mask
            while tab[s, 1] != 0:
                s = (s + np.uint64(1)) & mask
            tab[s, 0], tab[s, 1] = np.int64(h), k + 1
        return tab

    @njit(cache=True)
    def rehash_pairs(old, size):
        p = np.full(size, -1, np.int64)
        mask = np.uint64(size - 1)
        for key in old:
            if key != -1:
                s = _slot(key, mask)
                while p[s] != -1:
                    s = (s + np.uint64(1)) & mask
                p[s] = key
        return p

    def grow(a, n):
        b = np.zeros((n,) + a.shape[1:], a.dtype)
        b[: a.shape[0]] = a
        return b

    # compile or load from numba's cache, untimed like every import (reported as setup)
    feed(np.zeros(2, np.int32), np.zeros(1, np.uint8), np.zeros(1, np.int32), np.zeros(1),
         np.zeros((4, 2), np.int64), np.zeros(3, np.int64), np.zeros(4, np.uint8), 0,
         np.zeros((2, 16), np.int32), np.zeros((2, 2)), np.full(4, -1, np.int64), 0, 0)
    rehash_ids(4, np.zeros(1, np.int64), np.zeros(1, np.uint8), 0)
    rehash_pairs(np.full(4, -1, np.int64), 4)

    def summary(path):
        cap = 1 << 16
        tab = np.zeros((2 * cap, 2), np.int64)
        kof, kbuf = np.zeros(cap + 1, np.int64), np.zeros(cap * 16, np.uint8)
        rec, fl = np.zeros((cap, 16), np.int32), np.zeros((cap, 2))
        ptab = np.full(1 << 16, -1, np.int64)
        nk = npair = 0
        pf = pq.ParquetFile(path)
        for g in range(pf.num_row_groups):
            t = pf.read_row_group(g, columns=["customer_id", "timestamp", "amount"])
            for batch in t.to_batches():
                ids = batch.column(0)
                _, ob, db = ids.buffers()
                offs = np.frombuffer(ob, np.int32, len(ids) + 1 + ids.offset)[ids.offset:]
                data = np.frombuffer(db, np.uint8)
                ms = batch.column(1).cast(pa.timestamp("ms")).cast(pa.int64()).to_numpy()
                days = np.floor_divide(ms, 86_400_000).astype(np.int32)
                amts = batch.column(2).to_numpy()
                r0, why = 0, 1
                while why:
                    r, nk, npair, why = feed(offs[r0:], data, days[r0:], amts[r0:], tab, kof,
                                             kbuf, nk, rec, fl, ptab, npair, END_DAY)
                    r0 += r
                    if why == 1:
                        n = rec.shape[0] * 2
                        kof, rec, fl = grow(kof, n + 1), grow(rec, n), grow(fl, n)
                    elif why == 2:
                        kbuf = grow(kbuf, kbuf.size * 2)
                    elif why == 3:
                        ptab = rehash_pairs(ptab, ptab.size * 2)
                    elif why == 4:
                        tab = rehash_ids(tab.shape[0] * 2, kof, kbuf, nk)
        kof = kof[: nk + 1]
        ids = pa.StringArray.from_buffers(nk, pa.py_buffer(kof.astype(np.int32)),
                                          pa.py_buffer(kbuf[: kof[-1]].copy()))
        fr = rec[:nk, 2].astype(np.int64) - 1
        out = pa.table({
            "customer_id": ids, "frequency": fr,
            "recency": (rec[:nk, 1] - rec[:nk, 0]) / 1.0, "T": (END_DAY - rec[:nk, 0]) / 1.0,
            "monetary": np.where(fr > 0, (fl[:nk, 0] - fl[:nk, 1]) / np.maximum(fr, 1), 0.0),
        })
        return out.take(pc.sort_indices(out, [("customer_id", "ascending")])).to_pandas()
else:
    import polars as pl

    def summary(path):
        end = pl.lit(END_DAY).cast(pl.Date)
        lf = pl.scan_parquet(path).select(
            "customer_id", "amount", day=pl.col("timestamp").dt.date()
        ).filter(pl.col("day") <= end)
        if step == "polars_two":
            by = lf.group_by("customer_id", "day").agg(v=pl.col("amount").sum())
            agg = by.group_by("customer_id").agg(
                n=pl.len(), d0=pl.col("day").min(), d1=pl.col("day").max(),
                tot=pl.col("v").sum(), v0=pl.col("v").sort_by("day").first())
        else:
            agg = lf.group_by("customer_id").agg(
                n=pl.col("day").n_unique(), d0=pl.col("day").min(), d1=pl.col("day").max(),
                tot=pl.col("amount").sum(),
                v0=pl.col("amount").filter(pl.col("day") == pl.col("day").min()).sum())
        out = agg.select(
            "customer_id", frequency=pl.col("n") - 1,
            recency=(pl.col("d1") - pl.col("d0")).dt.total_days() / 1.0,
            T=(end - pl.col("d0")).dt.total_days() / 1.0,
            monetary=pl.when(pl.col("n") > 1).then((pl.col("tot") - pl.col("v0"))
                                                   / (pl.col("n") - 1)).otherwise(0.0),
        ).sort("customer_id").collect()
        return out.to_pandas()
setup = time.process_time() - s0
w0, c0 = time.perf_counter(), time.process_time()
out = summary(path)
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # before the check
if os.environ.get("BENCH_CHECK"):
    check(out, step)
print(json.dumps({"seconds": wall, "cpu": cpu, "setup": setup, "customers": len(out),
                  "peak_rss_mb": rss}))
'''
)

#: (step, runs in: "segkit" this interpreter, "others" the --others one, what)
STEPS = (
    ("floor", "segkit", "floor: DuckDB GROUP BY customer, Arrow, threads = 1"),
    ("btyd", "segkit", "`features.btyd_summary` with segkit's aggregate, DuckDB threads = 1"),
    ("btyd_sql", "segkit", "`features.btyd_summary` on its SQL, DuckDB threads = 1"),
    ("btyd_state", "segkit", "part: the aggregate alone, fetched as the floor (Arrow, unsorted)"),
    ("floor_sorted", "segkit", "context: the floor sorted by id, as pandas (what btyd returns)"),
    ("calibration", "segkit", "`features.calibration_holdout` (weeks, 26-week holdout)"),
    ("calibration_sql", "segkit", "`features.calibration_holdout` on its SQL"),
    ("features", "segkit", "`features.customer_features` (weeks): BTYD, orders, shares"),
    ("features_sql", "segkit", "`features.customer_features` on its SQL"),
    ("polars_two", "others", "polars: the two GROUP BYs (customer-day, customer)"),
    ("polars_one", "others", "polars: one GROUP BY, n_unique days, filtered first-day sum"),
    ("numba_pass", "others", "numba: one streaming pass, hash tables of ids and days"),
)


def _run(step: str, where: str, python: str, path: Path) -> dict:
    if where == "segkit":
        cmd = [python, "-P", "-c", SEGKIT]
    else:  # from a file: numba caches what it compiles beside it (not for a -c string)
        script = DATA / "bench_btyd_outside_step.py"
        script.write_text(OTHERS)
        cmd = [python, "-P", str(script)]
    load = round(os.getloadavg()[0], 1)
    out = subprocess.run(
        [*cmd, step, str(path), str(END_DAY)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    if out.stderr.strip():
        print(out.stderr.strip(), file=sys.stderr)
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--others", help="python with polars, numba, pyarrow")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", nargs="+", choices=[s[0] for s in STEPS])
    args = ap.parse_args()
    steps = [s for s in STEPS if s[0] in (args.steps or [s[0] for s in STEPS])]
    if args.others is None and any(w == "others" for _, w, _ in steps):
        ap.error("--others is required for the polars and numba steps (or pick --steps)")
    path = DATA / "tx_5500000.parquet"
    make_log(path, 5_500_000, 500_000)
    if os.environ.get("BENCH_CHECK"):  # in another process: not in the steps' peak RSS,
        # which a child inherits from its parent on Linux
        os.environ["BENCH_REF"] = str(DATA / "btyd_reference.parquet")
        ref = (
            "import duckdb, os, sys; from segkit import features; features.btyd_summary("
            "sys.argv[1], '2024-01-01', 'D', con=duckdb.connect())"
            ".to_parquet(os.environ['BENCH_REF'], index=False)"
        )
        subprocess.run([sys.executable, "-P", "-c", ref, str(path)], check=True)
    before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    best: dict[str, dict] = {}
    rounds: list[dict[str, float]] = []  # CPU s of each step, per round
    for _ in range(args.repeat):  # the steps take turns in each round
        rounds.append({})
        for step, where, _what in steps:
            python = sys.executable if where == "segkit" else args.others
            res = _run(step, where, python, path)
            if "error" not in res:
                rounds[-1][step] = res["cpu"]
            if "error" in res or step not in best or res["cpu"] < best[step].get("cpu", 1e9):
                best[step] = res
    after = " ".join(f"{x:.1f}" for x in os.getloadavg())
    floor = best.get("floor", {}).get("cpu")

    def per_round(step: str) -> str:
        """The median, over rounds, of the step's CPU over the floor's in the same round:
        steadier than the ratio of two bests on a machine whose speed drifts."""
        ratios = [r[step] / r["floor"] for r in rounds if step in r and "floor" in r]
        return f"{statistics.median(ratios):.2f}" if ratios else ""

    lines = [
        "# bench_btyd_outside: the BTYD summary outside DuckDB SQL (issue 18)",
        "",
        f"- date: {dt.date.today()}; 5,500,000 transactions, 500,000 customers (the log of "
        f"bench_features.py); each step in a fresh process, best of {args.repeat} by CPU",
        "- command: `.venv/bin/python benchmarks/bench_btyd_outside.py "
        + (f"--others {args.others} " if args.others else "")
        + (f"--steps {' '.join(args.steps)} " if args.steps else "")
        + f"--repeat {args.repeat}`; {os.cpu_count()} cores",
        f"- load average (1, 5, 15 min) before: {before}; after: {after}",
        "",
        "| step | what | wall s | CPU s | x floor (CPU) | median x floor, per round "
        "| setup CPU s | customers | peak RSS (MB) | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step, _where, what in steps:
        r = best[step]
        if "error" in r:
            lines.append(f"| {step} | {what} | failed: {r['error']} | | | | | | | |")
            continue
        ratio = f"{r['cpu'] / floor:.2f}" if floor else ""
        lines.append(
            f"| {step} | {what} | {r['seconds']:.2f} | {r['cpu']:.2f} | {ratio} "
            f"| {per_round(step)} | {r['setup']:.2f} | {r['customers']:,} | {r['peak_rss_mb']:,} | {r['load']} |"
        )
    out_path = HERE / "results" / "bench_btyd_outside.md"
    old = out_path.read_text() if out_path.exists() else ""
    reading = old[old.index("\n## Reading") :] if "\n## Reading" in old else ""
    text = "\n".join(lines) + "\n" + reading
    out_path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
