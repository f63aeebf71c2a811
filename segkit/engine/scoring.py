"""k-means scoring of every customer as one ibis expression, from a fitted Segmenter.

What :meth:`segkit.segment.segmenter.Segmenter.score` does in numpy, written over the
segmenter's fitted parameters so that it runs where the customers are (DuckDB or Spark):
numeric features filled with the fitting medians (non-finite values too), capped to the
fitted bounds, ``log1p`` and robust scaling, one indicator per fitted level, the nearest
centre (squared distance as ``|c|^2 - 2 x.c``, the first on a tie, as ``KMeans.predict``),
the segment number and name, and the flags of rows outside the fitted ranges or levels.
Only k-means segmenters (``method: kmeans``) are supported here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segkit.clv.predict import DELTA_PREFIX, ValueModel
from segkit.core.errors import SegkitError
from segkit.engine.backend import flt, ibis_module, not_finite, table, write_parquet
from segkit.engine.value import value_expr
from segkit.segment.scorefile import ScoreSummary, ValueSums

#: segment_name of a customer outside the fitted range (as segkit.segment.UNASSIGNED).
UNASSIGNED = "not assigned: outside the fitted range"


def _numeric(t: Any, col: str) -> tuple[Any, Any]:
    """(value as float64, "not a number" condition) of a numeric or text column."""
    c = t[col]
    if c.type().is_string():
        v = c.try_cast("float64")
        return v, v.isnull() & c.notnull()
    if not c.type().is_numeric() and not c.type().is_boolean():
        raise SegkitError(f"customers column {col!r} must be numeric to score, found {c.type()}")
    return c.cast("float64"), None


def _level(t: Any, col: str) -> Any:
    """A categorical column as text levels, missing as 'missing' (segment.prepare.as_levels).

    Whole floats would read '2.0' on the engines and '2' in pandas: such columns must be
    integers or text here.
    """
    c = t[col]
    if c.type().is_floating():
        raise SegkitError(
            f"customers column {col!r}: a float categorical column cannot be scored on the "
            "engine; cast it to integers or text"
        )
    return c.cast("string").fill_null("missing")


def columns_and_flags(t: Any, seg: Any) -> tuple[dict[str, Any], list[Any]]:
    """The filled feature columns and one reason expression per check (NULL when passed)."""
    ibis = ibis_module()
    cols: dict[str, Any] = {}
    reasons: list[Any] = []
    for col in seg.numeric:
        lo, hi = seg.ranges[col]
        v, nan = _numeric(t, col)
        known = v.notnull() & ~v.isnan()  # NaN compares above every number in SQL
        finite = known & ~not_finite(v)
        for cond, text in (
            (known & (v < flt(lo)), f"{col} below the fitted minimum {lo:g}"),
            (known & (v > flt(hi)), f"{col} above the fitted maximum {hi:g}"),
            (nan, f"{col} not a number"),
        ):
            if cond is not None:
                reasons.append(ibis.ifelse(cond, ibis.literal(text), ibis.null("string")))
        cols[col] = ibis.ifelse(finite, v, flt(seg.medians[col]))
    for col in seg.categorical:
        cols[col] = _level(t, col)
        unseen = ~cols[col].isin(seg.levels[col])
        text = f"{col} level not seen in fitting"
        reasons.append(ibis.ifelse(unseen, ibis.literal(text), ibis.null("string")))
    return cols, reasons


def transformed(cols: dict[str, Any], tr: Any) -> list[Any]:
    """The columns of the fitted :class:`~segkit.segment.prepare.Transform`, in its order."""
    ibis = ibis_module()
    out = []
    for names, center, scale, log in (
        (tr.logged, tr.log_center, tr.log_scale, True),
        (tr.plain, tr.center, tr.scale, False),
    ):
        for col, c, s in zip(names, center, scale, strict=True):
            x = cols[col]
            if col in tr.clip:
                x = x.clip(flt(tr.clip[col][0]), flt(tr.clip[col][1]))
            # ln(1 + x), not numpy's log1p: ibis has no log1p (differs in the last bits)
            z = (flt(1.0) + x).ln() if log else x
            out.append((z - flt(c)) / flt(s))
    for col, levels in tr.categories.items():
        out += [ibis.ifelse(cols[col] == lv, flt(1.0), flt(0.0)) for lv in levels]
    return out


def _distances(z: list[Any], centers: np.ndarray) -> dict[str, Any]:
    """``d<k> = |c_k|^2 - 2 x.c_k`` per centre, summed column by column."""
    sq = (centers**2).sum(axis=1)
    out = {}
    for k, c in enumerate(centers):
        dot = z[0] * flt(c[0])
        for zj, cj in zip(z[1:], c[1:], strict=True):
            dot = dot + zj * flt(cj)
        out[f"_d{k}"] = flt(sq[k]) + flt(-2.0) * dot
    return out


def check_method(seg: Any) -> None:
    """A SegkitError unless ``seg`` is a k-means segmenter (the only method scored here)."""
    if seg.method != "kmeans" or getattr(seg, "transform", None) is None:
        raise SegkitError(
            f"engine scoring supports method kmeans, this segmenter is {seg.method!r}; "
            "score it with Segmenter.score (segkit score --engine duckdb)"
        )


def score_expr(
    t: Any, seg: Any, *, ordered: bool = True, carry: list[str] | tuple[str, ...] = ()
) -> Any:
    """The scoring expression: customer_id, segment, segment_name, nearest_segment, flag,
    then the columns ``carry`` of ``t`` as they are.

    ``ordered``: sorted by customer id (a global sort: on Spark a shuffle, which writing
    the output does not need)."""
    ibis = ibis_module()
    check_method(seg)
    missing = [c for c in ["customer_id", *seg.features] if c not in t.columns]
    if missing:
        raise SegkitError(f"customers is missing columns {missing}; columns are {list(t.columns)}")
    cols, reasons = columns_and_flags(t, seg)
    centers = np.asarray(seg.model.centers, dtype=float)
    flag = ibis.literal("; ").join(reasons) if reasons else ibis.literal("")
    d = t.select(
        "customer_id",
        *carry,
        _flag=flag,
        **_distances(transformed(cols, seg.transform), centers),
    )
    d = d.mutate(_m=ibis.least(*(d[f"_d{k}"] for k in range(len(centers)))))
    raw = ibis.cases(*((d[f"_d{k}"] == d._m, k) for k in range(len(centers))), else_=-1)
    d = d.mutate(_raw=raw)
    nearest = d._raw.substitute({int(k): int(v) for k, v in seg.relabel.items()}, else_=-1)
    d = d.mutate(nearest_segment=nearest.cast("int64"), flag=d._flag.fill_null(""))
    names = d.nearest_segment.substitute({int(k): str(v) for k, v in seg.names.items()}, else_="")
    inside = d.flag == ""
    out = d.select(
        "customer_id",
        segment=ibis.ifelse(inside, d.nearest_segment, ibis.null("int64")),
        segment_name=ibis.ifelse(inside, names, ibis.literal(UNASSIGNED)),
        nearest_segment=d.nearest_segment,
        flag=d.flag,
        **{c: d[c] for c in carry},
    )
    return out.order_by("customer_id") if ordered else out


def score(t: Any, seg: Any) -> pd.DataFrame:
    """Score the customers of ibis table ``t`` (customer_id and ``seg.features``).

    Returns the frame of :meth:`Segmenter.score` (``segment`` and ``nearest_segment`` as
    Int64), sorted by customer id.

    Raises
    ------
    SegkitError
        Not a k-means segmenter; a feature column missing, or of a type not scored here.
    """
    out = score_expr(t, seg).to_pandas().reset_index(drop=True)
    for c in ("segment", "nearest_segment"):
        out[c] = out[c].astype("Int64")
    for c in ("segment_name", "flag"):
        out[c] = out[c].astype("str")
    return out


def summarize(scored: Any, path: str | Path, value: ValueModel | None = None) -> ScoreSummary:
    """The counts of a scored ibis table, from aggregate queries (three small results).

    Customers per segment (number, name), the customers flagged and left unassigned, and
    how often each reason appears among them (a customer may have several); with
    ``value``, the CLV sums per segment (:class:`~segkit.segment.scorefile.ValueSums`)."""
    summary = ScoreSummary(path)
    sums: dict[str, Any] = {}
    if value is not None:
        deltas = [c for c in scored.columns if c.startswith(DELTA_PREFIX)]
        sums = {c: scored[c].sum() for c in ["clv", *deltas]}
    per = (
        scored.group_by(["segment", "segment_name"])
        .agg(n=scored.count(), **sums)
        .order_by("segment")
        .to_pandas()
    )
    if value is not None:
        summary.value = _value_sums(value, per)
    for row in per.itertuples(index=False):
        if pd.isna(row.segment):
            summary.flagged += int(row.n)
        else:
            summary.segments[int(row.segment)] = (str(row.segment_name), int(row.n))
        summary.rows += int(row.n)
    flagged = scored.filter(scored.segment.isnull())
    reasons = flagged.select(reason=flagged.flag.split("; ").unnest())
    counted = reasons.group_by("reason").agg(n=reasons.count()).to_pandas()
    summary.reasons = {str(r): int(n) for r, n in zip(counted["reason"], counted["n"], strict=True)}
    return summary


def _value_sums(value: ValueModel, per: pd.DataFrame) -> ValueSums:
    """The CLV sums of the per-segment aggregates (flagged customers as segment -1)."""
    out = ValueSums(value)
    deltas = [c for c in per.columns if c.startswith(DELTA_PREFIX)]
    seg = per["segment"].astype("float64").fillna(-1).astype("int64").to_numpy()
    clv = per["clv"].astype("float64").fillna(0.0)
    frame = pd.DataFrame({"clv": clv, **{c: per[c].astype("float64") for c in deltas}})
    out.add(seg, frame)
    return out


def score_to_parquet(
    con: Any, source: Any, seg: Any, target: str | Path, *, value: ValueModel | None = None
) -> ScoreSummary:
    """Score the customer table ``source`` on backend ``con`` and write Parquet at ``target``.

    The engine reads ``source`` (a Parquet file or folder, any path it reads, or a table
    name; :func:`segkit.engine.backend.table`), scores it (:func:`score_expr`) and writes
    the result through :func:`~segkit.engine.backend.write_parquet` (an existing output is
    replaced only after the new one is complete); the counts come from aggregate queries
    over the written output. No per-customer row reaches the driver.

    Raises
    ------
    SegkitError
        Not a k-means segmenter; the table is not Parquet or a table of the engine, lacks
        a feature column or holds no rows; the engine could not write ``target``.
    """
    check_method(seg)
    t = table(con, source, what="customer table")
    scored = score_expr(t, seg, ordered=False)  # checks the columns before anything runs
    if int(t.count().to_pandas()) == 0:  # Parquet: the footers' row counts
        raise SegkitError(f"customer table {source}: no customer rows")
    if value is not None:
        valued = value_expr(t, value, carry=seg.features)
        drop = {"customer_id", "frequency", *seg.features}
        out = [c for c in valued.columns if c not in drop]
        scored = score_expr(valued, seg, ordered=False, carry=out)
    written = write_parquet(scored, target)
    return summarize(con.read_parquet(written), written, value)


def default_target(source: str | Path, out: str | Path | None = None) -> str:
    """``out``, or ``<source name>.segments.parquet`` beside a Parquet file or folder (a
    local path or a URI). A table name has no such place: ``out`` is then required.

    Raises
    ------
    SegkitError
        ``out`` ends in ``.csv`` (the engine writes a Parquet folder); no ``out`` for a
        table name.
    """
    if out is not None:
        if str(out).lower().rstrip("/").endswith((".csv", ".csv.gz", ".tsv")):
            raise SegkitError(
                f"--out {out}: the engine writes a Parquet folder, not CSV; name it e.g. "
                f"{str(out).split('.')[0]}.parquet (or score with the duckdb engine for CSV)"
            )
        return str(out)
    text = str(source).rstrip("/")
    if "/" not in text and not Path(text).exists():
        raise SegkitError(
            f"customer table {text!r} is a table name: give the output path (--out), e.g. "
            "s3a://bucket/scored.parquet"
        )
    head, _, name = text.rpartition("/")
    stem = name.split(".")[0]
    return f"{head}/{stem}.segments.parquet" if head else f"{stem}.segments.parquet"
