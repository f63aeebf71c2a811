"""Project folders for new users (``segkit init``), and the committed notebooks' refresh."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from segkit.core import paths
from segkit.core.errors import SegkitError
from segkit.stages.registry import STAGES

_PARAMS = """\
# segkit parameters for this project. Run every stage with
#     segkit run --params params.yaml
# and open reports/<name>/index.html. Every parameter, its default and meaning:
#     segkit params --explain
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
    target = Path(folder).expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        raise SegkitError(f"{target} is not empty; segkit init needs a new or empty folder")
    project = name or target.name
    from segkit.pipeline.folders import check_name

    check_name(project.replace(" ", "_"), "project name")
    (target / "data").mkdir(parents=True, exist_ok=True)
    (target / "reports").mkdir(exist_ok=True)
    (target / "notebooks").mkdir(exist_ok=True)
    shutil.copy2(paths.data_dir() / "cdnow_sample.txt.gz", target / "data")
    (target / "params.yaml").write_text(_PARAMS.format(name=project.replace(" ", "_")))
    for stage in STAGES:
        _copy_notebook(
            paths.notebooks_dir() / stage.notebook, target / "notebooks" / stage.notebook
        )
    return target


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
