"""A parameter that no code reads is an error: each parameter name of the schema must appear
as a quoted key in the package or the notebooks (a cheap check; it catches a parameter that
was declared and never wired, not one read under a name shared with another)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segkit.core.params import DEFAULTS, TABLE_DEFAULTS

PACKAGE = Path(__file__).resolve().parents[1] / "segkit"
SOURCE = "\n".join(
    p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "params.py" or p.parent.name != "core"
) + "\n".join(p.read_text() for p in (PACKAGE.parent / "notebooks").glob("*.ipynb"))

# free-form sections whose keys are data, not parameters
_LEAVES = []


def _leaves(tree: dict, path: tuple[str, ...] = ()) -> None:
    for key, value in tree.items():
        if isinstance(value, dict) and value and key not in ("names",):
            _leaves(value, (*path, key))
        else:
            _LEAVES.append((*path, key))


_leaves(DEFAULTS)


@pytest.mark.parametrize("path", _LEAVES, ids=".".join)
def test_every_parameter_is_read_somewhere(path):
    key = path[-1]
    assert f'["{key}"]' in SOURCE or f"'{key}'" in SOURCE or f'"{key}"' in SOURCE, (
        f"parameter {'.'.join(path)} is declared but no code reads it"
    )


@pytest.mark.parametrize("key", sorted(TABLE_DEFAULTS))
def test_every_table_spec_key_is_read_somewhere(key):
    assert f'["{key}"]' in SOURCE or f'"{key}"' in SOURCE, f"table-spec key {key} is never read"
