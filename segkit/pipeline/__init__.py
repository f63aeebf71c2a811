"""The pipeline layer: stage notebooks run with papermill into run folders with reports.

- :mod:`.runner` — :func:`run` (``segkit run``): one parameter set, every stage.
- :mod:`.batch` — :func:`batch` (``segkit batch``): a grid of parameter sets.
- :mod:`.kernels` — kernels started ahead of their stage, over IPC, thread-capped.
- :mod:`.folders` — safe names, run folders that never lose files, locks, recovery.
- :mod:`.report` — HTML reports and index pages; :mod:`.manifest` — provenance.
- :mod:`.project` — ``segkit init`` and the refresh of the committed notebooks.
"""

from segkit.pipeline.batch import PointResult, batch
from segkit.pipeline.project import init_project, refresh_notebooks
from segkit.pipeline.report import EXTERNAL, export_html
from segkit.pipeline.runner import RunAborted, RunResult, StageResult, rerun, run

__all__ = [
    "EXTERNAL",
    "PointResult",
    "RunAborted",
    "RunResult",
    "StageResult",
    "batch",
    "export_html",
    "init_project",
    "refresh_notebooks",
    "rerun",
    "run",
]
