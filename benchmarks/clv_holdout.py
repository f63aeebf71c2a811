"""The CLV holdout check and model-error band: Online Retail and CDNOW, before and after.

Run on demand (not in the tests), from the repository root::

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/clv_holdout.py --before OLD_CHECKOUT

For each parameter set (``online_retail``, ``cdnow``) and each code base (``--before``: a
checkout of the code before the holdout check; ``--after``: this one, by default), a fresh
process with ``PYTHONPATH`` set to that code base opens a new run folder and computes the
clv stage in-process (``segkit.stages.registry.run_stage("clv", run)``, which runs the
exploration and clustering stages it needs first), then reports the first three CLV
findings, the total CLV with its range and the per-segment ranges. A simulation adds the
test's behaviour with known truth: BG/NBD populations where the model is true (how often
the test passes) and with a 30 % surge of the purchase rate in the holdout (how often it
flags). Results: ``benchmarks/results/clv_holdout.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SETS = ("online_retail", "cdnow")


def worker(name: str, folder: str) -> None:
    """Run the clv stage of parameter set ``name`` in ``folder``; print the figures as JSON."""
    import segkit
    from segkit.clv import total_interval
    from segkit.stages.registry import run_stage
    from segkit.stages.run import Run

    t0 = time.perf_counter()
    res = run_stage("clv", Run.open(name, folder))
    check = getattr(res, "check", None)  # absent before the holdout check
    factor = check.factor if check is not None else 1.0
    seg = res.segments
    out = {
        "segkit": str(Path(segkit.__file__).parent),
        "seconds": time.perf_counter() - t0,
        "findings": res.findings[:3],
        "total": total_interval(res.customers)[0],
        "param_interval": list(total_interval(res.customers)[1:]),
        "range": [float(v) for v in total_interval(res.customers)[1:]],
        "factor": factor,
        "segments": seg[["segment", "clv_total", "clv_low_total", "clv_high_total"]]
        .astype(float)
        .to_dict("records"),
        "errors": res.errors.drop(columns=["loglik", "aic", "bic"]).to_dict("records"),
        "check": check.test.to_dict() if check is not None else None,
    }
    if factor != 1.0:
        out["range"] = list(total_interval(res.customers, model_error=factor)[1:])
    print(json.dumps(out, default=float))


def run_in(code: Path, name: str) -> dict:
    """The worker in a fresh process importing segkit from ``code``."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--worker", name, str(Path(tmp) / "run")]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def simulate(seeds: int, surge: float, n: int = 2000) -> tuple[int, list[float]]:
    """How many of ``seeds`` simulated populations the test flags, and their z."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_clv_holdout import simulate_split  # the tests' independent simulator

    from segkit.clv.diagnostics import refit_test

    zs = [
        refit_test(simulate_split(n, surge=surge, seed=s), "bgnbd").z
        for s in range(100, 100 + seeds)
    ]
    return sum(abs(z) > 1.959964 for z in zs), zs


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _section(name: str, before: dict, after: dict) -> str:
    lines = [f"## {name}", ""]
    for label, r in (("Before", before), ("After", after)):
        lo, hi = r["range"]
        plo, phi = r["param_interval"]
        lines += [
            f"**{label}** (segkit from `{r['segkit']}`, stage in {r['seconds']:.0f} s with "
            "the stages it needs): total CLV "
            f"{_money(r['total'])}, range {_money(lo)} to {_money(hi)} "
            f"({(lo / r['total'] - 1):+.1%} / {(hi / r['total'] - 1):+.1%}); parameter "
            f"interval {_money(plo)} to {_money(phi)}; band factor {r['factor']:.4f}.",
            "",
            "| segment | CLV | low | high |",
            "|---|---|---|---|",
            *(
                f"| {int(s['segment'])} | {_money(s['clv_total'])} | "
                f"{_money(s['clv_low_total'])} | {_money(s['clv_high_total'])} |"
                for s in r["segments"]
            ),
            "",
            "First three findings:",
            "",
            *(f"{i}. {f}" for i, f in enumerate(r["findings"], 1)),
            "",
        ]
    rows = [
        f"| {e['model']} | {e['predicted_total']:,.0f} | {e['actual_total']:,.0f} | "
        f"{e['error_pct']:+.1f}% | {e['sd_parameters']:.1f} | {e['sd_sampling']:.1f} | "
        f"{e['z']:+.2f} | {'yes' if e['fits'] else 'no'} |"
        for e in after["errors"]
    ]
    lines += [
        "Holdout test of every model (after):",
        "",
        "| model | predicted | actual | error | sd parameters | sd sampling | z | fits |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", nargs=2, metavar=("NAME", "FOLDER"))
    ap.add_argument("--before", type=Path, help="checkout of the code before the check")
    ap.add_argument("--after", type=Path, default=ROOT)
    ap.add_argument("--seeds", type=int, default=200)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    t0 = time.perf_counter()
    flagged_true, z_true = simulate(args.seeds, 1.0)
    flagged_surge, z_surge = simulate(args.seeds, 1.3)
    sections = []
    for name in SETS:
        before, after = run_in(args.before, name), run_in(args.after, name)
        print(name, "done", file=sys.stderr)
        sections.append(_section(name, before, after))
    secs = time.perf_counter() - t0
    out = HERE / "results" / "clv_holdout.md"
    out.write_text(
        f"""# CLV holdout check and model-error band ({dt.date.today()})

`benchmarks/clv_holdout.py --before {args.before} --seeds {args.seeds}` on
{platform.machine()}, Python {platform.python_version()}; {secs:.0f} s wall time (load
average {os.getloadavg()[0]:.1f} at the end: the machine was shared). Each run: a fresh run folder, the clv stage
computed in-process by `segkit.stages.registry.run_stage("clv", run)`.

The test (`segkit.clv.diagnostics.holdout_test`): z = (A - P) / sqrt(sd_parameters² +
sd_sampling²), with sd_parameters the delta-method sd of the predicted holdout total P
and sd_sampling = sqrt(sum_i (a_i - p_i)²), the robust estimate of the chance in the
actual count A; the model does not fit when |z| > 1.96. The band: when it does not fit,
every range [low, high] becomes [low / f, high · f] with f = max(A/P, P/A).

{chr(10).join(sections)}
## Simulation: BG/NBD {{r 0.5, alpha 5, a 0.8, b 3}}, 2,000 customers, weeks

Observed 26-52 weeks, holdout 26 weeks, the tests' simulator
(`tests/test_clv_holdout.py::simulate_split`), seeds 100-{99 + args.seeds}; the test should
flag about 5 % when the model is true:

| holdout purchase rate | flagged (abs z > 1.96) | mean z | sd z |
|---|---|---|---|
| as calibrated (the model is true) | {flagged_true} of {args.seeds} | \
{np.mean(z_true):+.2f} | {np.std(z_true, ddof=1):.2f} |
| 30 % surge (a seasonal peak) | {flagged_surge} of {args.seeds} | \
{np.mean(z_surge):+.2f} | {np.std(z_surge, ddof=1):.2f} |
"""
    )
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
