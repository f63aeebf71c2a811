"""Coverage of the total-CLV interval on simulated customers with known parameters.

Run on demand (not in the tests)::

    nice -n 10 .venv/bin/python benchmarks/bench_clv_coverage.py   # 200 replicates each
    nice -n 10 .venv/bin/python benchmarks/bench_clv_coverage.py --reps 50 --n 4000

Each replicate (seeded: replicate i uses seed ``--seed + i``) simulates n customers (each
of ``--n``, default 20,000 and 4,000)
from a BG/NBD purchase process (rates Gamma(r, alpha), drop-out Beta(a, b), observed 26-104
weeks) with Gamma-Gamma spend (each purchase Gamma(p, nu), nu ~ Gamma(q, rate v)), fits
BG/NBD and Gamma-Gamma with :mod:`segkit.clv`, predicts every customer's CLV over 12
months (margin 30 %, 10 % a year discount) and asks whether the 95 % interval of the
total covers the truth: the same total computed with the TRUE parameters (the expected
value given each customer's history; the interval is about parameter uncertainty, not
about what the customers will actually buy). Two intervals are compared:

- ``delta``: :func:`segkit.clv.total_interval`, the delta method on the total (``g' Σ g``);
- ``sum of bounds``: the sum of the customers' own interval bounds (what
  ``clv_segments.csv`` reported before).

Results: ``benchmarks/results/bench_clv_coverage.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from segkit import clv

HERE = Path(__file__).resolve().parent
PURCHASES = {"r": 0.8, "alpha": 6.0, "a": 1.2, "b": 4.0}
SPEND = {"p": 3.0, "q": 4.0, "v": 60.0}
HORIZON = {"horizon_months": 12, "margin": 0.3, "discount_rate": 0.1, "time_unit": "W"}


def simulate(n: int, seed: int) -> pd.DataFrame:
    """BTYD summary of ``n`` simulated customers (weeks)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(PURCHASES["r"], 1 / PURCHASES["alpha"], n)
    drop = rng.beta(PURCHASES["a"], PURCHASES["b"], n)
    T = rng.uniform(26.0, 104.0, n)
    x, tx, t = np.zeros(n), np.zeros(n), np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        alive &= t < T
        x[alive] += 1
        tx[alive] = t[alive]
        alive &= rng.random(n) >= drop
    nu = rng.gamma(SPEND["q"], 1 / SPEND["v"], n)
    k = np.maximum(x, 1)  # the mean of x Gamma(p, nu) purchases is Gamma(p x, nu x)
    monetary = np.where(x > 0, rng.gamma(SPEND["p"] * k, 1 / (nu * k)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary": monetary})


def replicate(n: int, seed: int) -> dict[str, float]:
    """One simulated population: the fitted total, both intervals and the true total."""
    df = simulate(n, seed)
    bg = clv.fit_purchases("bgnbd", df["frequency"], df["recency"], df["T"], seed=seed)
    gg = clv.fit_spend(df["frequency"], df["monetary"], seed=seed)
    pred = clv.predict(bg, gg, df, **HORIZON)
    total, low, high = clv.total_interval(pred)
    true_bg = dataclasses.replace(bg, params=dict(PURCHASES))
    true_gg = dataclasses.replace(gg, params=dict(SPEND))
    truth = float(clv.predict(true_bg, true_gg, df, **HORIZON)["clv"].sum())
    true_log = np.log([*PURCHASES.values(), *SPEND.values()])
    se_log = np.sqrt(np.r_[np.diag(bg.cov_log), np.diag(gg.cov_log)])
    z_params = (np.log(np.r_[bg.theta, gg.theta]) - true_log) / se_log
    return {
        **{f"z_{name}": float(v) for name, v in zip([*PURCHASES, *SPEND], z_params, strict=True)},
        "seed": seed,
        "total": total,
        "truth": truth,
        "low": low,
        "high": high,
        "sum_low": float(pred["clv_low"].sum()),
        "sum_high": float(pred["clv_high"].sum()),
    }


def summarize(res: pd.DataFrame) -> dict[str, float]:
    """Coverage (with its binomial 95 % interval), width ratio and z-scores."""
    reps = len(res)
    cover = ((res["low"] <= res["truth"]) & (res["truth"] <= res["high"])).mean()
    old = ((res["sum_low"] <= res["truth"]) & (res["truth"] <= res["sum_high"])).mean()
    ci = stats.binomtest(int(round(cover * reps)), reps).proportion_ci(method="wilson")
    sd_log = (np.log(res["high"]) - np.log(res["low"])) / (2 * stats.norm.ppf(0.975))
    z = (np.log(res["truth"]) - np.log(res["total"])) / sd_log
    return {
        "replicates": reps,
        "coverage": cover,
        "coverage_ci_low": ci.low,
        "coverage_ci_high": ci.high,
        "coverage_sum_of_bounds": old,
        "width_ratio": float(
            ((res["sum_high"] - res["sum_low"]) / (res["high"] - res["low"])).mean()
        ),
        "z_mean": float(z.mean()),
        "z_sd": float(z.std(ddof=1)),
        "relative_half_width": float(((res["high"] - res["low"]) / 2 / res["total"]).mean()),
        "z_params_sd": ", ".join(
            f"{c[2:]} {res[c].std(ddof=1):.2f}" for c in res.columns if c.startswith("z_")
        ),
    }


def _row(n: int, s: dict[str, float]) -> str:
    return (
        f"| {n:,} | {s['coverage']:.1%} ({s['coverage_ci_low']:.1%}-{s['coverage_ci_high']:.1%}) "
        f"| {s['coverage_sum_of_bounds']:.1%} | {s['width_ratio']:.2f} "
        f"| {s['relative_half_width']:.1%} | {s['z_mean']:+.2f} | {s['z_sd']:.2f} "
        f"| {s['z_params_sd']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n", type=int, nargs="+", default=[20_000, 4_000])
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    lines = []
    for n in args.n:
        rows = []
        for i in range(args.reps):
            rows.append(replicate(n, args.seed + i))
            if (i + 1) % 20 == 0:
                print(f"n = {n:,}: {i + 1} of {args.reps} replicates", file=sys.stderr)
        s = summarize(pd.DataFrame(rows))
        print(n, s)
        lines.append(_row(n, s))
    secs = time.perf_counter() - t0
    out = HERE / "results" / "bench_clv_coverage.md"
    out.write_text(
        f"""# Coverage of the total-CLV interval ({dt.date.today()})

`benchmarks/bench_clv_coverage.py --reps {args.reps} --n {" ".join(map(str, args.n))} \
--seed {args.seed}` on {platform.machine()}, Python {platform.python_version()};
{secs:.0f} s wall time.

Each replicate simulates n customers from BG/NBD {PURCHASES} with Gamma-Gamma spend
{SPEND} (weeks, observed 26-104 weeks), fits both models, predicts CLV over
{HORIZON["horizon_months"]} months (margin {HORIZON["margin"]:.0%}, discount
{HORIZON["discount_rate"]:.0%} a year) and checks whether the 95 % interval of the total
covers the total computed with the true parameters (replicate i: seed {args.seed} + i).

- *delta*: `segkit.clv.total_interval`, the delta method on the total (`g' Σ g`), as
  `clv_segments.csv` now reports per segment; target coverage 93-97 %;
- *sum of bounds*: the sum of the customers' own bounds, what it reported before;
- *z* = (log truth - log estimate) / sd(log total) of the delta interval: mean 0 and sd 1
  when its standard error is right.

| customers | delta: coverage (binomial 95 % CI) | sum of bounds: coverage | width, sum of bounds / delta | delta half-width / total | z mean | z sd | sd of each parameter's z (log scale) |
|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

The last column checks the fits' own standard errors the same way (sd 1 when right): where
they are too large (few customers), the interval of the total is too wide as well.
"""
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
