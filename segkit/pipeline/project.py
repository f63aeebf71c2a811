"""Project folders for new users (``segkit init``, ``segkit init --from FILE``), and the
committed notebooks' refresh.

``segkit init DIR`` writes a parameter file that runs on a bundled example;
``segkit init DIR --from FILE`` writes one inferred from the user's own data
(:func:`init_from`), every choice commented with its reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from segkit.core import paths
from segkit.core.errors import SegkitError, TodoError
from segkit.core.params import load_params
from segkit.stages.registry import STAGES

if TYPE_CHECKING:  # the inference imports DuckDB and scikit-learn: only when init --from runs
    from segkit.scaffold.infer import Guess

_PARAMS = """\
# segkit parameters for this project. Run every stage with
#     segkit run --params params.yaml
# and open reports/<name>/index.html. Every parameter, its default and meaning: the
# comments of DEFAULTS in segkit/core/params.py; `segkit params params.yaml` shows the
# parameters a run would use.
# Relative paths below are relative to this file's folder.
name: {name}
seed: 42                      # seed of every random step: same inputs + seed = same numbers
data:
  source: files
  # A transaction log: one row per purchase (here the CDNOW sample as an example; replace
  # it with your own file and map your column names under 'columns').
  transactions:
    path: data/cdnow_sample.txt.gz
    format: whitespace        # auto | csv | parquet | excel | whitespace
    header: false
    names: [customer_id, cohort, date, cds, amount]
    columns:                  # segkit role: your column name
      customer_id: customer_id
      timestamp: date
      amount: amount          # or quantity + unit_price
      quantity: cds
    date_formats: ["%Y%m%d"]
    dedupe: false
    allow_zero_amount: true
  # A customer table (attributes) and an experiment (A/B test) are optional:
  # customers:
  #   path: data/customers.csv
  #   columns: {{customer_id: CustomerID}}
  # experiment:
  #   path: data/experiment.csv
  #   columns: {{customer_id: CustomerID, arm: segment}}
  calibration_end: "1997-09-30"   # CLV holdout split; remove to skip the holdout check
  time_unit: W                    # D or W
  pseudonymize: false             # true: customer ids hashed (needs SEGKIT_SALT set)
cluster:
  k: 0                        # number of segments; 0 = the recommended one
  k_min: 3
  k_max: 8
clv:
  horizon_months: 12
  margin: 0.3
"""


def init_project(folder: str | Path, name: str | None = None) -> Path:
    """Create a project folder: ``params.yaml``, ``notebooks/``, ``data/``, ``reports/``.

    The parameter file is commented and runs as it is on an example data set copied into
    ``data/``; the notebooks open in JupyterLab with this project's parameters.

    Raises
    ------
    SegkitError
        ``folder`` exists and is not empty.
    """
    target = _new_folder(folder)
    project = (name or target.name).replace(" ", "_")
    _layout(target)
    shutil.copy2(paths.data_dir() / "cdnow_sample.txt.gz", target / "data")
    (target / "params.yaml").write_text(_PARAMS.format(name=project))
    return target


def _new_folder(folder: str | Path) -> Path:
    """The project folder, resolved; it must be new or empty and its name a run name."""
    target = Path(folder).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise SegkitError(f"{target} is not empty; segkit init needs a new or empty folder")
    from segkit.pipeline.folders import check_name

    check_name(target.name.replace(" ", "_"), "project name")
    return target


def _layout(target: Path) -> None:
    """``data/``, ``reports/`` and ``notebooks/`` (the stage notebooks reading ../params.yaml)."""
    (target / "data").mkdir(parents=True, exist_ok=True)
    (target / "reports").mkdir(exist_ok=True)
    (target / "notebooks").mkdir(exist_ok=True)
    for stage in STAGES:
        _copy_notebook(
            paths.notebooks_dir() / stage.notebook, target / "notebooks" / stage.notebook
        )


# --------------------------------------------------------------------------- init --from

#: Column where the ``# why`` comments of the written params.yaml start.
_COMMENT_AT = 34
#: Lines of the written params.yaml stay within this width (longer reasons go above).
_WIDTH = 96
_YAML_WORDS = {"yes", "no", "true", "false", "on", "off", "null", "y", "n", "~"}


class Project(NamedTuple):
    """A project made by :func:`init_from`: its folder and what was inferred, per table."""

    folder: Path
    guesses: list[Guess]


def _scalar(value: Any) -> str:
    """A YAML scalar: plain when it reads back as the same text, else double-quoted."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][\w.-]*", text) and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text, ensure_ascii=False)


def _commented(head: str, why: str) -> str:
    """``head`` with its reason beside it, or above it (wrapped) when it is long."""
    if not why:
        return head
    if max(len(head), _COMMENT_AT - 1) + len(why) + 3 <= _WIDTH:
        return f"{head.ljust(_COMMENT_AT - 1)} # {why}"
    pad = " " * (len(head) - len(head.lstrip()))
    above = textwrap.wrap(why, _WIDTH - len(pad) - 2, break_on_hyphens=False)
    return "\n".join([*(f"{pad}# {w}" for w in above), head])


def _line(indent: int, key: str, value: str = "", why: str = "") -> str:
    """``key: value`` at ``indent``, with its reason."""
    return _commented(" " * indent + (f"{key}: {value}" if value != "" else f"{key}:"), why)


def _items(indent: int, values: list[str], why: dict[str, str]) -> list[str]:
    """A YAML block list, each item with its reason."""
    return [_commented(" " * indent + "- " + _scalar(v), why.get(v, "")) for v in values]


def _path(file: Path, folder: Path) -> str:
    """The file relative to the project folder when they share a top folder, else absolute."""
    if os.path.commonpath([file, folder]) == os.path.sep:
        return str(file)
    return os.path.relpath(file, folder)


def _read_options(g: Guess) -> list[str]:
    """The read options found (format, header, decimal…), each with its reason."""
    out = []
    keys = ("format", "sheet", "skip_rows", "header", "decimal", "thousands", "dayfirst", "epoch")
    for key in (*keys, "cents", "id_width"):
        if key in g.spec:
            why = g.profile.why.get(key) or g.why.get(key, "")
            out.append(_line(4, key, _scalar(g.spec[key]), why))
    if "names" in g.spec:
        out.append(_line(4, "names", "[" + ", ".join(map(_scalar, g.spec["names"])) + "]"))
    return out


def _left_out(g: Guess) -> list[str]:
    """The columns not used, and why, as comments."""
    if not g.left_out:
        return []
    lines = ["    # Columns left out:"]
    for col, why in g.left_out.items():
        wrapped = textwrap.wrap(f"{col}: {why}", _WIDTH - 10, break_on_hyphens=False)
        lines += [f"    #   {wrapped[0]}", *(f"    #     {w}" for w in wrapped[1:])]
    return lines


def _table_lines(g: Guess, folder: Path) -> list[str]:
    """The table spec of one guess, every choice with its reason."""
    lines = [_line(2, g.shape, "", g.summary.split(";")[0])]
    what = "your file"
    if paths.is_pattern(g.profile.path):
        names = [f.name for f in paths.matched_files(g.profile.path)]
        what = f"your {len(names)} files, read in name order: {', '.join(names)}"
    lines.append(_line(4, "path", _scalar(_path(g.profile.path, folder)), what))
    lines += _read_options(g)
    if g.spec.get("id_from_row"):
        lines.append(_line(4, "id_from_row", "true", "no id column: customers numbered by row"))
    columns = g.spec.get("columns") or {}
    if columns:
        lines.append(_line(4, "columns", "", "segkit role: your column"))
        for role, col in columns.items():
            lines.append(_line(6, role, _scalar(col), g.why.get(col, "")))
    lines += _cleaning_lines(g)
    if g.spec.get("attributes") is not None:
        lines.append(_line(4, "attributes", "", "the columns that are neither arm nor outcome"))
        lines += _items(6, g.spec["attributes"], {})
    lines += _outcome_lines(g)
    if g.spec.get("derive"):
        lines.append(_line(4, "derive", "", "columns added by arithmetic on the columns"))
        for name, expr in g.spec["derive"].items():
            lines.append(_line(6, name, _scalar(expr), g.extra.get("value_why", "")))
    if g.shape == "customers":
        lines.append("    # labels: {MntWines: wine spend}   # readable names in the reports")
    return lines + _left_out(g)


def _cleaning_lines(g: Guess) -> list[str]:
    """The cleaning options of a transaction log: cancellations, local time, excluded
    values and currencies."""
    lines: list[str] = []
    if g.spec.get("cancel_prefix"):
        lines.append(
            _line(4, "cancel_prefix", _scalar(g.spec["cancel_prefix"]), g.why["cancel_prefix"])
        )
    if g.spec.get("local_time"):
        lines.append(_line(4, "local_time", "true", g.why["local_time"]))
    if g.spec.get("exclude_values"):
        lines.append(_line(4, "exclude_values", "", g.why["exclude_values"]))
        for col, levels in g.spec["exclude_values"].items():
            lines.append(_line(6, _scalar(col), "[" + ", ".join(map(_scalar, levels)) + "]"))
    if g.spec.get("refunded"):
        lines.append(_line(4, "refunded", _scalar(g.spec["refunded"]), g.why["refunded"]))
    if g.spec.get("currencies"):
        lines += _currency_lines(g.spec["currencies"], g.why["currencies"])
    return lines


def _currency_lines(cur: dict, why: str) -> list[str]:
    """``currencies:`` with the most common currency at rate 1 and a TODO for each other."""
    top = next(c for c, r in cur["rates"].items() if r == 1)
    lines = [_line(4, "currencies", "", why)]
    if cur["column"]:
        lines.append(_line(6, "column", _scalar(cur["column"]), "each row's currency"))
    lines.append(
        _line(
            6,
            "rates",
            "",
            f"how much {top} one unit is worth (the rates you book at); remove currencies "
            f"if the amounts are in {top} already",
        )
    )
    for code, rate in cur["rates"].items():
        value, note = ("1", "") if rate == 1 else ("", f"TODO: {top} per {code}")
        lines.append(_line(8, _scalar(code), value, note))
    if cur.get("default"):
        lines.append(_line(6, "default", _scalar(cur["default"]), "a number without a sign"))
    return lines


def _outcome_lines(g: Guess) -> list[str]:
    """``outcomes:`` as a block list, one reason per outcome."""
    if "outcomes" not in g.spec:
        return []
    outcomes = g.spec["outcomes"]
    if not outcomes:
        return [_line(4, "outcomes", "[]", "no column is named like a result (response…)")]
    what = "profiled per segment, never clustered" if g.shape == "customers" else "the results"
    return [_line(4, "outcomes", "", what), *_items(6, outcomes, g.why)]


def _cluster_lines(tables: dict[str, Guess]) -> list[str]:
    """``cluster:``: revenue for a transaction log; else the customer table's features,
    categories, method and value, each with its reason."""
    lines = ["cluster:"]
    c = tables.get("customers")
    if "transactions" in tables:
        lines.append(_line(2, "value", "revenue", "a transaction log's value: revenue"))
        if c is not None:
            lines.append("  # TODO: the purchase history and the attributes are clustered by")
            lines.append("  # default; list cluster.features to choose")
    elif c is not None:
        x = c.extra
        why = "numeric and categorical features together" if x["categorical"] else ""
        lines.append(_line(2, "method", x["method"], why or "numeric features only"))
        lines.append(_line(2, "features", "", "clustered (numbers)"))
        lines += _items(4, x["features"], c.why)
        if x["categorical"]:
            lines.append(_line(2, "categorical", "", "clustered (categories)"))
            lines += _items(4, x["categorical"], c.why)
        if x["value"]:
            why = "orders the segments (1 = most valuable)"
            derived = x["value"] in (c.spec.get("derive") or {})
            why += "; derived above" if derived else f"; {x['value_why']}"
            lines.append(_line(2, "value", _scalar(x["value"]), why))
        else:
            lines.append(f"  # value: TODO ({x['value_why']})")
    return lines + _k_lines(tables)


def _k_lines(tables: dict[str, Guess]) -> list[str]:
    """``k_min``/``k_max``: 2..8, fewer when the data has fewer than 10 customers per
    segment (the clustering stage's minimum, :data:`segkit.stages.cluster.ROWS_PER_SEGMENT`)."""
    from segkit.stages.cluster import ROWS_PER_SEGMENT

    g = tables.get("transactions") or tables.get("customers")
    n = g.extra.get("customers") if g is not None else None
    most = 8 if n is None else min(8, n // ROWS_PER_SEGMENT)
    if most >= 8:
        return [_line(2, "k_min", "2"), _line(2, "k_max", "8", "segments tried: k_min..k_max")]
    if most < 2:
        return [
            _line(2, "k_min", "2"),
            _line(
                2,
                "k_max",
                "2",
                f"TODO: {n:,} customers; segmenting needs at least "
                f"{2 * ROWS_PER_SEGMENT} ({ROWS_PER_SEGMENT} per segment)",
            ),
        ]
    why = f"{n:,} customers: at least {ROWS_PER_SEGMENT} per segment"
    return [_line(2, "k_min", "2"), _line(2, "k_max", str(most), why)]


def _abtest_lines(g: Guess) -> list[str]:
    """``abtest:``: the control arm and the value metric."""
    x = g.extra
    lines = ["abtest:", _line(2, "control", _scalar(x["control"]), x["control_why"])]
    if x["value_metric"]:
        why = "a numeric outcome named like money: its lift is money (ROI)"
        lines.append(_line(2, "value_metric", _scalar(x["value_metric"]), why))
        lines.append(_line(2, "cost_per_contact", "0.1", "TODO: the cost of one contact"))
    return lines


def _plan_lines(tables: dict[str, Guess]) -> list[str]:
    """``plan.consent_column`` when the customer table has a consent column."""
    c = tables.get("customers")
    consent = c.extra.get("consent") if c is not None else None
    if c is None or not consent:
        return []
    why = f"{c.why[consent].split(' -> ')[0]}; only who said yes is contacted"
    return ["plan:", _line(2, "consent_column", _scalar(consent), why)]


def _data_lines(tables: dict[str, Guess], folder: Path) -> list[str]:
    """``data:``: one table spec per guess, and a suggested CLV holdout for a log."""
    lines = ["data:", "  source: files"]
    for shape in ("transactions", "customers", "experiment"):
        if shape in tables:
            lines += _table_lines(tables[shape], folder)
    tx = tables.get("transactions")
    if tx is not None:
        first, last = tx.extra["dates"]
        cut = pd.Timestamp(first) + 0.75 * (pd.Timestamp(last) - pd.Timestamp(first))
        lines.append(f"  # the log runs {first}..{last}; to check the CLV forecast on a holdout:")
        lines.append(f'  # calibration_end: "{cut.date()}"')
    return lines


def _currency_line(tables: dict[str, Guess]) -> str:
    """``report.currency``: the sign the money column's values carry, else a TODO."""
    from segkit.scaffold import infer

    money = []
    if "transactions" in tables:
        cur = tables["transactions"].spec.get("currencies")
        converted = tables["transactions"].extra.get("currency")
        if converted:  # the log's money, converted into one currency already
            shown = infer.CURRENCY_SIGNS.get(converted, f"{converted} ")
            return _line(2, "currency", _scalar(shown), "the currency money was converted to")
        if cur:  # the currency money is converted to
            top = next(c for c, r in cur["rates"].items() if r == 1)
            shown = infer.CURRENCY_SIGNS.get(top, f"{top} ")
            return _line(2, "currency", _scalar(shown), "the currency money is converted to")
        one = tables["transactions"].extra.get("one_currency")
        if one:  # a currency column with one currency on every row
            col, code = one
            shown = infer.CURRENCY_SIGNS.get(code, f"{code} ")
            return _line(2, "currency", _scalar(shown), f"the one currency in column {col}")
        cols = tables["transactions"].spec["columns"]
        money += [cols[r] for r in ("amount", "unit_price") if r in cols]
    if "experiment" in tables and tables["experiment"].extra.get("value_metric"):
        money.append(tables["experiment"].extra["value_metric"])
    if "customers" in tables and tables["customers"].extra.get("value"):
        money.append(tables["customers"].extra["value"])
    for g in tables.values():
        for col in money:
            if col in g.profile.columns:
                sign = infer.currency_sign(g.profile, col)
                if sign:
                    return _line(2, "currency", _scalar(sign), f"the sign in the values of {col}")
    return _line(2, "currency", '""', 'TODO: shown before money, e.g. "€"')


def render_params(name: str, tables: dict[str, Guess], folder: Path, files: list[str]) -> str:
    """The commented ``params.yaml`` for the inferred tables (see :func:`init_from`)."""
    todo = [t for g in tables.values() for t in g.todo]
    if "transactions" in tables:  # the log's revenue is the value
        todo = [t for t in todo if not t.startswith("cluster.value:")]
    lines = [
        f"# segkit parameters for {name}, written by `segkit init --from` from:",
        *(f"#     {f}" for f in files),
        "# Every choice below was inferred from the data; the reason is beside it. Check the",
        "# TODO lines, then run (in this folder)",
        "#     segkit run --params params.yaml",
        "# Every parameter, its default and meaning: DEFAULTS in segkit/core/params.py;",
        "# `segkit params params.yaml` shows the parameters a run would use.",
        f"name: {_scalar(name)}",
        _line(0, "seed", "42", "seed of every random step"),
        *_data_lines(tables, folder),
        *_cluster_lines(tables),
    ]
    if "experiment" in tables:
        lines += _abtest_lines(tables["experiment"])
    lines += _plan_lines(tables)
    lines += ["report:", _currency_line(tables)]
    for t in todo:
        wrapped = textwrap.wrap(f"TODO: {t}", _WIDTH - 4, break_on_hyphens=False)
        lines += [f"# {wrapped[0]}", *(f"#   {w}" for w in wrapped[1:])]
    return "\n".join(lines) + "\n"


def _patterns(names: list[str]) -> list[str]:
    """File-name patterns the ``names`` share, loosest first: their common start and end
    around a ``*``, with a number that varies taken whole (``orders_2023.csv`` and
    ``orders_2024.csv``: ``orders_*.csv``, then ``orders_202*.csv``)."""
    start = os.path.commonprefix(names)
    end = os.path.commonprefix([n[len(start) :][::-1] for n in names])[::-1]
    if not (start or end):
        return []
    loose = f"{start.rstrip('0123456789')}*{end.lstrip('0123456789')}"
    return list(dict.fromkeys([loose, f"{start}*{end}"]))


def _one_pattern(guesses: list[Guess], guess: Any) -> list[Guess]:
    """Files of one shape with the same columns in one folder (a log exported by year)
    read as one table, through the pattern of their names (``orders_*.csv``) when it
    matches exactly them; other guesses as they are."""
    out: list[Guess] = []
    by_shape: dict[str, list[Guess]] = {}
    for g in guesses:
        by_shape.setdefault(g.shape, []).append(g)
    for shape, found in by_shape.items():
        files = sorted({g.profile.path for g in found})
        same = len({tuple(g.profile.columns) for g in found}) == 1
        folder = {f.parent for f in files}
        names = _patterns([f.name for f in files]) if len(folder) == 1 else []
        matching = [files[0].parent / n for n in names if len(files) > 1 and same]
        path = next((p for p in matching if paths.matched_files(p) == files), None)
        if path is not None and shape in ("transactions", "customers"):
            out += [g for g in guess(path) if g.shape == shape]
            continue
        out += found
    return out


def _tables(guesses: list[Guess], files: list[str]) -> dict[str, Guess]:
    """One guess per table spec; an experiment's attributes yield to a customer table file."""
    tables: dict[str, Guess] = {}
    for g in sorted(guesses, key=lambda g: g.shape == "customers" and "attributes" in g.spec):
        if g.shape in tables:
            if g.shape == "customers" and "attributes" in g.spec:
                continue
            raise SegkitError(
                f"segkit init --from: {tables[g.shape].profile.path} and {g.profile.path} "
                f"both look like {g.shape}; give one file of each kind"
            )
        tables[g.shape] = g
    if set(tables) == {"experiment"}:
        raise SegkitError(
            f"segkit init --from {files[0]!r}: an experiment with no customer attributes "
            "(only id, arm and outcomes); segkit segments customers from a transaction log "
            "or a customer table: give that file too with a second --from"
        )
    return tables


def init_from(folder: str | Path, files: list[str | Path], name: str | None = None) -> Project:
    """Create a project folder whose ``params.yaml`` is inferred from the data ``files``.

    Each file is read with segkit's reader and its shape decided (transaction log,
    customer table or experiment, :func:`segkit.scaffold.guess.guess`); the parameter file lists
    every inferred role with its reason, the columns left out and why, the value column,
    and TODO comments where the user must check. It refers to the files by paths relative
    to the project folder (nothing is copied). At most one file of each shape.

    Raises
    ------
    SegkitError
        ``folder`` is not empty; a file cannot be read or its shape decided; two files
        have the same shape; an experiment alone has no customers to segment.
    """
    from segkit.scaffold.guess import align_ids, guess

    if not files:
        raise SegkitError("segkit init --from: give at least one data file")
    guesses = _one_pattern([g for f in files for g in guess(f)], guess)
    tables = _tables(guesses, [str(f) for f in files])
    align_ids(tables)
    target = _new_folder(folder)
    project = (name or target.name).replace(" ", "_")
    text = render_params(project, tables, target, [str(f) for f in files])
    existed = target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        (target / "params.yaml").write_text(text)
        try:
            load_params(target / "params.yaml")  # what was written is a valid parameter set
        except TodoError:  # but for what its TODO lines ask the user to fill in (rates)
            pass
        _layout(target)
    except BaseException:
        shutil.rmtree(target) if not existed else _empty(target)
        raise
    return Project(target, list(tables.values()))


def _empty(folder: Path) -> None:
    """Remove what a failed ``segkit init`` wrote into a folder that was empty before."""
    for child in folder.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _copy_notebook(src: Path, dst: Path) -> None:
    """A stage notebook whose default parameters are the project's ``params.yaml``."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace(
                'params: str = "demo"', 'params: str = "../params.yaml"'
            )
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, dst)


def refresh_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    """Re-execute the committed stage notebooks in place with their default parameters.

    Their outputs are what ``pytest --nbval`` compares against; execution timing metadata
    is dropped so that a rerun with the same results leaves the files unchanged.
    """
    notebooks_dir = Path(notebooks_dir or paths.notebooks_dir())
    done: list[Path] = []
    # a fresh reports folder: artifacts left by an earlier run (of older code) are not reused
    scratch = tempfile.mkdtemp(prefix="segkit-refresh-")
    old = os.environ.get("SEGKIT_REPORTS_DIR")
    os.environ["SEGKIT_REPORTS_DIR"] = scratch
    try:
        _refresh(notebooks_dir, done)
    finally:
        if old is None:
            os.environ.pop("SEGKIT_REPORTS_DIR", None)
        else:
            os.environ["SEGKIT_REPORTS_DIR"] = old
        shutil.rmtree(scratch, ignore_errors=True)
    return done


def _refresh(notebooks_dir: Path, done: list[Path]) -> None:
    import nbformat
    from nbclient import NotebookClient

    for stage in STAGES:
        path = notebooks_dir / stage.notebook
        if not path.exists():
            continue
        nb = nbformat.read(path, as_version=4)
        NotebookClient(
            nb, kernel_name="python3", resources={"metadata": {"path": str(notebooks_dir)}}
        ).execute()
        for cell in nb.cells:
            cell.metadata.pop("execution", None)
        nb.metadata.pop("widgets", None)
        nbformat.write(nb, path)
        done.append(path)
