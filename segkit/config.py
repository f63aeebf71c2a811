"""Parameters and run folders.

A *parameter set* is a YAML file (``notebooks/params/demo.yaml`` …) laid over
:data:`DEFAULTS`. :func:`load_params` reads one, applies ``key.sub=value`` overrides and
validates the result before any kernel starts: an unknown name, a wrong type or an
impossible value is a :class:`~segkit._checks.SegkitError` that lists what is accepted.

A :class:`Run` is one run folder (``reports/<name>/``) with its resolved parameters and
its ``artifacts/``. ``run.load("customers")`` reads an artifact and, when it is missing,
rebuilds it through the stage that writes it, so every notebook runs on its own.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from segkit._checks import SegkitError, check_scalar

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent
DATA_DIR = ROOT / "data"
PARAMS_DIR = ROOT / "notebooks" / "params"
NOTEBOOKS_DIR = ROOT / "notebooks"
# SEGKIT_REPORTS_DIR moves interactive and test runs elsewhere (the tests use a temp dir).
REPORTS_DIR = Path(os.environ.get("SEGKIT_REPORTS_DIR", ROOT / "reports"))

STAGES = ("explore", "cluster", "profile", "clv", "abtest")

#: Every parameter with its default. A value of ``None`` means "not given".
DEFAULTS: dict[str, Any] = {
    "name": "demo",  # run name: the run folder is reports/<name>/
    "seed": 42,  # seed of every random step
    "data": {
        "source": "demo",  # demo (the synthetic retailer) | files (the table specs below)
        "demo": {  # the synthetic retailer (source: demo)
            "n_customers": 4000,
            "start": "2023-01-01",
            "end": "2024-12-31",
        },
        "transactions": None,  # table spec: {path, columns, ...}; see io.TABLE_DEFAULTS
        "customers": None,  # customer attribute table spec
        "experiment": None,  # experiment table spec
        "observation_end": None,  # "YYYY-MM-DD"; None = last transaction date
        "calibration_end": None,  # "YYYY-MM-DD" split for the CLV holdout; None = none
        "time_unit": "D",  # D (days) or W (weeks) for recency, T and CLV
        "pseudonymize": False,  # replace customer ids by salted hashes in artifacts
    },
    "cluster": {
        "method": "kmeans",  # kmeans | gmm | kprototypes | rfm
        "features": None,  # numeric features to cluster on; None = the default set
        "categorical": None,  # categorical attributes (kprototypes / one-hot)
        "k": 0,  # number of segments; 0 = the recommended one
        "k_min": 3,
        "k_max": 10,
        "n_bootstrap": 20,  # resamples for the stability (Jaccard) of each k
        "gap_references": 10,  # reference data sets for the gap statistic (0 = no gap)
        "gamma": None,  # kprototypes: weight of one categorical mismatch; None = Huang's rule
        "sample_size": 20000,  # fit on a sample of this many customers, assign everyone
        "min_segment_size": 20,  # smallest segment a k may produce to be recommended
        "names": {},  # segment number -> name, overriding the derived names
    },
    "profile": {
        "min_segment_size": 20,  # segments smaller than this are not profiled in detail
        "tree_depth": 3,  # depth of the surrogate tree that describes segments
        "compare_run": None,  # run folder of an earlier run for the migration matrix
        "compare_date": None,  # "YYYY-MM-DD": migration from the segments as of that date
    },
    "clv": {
        "models": ["bgnbd", "pareto_nbd", "gamma_gamma"],
        "horizon_months": 12,  # CLV horizon
        "margin": 0.3,  # profit margin applied to revenue
        "discount_rate": 0.1,  # annual discount rate
    },
    "abtest": {
        "control": None,  # name of the control arm; None = the arm named like control/none
        "metrics": None,  # list of {name, kind: proportion|mean|ratio, col | num+den, covariate}
        "segment_cols": ["segment"],  # columns to break effects down by
        "correction": "holm",  # holm | fdr_bh: multiple testing across segments
        "alpha": 0.05,
        "power": 0.8,
        "cost_per_contact": 0.1,  # cost of one contact, same currency as the value metric
        "value_metric": None,  # metric whose lift is money (for ROI); None = none
        "min_n": 100,  # fewest customers per arm for a segment to be evaluated
        "target_lift": 0.1,  # relative lift the test should detect (power, planning)
    },
}

#: Keys whose value is a free-form mapping or list (not checked key by key).
_FREE = {
    ("data", "transactions"),
    ("data", "customers"),
    ("data", "experiment"),
    ("cluster", "names"),
    ("cluster", "features"),
    ("cluster", "categorical"),
    ("clv", "models"),
    ("abtest", "metrics"),
    ("abtest", "segment_cols"),
}

_CHOICES = {
    ("data", "source"): {"demo", "files"},
    ("data", "time_unit"): {"D", "W"},
    ("cluster", "method"): {"kmeans", "gmm", "kprototypes", "rfm"},
    ("abtest", "correction"): {"holm", "fdr_bh", "bonferroni", "none"},
}


def _walk_validate(given: dict, defaults: dict, path: tuple[str, ...], where: str) -> None:
    for key, value in given.items():
        here = (*path, key)
        dotted = ".".join(here)
        if key not in defaults:
            raise SegkitError(
                f"{where}: unknown parameter {dotted!r}; accepted here: {sorted(defaults)}"
            )
        default = defaults[key]
        if here in _FREE or value is None:
            continue
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise SegkitError(f"{where}: {dotted} == {value!r}, must be a mapping.")
            _walk_validate(value, default, here, where)
        elif default is not None and not isinstance(default, dict):
            typ = float if isinstance(default, float) else type(default)
            check_scalar(value, f"{where}: {dotted}", typ, in_=_CHOICES.get(here))


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``cluster.k=5`` into (["cluster", "k"], 5); the value is read as YAML."""
    if "=" not in text:
        raise SegkitError(f"--set {text!r}: expected key=value, e.g. cluster.k=5")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except (yaml.YAMLError, ValueError):  # e.g. '2024-13-01' looks like a date but is not
        value = raw
    return key.strip().split("."), value


def _set_dotted(params: dict, keys: list[str], value: Any) -> None:
    node = params
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise SegkitError(f"--set {'.'.join(keys)}: {k!r} is not a section")
    node[keys[-1]] = value


def _check_values(p: dict, where: str) -> None:
    c, d = p["cluster"], p["data"]
    check_scalar(p["seed"], f"{where}: seed", int, ge=0)
    check_scalar(c["k_min"], f"{where}: cluster.k_min", int, ge=2)
    check_scalar(c["k_max"], f"{where}: cluster.k_max", int, ge=c["k_min"])
    if c["k"] != 0:
        check_scalar(c["k"], f"{where}: cluster.k", int, ge=2)
    check_scalar(c["n_bootstrap"], f"{where}: cluster.n_bootstrap", int, ge=0)
    check_scalar(c["gap_references"], f"{where}: cluster.gap_references", int, ge=0)
    if c["gamma"] is not None:
        check_scalar(c["gamma"], f"{where}: cluster.gamma", float, gt=0)
    check_scalar(c["sample_size"], f"{where}: cluster.sample_size", int, ge=100)
    check_scalar(c["min_segment_size"], f"{where}: cluster.min_segment_size", int, ge=1)
    check_scalar(p["profile"]["min_segment_size"], f"{where}: profile.min_segment_size", int, ge=1)
    if p["profile"]["compare_date"] is not None:
        parse_date(p["profile"]["compare_date"], f"{where}: profile.compare_date")
    check_scalar(p["clv"]["horizon_months"], f"{where}: clv.horizon_months", int, gt=0)
    check_scalar(p["clv"]["margin"], f"{where}: clv.margin", float, gt=0, le=1)
    check_scalar(p["clv"]["discount_rate"], f"{where}: clv.discount_rate", float, ge=0, lt=1)
    check_scalar(p["abtest"]["alpha"], f"{where}: abtest.alpha", float, gt=0, lt=1)
    check_scalar(p["abtest"]["power"], f"{where}: abtest.power", float, gt=0, lt=1)
    check_scalar(p["abtest"]["cost_per_contact"], f"{where}: abtest.cost_per_contact", float, ge=0)
    check_scalar(p["abtest"]["target_lift"], f"{where}: abtest.target_lift", float, gt=0)
    check_scalar(p["abtest"]["min_n"], f"{where}: abtest.min_n", int, ge=2)
    check_scalar(d["demo"]["n_customers"], f"{where}: data.demo.n_customers", int, ge=50)
    for key in ("observation_end", "calibration_end"):
        if d[key] is not None:
            parse_date(d[key], f"{where}: data.{key}")
    if d["observation_end"] and d["calibration_end"]:
        if parse_date(d["calibration_end"]) >= parse_date(d["observation_end"]):
            raise SegkitError(
                f"{where}: data.calibration_end == {d['calibration_end']!r}, must be before "
                f"data.observation_end == {d['observation_end']!r}."
            )
    if d["source"] == "files" and not any(
        d[t] for t in ("transactions", "customers", "experiment")
    ):
        raise SegkitError(
            f"{where}: data.source == 'files' needs at least one of data.transactions, "
            "data.customers, data.experiment"
        )
    unknown = set(p["clv"]["models"]) - {"bgnbd", "pareto_nbd", "mbgnbd", "gamma_gamma"}
    if unknown:
        raise SegkitError(
            f"{where}: clv.models has {sorted(unknown)}; accepted: "
            "['bgnbd', 'gamma_gamma', 'mbgnbd', 'pareto_nbd']"
        )


def parse_date(value: Any, name: str = "date") -> pd.Timestamp:
    """Read a ``YYYY-MM-DD`` string (or date) into a Timestamp, or raise naming ``name``."""
    if isinstance(value, dt.date | pd.Timestamp):
        return pd.Timestamp(value)
    try:
        return pd.Timestamp(dt.date.fromisoformat(str(value)))
    except ValueError:
        raise SegkitError(f"{name} == {value!r}, must be a date 'YYYY-MM-DD'.") from None


def resolve_params_path(params: str | Path) -> Path:
    """A parameter-set name (``demo``) or a path to a YAML file, as an existing path."""
    p = Path(params)
    candidates = [p, PARAMS_DIR / p, PARAMS_DIR / f"{p}.yaml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    names = sorted(x.stem for x in PARAMS_DIR.glob("*.yaml"))
    raise SegkitError(f"parameter set {str(params)!r} not found; bundled sets are {names}")


def load_params(
    params: str | Path | dict | None = None, overrides: list[str] | dict | None = None
) -> dict:
    """Resolve a parameter set: DEFAULTS < YAML file (or dict) < overrides; validated.

    Parameters
    ----------
    params : name of a bundled set (``"demo"``), path to a YAML file, a dict, or None.
    overrides : ``["cluster.k=5", ...]`` strings or a ``{"cluster.k": 5}`` mapping.
    """
    where = "parameters"
    given: dict = {}
    if isinstance(params, dict):
        given = copy.deepcopy(params)
    elif params is not None:
        path = resolve_params_path(params)
        where = str(path)
        try:
            given = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise SegkitError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(given, dict):
            raise SegkitError(
                f"{path}: expected a mapping of parameters, found {type(given).__name__}"
            )
    items = (
        overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or [])
    )
    for key, value in items:
        _set_dotted(given, key.split(".") if isinstance(key, str) else key, value)
    _walk_validate(given, DEFAULTS, (), where)
    resolved = _merge(DEFAULTS, given)
    _check_values(resolved, where)
    return resolved


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, pd.Timestamp | dt.date):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as stable, sorted, indented JSON (numpy scalars converted)."""
    path.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=True, allow_nan=True) + "\n")


# Which stage writes which artifact: Run.load() rebuilds a missing artifact through it.
ARTIFACT_STAGE = {
    "transactions": "explore",
    "customers": "explore",
    "experiment": "explore",
    "rejects": "explore",
    "data_quality": "explore",
    "calibration": "explore",
    "segments": "cluster",
    "k_selection": "cluster",
    "segmenter": "cluster",
    "profiles": "profile",
    "actions_with_value": "clv",
    "clv": "clv",
    "clv_params": "clv",
    "clv_segments": "clv",
    "clv_holdout": "clv",
    "clv_models": "clv",
    "clv_tracking": "clv",
    "ab_effects": "abtest",
    "ab_recommendations": "abtest",
    "ab_value": "abtest",
    "ab_srm": "abtest",
    "ab_heterogeneity": "abtest",
}


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
        folder = Path(run_dir) if run_dir else REPORTS_DIR / f"lab-{resolved['name']}"
        run = cls(folder, resolved)
        params_file = run.folder / "params.yaml"
        if params_file.exists() and yaml.safe_load(params_file.read_text()) != resolved:
            # Artifacts of other parameters would be silently reused: they are derived
            # data, so clear them and rebuild rather than mix two parameter sets.
            shutil.rmtree(run.artifacts, ignore_errors=True)
        run.artifacts.mkdir(parents=True, exist_ok=True)
        params_file.write_text(yaml.safe_dump(resolved, sort_keys=False))
        return run

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    def path(self, name: str) -> Path:
        """Path of artifact ``name``: ``name`` with its extension, or a bare known name."""
        if "." in name:
            return self.artifacts / name
        for ext in (".parquet", ".json", ".csv", ".joblib"):
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

    def save_findings(self, stage: str, findings: list[str], status: str = "ok") -> Path:
        """Record a stage's plain-language findings (first = the index page's one-liner)."""
        return self.save(
            f"findings_{stage}.json", {"stage": stage, "status": status, "findings": list(findings)}
        )

    def load(self, name: str) -> Any:
        """Read artifact ``name``; if absent, run the stage that writes it, then read it."""
        if not self.has(name):
            stage = ARTIFACT_STAGE.get(name.split(".")[0])
            if stage is None:
                raise SegkitError(f"artifact {name!r} not found in {self.artifacts}")
            run_stage(stage, self)
            if not self.has(name):
                raise SegkitError(
                    f"artifact {name!r} is not written by stage {stage!r} for this run "
                    f"(data.source == {self.params['data']['source']!r})"
                )
        path = self.path(name)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path)
        if path.suffix == ".json":
            return json.loads(path.read_text())
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        raise SegkitError(f"artifact {name!r}: cannot read {path.suffix}")


def run_stage(stage: str, run: Run) -> Any:
    """Compute one stage into ``run`` through its module's ``run_stage(run)``."""
    import importlib

    module = {"cluster": "segment"}.get(stage, stage)
    check_scalar(stage, "stage", str, in_=STAGES)
    return importlib.import_module(f"segkit.{module}").run_stage(run)


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
    head, *rest = findings
    lines = [f"### {title}", "", f"**{head}**", ""] + [f"- {f}" for f in rest]
    return Markdown("\n".join(lines))
