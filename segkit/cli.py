"""The ``segkit`` command: ``run``, ``plan``, ``batch``, ``init``, ``score``, ``params``,
``notebooks``.

Exit codes: 0 all good; 1 a stage (or a batch point) failed, or the run could not finish
(full or read-only disk); 2 unusable input or parameters (nothing ran); 130 interrupted
(Ctrl-C or SIGTERM; the previous run folder is intact).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from segkit.core.errors import SegkitError
from segkit.core.params import bundled_sets, load_params
from segkit.stages.registry import NAMES, STAGES

EXIT_CODES = """exit codes: 0 ok; 1 a stage failed (its report says why) or the disk was full;
2 unusable input or parameters (nothing ran); 130 interrupted (the previous run is intact)"""


def _sets(kind: str) -> str:
    return ", ".join(n for n, k in bundled_sets().items() if k == kind)


def _sub(sub: Any, name: str, summary: str, description: str, examples: str) -> Any:
    return sub.add_parser(
        name,
        help=summary,
        description=textwrap.fill(description, 88),
        epilog="examples:\n" + textwrap.indent(examples.strip(), "  ") + "\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _add_run(sub: Any) -> None:
    stages = ", ".join(f"{s.name} ({s.notebook})" for s in STAGES)
    r = _sub(
        sub,
        "run",
        "run every stage of one parameter set into reports/<name>/",
        "Run the stage notebooks of one parameter set with papermill and write a run folder "
        "(reports/<name>/ under the current folder): HTML reports, artifacts, manifest.json "
        f"and index.html. Stages, in order: {stages}. Bundled parameter sets: {_sets('parameter set')}.",
        """
segkit run                                    # the demo retailer, every stage
segkit run --params online_retail             # a bundled parameter set
segkit run --params params.yaml --set cluster.k=5
segkit run --params cdnow --stages explore,clv
""",
    )
    r.add_argument("--params", default="demo", help="bundled set name or YAML file (default: demo)")
    r.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one parameter, e.g. cluster.k=5 (repeatable; value read as YAML)",
    )
    r.add_argument("--run-dir", default=None, help="run folder (default: reports/<name>/)")
    r.add_argument("--stages", default=None, help=f"comma-separated subset of: {','.join(NAMES)}")
    r.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_plan(sub: Any) -> None:
    p = _sub(
        sub,
        "plan",
        "rerun only the campaign plan of a run folder with new plan settings",
        "Make the campaign plan (stage 06) of an existing run folder again with new plan.* "
        "settings (budget, costs, caps, consent, suppression), reusing the other stages' "
        "results: seconds, not a full run. The report, plan.csv and contacts.csv are "
        "replaced only when the new plan succeeds; a failure leaves the run as it was.",
        """
segkit plan reports/demo --set plan.budget=5000
segkit plan reports/hillstrom --set plan.channels=[email,sms] \\
    --set "plan.cost_per_contact={email: 0.1, sms: 0.3}" --set "plan.max_contacts_channel={sms: 2000}"
""",
    )
    p.add_argument("run_dir", help="run folder written by `segkit run` (reports/<name>/)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one plan.* parameter, e.g. plan.budget=5000 (repeatable)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress line")


def _add_batch(sub: Any) -> None:
    b = _sub(
        sub,
        "batch",
        "run a grid of parameter sets, one run folder each",
        "Run every point of a grid file into reports/<grid name>/<run>/ and write "
        "reports/<grid name>/index.html linking them. A grid is YAML: {name: g, runs: "
        f"[{{params: cdnow}}, {{params: demo, set: {{cluster.k: 5}}, name: demo-k5}}]}}. "
        f"Bundled grids: {_sets('grid')}.",
        "segkit batch notebooks/params/bundled.yaml\nsegkit batch bundled --workers 1",
    )
    b.add_argument("grid", help="grid YAML file, or the name of a bundled grid")
    b.add_argument(
        "--workers", type=int, default=2, help="runs at a time (default 2; threads are shared)"
    )
    b.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_init(sub: Any) -> None:
    """``segkit init DIR [--from FILE]``."""
    i = _sub(
        sub,
        "init",
        "create a project folder for your own data",
        "Create DIR with a commented params.yaml, the stage notebooks in notebooks/ and "
        "reports/. Without --from, params.yaml runs as it is on an example data set in data/. "
        "With --from FILE, segkit reads your file, decides whether it is a transaction log, a "
        "customer table or an experiment, and writes params.yaml for it: every inferred role "
        "with its reason, the columns left out and why, the value column, and TODO comments "
        "to check. --from takes several files (one of each kind, e.g. a transaction log, "
        "the customer table and an experiment on those customers).",
        "segkit init my-project\ncd my-project && segkit run --params params.yaml\n"
        "segkit init my-crm --from crm_export.csv\n"
        "segkit init my-test --from orders.csv campaign.csv customers.csv",
    )
    i.add_argument("dir", nargs="?", help="new or empty folder")
    i.add_argument(
        "--from",
        dest="sources",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE",
        help="your data files (CSV, .gz, Parquet, Excel), one of each kind",
    )


def _add_other(sub: Any) -> None:
    s = _sub(
        sub,
        "score",
        "assign new customers to the segments of an earlier run",
        "Assign each customer of a table (Parquet or CSV with customer_id and the segmenter's "
        "feature columns, e.g. artifacts/customers.parquet of a newer run) to the segments of "
        "RUN. Customers outside the fitted ranges are flagged and left unassigned. The duckdb "
        "engine streams the table in batches into a CSV (or a .parquet file); the spark engine "
        "(k-means segmenters) reads Parquet or a table of the Spark catalog, and Spark writes "
        "the scored table as a Parquet folder: nothing per customer comes to this process. "
        "--clv adds each customer's CLV from the run's CLV model, --contacts draws the run's "
        "campaign plan from the scored customers and writes its contact list.",
        "segkit score reports/demo reports/demo/artifacts/customers.parquet --out scored.csv\n"
        "segkit score reports/demo reports/demo/artifacts/customers.parquet --out scored.csv "
        "--clv --contacts contacts.parquet\n"
        "segkit score reports/demo s3a://shop/customers/ --out s3a://shop/scored.parquet "
        "--engine spark --clv --contacts s3a://shop/contacts.parquet",
    )
    s.add_argument("run", help="run folder (reports/<name>/)")
    s.add_argument(
        "customers",
        help="customer table to score (.parquet, .csv, .csv.gz; with spark: a Parquet file, "
        "folder or URI, or a table name)",
    )
    s.add_argument(
        "--out",
        default=None,
        help="output: a CSV or .parquet file with duckdb (default <customers>.segments.csv), "
        "a Parquet folder with spark (default <customers>.segments.parquet)",
    )
    s.add_argument(
        "--engine",
        choices=["duckdb", "spark"],
        default=None,
        help="where to score (default: the run's engine parameter); spark uses the active "
        "SparkSession or one built from the run's spark parameters",
    )
    s.add_argument(
        "--contacts",
        default=None,
        metavar="PATH",
        help="also draw the run's campaign plan (artifacts/plan.csv) from the scored "
        "customers and write its contact list here as Parquet, through the engine (a folder "
        "on spark); the customer table must hold the plan's consent and last-contact "
        "columns; with --clv the expected value is the CLV",
    )
    s.add_argument(
        "--clv",
        action="store_true",
        help="also each customer's CLV from the run's CLV model (artifacts/clv_params.json): "
        "P(alive), expected purchases and spend, CLV with its interval; the table needs "
        "frequency, recency, T and monetary in the run's time unit (as customers.parquet)",
    )
    p = _sub(
        sub,
        "params",
        "show a parameter set resolved and validated (or list the bundled ones)",
        "Print the parameters a run would use: the defaults, laid over by the set, laid over "
        f"by --set. Bundled sets: {_sets('parameter set')}; grids: {_sets('grid')}.",
        "segkit params hillstrom\nsegkit params my.yaml --set clv.horizon_months=6\n"
        "segkit params --list",
    )
    p.add_argument("name", nargs="?", default="demo", help="bundled set name or YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override")
    p.add_argument("--list", action="store_true", help="list the bundled sets and grids")
    n = _sub(
        sub,
        "notebooks",
        "re-execute the committed notebooks in place (development)",
        "Re-execute notebooks/0*.ipynb with their default parameters and save their outputs "
        "(what `pytest --nbval` compares against). This rewrites tracked files: it asks "
        "first, or needs --yes.",
        "segkit notebooks --yes",
    )
    n.add_argument("--yes", action="store_true", help="rewrite without asking")


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``segkit`` command."""
    ap = argparse.ArgumentParser(
        prog="segkit",
        description="Reproducible customer segmentation: data quality, segments, profiles, "
        "customer lifetime value and A/B evaluation, as parameterized notebooks with HTML "
        "reports.",
        epilog="Run `segkit COMMAND --help` for a command's options and examples.\n\n" + EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="show papermill's log too")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_plan(sub)
    _add_batch(sub)
    _add_init(sub)
    _add_other(sub)
    return ap


def _run_folder(run: Path) -> Path:
    """The run folder of ``segkit score RUN``: RUN itself, or the run of its segmenter.json."""
    return run if run.is_dir() else run.parent.parent


def _run_parameters(folder: Path) -> dict[str, Any]:
    """The parameters recorded in the run folder's manifest.json ({} without one)."""
    import json

    try:
        params = json.loads((folder / "manifest.json").read_text())["parameters"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return params if isinstance(params, dict) else {}


def _value_model(folder: Path) -> Any:
    """The CLV model of run ``folder``, checked against the run's manifest.

    Raises
    ------
    SegkitError
        The run has no CLV model, or it changed since the run wrote it.
    """
    from segkit.clv import ValueModel
    from segkit.stages.run import verify_artifact

    path = folder / "artifacts" / "clv_params.json"
    if not path.is_file():
        raise SegkitError(
            f"--clv: run {folder} has no CLV model ({path} not found); run its CLV stage "
            f"first (segkit run ... --stages clv), or score without --clv"
        )
    verify_artifact(folder, path, "the CLV model", "the CLV stage")
    return ValueModel.load(path)


def _score(args: argparse.Namespace) -> int:
    """Score a customer table: duckdb streams it in batches (bounded memory); spark scores
    and writes on the engine. Print the counts."""
    from segkit.segment import Segmenter
    from segkit.segment.scorefile import default_target, score_to_csv
    from segkit.stages.cluster import verify_segmenter

    verify_segmenter(Path(args.run))
    seg = Segmenter.load(args.run)
    folder = _run_folder(Path(args.run))
    params = _run_parameters(folder)
    value = _value_model(folder) if args.clv else None
    engine = args.engine or params.get("engine", "duckdb")
    plan = _plan_inputs(folder, params) if args.contacts else None
    if engine == "spark":
        from segkit.engine import backend, scoring

        scoring.check_method(seg)  # before a Spark session is started
        uri = scoring.default_target(args.customers, args.out)
        con = backend.connect("spark", params.get("spark"))
        summary = scoring.score_to_parquet(con, args.customers, seg, uri, value=value)
    else:
        target = default_target(args.customers, args.out)
        shown = _score_progress() if sys.stderr.isatty() else None
        summary, _ = score_to_csv(seg, args.customers, target, value=value, progress=shown)
        if shown is not None:
            sys.stderr.write("\r\033[K")  # the progress line gives way to the summary
        con = None
    if summary.value is not None:
        summary.value.currency = str((params.get("report") or {}).get("currency") or "")
    print("\n".join(summary.lines()))
    print(f"wrote {summary.path} ({summary.rows:,} customers)")
    if plan is not None:
        _score_contacts(plan, con, str(summary.path), args.customers, args.contacts)
    return 0


def _score_progress() -> Any:
    """A progress line on the terminal for ``segkit score`` (one update per batch)."""

    def show(done: int, total: int) -> None:
        of = f" of {total:,}" if total else ""
        sys.stderr.write(f"\r\033[Kscored {done:,}{of} customers")
        sys.stderr.flush()

    return show


def _plan_inputs(folder: Path, params: dict) -> dict[str, Any]:
    """What ``--contacts`` draws from run ``folder`` (its plan, exclusions, seed: the
    parameters from the manifest), read and checked before any scoring."""
    from segkit.stages.plan import engine_inputs
    from segkit.stages.run import Run

    if not params and (folder / "params.yaml").is_file():  # a run opened in a notebook
        params = yaml.safe_load((folder / "params.yaml").read_text()) or {}
    if not params:
        raise SegkitError(
            f"--contacts: {folder} has neither manifest.json nor params.yaml with the run's "
            "parameters (a folder written by segkit run or Run.open)"
        )
    return engine_inputs(Run(folder, params))  # errors now, not after scoring


def _score_contacts(given: dict[str, Any], con: Any, scored: str, source: str, out: str) -> None:
    """Draw the plan ``given`` (:func:`_plan_inputs`) from the scored customers on the
    engine, write the contact list at ``out`` through it and print the customers per
    reason."""
    from segkit.engine import backend
    from segkit.engine import contacts as on_engine

    con = con if con is not None else backend.connect("duckdb")
    if scored.lower().endswith((".csv", ".csv.gz")):  # ids as written, not re-typed
        t = con.read_csv(scored, all_varchar=True)
    else:
        t = backend.table(con, scored, what="scored customers")
    ex = given["exclusions"]
    wanted = [ex.consent_column, ex.last_contact_days, given["value"]]
    if given["segment_col"] not in ("all", "segment"):
        wanted.append(given["segment_col"])
    src = backend.table(con, source, what="customer table")
    extra = [c for c in dict.fromkeys(wanted) if c and c in src.columns and c not in t.columns]
    if extra:
        right = src.select(*extra, _id=src["customer_id"].cast("string"))
        t = t.mutate(_id=t["customer_id"].cast("string"))
        t = t.inner_join(right, "_id").drop("_id")
    value_col = "clv" if "clv" in t.columns else (given["value"] or None)
    every = on_engine.contact_expr(
        t,
        given["plan"],
        seed=given["seed"],
        segment_col=given["segment_col"],
        value_col=value_col if value_col in t.columns else None,
        exclusions=ex,
        send_date=given["send_date"],
    )
    written = backend.write_parquet(on_engine.contact_list(every), out)
    counts = on_engine.reason_counts(every)
    print("contact list, customers per reason:")
    for r in counts.itertuples(index=False):
        print(f"  {r.reason}: {r.customers:,}")
    print(f"wrote {written} (contacted and holdout customers)")


def _notebooks(args: argparse.Namespace) -> int:
    from segkit.pipeline import refresh_notebooks

    if not args.yes:
        if not sys.stdin.isatty():
            raise SegkitError("segkit notebooks rewrites the committed notebooks: add --yes")
        if input("Rewrite the outputs of notebooks/0*.ipynb? [y/N] ").strip().lower() != "y":
            print("nothing rewritten")
            return 0
    for path in refresh_notebooks():
        print(f"refreshed {path}")
    return 0


def _params(args: argparse.Namespace) -> int:
    if args.list:
        for name, kind in bundled_sets().items():
            print(f"{name:<16} {kind}")
        return 0
    print(yaml.safe_dump(load_params(args.name, args.set), sort_keys=False), end="")
    return 0


def _run(args: argparse.Namespace) -> int:
    from segkit import pipeline

    stages = args.stages.split(",") if args.stages else None
    res = pipeline.run(args.params, args.set, args.run_dir, stages, not args.quiet)
    page = _shown(res.folder / "index.html")
    print(f"{'done' if res.ok else 'FAILED (see the report)'}: open {page}")
    return 0 if res.ok else 1


def _plan(args: argparse.Namespace) -> int:
    from segkit import pipeline

    res = pipeline.rerun(args.run_dir, "plan", args.set, not args.quiet)
    print(
        f"{'done' if res.ok else 'FAILED (see the report)'}: open {_shown(res.folder / 'index.html')}"
    )
    return 0 if res.ok else 1


def _batch(args: argparse.Namespace) -> int:
    from segkit.pipeline import batch
    from segkit.pipeline.batch import read_grid

    results = batch(args.grid, args.workers, progress=not args.quiet)
    for r in results:
        if not r.ok:
            print(f"FAILED {_shown(Path(r.folder))}" + (f": {r.error}" if r.error else ""))
    _, _, folder = read_grid(args.grid)
    ok = sum(r.ok for r in results)
    print(f"{ok} of {len(results)} runs ok: open {_shown(folder / 'index.html')}")
    return 0 if ok == len(results) else 1


def _init(args: argparse.Namespace) -> int:
    from segkit.pipeline import init_project

    if args.dir is None:  # `segkit init --from a.csv b.csv my-project`: the folder came last
        if len(args.sources) < 2 or Path(args.sources[-1]).is_file():
            raise SegkitError(
                "segkit init: name the project folder to create, e.g. "
                "`segkit init my-project --from orders.csv`"
            )
        args.dir = args.sources.pop()
    if args.sources:
        return _init_from(args)
    folder = init_project(args.dir)
    print(f"created {_shown(folder)}: edit params.yaml, then")
    print(f"  cd {_shown(folder)} && segkit run --params params.yaml")
    return 0


def _init_from(args: argparse.Namespace) -> int:
    """``segkit init DIR --from FILE``: what was inferred, and the next command."""
    from segkit.pipeline.project import init_from

    project = init_from(args.dir, args.sources)
    for g in project.guesses:
        print(f"{_shown(g.profile.path)}: {g.summary}")
        if g.left_out:
            print(f"  left out: {', '.join(g.left_out)}")
    written = (project.folder / "params.yaml").read_text(encoding="utf-8").splitlines()
    todo = sum("TODO" in line and "TODO lines" not in line for line in written)
    params = _shown(project.folder / "params.yaml")
    print(f"wrote {params}: every choice has its reason beside it", end="")
    print(f"; check the {todo} TODO line(s)" if todo else "; check it")
    print(f"next: cd {_shown(project.folder)} && segkit run --params params.yaml")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


COMMANDS = {
    "run": _run,
    "plan": _plan,
    "batch": _batch,
    "init": _init,
    "score": _score,
    "params": _params,
    "notebooks": _notebooks,
}


def _own_sigint() -> Any:
    """SIGINT raises KeyboardInterrupt through :func:`_interrupt` (from the main thread,
    when Python's default handler is in place); the handler it replaced, or None."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None
    return signal.signal(signal.SIGINT, _interrupt)


def _ignore_late_interrupts(argv: list[str] | None) -> None:
    """After an interrupt is handled (the run cleaned up), a second SIGINT while the
    process shuts its kernels down would end it by the signal (exit -2) instead of 130:
    seen once in CI. Only for the command itself (``argv`` None: the process exits next),
    not for a caller of ``main([...])``, and from the main thread."""
    import threading

    if argv is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``segkit`` command; returns the exit code."""
    from segkit.core import threads
    from segkit.pipeline import RunAborted

    args = parser().parse_args(argv)
    threads.apply()
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    old = signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C raises KeyboardInterrupt wherever the main thread is. With Python's default
    # handler, asyncio.Runner swaps in its own, which only cancels a task (a library can
    # swallow that); it leaves a handler of ours in place. A process started with SIGINT
    # ignored (`segkit run ... &` from a script, nohup) keeps ignoring it, as Python does.
    old_int = _own_sigint()
    try:
        return COMMANDS[args.command](args)
    except SegkitError as exc:
        print(f"segkit: error: {exc}", file=sys.stderr)
        return 2
    except RunAborted as exc:
        _ignore_late_interrupts(argv)
        print(f"segkit: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        _ignore_late_interrupts(argv)
        print("segkit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `segkit init ... | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit would fail too
        return 141
    except subprocess.CalledProcessError as exc:  # pragma: no cover - defensive
        print(f"segkit: error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, old)
        if old_int is not None and signal.getsignal(signal.SIGINT) is _interrupt:
            signal.signal(signal.SIGINT, old_int)


if __name__ == "__main__":
    sys.exit(main())
