"""The stages layer: one module per stage, each ``run(run) -> result``.

A stage reads its inputs from the :class:`~segkit.stages.run.Run`, calls the library
(``segkit.io``, ``segkit.features``, ``segkit.segment``, ``segkit.clv``, ``segkit.abtest`` …),
writes its artifacts and words its findings. :mod:`segkit.stages.registry` lists the stages.
"""

from segkit.stages.registry import NAMES, STAGES, Stage, get, run_stage
from segkit.stages.run import Run, Skipped, show_findings

__all__ = ["NAMES", "STAGES", "Run", "Skipped", "Stage", "get", "run_stage", "show_findings"]
