"""The ``segkit`` command: ``run``, ``batch``, ``score``, ``notebooks``, ``params``.

Exit codes: 0 all good, 1 a stage (or a batch point) failed, 2 unusable input or parameters.
"""

from __future__ import annotations

import argparse
import sys

import yaml

from segkit.core.errors import SegkitError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="segkit", description="Reproducible customer segmentation")
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the stage notebooks into reports/<name>/")
    r.add_argument("--params", default="demo", help="parameter set name or YAML path")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one parameter, e.g. cluster.k=5 (repeatable)",
    )
    r.add_argument("--run-dir", default=None, help="run folder (default reports/<name>/)")
    r.add_argument("--stages", default=None, help="comma-separated stages, e.g. explore,clv")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    b = sub.add_parser("batch", help="run a grid of parameter sets")
    b.add_argument("grid", help="grid YAML: {name: ..., runs: [{params: ..., set: {...}}]}")
    b.add_argument("--workers", type=int, default=2)
    s = sub.add_parser(
        "score",
        help="assign new customers to the segments of an earlier run",
        description="Assign each customer of a table (Parquet or CSV with customer_id and the "
        "segmenter's feature columns, e.g. artifacts/customers.parquet of a newer run) to the "
        "segments of RUN. Customers outside the fitted ranges are flagged and left unassigned.",
    )
    s.add_argument("run", help="run folder (reports/<name>/) or a segmenter.joblib file")
    s.add_argument("customers", help="customer table to score (.parquet, .csv, .csv.gz)")
    s.add_argument("--out", default=None, help="output CSV (default: <customers>.segments.csv)")
    sub.add_parser("notebooks", help="re-execute the committed notebooks (nbval outputs)")
    p = sub.add_parser("params", help="show resolved, validated parameters")
    p.add_argument("name", nargs="?", default="demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "params":
            from segkit.core.params import load_params

            print(yaml.safe_dump(load_params(args.name, args.set), sort_keys=False), end="")
            return 0
        if args.command == "score":
            from segkit.segment import score_file

            out, scored = score_file(args.run, args.customers, args.out)
            flagged = int(scored["segment"].isna().sum())
            counts = scored["segment"].value_counts().sort_index()
            for seg, n in counts.items():
                name = scored.loc[scored["segment"] == seg, "segment_name"].iloc[0]
                print(f"segment {seg} {name}: {n:,}")
            print(f"flagged, not assigned (outside the fitted range): {flagged:,}")
            print(f"wrote {out} ({len(scored):,} customers)")
            return 0
        from segkit import pipeline

        if args.command == "notebooks":
            for path in pipeline.refresh_notebooks():
                print(f"refreshed {path}")
            return 0

        if args.command == "run":
            stages = args.stages.split(",") if args.stages else None
            res = pipeline.run(args.params, args.set, args.run_dir, stages, not args.quiet)
            print(f"{'ok' if res.ok else 'FAILED'}: {res.folder / 'index.html'}")
            return 0 if res.ok else 1
        results = pipeline.batch(args.grid, args.workers)
        for folder, ok, err in results:
            print(f"{'ok    ' if ok else 'FAILED'} {folder}" + (f"  {err}" if err else ""))
        return 0 if all(ok for _, ok, _ in results) else 1
    except SegkitError as exc:
        print(f"segkit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
