"""Pipeline timings: one run per parameter set, the papermill overhead, batch 2 vs 1 worker.

Measures, on this machine, in one go (about 5 minutes on 2 cores):

- ``segkit run`` on the demo with the kernels of later stages prestarted (the default) and
  with ``SEGKIT_PRESTART=0`` (every stage starts its own kernel): wall time, time per
  stage, and per stage the overhead = stage time - time spent in the notebook's cells
  (waiting for the kernel, papermill; the HTML export runs in the background and is shown
  apart), from ``manifest.json``;
- ``segkit run --params X`` for each bundled parameter set: status and wall time;
- ``segkit batch notebooks/params/bundled.yaml`` with 2 workers and with 1: wall time;
- the size of every HTML report and whether any references the network for scripts/styles.

Run: ``python benchmarks/bench_pipeline.py`` (writes run folders under a temporary
directory; prints a Markdown report).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEGKIT = [sys.executable, "-m", "segkit.cli"]
EXTERNAL = re.compile(r"<(script|link)\b[^>]*(src|href)=\"https?://")


def timed(args: list[str], env: dict | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        args, cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )
    return time.perf_counter() - t0, proc.returncode


def stage_table(folder: Path) -> list[str]:
    m = json.loads((folder / "manifest.json").read_text())
    rows = []
    for name, s in m["stages"].items():
        rows.append(
            f"| {name} | {s['status']} | {s['seconds']:.2f} | {s.get('cells_seconds', 0):.2f} "
            f"| {s.get('overhead_seconds', 0):.2f} | {s.get('export_seconds', 0):.2f} "
            f"| {s.get('kernel', '')} |"
        )
    return rows


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="segkit-bench-"))
    out = [
        "# bench_pipeline",
        "",
        f"- machine: {os.cpu_count()} cores; python {sys.version.split()[0]}",
    ]
    for label, env in (
        ("prestarted kernels (default)", {}),
        ("cold kernels", {"SEGKIT_PRESTART": "0"}),
    ):
        folder = tmp / f"demo-{env.get('SEGKIT_PRESTART', '1')}"
        wall, rc = timed([*SEGKIT, "run", "--run-dir", str(folder), "--quiet"], env)
        out += ["", f"## segkit run (demo), {label}: {wall:.1f} s wall, exit {rc}", ""]
        out += [
            "| stage | status | seconds | in cells | overhead | HTML export (background) | kernel |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        out += stage_table(folder)
    out += [
        "",
        "## segkit run --params X",
        "",
        "| set | exit | wall (s) | largest HTML (MB) | external |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("demo", "cdnow", "online_retail", "hillstrom"):
        folder = tmp / f"set-{name}"
        wall, rc = timed([*SEGKIT, "run", "--params", name, "--run-dir", str(folder), "--quiet"])
        pages = list(folder.glob("*.html"))
        size = max((p.stat().st_size for p in pages), default=0) / 1e6
        ext = any(EXTERNAL.search(p.read_text(errors="replace")) for p in pages)
        out.append(f"| {name} | {rc} | {wall:.1f} | {size:.2f} | {'yes' if ext else 'none'} |")
    out += ["", "## segkit batch notebooks/params/bundled.yaml (4 sets)", ""]
    for workers in (2, 1):
        env = {"SEGKIT_REPORTS_DIR": str(tmp / f"batch-{workers}")}
        wall, rc = timed(
            [*SEGKIT, "batch", "notebooks/params/bundled.yaml", "--workers", str(workers)], env
        )
        out.append(f"- {workers} worker(s): {wall:.1f} s wall, exit {rc}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
