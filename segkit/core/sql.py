r'''SQL text from names and values, in one place: nothing else in segkit quotes by hand.

DuckDB (and Spark SQL) read a double-quoted identifier and a single-quoted string literal;
a quote inside either is doubled. Values that can be bound as parameters (``?``) should be;
these helpers are for the parts of a statement that cannot: column names, file paths in
``read_csv(...)``, and literals inside generated expressions. A column called
``Customer "ID"``, a path with an apostrophe, or a cancel prefix of ``x' OR 1=1 --`` all stay
plain text.

>>> ident('Customer "ID"')
'"Customer ""ID"""'
>>> literal("O'Brien")
"'O''Brien'"
>>> literal(3)
'3'
>>> literal(None)
'NULL'
'''

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from pathlib import Path

from segkit.core.errors import SegkitError


def ident(name: str) -> str:
    """A column or table name as a quoted SQL identifier."""
    if not isinstance(name, str) or name == "":
        raise SegkitError(f"column name {name!r}: must be a non-empty string.")
    if "\x00" in name:
        raise SegkitError(f"column name {name!r}: contains a NUL character.")
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A Python value as an SQL literal: strings and paths quoted, numbers as numbers."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SegkitError(f"value {value!r}: not a finite number.")
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP {literal(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {literal(value.isoformat())}"
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise SegkitError(f"value {value!r}: contains a NUL character.")
        return "'" + value.replace("'", "''") + "'"
    raise SegkitError(f"value {value!r} of type {type(value).__name__}: no SQL literal for it.")


def idents(names: Iterable[str]) -> str:
    """Comma-separated quoted identifiers."""
    return ", ".join(ident(n) for n in names)


def literals(values: Iterable[object]) -> str:
    """Comma-separated literals, e.g. for ``IN (...)`` or a ``[...]`` list."""
    return ", ".join(literal(v) for v in values)
