"""The campaign plan: Hillstrom, the demo's known truth over many seeds, and speed.

Run on demand (not in the tests)::

    nice -n 10 .venv/bin/python benchmarks/bench_plan.py                 # everything
    nice -n 10 .venv/bin/python benchmarks/bench_plan.py --part demo --seeds 50 --n 3000

Parts (each writes ``benchmarks/results/bench_plan_<part>.json``; the Markdown
``benchmarks/results/bench_plan.md`` is rebuilt from whichever JSON files exist):

- ``hillstrom``: the bundled Hillstrom run (parameter set ``hillstrom``), stages run
  in-process with :func:`segkit.stages.registry.run_stage`; the plan's expected profit
  against "send everyone the best campaign" and "send nobody", with 95 % intervals, and the
  segment × campaign pairs whose profit is positive at one-sided 2.5 % before and after
  the plan's rule (Holm over the whole plan).
- ``demo``: for each seed, the demo retailer with ``--n`` customers (the demo parameter
  set with cluster.k = 4, no bootstrap or gap statistic, to keep each seed small), the
  stages in-process, then the plan in three scenarios (:data:`SCENARIOS`). The
  plan's *realised* profit uses the generator's true campaign effects per true segment
  (``truth_effects.csv``): for every contacted customer, true lift in spend of the
  campaign sent × margin − cost. The oracle sends each customer the campaign that pays
  most for their true segment when it pays at all (no holdout, no uncertainty). A
  "false send" is a segment × campaign sent whose true mean profit per contact over its
  customers is ≤ 0; the share of seeds with one is the plan's realised family-wise
  error rate (target ≤ plan.alpha = 2.5 %).
- ``scale``: :func:`segkit.plan.build_plan` plus writing ``contacts.csv`` and
  ``contacts.parquet`` as the stage does, on 1,000,000 synthetic customers (8 segments,
  3 campaigns, 2 channels, 80 % consent, a budget that binds); median of 3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from segkit import plan as planlib  # noqa: E402
from segkit.stages import plan as plan_stage  # noqa: E402
from segkit.stages.registry import run_stage  # noqa: E402
from segkit.stages.run import Run  # noqa: E402

RESULTS = HERE / "results"
#: (cost per contact, plan.alpha) of the demo part: the demo's cost, a cheaper contact, and
#: the cheaper contact with a loose rule (to show what the error-rate guarantee costs).
SCENARIOS = ((0.5, 0.025), (0.1, 0.025), (0.1, 0.25))
SCRATCH = Path(tempfile.gettempdir()) / "segkit-bench-plan"


def _stages(run: Run, names=("explore", "cluster", "abtest")) -> None:
    for name in names:
        run_stage(name, run)


def _with_plan(run: Run, **plan) -> Run:
    """The same run folder with other plan settings (the other artifacts reused)."""
    return Run(run.folder, {**run.params, "plan": {**run.params["plan"], **plan}})


# ----------------------------------------------------------------------------- hillstrom


def part_hillstrom() -> dict:
    t0 = time.perf_counter()
    run = Run.open("hillstrom", SCRATCH / "hillstrom")
    _stages(run)
    res = plan_stage.run(run)
    t = res.table
    raw_pos = t[(t["p_profit"] < 0.025) & (t["profit_per_contact"] > 0)]
    recs = pd.read_csv(run.path("ab_recommendations.csv"))
    recs = recs[recs["segment_col"] == "segment"]
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "comparison": res.comparison.drop(columns=["campaign"]).to_dict("records"),
        "pairs": len(t),
        "raw_positive": [f"{r.segment_name} / {r.campaign}" for r in raw_pos.itertuples()],
        "after_rule": [
            f"{r.segment_name} / {r.campaign}"
            for r in t[t["p_adjusted"] < 0.025].itertuples()
            if r.profit_per_contact > 0
        ],
        "ab_stage_send": [
            f"{r.label} / {r.campaign}" for r in recs.itertuples() if r.action == "send"
        ],
        "table": t[
            [
                "segment_name",
                "campaign",
                "contacts",
                "profit_per_contact",
                "p_profit",
                "p_adjusted",
                "decision",
            ]
        ].to_dict("records"),
    }


# ----------------------------------------------------------------------------- demo truth


def _truth(run: Run, margin: float, cost: float) -> tuple[pd.Series, pd.DataFrame]:
    """True segment per customer, and true profit per contact by (true segment, campaign)."""
    seg = pd.read_parquet(run.path("truth_segments.parquet")).set_index("customer_id")[
        "true_segment"
    ]
    eff = pd.read_csv(run.path("truth_effects.csv"))
    eff = eff[eff["metric"] == "spend"]
    profit = eff.pivot(index="segment", columns="arm", values="abs_effect") * margin - cost
    return seg, profit


def _realised(run: Run, res, margin: float, cost: float) -> dict:
    seg, profit = _truth(run, margin, cost)
    contacts = pd.read_parquet(run.path("contacts.parquet"))
    sent = contacts[~contacts["holdout"]]
    true_seg = seg.reindex(sent["customer_id"]).to_numpy()
    per = profit.to_numpy()[true_seg - 1, [list(profit.columns).index(a) for a in sent["campaign"]]]
    pairs = sent.assign(true=per).groupby(["segment", "campaign"])["true"].mean()
    best = profit.clip(lower=0).max(axis=1)
    oracle = float(best.reindex(seg.to_numpy()).sum())
    comp = res.comparison.set_index("campaign")
    return {
        "realised": float(per.sum()),
        "oracle": oracle,
        "expected": float(comp.loc["plan", "expected_profit"]),
        "expected_low": float(comp.loc["plan", "expected_profit_low"]),
        "expected_high": float(comp.loc["plan", "expected_profit_high"]),
        "contacts": int(len(sent)),
        "holdout": int(contacts["holdout"].sum()),
        "false_sends": int((pairs <= 0).sum()),
        "pairs_sent": int(len(pairs)),
    }


def part_demo(seeds: int, n: int) -> dict:
    rows = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        folder = SCRATCH / f"demo-{seed}"
        shutil.rmtree(folder, ignore_errors=True)
        params = {
            "name": f"demo-{seed}",
            "seed": seed,
            "data": {"demo": {"n_customers": n}},
            "cluster": {"k": 4, "n_bootstrap": 0, "gap_references": 0},
            "abtest": {"value_metric": "spend", "cost_per_contact": 0.5},
        }
        run = Run.open(params, folder)
        _stages(run)
        margin = run.params["clv"]["margin"]
        for cost, alpha in SCENARIOS:
            r = _with_plan(run, cost_per_contact=cost, alpha=alpha)
            res = plan_stage.run(r)
            rows.append(
                {"seed": seed, "cost": cost, "alpha": alpha, **_realised(r, res, margin, cost)}
            )
        shutil.rmtree(folder, ignore_errors=True)
        print(f"seed {seed}: {time.perf_counter() - t0:.1f} s", rows[-2:], flush=True)
    return {"seeds": seeds, "n": n, "rows": rows}


# ----------------------------------------------------------------------------- scale


def synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    k, arms = 8, ["a", "b", "c"]
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series([f"C{i:07d}" for i in range(n)], dtype=object),
            "segment": rng.integers(1, k + 1, n).astype(str),
            "expected_clv": rng.gamma(2, 30, n),
            "reason": np.where(rng.random(n) < 0.8, "", "no consent"),
        }
    )
    frame["segment_name"] = "segment " + frame["segment"]
    eff = pd.DataFrame(
        [
            {
                "metric": "spend",
                "segment_col": "segment",
                "segment": str(s),
                "arm": a,
                "abs_lift": float(rng.normal(1.0, 1.0)),
                "se": 0.2,
                "df": 5000.0,
                "n_control": 5000,
                "n_treatment": 5000,
                "evaluated": True,
            }
            for s in range(1, k + 1)
            for a in arms
        ]
    )
    return frame, eff


def part_scale(n: int, repeats: int = 3) -> dict:
    frame, eff = synthetic(n)
    costs = planlib.cost_table({"sms": 0.3}, ["a", "b", "c"], ["email", "sms"], 0.1)
    s = planlib.Settings(
        metric="spend",
        segment_col="segment",
        costs=costs,
        margin=0.3,
        alpha=0.025,
        test_alpha=0.05,
        power=0.8,
        budget=30_000.0,
        segment_caps={},
        channel_caps={"sms": 50_000},
        min_segment_size=100,
        min_holdout=100,
        max_holdout_share=0.5,
        seed=1,
    )
    out = SCRATCH / "scale"
    out.mkdir(parents=True, exist_ok=True)
    build, write = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = planlib.build_plan(eff, frame, s)
        t1 = time.perf_counter()
        p.contacts.to_parquet(out / "contacts.parquet", index=False)
        p.contacts.assign(holdout=np.where(p.contacts["holdout"], "true", "false")).to_csv(
            out / "contacts.csv", index=False, float_format="%.10g", lineterminator="\n"
        )
        t2 = time.perf_counter()
        build.append(t1 - t0)
        write.append(t2 - t1)
    stage = _time_stage(frame, eff, out / "run", repeats)
    cli = _time_cli(out / "run")
    return {
        "n": n,
        "stage": stage,
        "cli": cli,
        "build": float(np.median(build)),
        "write": float(np.median(write)),
        "contacts": int(len(p.contacts)),
    }


def _time_stage(frame: pd.DataFrame, eff: pd.DataFrame, folder: Path, repeats: int) -> float:
    """The whole stage function (reading the artifacts, consent, CLV, the plan, writing
    plan.csv, contacts.csv/.parquet, counts) on a run folder whose upstream artifacts are
    written synthetically for ``frame``'s customers."""
    from segkit.core.params import load_params

    shutil.rmtree(folder, ignore_errors=True)
    params = load_params(
        "demo",
        {
            "abtest.value_metric": "spend",
            "plan.consent_column": "email_opt_in",
            "plan.cost_per_contact": {"sms": 0.3},
            "plan.channels": ["email", "sms"],
            "plan.budget": 30_000.0,
        },
    )
    run = Run(folder, params)
    run.artifacts.mkdir(parents=True)
    import yaml

    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ids = frame["customer_id"]
    run.save(
        "customers.parquet",
        pd.DataFrame(
            {"customer_id": ids, "email_opt_in": np.where(frame["reason"] == "", "yes", "no")}
        ),
    )
    segs = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": frame["segment"].astype(int),
            "segment_name": frame["segment_name"],
        }
    )
    run.save("segments.parquet", segs)
    run.save("clv.parquet", pd.DataFrame({"customer_id": ids, "clv": frame["expected_clv"]}))
    run.save("experiment.parquet", pd.DataFrame({"customer_id": ids[:10], "arm": "a"}))
    run.save("ab_effects.csv", eff)
    run.save("data_quality.json", {"customers": {}})
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plan_stage.run(run)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _time_cli(folder: Path) -> float:
    """Wall time of ``segkit plan FOLDER`` (a new process: kernel, notebook, report, swap)
    on the folder of :func:`_time_stage`, made to look finished (params.yaml, manifest)."""
    import subprocess

    import yaml

    from segkit.stages.registry import STAGES

    run = Run(folder, {})
    params = (
        yaml.safe_load((folder / "params.yaml").read_text())
        if (folder / "params.yaml").exists()
        else None
    )
    if params is None:
        raise SystemExit(f"{folder} has no params.yaml")
    rows = {
        st.name: {"stage": st.name, "status": "ok", "seconds": 0.0, "error": None, "headline": ""}
        for st in STAGES
        if st.name != "plan"
    }
    (run.folder / "manifest.json").write_text(json.dumps({"written_by": "segkit", "stages": rows}))
    cmd = [
        sys.executable,
        "-m",
        "segkit.cli",
        "plan",
        str(folder),
        "--quiet",
        "--set",
        "plan.budget=40000",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=HERE.parent)
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- report


def _m(v: float) -> str:
    return f"{v:,.0f}"


def _md_hillstrom(h: dict) -> list[str]:
    out = [
        "## Hillstrom (parameter set `hillstrom`)",
        "",
        f"Stages explore → cluster → abtest → plan in-process ({h['seconds']} s). Expected "
        "incremental profit over the customer base, 95 % intervals from the lifts' standard errors:",
        "",
        "| strategy | contacts | cost | expected profit | 95 % interval |",
        "|---|---|---|---|---|",
    ]
    for r in h["comparison"]:
        out.append(
            f"| {r['strategy']} | {r['contacts']:,} | {_m(r['cost'])} | {_m(r['expected_profit'])} "
            f"| {_m(r['expected_profit_low'])} to {_m(r['expected_profit_high'])} |"
        )
    out += [
        "",
        f"Segment × campaign pairs with positive profit at one-sided 2.5 %: "
        f"{len(h['raw_positive'])} of {h['pairs']} unadjusted "
        f"({'; '.join(h['raw_positive']) or 'none'}); {len(h['after_rule'])} after Holm over "
        f"the whole plan ({'; '.join(h['after_rule']) or 'none'}). "
        f"The A/B stage's own rule (Holm within the segment breakdown) sends: "
        f"{'; '.join(h['ab_stage_send']) or 'nothing'}.",
        "",
    ]
    return out


def _md_demo(d: dict) -> list[str]:
    t = pd.DataFrame(d["rows"])
    out = [
        f"## Demo retailer: realised profit against the oracle ({d['seeds']} seeds × {d['n']:,} customers)",
        "",
        "Realised = the true expected profit of the customers the plan contacts (true lift of "
        "the campaign sent in their true segment × margin − cost); oracle = every customer "
        "sent the campaign that truly pays most for their segment, when one pays. The last "
        "two columns are over the seeds where the plan sends something.",
        "",
        "| cost per contact | plan.alpha | seeds sending anything | realised profit, mean (sd) | "
        "oracle, mean | realised / oracle (sums) | seeds with a false send | plan's own estimate / "
        "realised (sums) | its 95 % interval covers the realised |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (cost, alpha), g in t.groupby(["cost", "alpha"], sort=False):
        s = g[g["contacts"] > 0]
        covered = int(
            ((s["expected_low"] <= s["realised"]) & (s["realised"] <= s["expected_high"])).sum()
        )
        ratio = f"{s['expected'].sum() / s['realised'].sum():.2f}" if len(s) else "–"
        out.append(
            f"| {cost:g} | {alpha:g} | {len(s)}/{len(g)} | {_m(g['realised'].mean())} ({_m(g['realised'].std())}) "
            f"| {_m(g['oracle'].mean())} | {g['realised'].sum() / g['oracle'].sum():.1%} "
            f"| {int((g['false_sends'] > 0).sum())}/{len(g)} | {ratio} | {covered}/{len(s)} |"
        )
    out += [""]
    return out


def _md_scale(s: dict) -> list[str]:
    return [
        f"## Speed on {s['n']:,} customers",
        "",
        "| step | wall time (median of 3) |",
        "|---|---|",
        f"| `segkit.plan.build_plan` (decision, allocation, holdouts, seeded draw, counts) | {s['build']:.2f} s |",
        f"| writing contacts.csv + contacts.parquet ({s['contacts']:,} rows) | {s['write']:.2f} s |",
        f"| the stage, `segkit.stages.plan.run` (reads the run's artifacts, consent, CLV, the plan, writes every plan artifact) | {s['stage']:.2f} s |",
        f"| `segkit plan FOLDER --set plan.budget=40000` as a command (a new process: the notebook kernel, the stage, the report, index and manifest, the swap; once) | {s.get('cli', float('nan')):.1f} s |",
        "",
        "Synthetic inputs (`synthetic()` in the script): 8 segments × 3 campaigns × 2 channels, "
        "80 % consent, a budget that binds (and, for the first two rows, an sms cap); for "
        "the stage, the upstream "
        "artifacts (customers, segments, CLV, A/B effects) are written for those customers. "
        "The command runs on that same folder, made to look like a finished run "
        "(params.yaml and a manifest).",
        "",
    ]


def write_markdown() -> Path:
    parts = {p: RESULTS / f"bench_plan_{p}.json" for p in ("hillstrom", "demo", "scale")}
    have = {p: json.loads(f.read_text()) for p, f in parts.items() if f.is_file()}
    lines = [
        f"# Campaign plan benchmark ({dt.date.today()})",
        "",
        f"`benchmarks/bench_plan.py` on {platform.machine()}, Python {platform.python_version()}, "
        "OMP_NUM_THREADS=1, on a machine shared with other jobs (2 cores).",
        "",
    ]
    if "hillstrom" in have:
        lines += _md_hillstrom(have["hillstrom"])
    if "demo" in have:
        lines += _md_demo(have["demo"])
    if "scale" in have:
        lines += _md_scale(have["scale"])
    path = RESULTS / "bench_plan.md"
    path.write_text("\n".join(lines))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--part", choices=["hillstrom", "demo", "scale", "all", "report"], default="all"
    )
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    parts = ["hillstrom", "demo", "scale"] if args.part == "all" else [args.part]
    for part in parts:
        if part == "report":
            continue
        result = (
            part_hillstrom()
            if part == "hillstrom"
            else part_demo(args.seeds, args.n)
            if part == "demo"
            else part_scale(args.rows)
        )
        (RESULTS / f"bench_plan_{part}.json").write_text(json.dumps(result, indent=1, default=str))
    print(write_markdown().read_text())


if __name__ == "__main__":
    main()
