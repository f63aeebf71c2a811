"""Reading one input file into DuckDB as text columns, with errors that say what to change.

CSV (``.gz`` too) is read by DuckDB; its encoding is found from a byte-order mark (UTF-8 or
UTF-16), else UTF-8 is tried and latin-1 taken when that fails (recorded in the quality
dict). Parquet and JSON (an array of records or one record per line, ``.gz`` too; nested
objects flattened to ``parent.child`` columns, lists refused) are read by DuckDB; Excel and
whitespace-separated text by pandas. A file with
NUL bytes near its start is not taken for a text table. Duplicate column names stop the
read (DuckDB would rename them silently). Messages name the file, the option and counts;
they never quote lines of a file that could not be read (it may not be a data file at all).
"""

from __future__ import annotations

import atexit
import codecs
import gzip
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from segkit.core import native, paths
from segkit.core.errors import SegkitError
from segkit.core.sql import ident, idents, literal, literals

#: Bytes looked at for a byte-order mark and NUL bytes.
SNIFF_BYTES = 4096
#: Encodings DuckDB decodes itself; others are transcoded to UTF-8 first, by Python.
DUCKDB_ENCODINGS = ("utf-8", "utf-16", "latin-1")
#: Column names the loaders use for their own bookkeeping.
RESERVED = ("_row", "_reason", "_dup")

_BOMS = ((b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"), (b"\xef\xbb\xbf", "utf-8"))
_ENCODING_ALIASES = {
    "utf8": "utf-8",
    "utf-8-sig": "utf-8",
    "utf16": "utf-16",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "iso8859-1": "latin-1",
}


def connect(
    memory_limit: str | None = None, temp_dir: str | Path | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection that spills to ``temp_dir`` past ``memory_limit``,
    and may load segkit's aggregate (:mod:`segkit.core.native`)."""
    con = native.connect()
    con.execute("SET preserve_insertion_order = true")
    if memory_limit:
        con.execute(f"SET memory_limit = {literal(str(memory_limit))}")
    if temp_dir:
        con.execute(f"SET temp_directory = {literal(Path(temp_dir).as_posix())}")
    return con


def resolve_path(path: str | Path) -> Path:
    """An input path; relative paths (from Python, not a parameter file) against the cwd."""
    return Path(path).expanduser().resolve()


def format_of(path: Path, fmt: str) -> str:
    """The file format: ``fmt`` unless it is ``auto``, else guessed from the suffixes."""
    if fmt != "auto":
        return fmt
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if suffixes and suffixes[-1] in (".xlsx", ".xls", ".xlsm"):
        return "excel"
    if any(s in paths.JSON_SUFFIXES for s in suffixes[-2:]):
        return "json"
    return "csv"


def _head(path: Path, name: str) -> bytes:
    """The first bytes of the file (decompressed for ``.gz``)."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read(SNIFF_BYTES)
        with open(path, "rb") as fh:
            return fh.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise SegkitError(
            f"{name} file {str(path)!r} could not be read ({type(exc).__name__}); "
            "a .gz file must be gzip-compressed"
        ) from None


def csv_encoding(path: Path, name: str, encoding: str) -> str:
    """The encoding to read a CSV with: a byte-order mark decides, else ``encoding``.

    ``auto`` means UTF-8 (latin-1 is tried later if UTF-8 fails). A UTF-16 mark with another
    encoding configured, or NUL bytes without a mark, stop with an encoding error.
    """
    head = _head(path, name)
    enc = str(encoding).strip().lower().replace("_", "-")
    enc = _ENCODING_ALIASES.get(enc, enc)
    bom = next((e for mark, e in _BOMS if head.startswith(mark)), None)
    if bom == "utf-16" and enc not in ("auto", "utf-16"):
        raise SegkitError(
            f"{name} file {str(path)!r} starts with a UTF-16 byte-order mark but "
            f"data.{name}.encoding is {encoding!r}: set encoding: utf-16 (or auto)"
        )
    if bom and enc == "auto":
        return bom
    if bom is None and b"\x00" in head and enc in ("auto", "utf-8", "latin-1"):
        raise SegkitError(
            f"{name} file {str(path)!r} has NUL bytes in its first {len(head)} bytes: it is "
            f"not a text table in encoding {encoding!r} (a binary file, or UTF-16 without a "
            f"byte-order mark: then set data.{name}.encoding: utf-16)"
        )
    if enc != "auto":
        try:
            codecs.lookup(enc)
        except LookupError:
            raise SegkitError(
                f"data.{name}.encoding == {encoding!r} is not an encoding Python knows; "
                "e.g. utf-8, latin-1, cp1252, utf-16"
            ) from None
    return "utf-8" if enc == "auto" else enc


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def transcode(path: Path, name: str, encoding: str) -> Path:
    """A UTF-8 copy of the file (removed at exit), decoded by Python in chunks."""
    fd, out = tempfile.mkstemp(prefix="segkit-", suffix=".csv")
    atexit.register(_remove, out)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as raw, os.fdopen(fd, "wb") as dst:
            reader = codecs.getreader(encoding)(raw)
            while chunk := reader.read(1 << 20):
                dst.write(chunk.encode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SegkitError(
            f"{name} file {str(path)!r} is not valid {encoding} (byte {exc.start} of a chunk "
            f"cannot be decoded: {exc.reason}); set data.{name}.encoding to the file's encoding"
        ) from None
    return Path(out)


def reader_error(exc: Exception) -> str:
    """The gist of a reader's error, without the lines of the file it may quote."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [
        ln
        for ln in lines[:2]
        if not ln.lower().startswith(("original line", "possible", "line:", "file ="))
    ]
    return "; ".join(keep)[:300] or type(exc).__name__


def duplicates(names: list[Any]) -> list[str]:
    """Names that occur more than once, ignoring case (as DuckDB does).

    >>> duplicates(["id", "Amount", "amount", "x"])
    ['Amount', 'amount']
    """
    folded = [str(n).casefold() for n in names if n is not None]
    return [str(n) for n in names if n is not None and folded.count(str(n).casefold()) > 1]


def _check_names(names: list[Any], path: Path, name: str) -> None:
    dups = duplicates(names)
    if dups:
        shown = f"{dups}" if len(dups) <= 10 else f"{dups[:10]} (and {len(dups) - 10:,} more)"
        raise SegkitError(
            f"{name} file {str(path)!r} has {len(dups):,} duplicate column names {shown} (case "
            "is ignored); rename them so that each column has its own name"
        )
    clash = [n for n in names if str(n) in RESERVED]
    if clash:
        raise SegkitError(
            f"{name} file {str(path)!r} has column(s) {clash}, names segkit keeps for its own "
            f"use {list(RESERVED)}; rename them"
        )


def _csv_options(spec: dict, *, header: bool) -> str:
    opts = ["all_varchar = true", f"header = {literal(bool(header))}"]
    if spec.get("skip_rows"):
        opts.append(f"skip = {int(spec['skip_rows'])}")
    if spec["sep"] != "auto":
        opts.append(f"delim = {literal(str(spec['sep']))}")
    if spec["names"]:
        opts.append(f"names = [{literals(str(n) for n in spec['names'])}]")
    return ", ".join(opts)


def _csv_relation(con, path: Path, spec: dict, enc: str, info: dict) -> duckdb.DuckDBPyRelation:
    """The CSV as a relation, decoded through now (an encoding error raises here); its
    number of rows in ``info["rows"]``."""
    src = f"read_csv({literal(path.as_posix())}, {_csv_options(spec, header=spec['header'])}, "
    rel = con.sql(f"SELECT * FROM {src}encoding = {literal(enc)})")
    rel.limit(1).fetchall()  # force the sniffer and the first decode now
    info["rows"] = con.sql(f"SELECT count(*) FROM {src}encoding = {literal(enc)})").fetchall()[0][0]
    return rel


def _csv_header(con, path: Path, spec: dict, enc: str) -> list[Any]:
    """The header line's cells as written (DuckDB renames duplicates when it reads them)."""
    if spec["names"] or not spec["header"]:
        return list(spec["names"] or [])
    opts = _csv_options({**spec, "names": None}, header=False)
    rows = con.sql(
        f"SELECT * FROM read_csv({literal(path.as_posix())}, {opts}, "
        f"encoding = {literal(enc)}) LIMIT 1"
    ).fetchall()
    return list(rows[0]) if rows else []


def _decoded(
    con, path: Path, spec: dict, name: str, info: dict
) -> tuple[duckdb.DuckDBPyRelation, Path, str]:
    """The CSV relation, the file DuckDB reads (the input or a UTF-8 copy) and the encoding.

    ``auto``: UTF-8, else latin-1 by DuckDB, else cp1252 (then latin-1) by Python; cp1252
    first when the file has bytes 0x80-0x9F, which are control characters in latin-1 and
    € „ “ ” – … in cp1252 (a German or French Excel export: "12,50 €"). A named encoding
    DuckDB lacks, or one it refuses the file in, is decoded by Python.
    """
    enc = csv_encoding(path, name, spec["encoding"])
    auto = str(spec["encoding"]).lower() == "auto"
    if enc not in DUCKDB_ENCODINGS:
        copy = transcode(path, name, enc)
        return _csv_relation(con, copy, spec, "utf-8", info), copy, enc
    try:
        return _csv_relation(con, path, spec, enc, info), path, enc
    except duckdb.Error as exc:
        if not _is_encoding_error(exc):
            raise
    guess = auto and enc == "utf-8"
    if guess and not _has_c1(path):  # latin-1 and cp1252 agree: DuckDB reads it
        try:
            return _csv_relation(con, path, spec, "latin-1", info), path, "latin-1"
        except duckdb.Error as exc:
            if not _is_encoding_error(exc):
                raise
    try:
        enc = "cp1252" if guess else enc
        copy = transcode(path, name, enc)
    except SegkitError:
        if not guess:
            raise
        enc = "latin-1"
        copy = transcode(path, name, enc)
    return _csv_relation(con, copy, spec, "utf-8", info), copy, enc


_C1 = re.compile(rb"[\x80-\x9f]")


def _has_c1(path: Path) -> bool:
    """Whether the file has a byte 0x80-0x9F (read in chunks, decompressed for ``.gz``)."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            if _C1.search(chunk):
                return True
    return False


def _is_encoding_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "encod" in text or "unicode" in text


def _read_csv(con, path: Path, spec: dict, name: str, info: dict) -> duckdb.DuckDBPyRelation:
    enc = spec["encoding"]
    try:
        rel, source, enc = _decoded(con, path, spec, name, info)
        header = _csv_header(con, source, spec, "utf-8" if source != path else enc)
    except duckdb.Error as exc:
        raise SegkitError(
            f"{name} file {str(path)!r} could not be read as CSV (encoding {enc!r}, "
            f"sep {spec['sep']!r}): {reader_error(exc)}"
        ) from None
    info["encoding"] = enc
    _check_names(header, path, name)
    return rel


def _sheet_error(path: Path, name: str, sheet: Any, sheets: list[str], why: str) -> SegkitError:
    return SegkitError(
        f"{name} file {str(path)!r}: data.{name}.sheet == {sheet!r} {why}; the workbook's "
        f"sheets are {sheets}: choose one with data.{name}.sheet"
    )


def _read_excel(path: Path, spec: dict, name: str, info: dict) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise SegkitError(
            f"{name} file {str(path)!r} could not be read as Excel ({type(exc).__name__}); "
            f"set data.{name}.format if it is another format"
        ) from None
    sheets = [str(s) for s in book.sheet_names]
    info["sheets"] = sheets
    sheet = spec["sheet"]
    if sheet == ALL_SHEETS and ALL_SHEETS not in sheets:
        return _read_all_sheets(book, path, spec, name, sheets)
    if isinstance(sheet, int) and not 0 <= sheet < len(sheets):
        raise _sheet_error(path, name, sheet, sheets, f"is out of range ({len(sheets)} sheets)")
    if isinstance(sheet, str) and sheet not in sheets:
        raise _sheet_error(path, name, sheet, sheets, "is not a sheet of the workbook")
    skip = spec.get("skip_rows") or 0
    head = pd.read_excel(book, sheet_name=sheet, header=None, nrows=1, dtype=str, skiprows=skip)
    if head.shape[1] == 0:
        raise _sheet_error(path, name, sheet, sheets, "is empty")
    df = pd.read_excel(
        book, sheet_name=sheet, dtype=str, header=0 if spec["header"] else None, skiprows=skip
    )
    if spec["header"] and not spec["names"]:
        _check_names([c for c in head.iloc[0].tolist() if isinstance(c, str)], path, name)
    return df


#: ``sheet: all``: every sheet of the workbook, stacked (a log split by year, like the
#: two sheets of UCI's Online Retail II).
ALL_SHEETS = "all"


def _read_all_sheets(
    book: pd.ExcelFile, path: Path, spec: dict, name: str, sheets: list[str]
) -> pd.DataFrame:
    """Every non-empty sheet, in order, one under the other; they must have the same
    columns (an error names the first sheet that differs)."""
    frames: list[pd.DataFrame] = []
    for sheet in sheets:
        df = pd.read_excel(
            book,
            sheet_name=sheet,
            dtype=str,
            header=0 if spec["header"] else None,
            skiprows=spec.get("skip_rows") or 0,
        )
        if df.shape[1] == 0:
            continue
        if frames and list(df.columns) != list(frames[0].columns):
            raise SegkitError(
                f"{name} file {str(path)!r}: data.{name}.sheet == 'all' stacks sheets with the "
                f"same columns, but sheet {sheet!r} has {[str(c) for c in df.columns]} where "
                f"sheet {sheets[0]!r} has {[str(c) for c in frames[0].columns]}; choose one "
                f"sheet with data.{name}.sheet"
            )
        frames.append(df)
    if not frames:
        raise _sheet_error(path, name, ALL_SHEETS, sheets, "finds only empty sheets")
    if spec["header"] and not spec["names"]:
        _check_names([str(c) for c in frames[0].columns], path, name)
    return pd.concat(frames, ignore_index=True)


def _read_pandas(path: Path, fmt: str, spec: dict, name: str, info: dict) -> pd.DataFrame:
    """Small formats that pandas reads (DuckDB has no Excel reader without extensions)."""
    if fmt == "excel":
        df = _read_excel(path, spec, name, info)
    else:
        try:
            df = pd.read_csv(
                path,
                sep=r"\s+",
                dtype=str,
                header=0 if spec["header"] else None,
                skiprows=spec.get("skip_rows") or 0,
            )
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise SegkitError(
                f"{name} file {str(path)!r} could not be read as whitespace-separated text: "
                f"{type(exc).__name__}"
            ) from None
    if spec["names"]:
        df.columns = [str(n) for n in spec["names"][: df.shape[1]]] + [
            str(c) for c in df.columns[len(spec["names"]) :]
        ]
    df.columns = [str(c) for c in df.columns]
    _check_names(list(df.columns), path, name)
    return df


def _opened(con, source: str, path: Path, name: str, what: str) -> duckdb.DuckDBPyRelation:
    """``SELECT * FROM source`` with one row read now, to fail here on a broken file (as
    Arrow: Python objects of a time-zone-aware timestamp would need pytz, not a dependency)."""
    try:
        rel = con.sql(f"SELECT * FROM {source}")
        rel.limit(1).to_arrow_table()
    except duckdb.Error as exc:
        raise SegkitError(
            f"{name} file {str(path)!r} could not be read as {what}: {reader_error(exc)}"
        ) from None
    return rel


def _read_parquet(con, path: Path, name: str) -> duckdb.DuckDBPyRelation:
    rel = _opened(con, f"read_parquet({literal(path.as_posix())})", path, name, "Parquet")
    _check_names(list(rel.columns), path, name)
    return rel.select(", ".join(f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in rel.columns))


def _flat(expr: str, name: str, dtype: Any, nested: list[str]) -> list[tuple[str, str]]:
    """``(expression, name)`` of the text columns of a JSON field: an object's fields as
    ``parent.child`` (recursively), a field of mixed types as its text; a list or a map
    goes to ``nested`` (segkit reads one record per row)."""
    kind = "json" if str(dtype) == "JSON" else str(dtype.id)  # JSON's id is varchar
    if kind == "struct":
        return [
            col
            for field, child in dtype.children
            for col in _flat(f"{expr}.{ident(field)}", f"{name}.{field}", child, nested)
        ]
    if kind in ("list", "map", "array"):
        nested.append(name)
        return []
    if kind == "json":  # numbers and strings in one field: the text, without quotes
        return [(f"json_extract_string({expr}, '$')", name)]
    return [(f"CAST({expr} AS VARCHAR)", name)]


def _read_json(con, path: Path, name: str) -> duckdb.DuckDBPyRelation:
    """A JSON file's records as text columns. Dates stay text, as in a CSV (the loader's
    formats and ``local_time`` apply); objects are flattened to ``parent.child``."""
    # dateformat/timestampformat '%%': no date detection (DuckDB would turn "...Z" into a
    # TIMESTAMPTZ, shown in the session's time zone)
    src = f"read_json({literal(path.as_posix())}, dateformat = '%%', timestampformat = '%%')"
    rel = _opened(con, src, path, name, "JSON")
    if rel.columns == ["json"] and str(rel.types[0].id) != "struct":
        raise SegkitError(
            f"{name} file {str(path)!r} holds JSON values, not records; expected an array of "
            'objects or one object per line, such as {"customer_id": "c1", "amount": 9.5}'
        )
    nested: list[str] = []
    cols = [
        col
        for column, dtype in zip(rel.columns, rel.types, strict=True)
        for col in _flat(ident(column), str(column), dtype, nested)
    ]
    if nested:
        raise SegkitError(
            f"{name} file {str(path)!r} has lists in field(s) {nested}; segkit reads one "
            "record per row with plain values (objects are flattened): write one row per list "
            "item (e.g. one row per order line) or export a CSV"
        )
    _check_names([n for _, n in cols], path, name)
    return rel.select(", ".join(f"{e} AS {ident(n)}" for e, n in cols))


def typed_dates(con, spec: dict) -> set[str]:
    """Columns a Parquet input stores as a timestamp or a date, not as text.

    :func:`read_raw` gives them as DuckDB's ISO text of the typed value; ``date_formats``
    are for dates written as text and do not apply to them (as on ``engine: spark``).
    Other formats hold text only: the empty set. Reads the file's schema, not its rows.
    """
    path = resolve_path(spec["path"])
    if format_of(path, spec["format"]) != "parquet":
        return set()
    rel = con.sql(f"SELECT * FROM read_parquet({literal(path.as_posix())})")
    return {
        c
        for c, t in zip(rel.columns, rel.types, strict=True)
        if str(t) == "DATE" or str(t).startswith("TIMESTAMP")
    }


def read_raw(con, spec: dict, name: str) -> tuple[duckdb.DuckDBPyRelation, dict]:
    """Read a file as a relation of VARCHAR columns plus ``_row`` (1-based file row).

    Returns the relation and what was learnt reading it (``file``, ``format``, and
    ``encoding`` or ``sheets``).

    Raises
    ------
    SegkitError
        The file is missing, empty, unreadable in its format or encoding, or has duplicate
        column names.
    """
    if paths.is_pattern(spec["path"]):
        return _read_files(con, spec, name)
    rel, info, _ = _read_one(con, spec, name)
    return rel, info


def _read_one(con, spec: dict, name: str) -> tuple[duckdb.DuckDBPyRelation, dict, int | None]:
    """:func:`read_raw` of one file, with its number of rows when reading counted them (a
    CSV is counted as it is decoded), else None."""
    path = resolve_path(spec["path"])
    info: dict = {"file": str(spec["path"])}
    if not path.is_file():
        raise SegkitError(f"data.{name}.path: file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise SegkitError(f"{name} file {str(path)!r} is empty (0 bytes); expected a table")
    fmt = format_of(path, spec["format"])
    info["format"] = fmt
    if fmt == "parquet":
        rel = _read_parquet(con, path, name)
    elif fmt == "json":
        rel = _read_json(con, path, name)
    elif fmt in ("excel", "whitespace"):
        rel = con.from_df(_read_pandas(path, fmt, spec, name, info))
    else:
        rel = _read_csv(con, path, spec, name, info)
    cols = rel.columns
    rel = rel.select("row_number() OVER () AS _row, " + idents(cols))
    return rel, info, info.pop("rows", None)


def _read_files(con, spec: dict, name: str) -> tuple[duckdb.DuckDBPyRelation, dict]:
    """Every file a pattern names (``orders_*.csv``: a log exported by year), read one by
    one as :func:`read_raw` reads a file and stacked in name order; ``_row`` counts on from
    one file to the next. They must have the same columns.

    Raises
    ------
    SegkitError
        No file matches, or two files' columns differ (both named, and the columns).
    """
    files = paths.matched_files(spec["path"])
    if not files:
        raise SegkitError(f"data.{name}.path: no file matches {str(spec['path'])!r}")
    parts, infos, counts = [], [], []
    for f in files:
        rel, info, rows = _read_one(con, {**spec, "path": str(f)}, name)
        parts.append(rel)
        infos.append(info)
        counts.append(rows)
    first = [c for c in parts[0].columns if c != "_row"]
    for f, rel in zip(files[1:], parts[1:], strict=True):
        cols = [c for c in rel.columns if c != "_row"]
        if cols != first:
            raise SegkitError(
                f"data.{name}.path {str(spec['path'])!r}: {f.name} has columns {cols}, "
                f"{files[0].name} has {first}; the files of a pattern must have the same columns"
            )
    offset, stacked = 0, []
    for rel, rows in zip(parts, counts, strict=True):
        # a CSV was counted as it was decoded; other formats are counted here
        n = int(rows if rows is not None else rel.aggregate("count(*)").fetchall()[0][0])
        stacked.append(rel.select(f"_row + {offset} AS _row, " + idents(first)))
        offset += n
    out = stacked[0]
    for rel in stacked[1:]:
        out = out.union(rel)
    info = {
        "file": str(spec["path"]),
        "files": [f.name for f in files],
        "format": infos[0]["format"],
    }
    for key in ("encoding",):
        found = sorted({str(i[key]) for i in infos if key in i})
        if found:
            info[key] = found[0] if len(found) == 1 else ", ".join(found)
    return out, info
