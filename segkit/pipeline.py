"""Runs: the stage notebooks executed with papermill into a run folder with HTML reports.

:func:`run` validates the parameters before any kernel starts, builds the run in a
temporary sibling folder (``reports/.<name>.tmp-*``), executes each stage notebook there
with papermill (from Python, not its CLI) in a kernel started ahead of time (see
:class:`_Prestarted`), exports one self-contained HTML report per stage with the code
hidden (in a background thread, while the next stage runs), writes ``manifest.json`` and ``index.html``, and only then
swaps the folder into ``reports/<name>/``. A failed run never replaces the previous good
run folder: it is left as ``reports/<name>.failed/``. :func:`batch` runs a grid of
parameter sets, two at a time by default.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import html
import importlib.metadata as md
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import yaml

from segkit import io
from segkit.core import paths
from segkit.core.files import write_json
from segkit.core.params import load_params
from segkit.stages.registry import NAMES, STAGES
from segkit.core.errors import SegkitError

#: Stage -> notebook file.
NOTEBOOKS = {s.name: s.notebook for s in STAGES}
#: A stage needs these earlier stages to have succeeded.
NEEDS = {s.name: s.needs for s in STAGES}
PACKAGES = (
    "segkit duckdb pandas numpy scipy scikit-learn statsmodels seaborn matplotlib "
    "papermill nbconvert nbformat kmodes pyarrow"
).split()
# Any <script src="http..."> or <link href="http..."> makes a report need the network.
_EXTERNAL = re.compile(r"<(script|link)\b[^>]*(src|href)=\"https?://[^\"]*\"[^>]*>(\s*</script>)?")
_PRINT_CSS = """<style>
@media print { .jp-Cell, img { break-inside: avoid; } body { background: white; } }
body { max-width: 1100px; margin: auto; }
</style>"""


class StageResult(NamedTuple):
    stage: str
    status: str  # ok | failed | skipped
    seconds: float
    error: str | None
    headline: str
    cells_seconds: float = 0.0  # time spent executing the notebook's cells
    overhead_seconds: float = 0.0  # the rest: kernel start or hand-over, papermill
    kernel: str = ""  # "prestarted" (started during the previous stage) or "cold"
    blocked: bool = False  # skipped because a stage it needs failed
    export_seconds: float = 0.0  # HTML export, run in the background during the next stage


#: One background thread exports the HTML of finished stages (nbconvert is pure Python).
_EXPORTER = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="segkit-export")


class _Prestarted:
    """A kernel started ahead of its stage, so its start-up overlaps the previous stage.

    Starting a Jupyter kernel and importing segkit's stack takes about 2 s on 2 cores; a
    papermill run pays that before its first cell. segkit starts the next stage's kernel
    (and imports matplotlib, pandas and the stage's module in it, silently) while the
    current stage runs, then hands it to papermill (``km=``), which runs the notebook in it
    as usual. The first stage's kernel starts as soon as the parameters are validated,
    while this process imports papermill. The time a stage still waits for its kernel
    counts as its overhead. Any failure here falls back to papermill's own cold start.
    ``SEGKIT_PRESTART=0`` turns it off.
    """

    def __init__(self, stage: str, cwd: Path, imports: bool = True):
        import threading

        import zmq
        from jupyter_client import KernelManager

        self.stage = stage
        self.imports = imports
        self.ok = False
        # its own zmq context, not the process-wide singleton: a batch worker forked from a
        # process that already used the singleton would inherit it broken and hang
        self.km = KernelManager(kernel_name="python3", context=zmq.Context())
        try:
            self.km.start_kernel(cwd=str(cwd))
        except Exception:  # noqa: BLE001 - a failed prestart only loses the head start
            self.km = None
            return
        self.thread = threading.Thread(target=self._warm, daemon=True)
        self.thread.start()

    def _warm(self) -> None:
        module = f"stages.{self.stage}"
        kc = self.km.blocking_client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            if not self.imports:
                self.ok = True
                return
            reply = kc.execute_interactive(
                f"import matplotlib.pyplot, pandas, segkit, segkit.plots, segkit.{module}",
                silent=True,
                store_history=False,
                timeout=120,
            )
            self.ok = reply["content"]["status"] == "ok"
        except Exception:  # noqa: BLE001 - see take(): a cold start instead
            self.ok = False
        finally:
            kc.stop_channels()

    def take(self):
        """The ready kernel manager, or None (then papermill starts its own)."""
        if self.km is None:
            return None
        self.thread.join()
        if not self.ok:
            self.shutdown()
            return None
        return self.km

    def shutdown(self) -> None:
        if self.km is not None:
            if hasattr(self, "thread"):
                self.thread.join()
            _shutdown(self.km)
            self.km = None


class RunResult(NamedTuple):
    name: str
    folder: Path
    ok: bool
    stages: list[StageResult]


def _versions() -> dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    return out


def _git() -> dict:
    if paths.SOURCE_ROOT is None:
        return {"commit": None, "dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(paths.SOURCE_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(paths.SOURCE_ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def _inputs(params: dict) -> dict[str, str]:
    d = params["data"]
    out = {}
    for name in ("transactions", "customers", "experiment"):
        spec = d[name]
        if spec:
            path = io.resolve_path(spec["path"] if isinstance(spec, dict) else spec)
            out[name] = {"path": str(spec["path"] if isinstance(spec, dict) else spec)}
            out[name]["sha256"] = io.sha256(path) if path.is_file() else "missing"
    if d["source"] == "demo":
        out["demo"] = {"generator": "segkit.datasets.make_retailer", **d["demo"]}
    return out


def export_html(nb_path: Path, html_path: Path, title: str) -> Path:
    """Self-contained HTML of an executed notebook: no code, no network resources."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(nb_path, as_version=4)
    exporter = HTMLExporter(
        template_name="lab",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.mathjax_url = ""
    exporter.require_js_url = ""
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    body = _EXTERNAL.sub("", body).replace("</head>", _PRINT_CSS + "</head>", 1)
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html_path)
    return html_path


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


def _shutdown(km) -> None:
    """Stop a prestarted kernel and close its zmq context (and the clients' sockets)."""
    try:
        km.shutdown_kernel(now=True)
    finally:
        km.context.destroy(linger=0)


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
    export_html(out_nb, html_path, stage)
    return round(time.perf_counter() - t0, 2)


def _run_stage(
    stage: str, folder: Path, notebooks_dir: Path, km=None, exports: list | None = None
) -> StageResult:
    """Execute one stage notebook; export its HTML (in the background when ``exports``
    is a list: the future is appended to it, and the next stage need not wait)."""
    import papermill as pm

    src = notebooks_dir / NOTEBOOKS[stage]
    out_nb = folder / NOTEBOOKS[stage]
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            str(src),
            str(out_nb),
            parameters={"params": str(folder / "params.yaml"), "run_dir": str(folder)},
            kernel_name="python3",
            cwd=str(notebooks_dir),
            progress_bar=False,
            request_save_on_cell_execute=False,
            log_output=False,
            **({"km": km} if km is not None else {}),
        )
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell
        error = _failing_cell(out_nb) or f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        if km is not None:  # papermill does not own a kernel it was handed
            _shutdown(km)
    if out_nb.exists():
        html_path = folder / NOTEBOOKS[stage].replace(".ipynb", ".html")
        if exports is None:
            _export_timed(out_nb, html_path, stage)
        else:
            exports.append((stage, _EXPORTER.submit(_export_timed, out_nb, html_path, stage)))
    headline = ""
    findings = folder / "artifacts" / f"findings_{stage}.json"
    if findings.exists() and error is None:
        rec = yaml.safe_load(findings.read_text())
        headline = (rec.get("findings") or [""])[0]
        status = rec.get("status", "ok")
    else:
        status = "failed" if error else "ok"
    seconds = time.perf_counter() - t0
    cells = _cells_seconds(out_nb)
    return StageResult(
        stage,
        status,
        round(seconds, 2),
        error,
        headline,
        round(cells, 2),
        round(seconds - cells, 2),
        "prestarted" if km is not None else "cold",
    )


def _index(name: str, results: list[StageResult]) -> str:
    rows = []
    for r in results:
        report = NOTEBOOKS[r.stage].replace(".ipynb", ".html")
        link = f'<a href="{report}">{r.stage}</a>' if r.status != "skipped" else r.stage
        text = r.headline or r.error or ""
        rows.append(
            f"<tr><td>{link}</td><td class='{r.status}'>{r.status}</td>"
            f"<td>{r.seconds:.1f} s</td><td>{r.overhead_seconds:.1f} s</td>"
            f"<td>{html.escape(text)}</td></tr>"
        )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>segkit run {name}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}
.failed{{color:#b00}}.skipped{{color:#888}}.ok{{color:#070}}</style></head><body>
<h1>segkit run: {html.escape(name)}</h1>
<table><tr><th>stage</th><th>status</th><th>time</th>
<th title="kernel hand-over, papermill and HTML export: the time not spent in the cells">
overhead</th><th>finding</th></tr>
{"".join(rows)}</table>
<p>Parameters: <a href="params.yaml">params.yaml</a>; provenance: <a href="manifest.json">manifest.json</a>.</p>
</body></html>"""


def run(
    params: str | Path | dict = "demo",
    overrides: list[str] | dict | None = None,
    run_dir: str | Path | None = None,
    stages: list[str] | None = None,
    progress: bool = True,
    notebooks_dir: Path | None = None,
) -> RunResult:
    """Execute the stages of one parameter set into ``reports/<name>/`` (or ``run_dir``)."""
    resolved = load_params(params, overrides)  # before any kernel starts
    stages = list(stages or NAMES)
    for s in stages:
        if s not in NAMES:
            raise SegkitError(f"--stages: unknown stage {s!r}; stages are {list(NAMES)}")
    notebooks_dir = Path(notebooks_dir or paths.notebooks_dir())
    final = Path(run_dir) if run_dir else paths.reports_dir() / resolved["name"]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    (tmp / "params.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    results: list[StageResult] = []
    started = time.perf_counter()
    planned = [s for s in NAMES if s in stages and (notebooks_dir / NOTEBOOKS[s]).exists()]
    prestart = os.environ.get("SEGKIT_PRESTART", "1") != "0"
    # the first stage's kernel starts now too, while this process imports papermill & co.
    # (without the imports: with nothing to overlap them, they would only move out of the
    # first cell into the wait)
    warm = _Prestarted(planned[0], notebooks_dir, imports=False) if prestart and planned else None
    exports: list = []
    try:
        for stage in NAMES:
            if stage not in stages:
                continue
            # a stage whose upstream failed (or was skipped for that reason) is skipped too
            broken = {r.stage: r.status for r in results if r.status == "failed" or r.blocked}
            bad = [n for n in NEEDS[stage] if n in broken]
            if warm is not None and warm.stage == stage and bad:
                warm.shutdown()
                warm = None
            if not (notebooks_dir / NOTEBOOKS[stage]).exists():
                results.append(
                    StageResult(stage, "skipped", 0.0, None, "No notebook for this stage yet.")
                )
                continue
            if bad:
                why = "failed" if broken[bad[0]] == "failed" else "was skipped"
                results.append(
                    StageResult(
                        stage, "skipped", 0.0, None, f"Needs {bad[0]}, which {why}.", blocked=True
                    )
                )
                continue
            km, waited = None, time.perf_counter()
            if warm is not None and warm.stage == stage:
                km, warm = warm.take(), None  # waiting for it counts as this stage's overhead
            waited = time.perf_counter() - waited
            if warm is not None:  # started for a stage that did not come next
                warm.shutdown()
                warm = None
            later = planned[planned.index(stage) + 1 :]
            if prestart and later:
                warm = _Prestarted(later[0], notebooks_dir)
            if progress:
                print(f"[{resolved['name']}] {stage} …", file=sys.stderr, flush=True)
            r = _run_stage(stage, tmp, notebooks_dir, km, exports)
            results.append(
                r._replace(
                    seconds=round(r.seconds + waited, 2),
                    overhead_seconds=round(r.overhead_seconds + waited, 2),
                )
            )
            if progress:
                r = results[-1]
                print(
                    f"[{resolved['name']}] {stage}: {r.status} in {r.seconds:.1f} s"
                    + (f" ({r.error})" if r.error else ""),
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if warm is not None:  # the next stage was skipped or the run was interrupted
            warm.shutdown()
        done = {stage: future.result() for stage, future in exports}  # re-raises a failure
    results[:] = [r._replace(export_seconds=done.get(r.stage, 0.0)) for r in results]
    ok = all(r.status != "failed" for r in results)
    manifest = {
        "name": resolved["name"],
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seed": resolved["seed"],
        "parameters": resolved,
        "inputs": _inputs(resolved),
        "packages": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": _git(),
        "ok": ok,
        "seconds": round(time.perf_counter() - started, 2),
        "stages": {r.stage: r._asdict() for r in results},
    }
    write_json(tmp / "manifest.json", manifest)
    (tmp / "index.html").write_text(_index(resolved["name"], results), encoding="utf-8")
    target = final if ok else final.with_name(final.name + ".failed")
    backup = target.with_name(target.name + ".old")
    if target.exists():
        target.rename(backup)
    tmp.rename(target)
    shutil.rmtree(backup, ignore_errors=True)
    return RunResult(resolved["name"], target, ok, results)


def _batch_point(args: tuple) -> tuple[str, bool, str]:
    params, overrides, run_dir = args
    try:
        r = run(params, overrides, run_dir, progress=False)
        return str(r.folder), r.ok, ""
    except Exception as exc:  # one bad point must not stop the others
        return str(run_dir), False, f"{type(exc).__name__}: {exc}"


def batch(grid: str | Path, workers: int = 2, progress: bool = True) -> list[tuple[str, bool, str]]:
    """Run every point of a grid file; one run folder each and an index of all runs.

    The grid is YAML: ``{name: bundled, runs: [{params: cdnow, set: {cluster.k: 4},
    name: cdnow-k4}, ...]}``; ``set`` and ``name`` are optional.
    """
    from tqdm import tqdm

    path = Path(grid)
    if not path.is_file():
        raise SegkitError(f"batch grid {str(path)!r} does not exist")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise SegkitError(f"{path}: expected a mapping with a non-empty list 'runs'")
    name = spec.get("name", path.stem)
    folder = paths.reports_dir() / name
    points = []
    for i, p in enumerate(spec["runs"]):
        if not isinstance(p, dict) or "params" not in p:
            raise SegkitError(f"{path}: runs[{i}] needs 'params' (a set name or YAML path)")
        resolved = load_params(p["params"], p.get("set"))  # validate all up front
        points.append((p["params"], p.get("set"), folder / p.get("name", resolved["name"])))
    folder.mkdir(parents=True, exist_ok=True)
    # Each run's kernel inherits this: without it, two runs' OpenMP thread pools (k-means)
    # oversubscribe the cores and spin-wait (measured: cluster stage 7 s alone, 120 s paired).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, workers))))
    results = []
    import multiprocessing as mp

    # spawn, not fork: a forked worker inherits the parent's zmq and asyncio state (broken
    # after a fork once the parent has run a notebook) and its kernels hang on start-up
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        futures = [pool.submit(_batch_point, a) for a in points]
        for f in tqdm(
            cf.as_completed(futures),
            total=len(futures),
            disable=not progress,
            desc=f"batch {name}",
            unit="run",
        ):
            results.append(f.result())
    results.sort()
    rows = "".join(
        f"<tr><td><a href='{Path(f).name}/index.html'>{Path(f).name}</a></td>"
        f"<td class='{'ok' if ok else 'failed'}'>{'ok' if ok else 'failed'}</td>"
        f"<td>{html.escape(err)}</td></tr>"
        for f, ok, err in results
    )
    (folder / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>segkit batch {name}</title>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
        "td{padding:.3em .8em}.failed{color:#b00}.ok{color:#070}</style></head><body>"
        f"<h1>segkit batch: {html.escape(name)}</h1><table>{rows}</table></body></html>",
        encoding="utf-8",
    )
    return results


def refresh_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    """Re-execute the committed stage notebooks in place with their default parameters.

    Their outputs are what ``pytest --nbval`` compares against; execution timing metadata
    is dropped so that a rerun with the same results leaves the files unchanged.
    """
    import nbformat
    from nbclient import NotebookClient

    notebooks_dir = Path(notebooks_dir or paths.notebooks_dir())
    done = []
    for name in NOTEBOOKS.values():
        path = notebooks_dir / name
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb, kernel_name="python3", resources={"metadata": {"path": str(notebooks_dir)}}
        ).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        done.append(path)
    return done
