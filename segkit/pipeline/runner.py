"""``segkit run``: the stage notebooks of one parameter set executed into a run folder.

:func:`run` validates the parameters and the target folder before any kernel starts,
builds the run in a hidden temporary sibling folder, executes each stage notebook there
with papermill (from Python, in a kernel started ahead of time: :mod:`.kernels`), exports
one self-contained HTML report per stage in a background thread while the next stage runs,
writes ``manifest.json`` and ``index.html``, and only then swaps the folder into place
(:mod:`.folders`). A failed run never replaces the previous good one: it is left as
``<name>.failed``. An interrupted run removes its partial folder and says that the previous
run is intact.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import yaml

from segkit.core import paths, threads
from segkit.core.errors import SegkitError
from segkit.core.files import atomic_write_text, write_json
from segkit.core.params import load_params
from segkit.pipeline import folders, manifest, report, summary
from segkit.pipeline.kernels import (
    Kernel,
    prestart_enabled,
    quiet_interrupted_tasks,
    shutdown,
    sweep_stale,
)
from segkit.stages import registry
from segkit.stages.registry import NAMES, STAGES, Stage, get
from segkit.stages.run import PROGRESS_FILE
from segkit.stages.text import plain


class StageResult(NamedTuple):
    """What happened to one stage of a run."""

    stage: str
    status: str  # ok | failed | skipped
    seconds: float
    error: str | None
    headline: str
    cells_seconds: float = 0.0  # time spent executing the notebook's cells
    overhead_seconds: float = 0.0  # the rest: waiting for the kernel, papermill
    kernel: str = ""  # "prestarted" (started during the previous stage) or "cold"
    blocked: bool = False  # skipped because a stage it needs failed
    export_seconds: float = 0.0  # HTML export, run in the background during the next stage


class RunResult(NamedTuple):
    """A finished run: its folder and its stages."""

    name: str
    folder: Path
    ok: bool
    stages: list[StageResult]


class RunAborted(Exception):
    """The run stopped before it finished (interrupted, disk full); nothing was replaced."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


#: One background thread exports the HTML of finished stages (nbconvert is pure Python).
_EXPORTER = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="segkit-export")


def _failing_cell(nb_path: Path) -> str | None:
    import nbformat

    if not nb_path.exists():
        return None
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
    return None


def _cells_seconds(nb_path: Path) -> float:
    """Sum of the cells' execution times papermill recorded in an executed notebook."""
    import nbformat

    if not nb_path.exists():
        return 0.0
    nb = nbformat.read(nb_path, as_version=4)
    return sum(
        float(c.metadata.get("papermill", {}).get("duration") or 0.0)
        for c in nb.cells
        if c.cell_type == "code"
    )


def _export_timed(out_nb: Path, html_path: Path, stage: str) -> float:
    t0 = time.perf_counter()
    report.export_html(out_nb, html_path, stage)
    return round(time.perf_counter() - t0, 2)


def _execute(stage: Stage, folder: Path, notebooks_dir: Path, km: Any) -> str | None:
    """Run the stage notebook with papermill in kernel ``km``; the error, or None."""
    import papermill as pm

    out_nb = folder / stage.notebook
    try:
        pm.execute_notebook(
            str(notebooks_dir / stage.notebook),
            str(out_nb),
            parameters={"params": str(folder / "params.yaml"), "run_dir": str(folder)},
            kernel_name="python3",
            cwd=str(notebooks_dir),
            progress_bar=False,
            request_save_on_cell_execute=False,
            log_output=False,
            km=km,
        )
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell
        return _failing_cell(out_nb) or f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        shutdown(km)  # papermill does not own a kernel it was handed
    return None


def _run_stage(
    stage: Stage, folder: Path, notebooks_dir: Path, kernel: Kernel, out: _Printer
) -> StageResult:
    """Execute one stage and queue its HTML export; the export's future is attached later."""
    t0 = time.perf_counter()
    km = kernel.take()
    if km is None:
        kernel.close()
        error: str | None = "the notebook kernel did not start (see the terminal for why)"
    else:
        with out.watching(stage.name, folder / PROGRESS_FILE):
            error = _execute(stage, folder, notebooks_dir, km)
        kernel.close()
    headline, status = "", "failed" if error else "ok"
    findings = folder / "artifacts" / f"findings_{stage.name}.json"
    if findings.exists() and error is None:
        rec = yaml.safe_load(findings.read_text())
        headline = (rec.get("findings") or [""])[0]
        status = rec.get("status", "ok")
    seconds = time.perf_counter() - t0
    cells = _cells_seconds(folder / stage.notebook)
    return StageResult(
        stage.name,
        status,
        round(seconds, 2),
        error,
        headline,
        round(cells, 2),
        round(seconds - cells, 2),
    )


def _blocked_by(stage: Stage, results: list[StageResult]) -> str | None:
    """Why ``stage`` cannot run: a stage it needs failed or was skipped for that reason."""
    broken = {r.stage: r.status for r in results if r.status == "failed" or r.blocked}
    for need in stage.needs:
        if need in broken:
            why = "failed" if broken[need] == "failed" else "was skipped"
            return f"Needs {need}, which {why}."
    return None


class _Printer:
    """One line per stage on stderr: status, time and the headline; quiet when told.

    On a terminal, a long stage also shows how far it is (``Run.report_progress`` in the
    kernel writes it to a file that a thread here reads), on one line that the stage's
    result then overwrites.
    """

    def __init__(self, name: str, progress: bool, stream: TextIO | None = None):
        self.name, self.progress, self.stream = name, progress, stream or sys.stderr
        self.live = progress and self.stream.isatty()

    @contextlib.contextmanager
    def watching(self, stage: str, path: Path) -> Iterator[None]:
        if not self.live:
            try:
                yield
            finally:
                path.unlink(missing_ok=True)
            return
        stop = threading.Event()
        thread = threading.Thread(target=self._watch, args=(stage, path, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.stream.write("\r\033[K")
            path.unlink(missing_ok=True)

    def _watch(self, stage: str, path: Path, stop: threading.Event) -> None:
        t0 = time.perf_counter()
        while not stop.wait(0.5):
            text = ""
            try:
                rec = json.loads(path.read_text())
                text = f"{rec['what']} ({rec['done']} of {rec['total']})"
            except (OSError, ValueError, KeyError):
                pass
            self.stream.write(
                f"\r\033[K[{self.name}] {stage} … {time.perf_counter() - t0:.0f} s {text}"
            )
            self.stream.flush()

    def stage(self, r: StageResult, position: str) -> None:
        if not self.progress:
            return
        text = r.error if r.status == "failed" else r.headline
        text = plain(text or "").replace("\n", " ")
        if len(text) > 90:
            text = text[:89] + "…"
        print(
            f"[{self.name}] {position} {r.stage:<8} {r.status:<7} {r.seconds:6.1f} s  {text}",
            file=self.stream,
            flush=True,
        )


def _stages_loop(
    params: dict,
    chosen: list[str],
    folder: Path,
    notebooks_dir: Path,
    n_threads: int,
    out: _Printer,
) -> tuple[list[StageResult], list[tuple[str, cf.Future]]]:
    """Run the chosen stages in order, each kernel started while the previous stage runs."""
    todo = [s for s in STAGES if s.name in chosen]
    planned = [s for s in todo if (notebooks_dir / s.notebook).exists()]
    prestart = prestart_enabled()
    results: list[StageResult] = []
    exports: list[tuple[str, cf.Future]] = []
    nxt: Kernel | None = None
    if prestart and planned:  # starts now, while this process imports papermill & co.
        nxt = Kernel(planned[0].name, notebooks_dir, warm=False, n_threads=n_threads)
    try:
        for i, stage in enumerate(todo, 1):
            why = _blocked_by(stage, results)
            if why or stage not in planned:
                if nxt is not None and nxt.stage == stage.name:
                    nxt.close()
                    nxt = None
                r = StageResult(
                    stage.name, "skipped", 0.0, None, why or "No notebook.", blocked=bool(why)
                )
                results.append(r)
                out.stage(r, f"{i}/{len(todo)}")
                continue
            kernel = nxt if nxt is not None and nxt.stage == stage.name else None
            prestarted = kernel is not None
            if kernel is None:
                if nxt is not None:
                    nxt.close()
                kernel = Kernel(stage.name, notebooks_dir, warm=False, n_threads=n_threads)
            later = planned[planned.index(stage) + 1 :]
            nxt = (
                Kernel(later[0].name, notebooks_dir, n_threads=n_threads)
                if prestart and later
                else None
            )
            r = _run_stage(stage, folder, notebooks_dir, kernel, out)
            r = r._replace(kernel="prestarted" if prestarted else "cold")
            results.append(r)
            out_nb = folder / stage.notebook
            if out_nb.exists():
                html_path = folder / stage.report
                exports.append(
                    (stage.name, _EXPORTER.submit(_export_timed, out_nb, html_path, stage.name))
                )
            out.stage(r, f"{i}/{len(todo)}")
    finally:
        if nxt is not None:  # the next stage was skipped, or the run was interrupted
            nxt.close()
    return results, exports


def _chosen(stages: list[str] | None) -> list[str]:
    chosen = list(stages or NAMES)
    for s in chosen:
        if s not in NAMES:
            raise SegkitError(f"--stages: unknown stage {s!r}; stages are {list(NAMES)}")
    return chosen


def _write_run_files(
    tmp: Path,
    params: dict,
    results: list[StageResult],
    seconds: float,
    fresh: set[str] | None = None,
) -> bool:
    """The summary (``index.html``), the navigation header of every report (of the
    ``fresh`` stages only when given: the others already have theirs), the manifest."""
    rows = [r._asdict() for r in results]
    created = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    links = summary.stage_links(rows)
    source = summary.source_of(params)
    for r in results:
        if fresh is not None and r.stage not in fresh:
            continue
        page = tmp / get(r.stage).report
        if r.status == "skipped" and not r.blocked:
            text = summary.skipped_page(params["name"], source, created, r.stage, r.headline, links)
            atomic_write_text(page, text)
        elif page.is_file():
            header = summary.nav(params["name"], source, created, r.stage, links)
            text = page.read_text(encoding="utf-8")
            atomic_write_text(page, _with_header(text, header))
    atomic_write_text(tmp / "index.html", summary.page(tmp, params, rows, created))
    write_json(tmp / "manifest.json", manifest.build(params, tmp, rows, seconds))
    return all(r.status != "failed" for r in results)


def _with_header(text: str, header: str) -> str:
    """``text`` (an HTML page) with ``header`` right after its ``<body>`` tag."""
    m = re.search(r"<body[^>]*>", text)
    return text if m is None else text[: m.end()] + header + text[m.end() :]


def _check_inputs(params: dict) -> None:
    """Every input file named in the parameters exists (checked before any kernel starts)."""
    if params["data"]["source"] != "files":
        return
    for name in ("transactions", "customers", "experiment"):
        spec = params["data"][name]
        if spec and name == "transactions" and params.get("engine", "duckdb") != "duckdb":
            text = str(spec["path"])  # a catalog table, a URI or a Parquet folder: the
            if spec.get("format") == "table" or "://" in text or Path(text).is_dir():
                continue  # engine reads it (segkit.engine.clean) and says when it cannot
        if spec and paths.is_pattern(spec["path"]):  # files by a pattern (orders_*.csv)
            if not paths.matched_files(spec["path"]):
                raise SegkitError(f"data.{name}.path: no file matches {spec['path']}")
            continue
        if spec and not Path(spec["path"]).is_file():
            what = "is a folder" if Path(spec["path"]).is_dir() else "does not exist"
            raise SegkitError(f"data.{name}.path: {spec['path']} {what}; expected a data file")


def _target(run_dir: str | Path | None, name: str) -> Path:
    final = Path(run_dir).expanduser().resolve() if run_dir else paths.reports_dir() / name
    folders.check_replaceable(final)
    folders.check_replaceable(final.with_name(final.name + ".failed"))
    return final


def run(
    params: str | Path | dict = "demo",
    overrides: list[str] | dict | None = None,
    run_dir: str | Path | None = None,
    stages: list[str] | None = None,
    progress: bool = True,
    notebooks_dir: Path | None = None,
    n_threads: int | None = None,
) -> RunResult:
    """Execute the stages of one parameter set into ``reports/<name>/`` (or ``run_dir``).

    Parameters
    ----------
    params
        A bundled set's name, a YAML file or a dict (see :func:`segkit.load_params`).
    overrides
        ``["cluster.k=5"]`` or ``{"cluster.k": 5}``.
    run_dir
        The run folder; default ``<project>/reports/<name>``. It must be empty, absent or
        a folder segkit wrote.
    stages
        Stage names to run (default: all); stages they need must be in the folder already
        or be run too.
    progress
        One line per stage on stderr.
    notebooks_dir
        Where the stage notebooks are (default: the bundled ones).
    n_threads
        BLAS/OpenMP threads per kernel (default: :func:`segkit.core.threads.budget`).

    Raises
    ------
    SegkitError
        Unusable parameters, stage names, run name or run folder (before any kernel starts).
    RunAborted
        Interrupted (exit code 130) or a full or read-only disk; the partial folder is
        removed and the previous run is left as it was.
    """
    resolved = load_params(params, overrides)  # before any kernel starts
    folders.check_name(resolved["name"], "name")
    _check_inputs(resolved)
    chosen = _chosen(stages)
    registry.preflight(resolved, chosen)
    notebooks_dir = Path(notebooks_dir or paths.notebooks_dir())
    final = _target(run_dir, resolved["name"])
    n = n_threads or threads.budget()
    out = _Printer(resolved["name"], progress)
    sweep_stale()
    quiet_interrupted_tasks()  # an interrupt is handled below, without asyncio's traceback
    with folders.locked(final):
        for note in folders.recover(final):
            out.stream.write(f"[{resolved['name']}] {note}\n") if progress else None
        tmp = _new_tmp(final)
        try:
            (tmp / "params.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
            started = time.perf_counter()
            with _engine_session(resolved, chosen):
                results, exports = _stages_loop(resolved, chosen, tmp, notebooks_dir, n, out)
            done = {stage: future.result() for stage, future in exports}
            results = [r._replace(export_seconds=done.get(r.stage, 0.0)) for r in results]
            ok = _write_run_files(tmp, resolved, results, time.perf_counter() - started)
            target = final if ok else final.with_name(final.name + ".failed")
            folders.swap_in(tmp, target)
        except KeyboardInterrupt:
            shutil.rmtree(tmp, ignore_errors=True)
            intact = (
                f"the previous run at {final} is intact"
                if final.exists()
                else "nothing was written"
            )
            raise RunAborted(f"interrupted; {intact}", exit_code=130) from None
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            message = folders.disk_message(exc, final)
            if message is None:
                raise
            raise RunAborted(
                message + f"; the partial run was removed, {final} is as it was"
            ) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return RunResult(resolved["name"], target, ok, results)


def _engine_session(params: dict, stages: list[str]) -> contextlib.AbstractContextManager:
    """With ``engine: spark``, one Spark session for all the run's stage kernels.

    It is started here, once, and every kernel attaches to it (:func:`segkit.engine.
    share_session`): one Spark application per run, one JVM start-up rather than one per
    stage; under spark-submit it is spark-submit's session. Only when one of ``stages``
    reads through the engine (:func:`segkit.stages.registry.uses_engine`): `segkit plan`
    alone starts no JVM.
    """
    if params.get("engine", "duckdb") != "spark" or not registry.uses_engine(stages):
        return contextlib.nullcontext()
    from segkit.engine import share_session  # ibis and PySpark: the optional spark extra

    return share_session(params.get("spark"))


def _new_tmp(final: Path) -> Path:
    try:
        return folders.new_temporary(final)
    except OSError as exc:
        message = folders.disk_message(exc, final.parent)
        raise SegkitError(
            message or f"cannot create a run folder in {final.parent}: {exc}"
        ) from None


# ----------------------------------------------------------------- one stage, again


def _rerun_params(folder: Path, stage: Stage, overrides: list[str] | None) -> dict:
    """The run's parameters with ``overrides``, which may only touch ``stage``'s section
    (and ``report``): the other stages' artifacts are reused as they are."""
    from segkit.core.params import parse_override, read_yaml_mapping

    for text in overrides or []:
        keys, _ = parse_override(text)
        if keys[0] not in (stage.name, "report"):
            raise SegkitError(
                f"--set {text}: `segkit {stage.name}` reruns only the {stage.name} stage, so it "
                f"takes only {stage.name}.* (and report.*) parameters; to change "
                f"{'.'.join(keys)}, rerun the whole run with `segkit run`"
            )
    return load_params(read_yaml_mapping(folder / "params.yaml"), overrides)


def _earlier_results(folder: Path, stage: Stage) -> list[StageResult]:
    """The other stages' results from the run's manifest; ``stage``'s needs must be ok."""
    try:
        rows = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["stages"]
    except (OSError, ValueError, KeyError):
        raise SegkitError(
            f"{folder} has no readable manifest.json: not a finished segkit run folder; "
            "make one with `segkit run`"
        ) from None
    for need in stage.needs:
        status = (rows.get(need) or {}).get("status", "not run")
        if status != "ok":
            raise SegkitError(
                f"{stage.name} needs stage {need!r}, which is {status!r} in {folder}; "
                "rerun the run with `segkit run`"
            )
    fields = StageResult._fields
    return [
        StageResult(**{k: v for k, v in rows[s.name].items() if k in fields})
        for s in STAGES
        if s.name in rows and s.name != stage.name
    ]


def _link_tree(src: Path, dst: Path, stage: Stage) -> None:
    """``src`` into ``dst`` as hard links (no data copied), without ``stage``'s outputs.

    Safe because nothing writes a file of a run in place: artifacts, reports, the index
    and the manifest are written to a temporary name and renamed over the old one.
    """
    drop = {stage.notebook, stage.report, PROGRESS_FILE, folders.MARKER, ".duckdb_tmp"}
    mine = {f"findings_{stage.name}.json", *stage.artifacts}
    for path in src.iterdir():
        if path.name in drop:
            continue
        if path.parent.name == "artifacts" and (
            path.name in mine or path.name.split(".")[0] in mine
        ):
            continue
        target = dst / path.name
        if path.is_dir():
            target.mkdir(exist_ok=True)
            _link_tree(path, target, stage)
        else:
            try:
                target.hardlink_to(path)
            except OSError:  # another file system, or links not allowed: copy
                shutil.copy2(path, target)


def rerun(
    run_dir: str | Path,
    stage: str,
    overrides: list[str] | None = None,
    progress: bool = True,
    notebooks_dir: Path | None = None,
    n_threads: int | None = None,
) -> RunResult:
    """Run one stage again in an existing run folder with new settings for that stage.

    The folder is rebuilt in a temporary sibling from hard links of the existing one
    (the other stages' artifacts and reports are reused, not recomputed), the stage's
    notebook is executed as by :func:`run`, the index and manifest are rewritten, and the
    result swapped into place: a failure leaves the run as it was and the attempt in
    ``<name>.failed``, as with :func:`run`.

    Raises
    ------
    SegkitError
        Not a run folder segkit wrote, an override outside the stage's section, a stage
        it needs that did not succeed in that run (before any kernel starts).
    """
    st = get(stage)
    final = Path(run_dir).expanduser().resolve()
    if not (final / "params.yaml").is_file() or not folders.written_by_segkit(final):
        raise SegkitError(
            f"{final} is not a run folder segkit wrote (no params.yaml and manifest.json); "
            "make one with `segkit run`"
        )
    resolved = _rerun_params(final, st, overrides)
    earlier = _earlier_results(final, st)
    folders.check_replaceable(final.with_name(final.name + ".failed"))
    out = _Printer(resolved["name"], progress)
    notebooks_dir = Path(notebooks_dir or paths.notebooks_dir())
    with folders.locked(final):
        for note in folders.recover(final):
            out.stream.write(f"[{resolved['name']}] {note}\n") if progress else None
        tmp = _new_tmp(final)
        try:
            _link_tree(final, tmp, st)
            (tmp / "params.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
            n = n_threads or threads.budget()
            with _engine_session(resolved, [st.name]):
                results, exports = _stages_loop(resolved, [st.name], tmp, notebooks_dir, n, out)
            done = {name: future.result() for name, future in exports}
            results = [r._replace(export_seconds=done.get(r.stage, 0.0)) for r in results]
            order = {s.name: i for i, s in enumerate(STAGES)}
            rows = sorted(earlier + results, key=lambda r: order[r.stage])
            seconds = sum(r.seconds for r in rows)
            ok = _write_run_files(tmp, resolved, rows, seconds, fresh={st.name})
            target = final if ok else final.with_name(final.name + ".failed")
            folders.swap_in(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return RunResult(resolved["name"], target, ok, rows)
