"""Stage 'explore' (transitional: the stage body still lives in segkit.explore.run_stage)."""

from __future__ import annotations

from typing import Any

from segkit.stages.run import Run


def run(run: Run) -> Any:
    """Run the explore stage into ``run``."""
    from segkit import explore

    return explore.run_stage(run)
