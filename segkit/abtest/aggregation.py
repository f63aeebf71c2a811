"""The experiment in DuckDB: metric inference and checks, sufficient statistics per group.

Every estimate of :mod:`segkit.abtest.statistics` is computed from per-(segment, arm)
sufficient statistics (counts, sums, sums of squares and cross-products) aggregated here in
DuckDB, so ten million experiment rows cost one scan per segment column and nothing
row-level reaches pandas. Every name and value in the SQL goes through
:func:`segkit.core.sql.ident` / :func:`~segkit.core.sql.literal`, so a column called
``spend "usd"`` or ``it's`` is plain text.

Metrics (``abtest.metrics``, or inferred by :func:`infer_metrics`): 0/1 outcomes are
proportions, other numeric outcomes means, a ``pre_<outcome>`` column is that outcome's
CUPED covariate, and a money outcome per visit (or conversion) is a ratio.

With ``engine: spark`` the same aggregates run as ibis expressions
(:mod:`segkit.engine.abtest`): every function here that takes ``con`` also takes an ibis
backend (and the name of a table on it), and :func:`on_engine` hands a DuckDB relation to
the engine of the parameters. Only the aggregated table comes back; the statistics are the
same code on either engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.core.sql import ident, literal

#: Experiment columns that are never outcomes.
KEYS = ("customer_id", "arm")
#: Segment value of rows whose segment column is missing.
MISSING_SEGMENT = "(missing)"


class Scan(NamedTuple):
    """What one scan of the experiment tells: columns, types, arms and 0/1 outcomes."""

    columns: list[str]
    dtypes: dict[str, Any]
    arm_rows: dict[str, int]  # arm -> rows
    present: dict[str, dict[str, int]]  # numeric column -> arm -> non-missing values
    binary: set[str]  # numeric columns with only 0/1 values

    @property
    def arms(self) -> list[str]:
        """The arms, sorted."""
        return sorted(self.arm_rows)


def _engine(con: Any) -> Any:
    """The ibis module of :mod:`segkit.engine` when ``con`` is an ibis backend, else None."""
    if not type(con).__module__.startswith("ibis."):
        return None
    from segkit.engine import abtest as engine  # ibis: the optional spark extra

    return engine


def on_engine(
    con: Any, relation: str, engine: str = "duckdb", spark: dict | None = None
) -> tuple[Any, str]:
    """``(con, relation)`` on the aggregation engine of the parameters.

    ``duckdb``: as given. ``spark``: the DuckDB relation is written to a temporary Parquet
    file that the Spark session (the active one, or one built from the ``spark``
    parameters) reads; the connection returned is then an ibis backend that every function
    of this module accepts.

    Raises
    ------
    SegkitError
        An unknown engine; the spark extra missing; Spark does not start.
    """
    if engine == "duckdb" or _engine(con) is not None:
        return con, relation
    import atexit
    import shutil
    import tempfile

    from segkit.engine import connect

    backend = connect(engine, spark)
    folder = tempfile.mkdtemp(prefix="segkit_ab_")
    atexit.register(shutil.rmtree, folder, True)  # Spark reads it lazily: keep it till exit
    path = Path(folder) / f"{relation}.parquet"
    con.execute(f"COPY (SELECT * FROM {ident(relation)}) TO {literal(path.as_posix())}")
    backend.read_parquet(path.as_posix(), table_name=relation)
    return backend, relation


def columns_of(con: Any, relation: str) -> list[str]:
    """Column names of DuckDB relation (table or view) ``relation``."""
    if _engine(con):
        return list(con.table(relation).columns)
    return [r[0] for r in con.execute(f"DESCRIBE {ident(relation)}").fetchall()]


def _scan_rows(con: Any, relation: str, cols: list[str]) -> tuple[dict[str, Any], list]:
    """(dtypes, per arm: arm, rows, then per numeric column non-missing and non-0/1 counts)."""
    rel = ident(relation)
    dtypes = dict(con.execute(f"SELECT * FROM {rel} LIMIT 0").df().dtypes)
    numeric = [c for c in cols if c not in KEYS and pd.api.types.is_numeric_dtype(dtypes[c])]
    aggs = "".join(
        f", count({ident(c)}), count(*) FILTER (WHERE {ident(c)} NOT IN (0, 1))" for c in numeric
    )
    arm = ident("arm")
    per_arm = con.execute(
        f"SELECT CAST({arm} AS VARCHAR), count(*){aggs} FROM {rel} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return dtypes, per_arm


def scan(con: Any, relation: str) -> Scan:
    """Rows per arm and, per numeric column, its non-missing and non-0/1 values per arm.

    Raises
    ------
    SegkitError
        ``relation`` has no ``arm`` column.
    """
    cols = columns_of(con, relation)
    check_columns(pd.DataFrame(columns=cols), ["arm"], "experiment")
    if engine := _engine(con):
        cols, dtypes, per_arm = engine.scan_rows(con.table(relation))
    else:
        dtypes, per_arm = _scan_rows(con, relation, cols)
    numeric = [c for c in cols if c not in KEYS and pd.api.types.is_numeric_dtype(dtypes[c])]
    return Scan(
        columns=cols,
        dtypes=dtypes,
        arm_rows={r[0]: int(r[1]) for r in per_arm},
        present={c: {r[0]: r[2 + 2 * i] for r in per_arm} for i, c in enumerate(numeric)},
        binary={c for i, c in enumerate(numeric) if sum(r[3 + 2 * i] for r in per_arm) == 0},
    )


def infer_metrics(experiment_cols: list[str], dtypes: dict, binary: set[str]) -> list[dict]:
    """Default metrics from the experiment's numeric outcome columns.

    0/1 columns are proportions, other numeric ones means (with ``pre_<col>`` as CUPED
    covariate when present); the first money outcome per ``visit`` (or ``conversion``)
    is a ratio.

    Examples
    --------
    >>> import numpy as np
    >>> cols = ["arm", "visit", "spend", "pre_spend"]
    >>> [m["name"] for m in infer_metrics(cols, dict.fromkeys(cols, np.float64), {"visit"})]
    ['visit', 'spend', 'spend_per_visit']
    """
    outcomes = [
        c
        for c in experiment_cols
        if c not in KEYS and not c.startswith("pre_") and pd.api.types.is_numeric_dtype(dtypes[c])
    ]
    metrics = []
    for c in outcomes:
        m = {"name": c, "kind": "proportion" if c in binary else "mean", "col": c}
        if f"pre_{c}" in experiment_cols and m["kind"] == "mean":
            m["covariate"] = f"pre_{c}"
        metrics.append(m)
    value = [c for c in outcomes if c not in binary]
    gate = "visit" if "visit" in binary else ("conversion" if "conversion" in binary else None)
    if value and gate:
        metrics.append(
            {"name": f"{value[0]}_per_{gate}", "kind": "ratio", "num": value[0], "den": gate}
        )
    return metrics


def needed_columns_keys(m: dict) -> list[str]:
    """The keys of metric spec ``m`` that name columns it reads."""
    if m["kind"] == "ratio":
        return ["num", "den"]
    return ["col"] + (["covariate"] if m.get("covariate") else [])


def needed_columns(m: dict) -> list[str]:
    """The experiment columns metric ``m`` reads (outcome, or num and den, and covariate)."""
    return [m[k] for k in needed_columns_keys(m)]


def check_metric_columns(metrics: list[dict], columns: list[str]) -> list[dict]:
    """The metric specs with their names filled in, once their columns exist.

    Kinds and keys are checked with the parameters
    (:func:`segkit.core.params.metric_specs`); this checks the named columns against the
    experiment (and the joined customer attributes).

    Raises
    ------
    SegkitError
        A ``col``, ``num``, ``den`` or ``covariate`` that is not a column.
    """
    out = []
    for i, m in enumerate(metrics):
        for key in needed_columns_keys(m):
            if m[key] not in columns:
                where = "experiment or customer table" if key == "covariate" else "experiment"
                raise SegkitError(
                    f"abtest.metrics[{i}].{key} == {m[key]!r} is not a column of the "
                    f"{where}; columns are {columns}"
                )
        name = m.get("name") or m.get("col") or f"{m['num']}_per_{m['den']}"
        out.append({"name": name, **{k: v for k, v in m.items() if k != "name"}})
    return out


def check_outcomes(con: Any, relation: str, metrics: list[dict], sc: Scan) -> None:
    """Proportions must be 0/1; every arm needs values of every metric's columns.

    Raises
    ------
    SegkitError
        A proportion with other values (showing up to 5 (row, value) pairs), or an arm
        without any value of a column a metric needs.
    """
    for m in metrics:
        if m["kind"] == "proportion" and m["col"] not in sc.binary:
            col = ident(m["col"])
            if engine := _engine(con):  # no row order on a distributed table
                bad, what = engine.non_binary(con.table(relation), m["col"]), "values"
            else:
                bad, what = (
                    con.execute(
                        f"SELECT row_number() OVER () - 1 AS row, {col} FROM {ident(relation)} "
                        f"QUALIFY {col} NOT IN (0, 1) LIMIT 5"
                    ).fetchall(),
                    "(row, value)",
                )
            raise SegkitError(
                f"experiment column {m['col']!r} (metric {m['name']!r}) is a proportion but has "
                f"values other than 0/1: {what} {bad}; use kind: mean, or recode it"
            )
        need = [m["num"], m["den"]] if m["kind"] == "ratio" else [m["col"]]
        for col_name in need:
            empty = [a for a in sc.arms if sc.present.get(col_name, {}).get(a, 0) == 0]
            if empty:
                raise SegkitError(
                    f"experiment: arm {empty[0]!r} has no rows with a value of {col_name!r} "
                    f"(metric {m['name']!r}); arms and rows: {sc.arm_rows}"
                )


def missing_counts(con: Any, relation: str, metrics: list[dict]) -> dict[str, int]:
    """Per metric name, the rows left out because a column it needs is missing (if any)."""
    if engine := _engine(con):
        counts = engine.missing_counts(con.table(relation), [needed_columns(m) for m in metrics])
        return {m["name"]: k for m, k in zip(metrics, counts, strict=True) if k}
    nulls = ", ".join(
        "count(*) FILTER (WHERE "
        + " OR ".join(f"{ident(c)} IS NULL" for c in needed_columns(m))
        + ")"
        for m in metrics
    )
    counts = con.execute(f"SELECT {nulls} FROM {ident(relation)}").fetchall()[0]
    return {m["name"]: int(k) for m, k in zip(metrics, counts, strict=True) if k}


def _ratio_sql(i: int, num: str, den: str) -> list[str]:
    n, d = ident(num), ident(den)
    ok = f"{n} IS NOT NULL AND {d} IS NOT NULL"
    return [
        f"count(*) FILTER (WHERE {ok}) AS m{i}_n",
        f"sum({n}) FILTER (WHERE {ok}) AS m{i}_sy",
        f"sum({d}) FILTER (WHERE {ok}) AS m{i}_sx",
        f"sum({n}*{n}) FILTER (WHERE {ok}) AS m{i}_syy",
        f"sum({d}*{d}) FILTER (WHERE {ok}) AS m{i}_sxx",
        f"sum({n}*{d}) FILTER (WHERE {ok}) AS m{i}_sxy",
    ]


def _mean_sql(i: int, col: str, covariate: str | None) -> list[str]:
    y = ident(col)
    x = ident(covariate) if covariate else None
    ok = f"{y} IS NOT NULL" + (f" AND {x} IS NOT NULL" if x else "")
    parts = [
        f"count(*) FILTER (WHERE {ok}) AS m{i}_n",
        f"sum({y}) FILTER (WHERE {ok}) AS m{i}_sy",
        f"sum({y}*{y}) FILTER (WHERE {ok}) AS m{i}_syy",
    ]
    if x:
        parts += [
            f"sum({x}) FILTER (WHERE {ok}) AS m{i}_sx",
            f"sum({x}*{x}) FILTER (WHERE {ok}) AS m{i}_sxx",
            f"sum({x}*{y}) FILTER (WHERE {ok}) AS m{i}_sxy",
        ]
    return parts


def stats_sql(metrics: list[dict]) -> str:
    '''Per-group sufficient statistics of every metric, as DuckDB aggregates.

    Metric ``i``'s columns are ``m<i>_n``, ``m<i>_sy``, ``m<i>_syy`` and, with a
    covariate (or for a ratio, whose ``x`` is the denominator), ``m<i>_sx``, ``m<i>_sxx``,
    ``m<i>_sxy``.

    >>> print(stats_sql([{"kind": "mean", "col": 'spend "usd"'}]).split(", ")[1])
    sum("spend ""usd""") FILTER (WHERE "spend ""usd""" IS NOT NULL) AS m0_sy
    '''
    parts = []
    for i, m in enumerate(metrics):
        if m["kind"] == "ratio":
            parts += _ratio_sql(i, m["num"], m["den"])
        else:
            parts += _mean_sql(i, m["col"], m.get("covariate"))
    return ", ".join(parts)


def sufficient_stats(
    con: Any, relation: str, group: str | None, metrics: list[dict]
) -> pd.DataFrame:
    """One row per (value of column ``group``, arm): ``rows`` and each metric's sums.

    Parameters
    ----------
    con
        A DuckDB connection holding ``relation``, or an ibis backend (engine: spark):
        then the sums are :func:`segkit.engine.abtest.sufficient_stats`.
    relation
        Name of the experiment table or view (with ``arm`` and the metrics' columns).
    group
        Segment column; ``None`` for one group ``"all"``. Missing values are the segment
        :data:`MISSING_SEGMENT`.
    metrics
        Metric specs (:func:`check_metric_columns`).

    Returns
    -------
    pandas.DataFrame
        Columns ``segment``, ``arm``, ``rows`` and :func:`stats_sql`'s, ordered by segment
        and arm (as text).
    """
    if engine := _engine(con):
        return engine.sufficient_stats(con.table(relation), group, metrics, MISSING_SEGMENT)
    g = f"CAST({ident(group)} AS VARCHAR)" if group else literal("all")
    sql = f"""SELECT {g} AS segment, CAST({ident("arm")} AS VARCHAR) AS arm, count(*) AS rows,
                     {stats_sql(metrics)}
              FROM {ident(relation)} GROUP BY ALL ORDER BY 1, 2"""
    out = con.execute(sql).df()
    out["segment"] = out["segment"].fillna(MISSING_SEGMENT)
    return out


def raw_profile(con: Any, relation: str, arm_col: str, columns: list[str]) -> dict:
    """Rows per (trimmed) arm and, per column, its numeric and non-numeric values.

    For a relation of text columns as read from a file (before cleaning), so that arms or
    outcomes that cleaning removes can be named.

    Returns
    -------
    dict
        ``arms``: arm -> rows (``None`` for an empty arm); ``numeric``/``non_numeric``:
        column -> count of non-empty values that do / do not read as numbers;
        ``example``: column -> one non-numeric value (or ``None``).
    """
    rel = ident(relation)
    arm = f"NULLIF(trim(CAST({ident(arm_col)} AS VARCHAR)), '')"
    arms = dict(con.execute(f"SELECT {arm}, count(*) FROM {rel} GROUP BY 1 ORDER BY 1").fetchall())
    out: dict = {"arms": {a: int(n) for a, n in arms.items()}}
    out.update(numeric={}, non_numeric={}, example={})
    if not columns:
        return out
    parts = []
    for c in columns:
        text = f"NULLIF(trim(CAST({ident(c)} AS VARCHAR)), '')"
        bad = f"{text} IS NOT NULL AND TRY_CAST({text} AS DOUBLE) IS NULL"
        parts += [
            f"count(TRY_CAST({text} AS DOUBLE))",
            f"count(*) FILTER (WHERE {bad})",
            f"min({text}) FILTER (WHERE {bad})",
        ]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {rel}").fetchall()[0]
    for i, c in enumerate(columns):
        out["numeric"][c], out["non_numeric"][c] = int(row[3 * i]), int(row[3 * i + 1])
        out["example"][c] = row[3 * i + 2]
    return out
