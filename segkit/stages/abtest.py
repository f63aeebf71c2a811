"""Stage 'abtest' (transitional: the stage body still lives in segkit.abtest.run_stage)."""

from __future__ import annotations

from typing import Any

from segkit.stages.run import Run


def run(run: Run) -> Any:
    """Run the abtest stage into ``run``."""
    from segkit import abtest

    return abtest.run_stage(run)
