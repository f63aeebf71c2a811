"""The experiment's aggregates as ibis expressions: the scan and the per-group sums.

What :mod:`segkit.abtest.aggregation` computes in DuckDB SQL, for an experiment table on
any ibis backend (Spark, or DuckDB through ibis): rows and non-missing values per arm, the
rows a metric leaves out, and per (segment, arm) the sufficient statistics every estimate
of :mod:`segkit.abtest.statistics` is computed from. :mod:`segkit.abtest.aggregation`
dispatches here when its connection is an ibis backend, so the statistics themselves run
unchanged on the aggregated table. Values are cast to float64 before they are multiplied
(Spark would keep integer or DECIMAL arithmetic); the types are those of the DuckDB path.

One difference stays: Spark's ibis backend counts a NaN outcome as missing, DuckDB as a
value (which makes the sums NaN); segkit's loader turns NaN into missing before either.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from segkit.engine.backend import ibis_module

#: Experiment columns that are never outcomes (as segkit.abtest.aggregation.KEYS).
KEYS = ("customer_id", "arm")


def scan_rows(t: Any) -> tuple[list[str], dict[str, Any], list[tuple]]:
    """(columns, pandas dtypes, per arm: (arm, rows, then per numeric column its
    non-missing values and its values other than 0/1)), as the DuckDB scan fetches them."""
    cols = list(t.columns)
    dtypes = dict(t.schema().to_pandas())
    numeric = [c for c in cols if c not in KEYS and pd.api.types.is_numeric_dtype(dtypes[c])]
    aggs: dict[str, Any] = {"_rows": t.count()}
    for i, c in enumerate(numeric):
        aggs[f"_n{i}"] = t[c].count()
        aggs[f"_b{i}"] = t.count(where=~t[c].isin([0, 1]))
    g = t.group_by(_arm=t.arm.cast("string")).aggregate(**aggs).order_by("_arm").to_pandas()
    rows = [tuple(r) for r in g.itertuples(index=False)]
    return cols, dtypes, rows


def non_binary(t: Any, col: str, n: int = 5) -> list:
    """Up to ``n`` values of ``col`` other than 0/1 (for the error message)."""
    return t.filter(~t[col].isin([0, 1])).select(col).limit(n).to_pandas()[col].tolist()


def missing_counts(t: Any, needed: list[list[str]]) -> list[int]:
    """Per metric (the columns it needs), the rows where one of them is missing."""
    ibis = ibis_module()
    aggs = {}
    for i, cols in enumerate(needed):
        cond = ibis.or_(*(t[c].isnull() for c in cols))
        aggs[f"_m{i}"] = t.count(where=cond)
    row = t.aggregate(**aggs).to_pandas().iloc[0]
    return [int(row[f"_m{i}"]) for i in range(len(needed))]


def _sums(t: Any, i: int, y: str, x: str | None) -> dict[str, Any]:
    """m<i>_n, _sy, _syy (and _sx, _sxx, _sxy with ``x``) over the rows with every value."""
    yv = t[y].cast("float64")
    ok = t[y].notnull() if x is None else t[y].notnull() & t[x].notnull()
    out = {
        f"m{i}_n": t.count(where=ok),
        f"m{i}_sy": yv.sum(where=ok),
        f"m{i}_syy": (yv * yv).sum(where=ok),
    }
    if x is not None:
        xv = t[x].cast("float64")
        out[f"m{i}_sx"] = xv.sum(where=ok)
        out[f"m{i}_sxx"] = (xv * xv).sum(where=ok)
        out[f"m{i}_sxy"] = (xv * yv).sum(where=ok)
    return out


def _ratio(t: Any, i: int, num: str, den: str) -> dict[str, Any]:
    """A ratio's sums in the DuckDB path's order: n, sy, sx, syy, sxx, sxy."""
    s = _sums(t, i, num, den)
    return {f"m{i}_{k}": s[f"m{i}_{k}"] for k in ("n", "sy", "sx", "syy", "sxx", "sxy")}


def sufficient_stats(
    t: Any, group: str | None, metrics: list[dict], missing_segment: str
) -> pd.DataFrame:
    """One row per (value of ``group``, arm): ``rows`` and each metric's sums.

    The frame of :func:`segkit.abtest.aggregation.sufficient_stats`: columns ``segment``,
    ``arm``, ``rows``, ``m<i>_n``, ``m<i>_sy``, … ordered by segment (missing last, named
    ``missing_segment``) and arm.
    """
    ibis = ibis_module()
    aggs: dict[str, Any] = {"rows": t.count()}
    for i, m in enumerate(metrics):
        if m["kind"] == "ratio":
            aggs.update(_ratio(t, i, m["num"], m["den"]))
        else:
            aggs.update(_sums(t, i, m["col"], m.get("covariate")))
    seg = t[group].cast("string") if group else ibis.literal("all")
    g = t.group_by(segment=seg, arm=t.arm.cast("string")).aggregate(**aggs)
    g = g.order_by([ibis.asc("segment", nulls_first=False), ibis.asc("arm", nulls_first=False)])
    out = g.to_pandas().reset_index(drop=True)
    for c in out.columns:
        if c.endswith("_n") or c == "rows":
            out[c] = out[c].astype("int64")
        elif c not in ("segment", "arm"):
            out[c] = out[c].astype("float64")
    out["segment"] = out["segment"].fillna(missing_segment)
    return out
