"""The stages, declared once: name, notebook, what each needs and which artifacts it writes.

Everything that lists stages (the pipeline, ``Run.load``, the CLI's help, the reports'
navigation) reads :data:`STAGES`. To add a stage: a module ``segkit/stages/<name>.py`` with
``run(run) -> result``, a notebook ``NN_<name>.ipynb``, and one entry here.

``uses_engine`` marks the stages that read or aggregate through the run's engine
(:mod:`segkit.engine`, ``engine.connect``, or a library function given ``engine=``): with
``engine: spark`` the pipeline starts the shared Spark session (a JVM) only when one of the
stages it runs is marked (:func:`uses_engine`). A stage that starts reading through the
engine must be marked here, or its kernel starts a session of its own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

from segkit.core.checks import check_scalar

if TYPE_CHECKING:
    from segkit.stages.run import Run


class Stage(NamedTuple):
    """One stage of the pipeline."""

    name: str  # also the parameter section, the module segkit.stages.<name>, the notebook
    number: int
    title: str
    needs: tuple[str, ...]  # stages that must have succeeded first
    artifacts: tuple[str, ...]  # artifact names (without extension) this stage writes
    preflight: bool = False  # its module has preflight(params): checks run before any kernel
    enable: str = ""  # what a parameter set needs for this stage to run, in words
    uses_engine: bool = False  # reads through the run's engine (Spark on engine: spark)

    @property
    def notebook(self) -> str:
        """File name of the stage notebook, e.g. ``02_cluster.ipynb``."""
        return f"{self.number:02d}_{self.name}.ipynb"

    @property
    def report(self) -> str:
        """File name of the stage's HTML report."""
        return self.notebook.replace(".ipynb", ".html")


STAGES: tuple[Stage, ...] = (
    Stage(
        "explore",
        1,
        "Exploration",
        (),
        ("transactions", "customers", "experiment", "rejects", "data_quality", "calibration"),
        uses_engine=True,  # cleans and aggregates the transactions (segkit.engine.clean)
    ),
    Stage("cluster", 2, "Segments", ("explore",), ("segments", "k_selection", "segmenter")),
    # profile.compare_date rebuilds the features at that date on the engine
    Stage("profile", 3, "Profiles", ("cluster",), ("profiles",), uses_engine=True),
    Stage(
        "clv",
        4,
        "Customer lifetime value",
        ("explore", "cluster"),
        (
            "clv",
            "clv_params",
            "clv_segments",
            "clv_holdout",
            "clv_models",
            "clv_tracking",
            "actions_with_value",
        ),
        enable=(
            "a transaction log (data.transactions: customer id, timestamp, amount) whose "
            "customers differ in how often they buy and in when they stop"
        ),
        uses_engine=True,  # calibration/holdout features and tracking counts
    ),
    Stage(
        "abtest",
        5,
        "A/B evaluation",
        ("explore", "cluster"),
        (
            "ab_effects",
            "ab_recommendations",
            "ab_value",
            "ab_srm",
            "ab_heterogeneity",
            "ab_balance",
        ),
        preflight=True,
        enable="an experiment table (data.experiment: customer id, arm, outcomes)",
        uses_engine=True,  # the per-arm sums (segkit.abtest.aggregation.on_engine)
    ),
    Stage(
        "plan",
        6,
        "Campaign plan",
        ("explore", "cluster", "abtest"),
        ("plan", "contacts", "plan_counts", "plan_comparison"),
        enable=(
            "an experiment table (data.experiment) and abtest.value_metric: the lift of an "
            "outcome in money (e.g. spend) of each campaign"
        ),
    ),
)

NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def get(name: str) -> Stage:
    """The stage called ``name``; an unknown name lists the stages."""
    check_scalar(name, "stage", str, in_=NAMES)
    return STAGES[NAMES.index(name)]


def uses_engine(names: list[str] | tuple[str, ...]) -> bool:
    """Whether any of the stages ``names`` reads through the run's engine, so that a run
    of them with ``engine: spark`` needs the Spark session (see ``Stage.uses_engine``)."""
    return any(get(name).uses_engine for name in names)


def writer_of(artifact: str) -> Stage | None:
    """The stage that writes artifact ``artifact`` (a bare name), or None."""
    for stage in STAGES:
        if artifact in stage.artifacts:
            return stage
    return None


def run_stage(name: str, run: Run) -> Any:
    """Compute one stage into ``run`` through ``segkit.stages.<name>.run(run)``."""
    # a module of this same layer, imported when first needed: Run.load() calls this, and
    # the stage modules import Run, so a top-level import would be a cycle
    module = importlib.import_module(f"segkit.stages.{get(name).name}")
    return module.run(run)


def preflight(params: dict, names: list[str] | tuple[str, ...] = NAMES) -> None:
    """Run the checks of the stages in ``names`` that need the data (e.g. the control arm
    exists), before any kernel starts; each raises SegkitError naming what is wrong."""
    for stage in STAGES:
        if stage.name in names and stage.preflight:
            importlib.import_module(f"segkit.stages.{stage.name}").preflight(params)
