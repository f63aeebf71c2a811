"""Scoring a customer file of any size in bounded memory (``segkit score``).

The table is read in batches (Parquet row batches through pyarrow, CSV chunks through
pandas' C parser), each batch is scored with :meth:`Segmenter.score` and appended to the
output CSV, and only the counts per segment are kept: 10 million customers score in the
memory of one batch (issue 18; ``benchmarks/bench_score.py``).

Two things make a batch score exactly as the whole table would:

- categorical columns: :func:`~segkit.segment.prepare.as_levels` writes a float column of
  whole numbers as integers ("2", not "2.0"), a decision over the whole column. The
  distinct values of each categorical column are read first (one pass over those columns
  only) and their level strings fixed once; each batch is mapped through them.
- CSV type inference: the categorical columns are read as text and typed from the file's
  distinct values by the same parser, as a whole-file read would type them.

A target ending in ``.parquet`` gets one row group per batch; otherwise the CSV written is
the one ``DataFrame.to_csv(index=False)`` writes; batches whose values
need quoting (a delimiter or a quote in an id or a name) go through pandas, the others
through pyarrow's writer, which is several times faster.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segkit.clv.predict import DELTA_PREFIX, ValueModel, interval_of_sums
from segkit.core.checks import check_columns
from segkit.core.errors import SegkitError
from segkit.segment.prepare import as_levels
from segkit.segment.segmenter import Segmenter

#: Customers per batch: about 100 MB of working memory per million with ten features.
BATCH_ROWS = 500_000


@dataclass
class ScoreSummary:
    """What a scoring run wrote: the file (or folder, or URI), the row count, per segment
    (number -> name, customers), the customers flagged and left unassigned, and the
    reasons among them (reason -> customers; a customer may have several)."""

    path: Path | str
    rows: int = 0
    segments: dict[int, tuple[str, int]] = field(default_factory=dict)
    flagged: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    value: ValueSums | None = None  # with --clv: the sums behind the CLV lines

    def add(self, scored: pd.DataFrame) -> None:
        """Count one scored batch in (numpy counts: a pandas groupby per batch cost more
        than the batch's scoring arithmetic)."""
        self.rows += len(scored)
        seg = scored["segment"].to_numpy(dtype=np.int64, na_value=-1)
        inside = np.flatnonzero(seg >= 0)
        self.flagged += len(seg) - len(inside)
        numbers, first, counts = np.unique(seg[inside], return_index=True, return_counts=True)
        names = scored["segment_name"].to_numpy()[inside[first]]
        for k, name, n in zip(numbers.tolist(), names, counts.tolist(), strict=True):
            known, total = self.segments.get(k, (str(name), 0))
            self.segments[k] = (known, total + n)
        if self.value is not None:
            self.value.add(seg, scored)
        if len(inside) < len(seg):  # the reasons of the flagged rows only
            flags = scored["flag"].to_numpy()[np.flatnonzero(seg < 0)]
            why = pd.Series(flags, dtype=object).str.split("; ").explode().value_counts()
            for reason, n in why.items():
                self.reasons[str(reason)] = self.reasons.get(str(reason), 0) + int(n)

    def lines(self) -> list[str]:
        """The terminal summary: customers per segment, flagged, and why."""
        out = [f"segment {k} {name}: {n:,}" for k, (name, n) in sorted(self.segments.items())]
        out.append(f"flagged, not assigned (outside the fitted range): {self.flagged:,}")
        by_count = sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        out += [f"  {reason}: {n:,}" for reason, n in by_count]
        if self.value is not None:
            out += self.value.lines({k: name for k, (name, _) in self.segments.items()})
        return out


@dataclass
class ValueSums:
    """The CLV of the scored customers, kept as sums: total CLV and the sums of the
    ``clv_delta_*`` columns (whose squares give the variance of the total:
    :func:`segkit.clv.predict.interval_of_sums`), overall and per segment (-1: flagged)."""

    model: ValueModel
    total: float = 0.0
    deltas: np.ndarray | None = None
    by_segment: dict[int, float] = field(default_factory=dict)
    currency: str = ""  # the run's report.currency, before each sum

    def add(self, segment: np.ndarray, scored: pd.DataFrame) -> None:
        """Add one scored batch (``segment`` as integers, -1 for flagged rows)."""
        clv = scored["clv"].to_numpy(float)
        self.total += float(np.nansum(clv))
        cols = [c for c in scored.columns if c.startswith(DELTA_PREFIX)]
        if cols:
            part = np.nansum(scored[cols].to_numpy(float), axis=0)
            self.deltas = part if self.deltas is None else self.deltas + part
        numbers, back = np.unique(segment, return_inverse=True)
        sums = np.bincount(back.reshape(-1), weights=np.nan_to_num(clv), minlength=len(numbers))
        for k, v in zip(numbers.tolist(), sums.tolist(), strict=True):
            self.by_segment[k] = self.by_segment.get(k, 0.0) + v

    def lines(self, names: dict[int, str] | None = None) -> list[str]:
        """The total with its interval, then each segment's (``names``: number -> name)."""
        m = self.model
        deltas = self.deltas if self.deltas is not None else np.array([])
        total, low, high = interval_of_sums(self.total, deltas, m.alpha, model_error=m.model_error)
        what = "margin" if m.spend is not None else "discounted purchases"
        c = self.currency if m.spend is not None else ""
        band = f" ({c}{low:,.0f} to {c}{high:,.0f})" if np.isfinite(low) else ""
        out = [f"CLV over the next {m.horizon_months} months ({what}): {c}{total:,.0f}{band}"]
        for k, v in sorted(self.by_segment.items()):
            share = v / total if total > 0 else np.nan
            name = f"segment {k} {(names or {}).get(k, '')}".rstrip() if k >= 0 else "flagged"
            out.append(f"  {name}: {c}{v:,.0f} ({share:.0%})")
        return out


#: Columns ``--clv`` reads besides the segmenter's: the BTYD summary of each customer.
VALUE_INPUTS = ("frequency", "recency", "T", "monetary")


def with_value(scored: pd.DataFrame, batch: pd.DataFrame, value: ValueModel) -> pd.DataFrame:
    """``scored`` with the CLV columns of ``value`` for the customers of ``batch`` (the
    same rows, in the same order), without the input ``frequency``."""
    pred = value.predict(batch.reset_index(drop=True))
    pred = pred.drop(columns=["customer_id", "frequency"], errors="ignore")
    return pd.concat([scored.reset_index(drop=True), pred], axis=1)


def default_target(customers: str | Path, out: str | Path | None = None) -> Path:
    """``out``, or ``<customers name>.segments.csv`` next to the customer table."""
    src = Path(customers)
    return Path(out) if out else src.with_name(f"{src.name.split('.')[0]}.segments.csv")


def score_to_csv(
    seg: Segmenter,
    customers: str | Path,
    target: str | Path,
    *,
    keep: bool = False,
    batch_rows: int = BATCH_ROWS,
    value: ValueModel | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ScoreSummary, pd.DataFrame | None]:
    """Score the customer table at ``customers`` batch by batch into the CSV ``target``
    (or a Parquet file, when ``target`` ends in ``.parquet``).

    Parameters
    ----------
    seg : the fitted segmenter.
    customers : a Parquet file, or a CSV (any delimiter, optionally .gz).
    target : the CSV (or ``.parquet``) file to write (atomically: a ``.tmp`` file renamed
        at the end).
    keep : also return the whole scored table (for callers that want it in memory).
    batch_rows : customers per batch.
    value : a saved CLV model (``segkit score --clv``): each customer also gets its CLV
        columns (:meth:`~segkit.clv.ValueModel.predict`, from the table's ``frequency``,
        ``recency``, ``T``, ``monetary``), and the summary the total CLV with its interval.
    progress : called after each batch with (customers scored, customers in the table; 0
        when unknown, as for a CSV).

    Raises
    ------
    SegkitError
        The file is missing or holds no rows, or lacks one of the segmenter's columns.
    """
    src, target = Path(customers), Path(target)
    summary, kept = ScoreSummary(target), []
    if value is not None:
        summary.value = ValueSums(value)
    extra = () if value is None else VALUE_INPUTS[: 4 if value.spend is not None else 3]
    tmp = target.with_name(target.name + ".tmp")
    parquet = target.suffix.lower() == ".parquet"
    total = _row_count(src)
    writer = None
    try:
        with tmp.open("wb") as out:
            for batch in read_batches(seg, src, batch_rows, extra):
                scored = seg.score(batch, where=str(src))
                if value is not None:
                    scored = with_value(scored, batch, value)
                if parquet:
                    writer = _write_parquet(scored, out, writer)
                else:
                    write_csv(scored, out, header=summary.rows == 0)
                summary.add(scored)
                if progress is not None:
                    progress(summary.rows, total)
                if keep:
                    kept.append(scored)
            if writer is not None:
                writer.close()
        if summary.rows == 0:
            raise SegkitError(f"{src}: no customer rows (header only or empty)")
    except BaseException:
        tmp.unlink(missing_ok=True)  # no half-written file left behind
        raise
    tmp.replace(target)
    return summary, (pd.concat(kept, ignore_index=True) if keep else None)


def read_batches(
    seg: Segmenter, path: Path, rows: int, extra: list[str] | tuple[str, ...] = ()
) -> Iterator[pd.DataFrame]:
    """The columns ``seg`` needs from ``path`` (and ``extra``), ``rows`` customers at a
    time, categorical columns as level strings fixed over the whole file."""
    if not path.is_file():
        raise SegkitError(f"customer table {path} not found")
    need = list(dict.fromkeys(["customer_id", *seg.features, *extra]))
    if path.suffix == ".parquet":
        yield from _parquet_batches(path, need, seg.categorical, rows)
    else:
        yield from _csv_batches(path, need, seg.categorical, rows)


def _levels(values: pd.Series, table: dict[Any, str]) -> pd.Categorical:
    """``values`` mapped through ``table`` (distinct value -> level; missing -> 'missing')."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = [table[v] for v in uniques] + ["missing"]
    cats, back = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    return pd.Categorical.from_codes(back.reshape(-1)[codes], categories=list(cats))


def _table(uniques: pd.Series) -> dict[Any, str]:
    """Distinct value -> its level string, as ``as_levels`` of the whole column."""
    return dict(zip(uniques.dropna().tolist(), as_levels(uniques.dropna()), strict=True))


# ----------------------------------------------------------------------------- Parquet


def _parquet_batches(
    path: Path, need: list[str], categorical: list[str], rows: int
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # pre_buffer=False: with pyarrow's default read-ahead buffering the reader kept every
    # batch's column chunks (memory grew by ~50 bytes per customer); without it, the
    # memory of one batch
    pf = pq.ParquetFile(path, pre_buffer=False)
    check_columns(pd.DataFrame(columns=pf.schema_arrow.names), need, str(path))
    # only float columns need the whole-file decision; other types map value by value
    floats = [c for c in categorical if pa.types.is_floating(pf.schema_arrow.field(c).type)]
    tables = {}
    for col in floats:
        parts = [pc.unique(b.column(0)) for b in pf.iter_batches(rows, columns=[col])]
        uniq = pc.unique(pa.chunked_array(parts, pf.schema_arrow.field(col).type))
        tables[col] = _table(uniq.to_pandas())
    for batch in pf.iter_batches(rows, columns=need):
        frame = pa.Table.from_batches([batch]).to_pandas()
        for col, table in tables.items():
            frame[col] = _levels(frame[col], table)
        yield frame


# --------------------------------------------------------------------------------- CSV


def _row_count(path: Path) -> int:
    """Rows of a Parquet file from its footer; 0 (unknown) for anything else."""
    if path.suffix != ".parquet" or not path.is_file():
        return 0
    import pyarrow.parquet as pq

    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, ValueError):
        return 0  # read_batches says what is wrong with the file


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt") if path.suffix == ".gz" else path.open()


def _delimiter(path: Path) -> str:
    """The delimiter of the header line, as ``read_csv(sep=None)`` sniffs it."""
    with _open_text(path) as f:
        line = f.readline()
    if not line.strip():
        raise SegkitError(f"{path}: no customer rows (header only or empty)")
    try:
        return csv.Sniffer().sniff(line).delimiter
    except csv.Error as e:
        raise SegkitError(f"{path}: cannot tell the delimiter of the header ({e})") from None


def _csv_batches(
    path: Path, need: list[str], categorical: list[str], rows: int
) -> Iterator[pd.DataFrame]:
    sep = _delimiter(path)
    header = pd.read_csv(path, sep=sep, nrows=0)
    check_columns(header, need, str(path))
    text = {c: str for c in ["customer_id", *categorical]}
    tables = {c: _csv_table(path, sep, c, rows) for c in categorical}
    reader = pd.read_csv(path, sep=sep, usecols=need, dtype=text, chunksize=rows)
    with reader:
        for frame in reader:
            for col, table in tables.items():
                frame[col] = _levels(frame[col], table)
            yield frame[need]


def _csv_table(path: Path, sep: str, col: str, rows: int) -> dict[Any, str]:
    """Raw text -> level of a categorical CSV column, typed as a whole-file read would:
    the file's distinct values parsed again by the same parser (int, float, bool or text
    follows from the set of values, and a missing value turns integers into floats)."""
    seen: set[str] = set()
    missing = False
    with pd.read_csv(path, sep=sep, usecols=[col], dtype=str, chunksize=rows) as reader:
        for frame in reader:
            missing = missing or bool(frame[col].isna().any())
            seen.update(frame[col].dropna().unique().tolist())
    raw = sorted(seen)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["v", "i"])
    w.writerows([[v, i] for i, v in enumerate(raw)] + ([["", len(raw)]] if missing else []))
    typed = pd.read_csv(io.StringIO(buf.getvalue()))
    typed = typed.sort_values("i")["v"].reset_index(drop=True)
    levels = as_levels(typed).tolist()
    return dict(zip(raw, levels[: len(raw)], strict=True))


# ------------------------------------------------------------------------------ writing


def write_csv(scored: pd.DataFrame, out: Any, header: bool) -> None:
    """Append ``scored`` to the binary file ``out`` as ``to_csv(index=False)`` would.

    pyarrow writes the batch (without quotes) when no value needs quoting and the id is
    text or an integer; otherwise pandas does, so the bytes are always pandas'."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if header:
        out.write((",".join(scored.columns) + "\n").encode())
    ids = scored["customer_id"]
    plain = isinstance(ids.dtype, pd.StringDtype) or pd.api.types.is_integer_dtype(ids.dtype)
    if plain or (ids.dtype == object and pd.api.types.infer_dtype(ids) == "string"):
        try:
            table = pa.Table.from_pandas(scored, preserve_index=False)
            opts = pacsv.WriteOptions(include_header=False, quoting_style="none")
            buf = io.BytesIO()
            pacsv.write_csv(table, buf, opts)
            out.write(buf.getvalue())
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # a value needs quotes (or an odd id type): pandas writes this batch
    out.write(scored.to_csv(index=False, header=False, lineterminator="\n").encode())


def _write_parquet(scored: pd.DataFrame, out: Any, writer: Any) -> Any:
    """Append ``scored`` as one row group to the Parquet file open as ``out``; the first
    batch sets the schema (later ones are cast to it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(scored, preserve_index=False)
    if writer is None:
        writer = pq.ParquetWriter(out, table.schema)
    writer.write_table(table.cast(writer.schema))
    return writer
