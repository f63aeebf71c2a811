"""The code stays clean: ruff (lint with complexity limits, format) and mypy over segkit/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean():
    done = _run(str(BIN / "ruff"), "check", ".")
    assert done.returncode == 0, done.stdout[-3000:]


def test_ruff_format_is_clean():
    done = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert done.returncode == 0, done.stdout[-3000:]


def test_mypy_is_clean_over_the_package():
    done = _run(str(BIN / "mypy"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Success: no issues found" in done.stdout
