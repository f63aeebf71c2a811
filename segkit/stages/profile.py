"""Stage 'profile' (transitional: the stage body still lives in segkit.profile.run_stage)."""

from __future__ import annotations

from typing import Any

from segkit.stages.run import Run


def run(run: Run) -> Any:
    """Run the profile stage into ``run``."""
    from segkit import profile

    return profile.run_stage(run)
