"""Run folders, and what a stage returns when it cannot run.

A :class:`Run` is one run folder (``reports/<name>/``) with its resolved parameters and its
``artifacts/``. ``run.load("customers")`` reads an artifact and, when it is missing, rebuilds
it through the stage that writes it (:mod:`segkit.stages.registry`), so every notebook runs
on its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.core.files import sha256, write_json
from segkit.core.params import load_params
from segkit.stages import registry
from segkit.stages.text import safe_markdown

#: Where a stage reports the progress of its long loops (see :meth:`Run.report_progress`).
PROGRESS_FILE = ".progress.json"


class Run:
    """One run folder: resolved parameters plus ``artifacts/``.

    >>> run = Run.open("demo")            # reports/lab-demo/, parameters of demo.yaml
    >>> customers = run.load("customers")  # rebuilt through segkit.explore if missing
    """

    def __init__(self, folder: str | Path, params: dict):
        self.folder = Path(folder).resolve()
        self.params = params
        self.artifacts = self.folder / "artifacts"

    @classmethod
    def open(
        cls,
        params: str | Path | dict = "demo",
        run_dir: str | Path = "",
        overrides: dict | list | None = None,
    ) -> Run:
        """Open (create) a run folder. ``run_dir=""`` means ``reports/lab-<name>/``.

        A run folder that already holds ``params.yaml`` (written by ``segkit run``) is
        opened with those parameters when ``params`` names that same file.
        """
        resolved = load_params(params, overrides)
        folder = Path(run_dir) if run_dir else paths.reports_dir() / f"lab-{resolved['name']}"
        run = cls(folder, resolved)
        params_file = run.folder / "params.yaml"
        if params_file.exists() and yaml.safe_load(params_file.read_text()) != resolved:
            # Artifacts of other parameters would be silently reused: they are derived
            # data, so clear them and rebuild rather than mix two parameter sets.
            shutil.rmtree(run.artifacts, ignore_errors=True)
        run.artifacts.mkdir(parents=True, exist_ok=True)
        params_file.write_text(yaml.safe_dump(resolved, sort_keys=False))
        _set_plot_context(run)
        return run

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    def path(self, name: str) -> Path:
        """Path of artifact ``name``: ``name`` with its extension, or a bare known name."""
        if "." in name:
            return self.artifacts / name
        for ext in (".parquet", ".json", ".csv"):
            p = self.artifacts / f"{name}{ext}"
            if p.exists():
                return p
        return self.artifacts / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.path(name).exists()

    def save(self, name: str, obj: Any) -> Path:
        """Write a DataFrame (``.parquet``/``.csv``) or a dict (``.json``) atomically."""
        path = self.artifacts / name
        tmp = path.with_name(path.name + ".tmp")
        if name.endswith(".parquet"):
            obj.to_parquet(tmp, index=False)
        elif name.endswith(".csv"):
            obj.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
        elif name.endswith(".json"):
            write_json(tmp, obj)
        else:
            raise SegkitError(f"artifact {name!r}: unknown extension; use .parquet, .csv or .json")
        tmp.replace(path)
        return path

    def report_progress(self, stage: str, done: int, total: int, what: str = "") -> None:
        """Say how far a long step is (``segkit run`` shows it on a terminal).

        Written to ``.progress.json`` in the run folder, which the pipeline reads while the
        stage runs and removes at the end; a failure to write it is ignored.
        """
        try:
            write_json(
                self.folder / PROGRESS_FILE,
                {"stage": stage, "done": int(done), "total": int(total), "what": str(what)},
            )
        except OSError:
            pass

    def save_findings(self, stage: str, findings: list[str], status: str = "ok") -> Path:
        """Record a stage's plain-language findings (first = the index page's one-liner)."""
        return self.save(
            f"findings_{stage}.json", {"stage": stage, "status": status, "findings": list(findings)}
        )

    def load(self, name: str) -> Any:
        """Read artifact ``name``; if absent, run the stage that writes it, then read it."""
        if not self.has(name):
            stage = registry.writer_of(name.split(".")[0])
            if stage is None:
                raise SegkitError(f"artifact {name!r} not found in {self.artifacts}")
            registry.run_stage(stage.name, self)
            if not self.has(name):
                raise SegkitError(
                    f"artifact {name!r} is not written by stage {stage.name!r} for this run "
                    f"(data.source == {self.params['data']['source']!r})"
                )
        path = self.path(name)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".json":
            return json.loads(path.read_text())
        raise SegkitError(f"artifact {name!r}: cannot read {path.suffix}")


def verify_artifact(folder: Path, path: Path, what: str, stage: str) -> None:
    """Check artifact ``path`` of run ``folder`` against the sha256 of its manifest
    (nothing to check without a manifest that lists it); ``what`` and ``stage`` name it
    and the stage that writes it in the error.

    Raises
    ------
    SegkitError
        The file's sha256 differs from the manifest's.
    """
    manifest = folder / "manifest.json"
    if not manifest.is_file() or not path.is_file():
        return
    key = f"artifacts/{path.name}"
    try:
        recorded = json.loads(manifest.read_text())["artifacts"][key]
    except (ValueError, KeyError, TypeError):
        return
    if sha256(path) != recorded:
        raise SegkitError(
            f"{path} is not {what} its run wrote (its sha256 differs from "
            f"{manifest}); refusing to use it. Rerun {stage} to get a new one."
        )


def _set_plot_context(run: Run) -> None:
    """Every chart drawn after this run is opened (in its notebook) gives each segment the
    colour of its number and money the run's currency (``report.currency``)."""
    from segkit import plots  # matplotlib only where a run is opened, not on every import

    plots.use_run(run.folder, run.params)


def readable_labels(run: Run) -> dict[str, str]:
    """``data.customers.labels``: column (or ``"column=value"``) -> readable name, for the
    segment names, tables and charts of the report ({} without any)."""
    spec = (run.params.get("data") or {}).get("customers") or {}
    return {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}


class Skipped:
    """What a stage returns when its inputs are absent; the report shows ``reason``."""

    def __init__(self, stage: str, reason: str):
        self.stage, self.reason = stage, reason
        self.findings = [f"Skipped: {reason}"]

    def __repr__(self) -> str:
        return f"Stage {self.stage!r} skipped: {self.reason}"

    def _repr_markdown_(self) -> str:
        return f"**This stage was skipped.** {self.reason}"


def show_findings(result: Any, title: str = "Findings"):
    """The findings of a stage result as Markdown (the first one in bold), for a notebook.

    ``result`` is what a stage's ``run_stage`` returned (anything with ``findings``).
    """
    from IPython.display import Markdown

    findings = list(getattr(result, "findings", []) or [])
    if not findings:
        return Markdown(f"### {title}\n\n_No findings recorded._")
    head, *rest = (safe_markdown(f) for f in findings)  # data-derived text stays text
    lines = [f"### {title}", "", f"**{head}**", ""] + [f"- {f}" for f in rest]
    return Markdown("\n".join(lines))
