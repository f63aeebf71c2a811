"""The package keeps its layers: each module imports only from its own layer or below.

Layers, lowest first (README "How segkit is built"):

0. core      segkit.core.*                                  errors, schema, SQL, paths
1. library   segkit.io, features, engine, explore, segment,  pure functions by concern
             naming, profile, clv, abtest, plan, datasets, scaffold
2. stages    segkit.stages.*, segkit.plots                   run(run) per stage, plots
3. pipeline  segkit.pipeline.*, segkit.cli                   papermill, kernels, HTML, CLI
4. entry     segkit.__main__                                 python -m segkit, spark-submit

Every import is read, also those inside functions. A module may not import a private
name (``_x``) of another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "segkit"
LAYERS = {
    "core": 0,
    "io": 1,
    "features": 1,
    "explore": 1,
    "segment": 1,
    "naming": 1,
    "profile": 1,
    "clv": 1,
    "abtest": 1,
    "plan": 1,
    "datasets": 1,
    "scaffold": 1,
    "derive": 1,
    "engine": 1,
    "stages": 2,
    "plots": 2,
    "pipeline": 3,
    "cli": 3,
    "__main__": 4,
}
NAMES = ["core", "library", "stages", "pipeline", "entry"]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "segkit":
        return None
    if len(parts) == 1:
        return 99  # the package's facade: nothing inside may import it
    return LAYERS.get(parts[1], -1)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) for every segkit import in ``path``."""
    tree = ast.parse(path.read_text())
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("segkit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("segkit"):
                out.append((node.lineno, module, [a.name for a in node.names]))
    return out


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "notebooks" not in p.parts)


def test_every_module_has_a_layer():
    unplaced = [_module_name(p) for p in SOURCES if _layer(_module_name(p)) == -1]
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_imports_go_down_the_layers(path):
    here = _module_name(path)
    mine = _layer(here)
    bad = []
    for line, module, names in _imports(path):
        # "from segkit import x" imports the module segkit.x
        targets = [f"{module}.{n}" for n in names] if module == "segkit" else [module]
        for target in targets:
            theirs = _layer(target)
            if here == "segkit":
                continue  # the facade re-exports the public API of every layer
            if theirs is not None and theirs > mine:
                bad.append(f"line {line}: {here} ({NAMES[mine]}) imports {target}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_no_private_names_of_other_modules(path):
    here = _module_name(path)
    bad = []
    for line, module, names in _imports(path):
        if module == here:
            continue
        for name in names:
            if name.startswith("_") and not name.startswith("__"):
                bad.append(f"line {line}: {here} imports {module}.{name}")
        if any(part.startswith("_") and not part.startswith("__") for part in module.split(".")):
            if module.rsplit(".", 1)[0] != here.rsplit(".", 1)[0]:
                bad.append(f"line {line}: {here} imports the private module {module}")
    assert not bad, "\n".join(bad)


def test_the_rule_catches_an_upward_import(tmp_path):
    """The checker itself: an import from a higher layer inside a function is found."""
    fake = PACKAGE / "core" / "_probe_for_test.py"
    fake.write_text("def f():\n    from segkit.stages.run import Run\n    return Run\n")
    try:
        found = [m for _, m, _ in _imports(fake)]
        assert found == ["segkit.stages.run"]
        assert _layer("segkit.stages.run") > _layer(_module_name(fake))
    finally:
        fake.unlink()
