"""Derived columns written as column arithmetic (``data.customers.derive``).

A parameter set may add columns to the customer table, each an expression over its
columns::

    derive:
      total_spend: "MntWines + MntFruits + MntMeatProducts"
      age: "2014 - Year_Birth"
      big_family: "where(Kidhome + Teenhome >= 2, 1, 0)"

An expression is *parsed* (Python's :mod:`ast`), never executed: :func:`parse` accepts
numbers, column names (a name that is not an identifier is written in backquotes,
```Mnt Wines```), ``+ - * / // % **``, unary minus, comparisons (true is 1, false 0)
and the functions in :data:`FUNCTIONS`; anything else (attribute access, subscripts,
strings, other calls, lambdas) is a :class:`~segkit.core.errors.SegkitError` naming the
parameter and the offending part, and an unknown column is named with "did you mean".
:func:`evaluate` computes a parsed expression column by column with numpy; a value that
is not defined (division by zero, log of a negative number) is left empty and counted.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segkit.core.errors import SegkitError

#: Functions an expression may call: name -> (numbers of arguments, numpy function).
FUNCTIONS: dict[str, tuple[tuple[int, ...], Callable[..., Any]]] = {
    "abs": ((1,), np.abs),
    "log": ((1,), np.log),
    "log1p": ((1,), np.log1p),
    "sqrt": ((1,), np.sqrt),
    "min": ((2, 3, 4, 5, 6, 7, 8), lambda *a: _reduce(np.fmin, a)),
    "max": ((2, 3, 4, 5, 6, 7, 8), lambda *a: _reduce(np.fmax, a)),
    "where": ((3,), lambda c, a, b: np.where(np.asarray(c) != 0, a, b)),
    "if_else": ((3,), lambda c, a, b: np.where(np.asarray(c) != 0, a, b)),
}
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_QUOTED = re.compile(r"`([^`]+)`")
_PLACEHOLDER = "__col_{}__"


def _reduce(fn: Callable[[Any, Any], Any], args: tuple) -> Any:
    out = args[0]
    for a in args[1:]:
        out = fn(out, a)
    return out


@dataclass(frozen=True)
class Expression:
    """A checked expression: its text, its syntax tree and the columns it reads."""

    name: str  # the derived column
    text: str
    tree: ast.expr
    columns: tuple[str, ...]
    quoted: dict[str, str]  # placeholder identifier -> backquoted column name


def _fail(where: str, name: str, text: str, what: str) -> SegkitError:
    return SegkitError(f"{where}.{name} == {text!r}: {what}")


def _check_call(node: ast.Call, fail: Callable[[str], SegkitError]) -> None:
    fn = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if fn not in FUNCTIONS or node.keywords:
        raise fail(
            f"{ast.unparse(node)!r} calls {fn!r}; the functions allowed are "
            f"{sorted(FUNCTIONS)} (no keyword arguments)"
        )
    if len(node.args) not in FUNCTIONS[fn][0]:
        raise fail(f"{fn}() takes {FUNCTIONS[fn][0][0]} argument(s): {ast.unparse(node)!r}")


def _check_node(node: ast.AST, fail: Callable[[str], SegkitError]) -> None:
    """Raise (through ``fail``) on any node that is not allowed arithmetic."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise fail(f"{ast.unparse(node)} is not a number; only numbers and columns")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise fail(f"operator in {ast.unparse(node)!r} is not one of + - * / // % **")
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise fail(f"{ast.unparse(node)!r}: only unary minus is allowed")
    elif isinstance(node, ast.Compare):
        if not all(type(op) in _COMPARE for op in node.ops):
            raise fail(f"{ast.unparse(node)!r}: only < <= > >= == != compare")
    elif isinstance(node, ast.Call):
        _check_call(node, fail)
    elif not isinstance(
        node, ast.Name | ast.Expression | ast.Load | ast.operator | ast.unaryop | ast.cmpop
    ):
        raise fail(
            f"{ast.unparse(node)!r} is not allowed ({type(node).__name__}); an expression "
            "holds numbers, column names, + - * / // % **, comparisons and "
            f"{sorted(FUNCTIONS)}"
        )


def parse(
    name: str, text: Any, columns: Iterable[str], where: str = "data.customers.derive"
) -> Expression:
    """Parse and check one expression against the table's ``columns``.

    Parameters
    ----------
    name : the derived column's name (the key under ``derive``).
    text : the expression.
    columns : the columns it may read.
    where : the parameter, for messages.

    Returns
    -------
    :class:`Expression`.

    Raises
    ------
    SegkitError
        Not a string, not an expression, a disallowed part, an unknown column.

    Examples
    --------
    >>> parse("age", "2014 - Year_Birth", ["Year_Birth"]).columns
    ('Year_Birth',)
    >>> parse("x", "open('/etc/passwd')", ["a"])
    Traceback (most recent call last):
    ...
    segkit.core.errors.SegkitError: data.customers.derive.x == "open('/etc/passwd')": "open('/etc/passwd')" calls 'open'; the functions allowed are [...] (no keyword arguments)
    """
    if not isinstance(text, str | int | float) or isinstance(text, bool) or not str(text).strip():
        raise _fail(where, name, str(text), "must be an expression such as 'a + b' (a string)")
    text = str(text)
    quoted: dict[str, str] = {}

    def placeholder(m: re.Match) -> str:
        key = _PLACEHOLDER.format(len(quoted))
        quoted[key] = m.group(1)
        return key

    source = _QUOTED.sub(placeholder, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise _fail(where, name, text, f"not an expression ({exc.msg})") from None

    def fail(what: str) -> SegkitError:
        return _fail(where, name, text, what)

    known = list(columns)
    used: list[str] = []
    for node in ast.walk(tree):
        _check_node(node, fail)
        if isinstance(node, ast.Name) and not _is_function(tree, node):
            col = quoted.get(node.id, node.id)
            if col not in known:
                close = difflib.get_close_matches(col, known, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise fail(f"unknown column {col!r}{hint} Columns: {known}")
            if col not in used:
                used.append(col)
    return Expression(name, text, tree.body, tuple(used), quoted)


def _is_function(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _eval(node: ast.expr, frame: pd.DataFrame, quoted: Mapping[str, str]) -> Any:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # parse() let only numbers in
    if isinstance(node, ast.Name):
        return pd.to_numeric(frame[quoted.get(node.id, node.id)], errors="coerce").to_numpy(float)
    if isinstance(node, ast.BinOp):
        op = _BINARY[type(node.op)]
        return op(_eval(node.left, frame, quoted), _eval(node.right, frame, quoted))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, frame, quoted)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare):
        left = _eval(node.left, frame, quoted)
        result: Any = True
        for cmp, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, frame, quoted)
            result = np.logical_and(result, _COMPARE[type(cmp)](left, right))
            left = right
        return np.asarray(result, dtype=float)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        args = [_eval(a, frame, quoted) for a in node.args]
        return FUNCTIONS[node.func.id][1](*args)
    raise SegkitError(f"cannot evaluate {ast.unparse(node)!r}")  # parse() let it through


def evaluate(expr: Expression, frame: pd.DataFrame) -> pd.Series:
    """The values of a parsed expression on ``frame``: floats, NaN where not defined.

    A missing input gives a missing result; a result that is not a finite number (a
    division by zero, the log of a negative number) is NaN too.

    >>> f = pd.DataFrame({"a": [1.0, 2.0], "b": [0.0, 4.0]})
    >>> evaluate(parse("r", "a / b + (a > 1)", f.columns), f).tolist()
    [nan, 1.5]
    """
    with np.errstate(all="ignore"):
        value = _eval(expr.tree, frame, expr.quoted)
    out = np.broadcast_to(np.asarray(value, dtype=float), (len(frame),)).copy()
    out[~np.isfinite(out)] = np.nan
    return pd.Series(out, index=frame.index, name=expr.name)


def derive(
    frame: pd.DataFrame, spec: Mapping[str, Any] | None, where: str = "data.customers.derive"
) -> tuple[pd.DataFrame, list[str]]:
    """Add the derived columns of ``spec`` (name -> expression) to ``frame``, in order.

    A later expression may use an earlier derived name. Every expression is parsed and
    checked before any is evaluated.

    Parameters
    ----------
    frame : the table.
    spec : ``{name: expression}``; None or empty: nothing to add.
    where : the parameter, for messages.

    Returns
    -------
    (the table with the new columns, notes): a note per column with values left empty
    where the inputs were present (division by zero, log of a negative number).

    Raises
    ------
    SegkitError
        ``spec`` is not a mapping, a name is taken by a column of the table or is not a
        valid name, or an expression does not parse (see :func:`parse`).

    Examples
    --------
    >>> f = pd.DataFrame({"Kidhome": [0, 1], "Teenhome": [1, 1]})
    >>> derive(f, {"children": "Kidhome + Teenhome"})[0]["children"].tolist()
    [1.0, 2.0]
    """
    if not spec:
        return frame, []
    if not isinstance(spec, Mapping):
        raise SegkitError(f"{where} == {spec!r}, must be a mapping name: expression")
    columns = [str(c) for c in frame.columns]
    parsed = []
    for name, text in spec.items():
        if not isinstance(name, str) or not name.strip():
            raise SegkitError(f"{where}: {name!r} is not a column name")
        if name in columns:
            raise SegkitError(
                f"{where}.{name}: the table already has a column {name!r}; pick another name"
            )
        parsed.append(parse(name, text, columns, where))
        columns.append(name)
    out = frame.copy()
    notes = []
    for expr in parsed:
        out[expr.name] = evaluate(expr, out)
        inputs_present = out[list(expr.columns)].notna().all(axis=1) if expr.columns else True
        bad = int((out[expr.name].isna() & inputs_present).sum())
        if bad:
            notes.append(
                f"{where}.{expr.name}: {bad:,} value(s) not defined (a division by zero or the "
                f"log of a negative number) were left empty."
            )
    return out, notes


def apply_spec(
    frame: pd.DataFrame, spec: Mapping[str, Any] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The ``derive`` columns of a customer table spec that ``frame`` does not hold yet.

    The exploration stage adds them to the run's customer table; a stage reading a table
    written before (or by hand) gets them here. Columns already present are kept as
    they are.

    >>> f = pd.DataFrame({"a": [1.0], "b": [2.0]})
    >>> apply_spec(f, {"derive": {"s": "a + b"}})[0].columns.tolist()
    ['a', 'b', 's']
    """
    todo = {k: v for k, v in ((spec or {}).get("derive") or {}).items() if k not in frame.columns}
    return derive(frame, todo)
