"""``segkit batch``: a grid of parameter sets, one run folder each and an index of all runs.

The grid is YAML: ``{name: bundled, runs: [{params: cdnow, set: {cluster.k: 4},
name: cdnow-k4}, ...]}``; ``set`` and ``name`` are optional. Every point is validated before
any runs; a failed point does not stop the others. Two runs at a time by default, each
with its share of the thread budget (two runs' OpenMP pools on two cores oversubscribe and
spin-wait: measured 7 s alone against 120 s paired for the clustering stage).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import yaml

from segkit.core import paths, threads
from segkit.core.errors import SegkitError
from segkit.core.files import atomic_write_text
from segkit.core.params import load_params, read_yaml_mapping, resolve_params_path
from segkit.pipeline import folders, report
from segkit.pipeline.summary import segment_rows
from segkit.stages import tables
from segkit.stages.registry import STAGES


class Point(NamedTuple):
    """One run of a grid."""

    params: str
    overrides: dict | None
    folder: Path


class PointResult(NamedTuple):
    """What one run of a grid gave."""

    folder: str
    ok: bool
    error: str
    headline: str


def read_grid(grid: str | Path) -> tuple[str, list[Point], Path]:
    """Validate a grid file and every point of it; (grid name, points, grid folder)."""
    path = Path(grid)
    if not path.is_file():
        path = resolve_params_path(grid)  # a bundled grid by name, e.g. "bundled"
    spec = read_yaml_mapping(path, "a batch grid")
    if not isinstance(spec.get("runs"), list) or not spec["runs"]:
        raise SegkitError(f"{path}: expected a mapping with a non-empty list 'runs'")
    name = folders.check_name(spec.get("name", path.stem), f"{path}: name")
    folder = paths.reports_dir() / name
    points, seen = [], set()
    for i, p in enumerate(spec["runs"]):
        if not isinstance(p, dict) or "params" not in p:
            raise SegkitError(f"{path}: runs[{i}] needs 'params' (a set name or YAML path)")
        params = p["params"]
        if not Path(params).is_absolute() and (path.parent / params).is_file():
            params = str(path.parent / params)
        resolved = load_params(params, p.get("set"))
        point = folders.check_name(p.get("name", resolved["name"]), f"{path}: runs[{i}].name")
        if point in seen:
            raise SegkitError(f"{path}: runs[{i}].name == {point!r} is used twice; name each run")
        seen.add(point)
        folders.check_replaceable(folder / point)
        points.append(Point(params, p.get("set"), folder / point))
    return name, points, folder


def _point(args: tuple[Point, int]) -> PointResult:
    point, n_threads = args
    from segkit.pipeline.runner import run

    try:
        r = run(point.params, point.overrides, point.folder, progress=False, n_threads=n_threads)
        return PointResult(str(r.folder), r.ok, "", _headline(r.folder))
    except Exception as exc:  # noqa: BLE001 - one bad point must not stop the others
        return PointResult(str(point.folder), False, f"{type(exc).__name__}: {exc}", "")


def _headline(folder: Path) -> str:
    """The run's headline for the grid index: the segments' finding, else the first finding
    of a stage that ran (in stage order; skipped stages say nothing)."""
    try:
        stages = json.loads((folder / "manifest.json").read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return ""
    ok = {name: s.get("headline") for name, s in stages.items() if s.get("status") == "ok"}
    order = ["cluster", *(st.name for st in STAGES)]
    return next((ok[name] for name in order if ok.get(name)), "")


def batch(grid: str | Path, workers: int = 2, progress: bool = True) -> list[PointResult]:
    """Run every point of a grid; one run folder each and ``index.html`` linking them.

    Raises
    ------
    SegkitError
        The grid or one of its points is not usable (nothing has run then).
    """
    from tqdm import tqdm

    name, points, folder = read_grid(grid)
    folder.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers, len(points)))
    n = threads.budget(workers)
    results: list[PointResult] = []
    # spawn, not fork: a forked worker inherits the parent's zmq and asyncio state (broken
    # after a fork once the parent has run a notebook) and its kernels hang on start-up
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_point, (p, n)) for p in points]
        bar: Any = tqdm(total=len(futures), disable=not progress, desc=f"batch {name}", unit="run")
        for f in cf.as_completed(futures):
            r = f.result()
            results.append(r)
            bar.set_postfix_str(f"{Path(r.folder).name} {'ok' if r.ok else 'FAILED'}")
            bar.update()
        bar.close()
    results.sort()
    write_index(name, folder, results)
    return results


def write_index(name: str, folder: Path, results: list[PointResult]) -> Path:
    """The grid's ``index.html``: each run's status and headline, and the runs compared
    side by side (:func:`run_facts`), each linking to its summary."""
    rows = [
        {
            "folder": Path(r.folder).name,
            "ok": r.ok,
            "text": r.error or r.headline,
            **run_facts(Path(r.folder)),
        }
        for r in results
    ]
    return atomic_write_text(folder / "index.html", report.batch_index(name, rows))


def run_facts(folder: Path) -> dict[str, str]:
    """What the grid index compares for one run folder, read from its artifacts: the
    number of segments ``k``, the segment ``sizes`` (as on its summary page, small segments
    left out), the ``clv`` total with its 95 % interval and the ``campaign`` the A/B
    stage recommends for all customers; "" where the run has none."""
    try:
        params = yaml.safe_load((folder / "params.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        params = {}
    currency = (params.get("report") or {}).get("currency") or ""
    art = folder / "artifacts"
    facts = {"k": "", "sizes": "", "clv": "", "campaign": ""}
    segments = None
    if (art / "segments.parquet").is_file():
        segments = pd.read_parquet(art / "segments.parquet", columns=["segment"])["segment"]
        facts["k"] = str(segments.nunique())
    head, rows = segment_rows(folder, currency)
    rows = [row for row in rows if row[0] != tables.DASH]  # the folded small segments
    if rows:
        sizes = [row[head.index("customers")] for row in rows]
        facts["sizes"] = " / ".join(sizes)
        if segments is not None:  # segments too small to detail, counted together
            small = segments.nunique() - len(rows)
            rest = len(segments) - sum(int(n.replace(",", "")) for n in sizes)
            if small > 0 and rest > 0:
                what = "segment" if small == 1 else "segments"
                facts["sizes"] += f" (+ {rest:,} in {small} smaller {what})"
    if (art / "clv.parquet").is_file():
        factor = _model_error_factor(art / "clv_params.json")
        facts["clv"] = _clv_total(pd.read_parquet(art / "clv.parquet"), currency, factor)
    if (art / "ab_recommendations.csv").is_file():
        facts["campaign"] = _best_campaign(pd.read_csv(art / "ab_recommendations.csv"))
    return facts


def _model_error_factor(path: Path) -> float:
    """The CLV stage's model-error band factor (1 when the holdout check passed or did
    not run), from ``clv_params.json``'s ``_meta.holdout_check``."""
    try:
        meta = json.loads(path.read_text()).get("_meta") or {}
    except (OSError, ValueError):
        return 1.0
    check = meta.get("holdout_check") or {}
    return float(check.get("model_error_factor") or 1.0)


def _clv_total(clv: pd.DataFrame, currency: str, factor: float = 1.0) -> str:
    """ "€1,234,567 (€1.1M to €1.4M)": the total CLV with its delta-method interval,
    widened by the model-error band when the CLV model missed its holdout (as the CLV
    report and summary give it)."""
    from segkit.clv import total_interval

    total, low, high = total_interval(clv, model_error=factor)
    text = f"{currency}{total:,.0f}"
    if pd.notna(low) and pd.notna(high) and tables.untrusted(total, low, high):
        text += f" ({tables.NOT_IDENTIFIED}: no useful interval)"
    elif pd.notna(low) and pd.notna(high):
        widened = f"; widened ×{factor:.2f}: the model missed its holdout" if factor > 1 else ""
        text += f" ({currency}{low:,.0f} to {currency}{high:,.0f}{widened})"
    return text


def _best_campaign(recs: pd.DataFrame) -> str:
    """The campaign recommended for all customers and the decision ("Womens E-Mail:
    send"); without an overall row, the one with the largest expected profit."""
    overall = recs[recs["segment_col"] == "all"]
    best = overall if len(overall) else recs.sort_values("expected_profit", ascending=False)
    if best.empty:
        return ""
    r = best.iloc[0]
    campaign = str(r["campaign"])
    if campaign in ("none", "nan", ""):
        return f"none ({r['action']})"
    where = "" if len(overall) else f" (for {r['segment_col']} {r['segment']})"
    return f"{campaign}: {r['action']}{where}"
