"""Load and validate the three kinds of input, keeping every row accounted for.

Inputs (any subset, each described by a *table spec* in the parameters, see
:data:`segkit.core.params.TABLE_DEFAULTS`):

- **transactions**: customer id, timestamp, amount (or quantity × unit price); optional order
  id, quantity, unit price, product, category, channel, country;
- **customers**: customer id plus attributes;
- **experiment**: customer id, arm, outcomes and pre-period covariates.

Files are CSV (any delimiter, ``.gz`` too; UTF-8, UTF-16 with a byte-order mark, latin-1),
Parquet or Excel. Reading and cleaning run in DuckDB (in-process; it reads the files
directly and spills to disk), so the cost grows with the data and 50 million rows fit on a
laptop. Every row gets a *reason*: ``None`` for a row that is used, else the first cleaning
rule it fails (:data:`REASONS`). Used rows and rejects are written side by side and their
counts reconcile exactly.

Submodules:

- :mod:`segkit.io.read` — a file into DuckDB as text columns (formats, encodings, sheets,
  duplicate headers); errors never quote the lines of a file that could not be read;
- :mod:`segkit.io.clean` — SQL for ids, numbers (``decimal``, ``thousands``) and timestamps
  (the day/month order rule, UTC offsets), and the column checks behind them;
- :mod:`segkit.io.load` — :func:`load_transactions`, :func:`load_customers`,
  :func:`load_experiment`, the rules (:data:`REASONS`) and the reconciled counts.
"""

from segkit.core.files import sha256
from segkit.io.load import (
    MAX_ROW_AMOUNT,
    REASONS,
    Table,
    load_customers,
    load_experiment,
    load_transactions,
    table_spec,
)
from segkit.io.read import connect, read_raw, resolve_path

__all__ = [
    "MAX_ROW_AMOUNT",
    "REASONS",
    "Table",
    "connect",
    "load_customers",
    "load_experiment",
    "load_transactions",
    "read_raw",
    "resolve_path",
    "sha256",
    "table_spec",
]
