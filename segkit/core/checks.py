"""Validation helpers shared by every public entry point.

Every check raises :class:`SegkitError` (a ``ValueError``) with a message that names the
thing that is wrong, shows the value found and says what was expected, e.g.
``k_min == 1, must be >= 2.`` or ``transactions is missing column 'order_date'; columns
are ['id', 'date', 'amount']``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd

from segkit.core.errors import SegkitError


def check_scalar(
    value: Any,
    name: str,
    typ: type | tuple[type, ...] | None = None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    in_: Collection[Any] | None = None,
) -> Any:
    """Check one scalar parameter and return it unchanged.

    >>> check_scalar(3, "k", int, ge=2)
    3
    >>> check_scalar(0.0, "alpha", float, gt=0)
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: alpha == 0.0, must be > 0.
    """
    if typ is not None:
        ok = isinstance(value, typ)
        if typ is float or (isinstance(typ, tuple) and float in typ):
            ok = ok or (isinstance(value, int | np.integer) and not isinstance(value, bool))
        if (
            isinstance(value, bool)
            and typ is not bool
            and not (isinstance(typ, tuple) and bool in typ)
        ):
            ok = False
        if not ok:
            names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise SegkitError(f"{name} == {value!r}, must be of type {names}.")
    if in_ is not None and value not in in_:
        raise SegkitError(f"{name} == {value!r}, must be one of {sorted(map(str, in_))}.")
    for bound, op, holds in (
        (ge, ">=", lambda v, b: v >= b),
        (gt, ">", lambda v, b: v > b),
        (le, "<=", lambda v, b: v <= b),
        (lt, "<", lambda v, b: v < b),
    ):
        if bound is not None and not holds(value, bound):
            raise SegkitError(f"{name} == {value!r}, must be {op} {bound}.")
    return value


def check_columns(df: pd.DataFrame, required: Iterable[str], name: str) -> None:
    """Raise if ``df`` lacks any of ``required``, listing the columns it has."""
    missing = [c for c in required if c not in df.columns]
    if missing:
        what = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {missing}"
        raise SegkitError(f"{name} is missing {what}; columns are {list(map(str, df.columns))}")


def check_not_empty(df: pd.DataFrame, name: str, why: str = "") -> None:
    """Raise if ``df`` has no rows; ``why`` says which step emptied it."""
    if len(df) == 0:
        raise SegkitError(f"{name} has no rows" + (f" {why}" if why else "") + ".")


def show_rows(df: pd.DataFrame, mask: pd.Series | np.ndarray, n: int = 5) -> str:
    """Describe the offending rows of ``df`` (index labels of the first ``n``) for a message."""
    idx = list(df.index[np.asarray(mask, dtype=bool)][:n])
    total = int(np.asarray(mask, dtype=bool).sum())
    more = f" and {total - len(idx)} more" if total > len(idx) else ""
    return f"rows {idx}{more}"
