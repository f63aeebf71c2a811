"""Stage 'cluster' (transitional: the stage body still lives in segkit.segment.run_stage)."""

from __future__ import annotations

from typing import Any

from segkit.stages.run import Run


def run(run: Run) -> Any:
    """Run the cluster stage into ``run``."""
    from segkit import segment

    return segment.run_stage(run)
