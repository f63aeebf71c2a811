"""Property tests of the loaders: whatever small table arrives, the loader either stops with
a SegkitError that says something, or loads it with counts that reconcile.

Tables are generated with random column names, delimiters, encodings (UTF-8, latin-1,
UTF-16 with a byte-order mark) and cells mixing good values with missing, padded,
non-finite, huge, mis-ordered and unreadable ones.
"""

from __future__ import annotations

import csv
import io as pyio
import itertools
import math

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segkit import features, io
from segkit.core.errors import SegkitError

TODAY = "2025-01-01"
GOOD_IDS = ["C1", "C2", "C3"]
GOOD_DATES = ["2024-01-05", "2024-03-10 08:00:00"]
GOOD_AMOUNTS = ["10", "2.5", "99"]
IDS = ["C1", "C2", " C1", "C1\t", "c3", "", "  ", "Ünal", "17850.0", "O'Brien", 'say "hi"']
DATES = [
    "2024-01-05",
    "2024-01-05 10:30:00",
    "05/01/2024",
    "01/13/2024",
    "13/01/2024",
    "2024-01-05T10:00:00+02:00",
    "2024-01-05 10:00:00Z",
    "2099-01-01",
    "2024-02-30",
    "",
    "not a date",
    "20240105",
    "5.1.2024",
]
AMOUNTS = [
    "10",
    "0",
    "-3",
    " 5 ",
    "NaN",
    "inf",
    "-Infinity",
    "1e308",
    "1e13",
    "1e400",
    "",
    "abc",
    "12,50",
    "1.234,50",
    "0.01",
]
NAMES = ["customer", "Customer ID", 'date "local"', "amount", "it's", "wert", "x y", "Amount"]
SEPS = [",", ";", "\t", "|"]
ENCODINGS = ["utf-8", "latin-1", "utf-16"]

_counter = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("props")


@pytest.fixture(scope="module")
def con():
    return io.connect()


def mostly(good: list[str], other: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Good values two times in three, so that many tables load and some rows are rejected."""
    return st.one_of(st.sampled_from(good), st.sampled_from(good), other)


def amounts() -> st.SearchStrategy[str]:
    floats = st.floats(allow_nan=True, allow_infinity=True, width=64).map(repr)
    return mostly(GOOD_AMOUNTS, st.one_of(st.sampled_from(AMOUNTS), floats))


def extra_cells() -> st.SearchStrategy[str]:
    text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=6)
    return st.one_of(text, st.integers(-(10**6), 10**6).map(str), amounts())


@st.composite
def tables(draw):
    names = draw(st.lists(st.sampled_from(NAMES), min_size=3, max_size=4, unique=True))
    n = draw(st.integers(1, 7))
    cols = [
        draw(st.lists(mostly(GOOD_IDS, st.sampled_from(IDS)), min_size=n, max_size=n)),
        draw(st.lists(mostly(GOOD_DATES, st.sampled_from(DATES)), min_size=n, max_size=n)),
        draw(st.lists(amounts(), min_size=n, max_size=n)),
    ]
    if len(names) == 4:
        cols.append(draw(st.lists(extra_cells(), min_size=n, max_size=n)))
    return {
        "names": names,
        "rows": [list(r) for r in zip(*cols, strict=True)],
        "sep": draw(st.sampled_from(SEPS)),
        "encoding": draw(st.sampled_from(ENCODINGS)),
        "give_sep": draw(st.booleans()),
        "dayfirst": draw(st.booleans()),
    }


def write(folder, table) -> str:
    buf = pyio.StringIO()
    writer = csv.writer(buf, delimiter=table["sep"], lineterminator="\n")
    writer.writerow(table["names"])
    writer.writerows(table["rows"])
    enc = table["encoding"]
    data = buf.getvalue().encode(enc, errors="replace")
    path = folder / f"t{next(_counter)}.csv"
    path.write_bytes(data)
    return str(path)


def _gist(exc: Exception) -> str:
    """The kind of error, for hypothesis' statistics (-- hypothesis-show-statistics)."""
    text = str(exc)
    for key in (
        "no rows left",
        "header but no rows",
        "missing column",
        "date orders",
        "dayfirst is",
        "duplicate column",
        "NUL bytes",
        "could not be read",
    ):
        if key in text:
            return key
    return "other"


def reconciled(t: io.Table) -> None:
    q = t.quality
    assert q["rows_in"] == q["rows_used"] + q["rows_rejected"]
    assert q["rows_rejected"] == sum(q["rejected"].values()) == len(t.rejects.df())
    used = t.used.df()
    assert len(used) == q["rows_used"]
    assert used["amount"].map(math.isfinite).all()
    assert (used["amount"].abs() <= io.MAX_ROW_AMOUNT).all()
    assert used["customer_id"].str.strip().eq(used["customer_id"]).all()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables())
def test_transactions_raise_clearly_or_reconcile(folder, con, table):
    names = table["names"]
    spec = {
        "path": write(folder, table),
        "columns": {"customer_id": names[0], "timestamp": names[1], "amount": names[2]},
        "dayfirst": table["dayfirst"],
        "allow_zero_amount": True,
    }
    if table["give_sep"]:
        spec["sep"] = table["sep"]
    try:
        t = io.load_transactions(spec, con=con, today=TODAY)
    except SegkitError as exc:
        assert len(str(exc)) > 20
        event(f"raised: {_gist(exc)}")
        return
    event("loaded")
    reconciled(t)
    got = features.customer_features(t.used.df(), con=con)
    assert got["revenue"].sum() == pytest.approx(t.used.df()["amount"].sum(), rel=1e-9)


@st.composite
def experiments(draw):
    n = draw(st.integers(1, 6))
    rows = [
        [
            draw(st.sampled_from(IDS)),
            draw(st.sampled_from(["control", " treatment", "treatment\t", "", "B"])),
            draw(amounts()),
        ]
        for _ in range(n)
    ]
    return {
        "names": ["id", "arm", "spend"],
        "rows": rows,
        "sep": draw(st.sampled_from(SEPS)),
        "encoding": draw(st.sampled_from(ENCODINGS)),
    }


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=experiments())
def test_experiments_raise_clearly_or_reconcile(folder, con, table):
    spec = {"path": write(folder, table), "columns": {"customer_id": "id"}, "outcomes": ["spend"]}
    try:
        t = io.load_experiment(spec, con=con)
    except SegkitError as exc:
        assert len(str(exc)) > 20
        event(f"raised: {_gist(exc)}")
        return
    event("loaded")
    q = t.quality
    assert q["rows_in"] == q["rows_used"] + q["rows_rejected"] == len(table["rows"])
    assert q["rows_rejected"] == sum(q["rejected"].values()) == len(t.rejects.df())
    used = t.used.df()
    assert used["spend"].dropna().map(math.isfinite).all()
    assert used["arm"].str.strip().eq(used["arm"]).all()
