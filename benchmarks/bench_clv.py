"""Speed of the CLV stage (segkit.clv) on a million customers, side by side with the
libraries it does not use.

Run on demand (not in the tests)::

    nice -n 10 .venv/bin/python benchmarks/bench_clv.py              # 1M customers
    nice -n 10 .venv/bin/python benchmarks/bench_clv.py --n 200000   # smaller
    /tmp/cmpvenv/bin/python benchmarks/bench_clv.py --others-only    # lifetimes, pymc-marketing

BG/NBD histories are simulated directly (rates Gamma(r, alpha), drop-out Beta(a, b),
customers observed 26-104 weeks, times rounded to whole days as a transaction log gives
them), with Gamma-Gamma spend. Timed, in one process:

- ``compress``: grouping the customers into distinct (frequency, recency, T) histories;
- ``fit bgnbd`` / ``fit pareto_nbd`` / ``fit gamma_gamma``: maximum-likelihood fits
  including the Hessian for standard errors (target: BG/NBD under 0.5 s after compression);
- ``predict``: P(alive), expected purchases, spend and CLV with intervals for every
  customer (``clv.predict``);
- ``stage``: compress + BG/NBD + Gamma-Gamma fits + predict, i.e. what the CLV stage does
  for the final model (target: under 10 s for 1M customers).

With ``--others-only`` (run with an interpreter that has them) it times lifetimes'
``BetaGeoFitter.fit`` and pymc-marketing's ``BetaGeoModel.fit(method="map")`` on the same
simulated data. Results: ``benchmarks/results/bench_clv.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TRUTH = {"r": 0.8, "alpha": 6.0, "a": 1.2, "b": 4.0}


def simulate(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    T = np.floor(rng.uniform(26 * 7, 104 * 7, n)) / 7  # whole days, in weeks
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        alive &= t < T
        x[alive] += 1
        tx[alive] = np.floor(t[alive] * 7) / 7
        alive &= rng.random(n) >= p
    nu = rng.gamma(4.0, 1 / 60.0, n)
    spend = np.where(x > 0, rng.gamma(3.0 * np.maximum(x, 1), 1 / (nu * np.maximum(x, 1))), 0.0)
    df = pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": tx, "T": T})
    df["monetary"] = spend
    # days merged: a repeat purchase on the first day cannot be told apart from it
    df.loc[(df["frequency"] > 0) & (df["recency"] == 0), ["frequency", "monetary"]] = 0
    return df


def clock(f):
    t0 = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0


def ours(df: pd.DataFrame) -> list[tuple[str, float, str]]:
    sys.path.insert(0, str(HERE.parent))
    from segkit import clv

    rows = []
    h, s = clock(lambda: clv.compress(df["frequency"], df["recency"], df["T"]))
    rows.append(("compress", s, f"{len(h.weight):,} distinct histories"))
    bg, s = clock(lambda: clv.fit_histories("bgnbd", h, len(df)))
    rows.append(("fit bgnbd (compressed)", s, _params(bg)))
    wk = df.assign(recency=np.floor(df["recency"]), T=np.floor(df["T"]))  # whole weeks
    hw = clv.compress(wk["frequency"], wk["recency"], wk["T"])
    bw, s = clock(lambda: clv.fit_histories("bgnbd", hw, len(df)))
    rows.append(
        (
            "fit bgnbd, times in whole weeks (compressed)",
            s,
            f"{len(hw.weight):,} distinct histories; " + _params(bw),
        )
    )
    pn, s = clock(lambda: clv.fit_histories("pareto_nbd", h, len(df)))
    rows.append(("fit pareto_nbd (compressed)", s, _params(pn)))
    gg, s = clock(lambda: clv.fit_spend(df["frequency"], df["monetary"]))
    rows.append(("fit gamma_gamma", s, f"{gg.n:,} repeat buyers; " + _params(gg)))
    _, s = clock(lambda: clv.predict(bg, gg, df, time_unit="W"))
    rows.append(("predict (1 model, every customer)", s, "p_alive, purchases, spend, CLV ± CI"))

    def stage():
        b = clv.fit_purchases("bgnbd", df["frequency"], df["recency"], df["T"])
        g = clv.fit_spend(df["frequency"], df["monetary"])
        return clv.predict(b, g, df, time_unit="W")

    _, s = clock(stage)
    rows.append(("stage: checks + compress + BG/NBD + Gamma-Gamma + predict", s, ""))
    return rows


def pareto_only(df: pd.DataFrame) -> None:
    """The Pareto/NBD fit (warm start, optimum, Hessian) on compressed histories: wall
    and CPU seconds (``time.process_time``), the load average, the estimate (issue 18)."""
    import os

    sys.path.insert(0, str(HERE.parent))
    from segkit import clv

    h = clv.compress(df["frequency"], df["recency"], df["T"])
    load = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), time.process_time()
    pn = clv.fit_histories("pareto_nbd", h, len(df))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    print(
        f"| fit pareto_nbd, {len(df):,} customers, {len(h.weight):,} histories | wall "
        f"{wall:.2f} s | CPU {cpu:.2f} s | load {load:.1f} | {_params(pn)}, "
        f"LL={pn.loglik:.3f}, iterations {pn.iterations} |"
    )


def _params(fit) -> str:
    return ", ".join(f"{k}={v:.3f}" for k, v in fit.params.items())


def others(df: pd.DataFrame) -> list[tuple[str, float, str]]:
    rows = []
    try:
        from lifetimes import BetaGeoFitter

        m = BetaGeoFitter()
        _, s = clock(lambda: m.fit(df["frequency"], df["recency"], df["T"]))
        rows.append(("lifetimes BetaGeoFitter.fit", s, str(m.params_.round(3).to_dict())))
    except Exception as exc:  # report, do not hide
        rows.append(("lifetimes BetaGeoFitter.fit", float("nan"), f"failed: {exc!r}"[:200]))
    try:
        from pymc_marketing.clv import BetaGeoModel

        data = df.rename(columns={"customer_id": "customer_id"})[
            ["customer_id", "frequency", "recency", "T"]
        ]
        model = BetaGeoModel(data=data)
        _, s = clock(lambda: model.fit(method="map"))
        rows.append(("pymc-marketing BetaGeoModel.fit(map), incl. compile", s, ""))
        model2 = BetaGeoModel(data=data)
        _, s = clock(lambda: model2.fit(method="map"))
        rows.append(("pymc-marketing BetaGeoModel.fit(map), second fit", s, ""))
    except Exception as exc:
        rows.append(
            ("pymc-marketing BetaGeoModel.fit(map)", float("nan"), f"failed: {exc!r}"[:200])
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--others-only", action="store_true")
    ap.add_argument("--pareto-only", action="store_true", help="time the Pareto/NBD fit alone")
    args = ap.parse_args()
    df, s = clock(lambda: simulate(args.n))
    print(f"simulated {args.n:,} customers in {s:.1f} s", file=sys.stderr)
    if args.pareto_only:
        pareto_only(df)
        return
    rows = others(df) if args.others_only else ours(df)
    lines = [f"| {name} | {sec:.2f} | {note} |" for name, sec, note in rows]
    print("\n".join(lines))
    if args.others_only:
        return
    out = HERE / "results" / "bench_clv.md"
    out.write_text(
        f"""# CLV benchmark ({dt.date.today()})

`benchmarks/bench_clv.py --n {args.n}` on {platform.machine()}, Python
{platform.python_version()}, {__import__("os").cpu_count()} cores. Simulated BG/NBD truth
{TRUTH}; one process, wall time.

| step | seconds | note |
|---|---|---|
{chr(10).join(lines)}

Targets (issue "CLV"): BG/NBD fit on 1M customers under 0.5 s after compression; the whole
stage under 10 s. Comparison with lifetimes and pymc-marketing: see below (run with
`--others-only` in a virtual environment that has them).
"""
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
