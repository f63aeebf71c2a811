"""Figures for the closing note of issue 15: segkit on two customer tables (no transaction log).

1. the bundled wholesale set (parameter set ``wholesale``: 440 clients, spend per category,
   channel and region; value = the derived total spend);
2. ``datasets.make_customer_table(n=2000, seed=42)``: a synthetic CRM export with four known
   segments (``datasets.TABLE_SEGMENTS``) and known response rates (``TABLE_OUTCOMES``),
   with the parameter set :data:`SYNTHETIC` below.

Each runs the stages explore, cluster and profile in-process, one at a time, through
``segkit.stages.registry.run_stage`` (not ``segkit run``), in a temporary run folder, and
reports: k chosen and why (the measures of ``k_selection.csv``), the adjusted Rand index
against the known segments (synthetic only; sklearn's ``adjusted_rand_score``), the value
ordering (segment: mean value), the features used and left out (``cluster_features.csv``)
and the suggested action per segment (``actions.csv``). Wall times per stage are printed
for orientation only (a shared 2-core machine, ``OMP_NUM_THREADS=1``).

    cd <repo> && OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python \\
        benchmarks/customer_table_quality.py

writes ``benchmarks/results/customer_table_quality.md``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score

from segkit import Run, datasets
from segkit.stages.registry import run_stage

OUT = Path(__file__).resolve().parent / "results" / "customer_table_quality.md"
STAGES = ("explore", "cluster", "profile")

#: The synthetic table's parameter set (the table itself is written to a temporary CSV).
SYNTHETIC = {
    "name": "synthetic_crm",
    "seed": 42,
    "data": {
        "source": "files",
        "customers": {
            "path": "",  # filled in below
            "id_from_row": True,
            "derive": {
                "total_spend": "MntWines + MntMeatProducts + MntFruits",
                "age": "2014 - Year_Birth",
                "children": "Kidhome + Teenhome",
            },
            "labels": {
                "MntWines": "wine spend",
                "MntMeatProducts": "meat spend",
                "MntFruits": "fruit spend",
                "NumWebPurchases": "web purchases",
                "NumStorePurchases": "store purchases",
                "NumDealsPurchases": "deal purchases",
                "Dt_Customer": "joining",
                "AcceptedCmp1": "campaign 1 acceptance",
                "Response": "last campaign response",
                "Complain": "complaints",
                "total_spend": "total spend",
            },
        },
    },
    "cluster": {
        "features": [
            "Income",
            "age",
            "children",
            "days_since_Dt_Customer",
            "MntWines",
            "MntMeatProducts",
            "MntFruits",
            "NumWebPurchases",
            "NumStorePurchases",
            "NumDealsPurchases",
        ],
        "categorical": ["Education"],
        "value": "total_spend",
        "k_min": 2,
        "k_max": 8,
    },
}


def run_all(run: Run) -> tuple[dict, dict[str, float]]:
    """The three stages in order; their results and wall times (s)."""
    results, times = {}, {}
    for name in STAGES:
        t0 = time.perf_counter()
        results[name] = run_stage(name, run)
        times[name] = time.perf_counter() - t0
    return results, times


def _table(df: pd.DataFrame) -> list[str]:
    """A DataFrame as a markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return lines + [""]


SUMMARY: list[str] = []  # one line per run, written first


def section(title: str, run: Run, results: dict, times: dict, truth: pd.Series | None) -> list:
    """The figures of one run in markdown (and its line of :data:`SUMMARY`)."""
    cl, pr = results["cluster"], results["profile"]
    seg = cl.segments.set_index("customer_id")["segment"]
    acts = " · ".join(pr.actions["action"])
    lines = [f"## {title}", "", f"Run: `{run.params['name']}`, seed {run.seed}.", ""]
    lines += ["### k chosen and why", "", f"k = {cl.k}. {cl.explanation}", ""]
    measures = [
        "k",
        "silhouette",
        "calinski_harabasz",
        "davies_bouldin",
        "gap",
        "min_stability",
        "min_size",
        "admissible",
        "recommended",
    ]
    lines += _table(cl.k_selection[[c for c in measures if c in cl.k_selection.columns]])
    if truth is not None:
        ari = adjusted_rand_score(truth.loc[seg.index].to_numpy(), seg.to_numpy())
        SUMMARY.append(f"| {title} | {cl.k} | {ari:.3f} | {acts} |")
        mix = pd.crosstab(seg.rename("found"), truth.loc[seg.index].rename("true"))
        lines += [
            "### Agreement with the known segments",
            "",
            f"Adjusted Rand index (sklearn `adjusted_rand_score`) = **{ari:.3f}**.",
            "",
            "Found segment (rows) × true segment (columns, as `datasets.TABLE_SEGMENTS`):",
            "",
        ]
        lines += _table(mix.reset_index())
    if truth is None:
        SUMMARY.append(f"| {title} | {cl.k} | (no truth) | {acts} |")
    value = cl.value
    sizes = cl.sizes.rename(columns={"customers": "customers", "share": "share"})
    lines += ["### Value ordering", "", f"Segments numbered by mean `{value}` (1 = highest):", ""]
    lines += _table(sizes[["segment", "segment_name", "customers", f"mean_{value}"]])
    table = cl.feature_table
    used, out = table[table["used"]], table[~table["used"] & (table["role"] != "id")]
    lines += ["### Features used and left out (`cluster_features.csv`)", ""]
    lines += [f"Used ({len(used)}): " + ", ".join(f"`{f}`" for f in used["feature"]) + ".", ""]
    lines += _table(out[["feature", "role", "reason"]])
    lines += ["### Actions per segment (`actions.csv`)", ""]
    lines += _table(pr.actions[["segment", "segment_name", "action", "reason"]])
    lines += ["### Profile findings", ""] + [f"- {f}" for f in pr.findings] + [""]
    lines += [
        "Wall time per stage (s, orientation only): "
        + ", ".join(f"{k} {v:.1f}" for k, v in times.items()),
        "",
    ]
    return lines


def main() -> None:
    lines = [
        "# customer_table_quality",
        "",
        "Produced by `OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python "
        "benchmarks/customer_table_quality.py` (stages explore, cluster, profile in-process "
        "via `segkit.stages.registry.run_stage`, one at a time, in a temporary run folder).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        run = Run.open("wholesale", Path(tmp) / "wholesale")
        results, times = run_all(run)
        lines += section(
            "Wholesale customers (parameter set `wholesale`)", run, results, times, None
        )

        ct = datasets.make_customer_table(n=2000, seed=42)
        csv = Path(tmp) / "crm.csv"
        ct.table.to_csv(csv, index=False)
        ids = [f"R{i + 1:06d}" for i in range(len(ct.table))]  # id_from_row numbers rows
        truth = pd.Series(ct.truth["true_segment"].to_numpy(), index=ids)
        title = "Synthetic CRM export (`datasets.make_customer_table(n=2000, seed=42)`)"
        for variant, features in (
            ("features as listed in SYNTHETIC", True),
            ("default features (no cluster.features / cluster.categorical)", False),
        ):
            params = {
                **SYNTHETIC,
                "data": {**SYNTHETIC["data"]},
                "cluster": {**SYNTHETIC["cluster"]},
            }
            params["data"]["customers"] = {**SYNTHETIC["data"]["customers"], "path": str(csv)}
            if not features:  # as a new user who lists no features would run it
                params["cluster"].pop("features")
                params["cluster"].pop("categorical")
                params["name"] = "synthetic_crm_default_features"
            run = Run.open(params, Path(tmp) / params["name"])
            results, times = run_all(run)
            lines += section(f"{title}, {variant}", run, results, times, truth)
    head = ["| run | k | ARI vs truth | actions, segment 1 first |", "|---|---|---|---|"]
    lines[4:4] = ["## Summary", "", *head, *SUMMARY, ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
