"""Stage 'clv' (transitional: the stage body still lives in segkit.clv.run_stage)."""

from __future__ import annotations

from typing import Any

from segkit.stages.run import Run


def run(run: Run) -> Any:
    """Run the clv stage into ``run``."""
    from segkit import clv

    return clv.run_stage(run)
