"""segkit's DuckDB aggregate in C (segkit.core.native): built here, and btyd_summary gives the
same summary with it as with the SQL (and as pandas, tests/test_features.py), on logs that
reach its every path: days beyond the inline ones, DuckDB's parallel combine, rows after
the observation end, ties on the first day; and where it cannot load, the SQL runs."""

import contextlib
import os
import threading
import time

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_features import pandas_btyd

from segkit import features
from segkit.core import native
from segkit.core.errors import SegkitError


def _sql(tx, *args, **kw):
    """btyd_summary on a connection that does not load extensions: the SQL."""
    return features.btyd_summary(tx, *args, con=duckdb.connect(), **kw)


_ONE_PURCHASE = pd.DataFrame(
    {"customer_id": ["a"], "timestamp": pd.to_datetime(["2024-01-01"]), "amount": [1.0]}
)


def _same(a, b):
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-9)


def test_the_aggregate_builds_and_loads_here():
    """Where a C compiler is (CI installs one), btyd_summary runs the aggregate."""
    if native.compiler() is None and not os.environ.get("CI"):
        pytest.skip("no C compiler on this machine: btyd_summary runs its SQL")
    con = native.connect()
    assert native.load(con), native.status()
    assert native.status().startswith("on:")
    got = con.execute(
        "SELECT btyd_state(d, a, DATE '2024-01-10') FROM (VALUES "
        "(DATE '2024-01-02', 5.0), (DATE '2024-01-01', 2.0), (DATE '2024-01-01', 1.5), "
        "(DATE '2024-01-09', 4.0), (DATE '2024-01-11', 100.0), (NULL, 1.0), "
        "(DATE '2024-01-03', 'nan'::DOUBLE)) t(d, a)"
    ).fetchone()[0]
    day = (pd.Timestamp("2024-01-01") - pd.Timestamp(0)).days
    assert got == {
        "days": 3,  # 1st, 2nd, 9th; the 11th is after the end
        "first_day": day,
        "last_day": day + 8,
        "first_total": 3.5,
        "rest_total": 9.0,
        "bad": 2,  # the empty day, the NaN amount
    }


def _big_log(con, customers: int, rows: int) -> duckdb.DuckDBPyRelation:
    # Heavy customers (50 purchase days on average over 1,000 days: beyond the 8 days kept
    # inline, the hash set grows), one-purchase customers, rows in no order.
    return con.sql(
        f"SELECT 'c' || (hash(i) % {customers}) AS customer_id, "
        "TIMESTAMP '2021-01-01' + to_days(CAST(hash(i * 7) % 1000 AS INTEGER)) "
        "+ to_hours(CAST(hash(i * 11) % 24 AS INTEGER)) AS timestamp, "
        "round((hash(i * 13) % 20000) / 100.0 - 20, 2) AS amount "
        f"FROM range({rows}) t(i) UNION ALL "
        "SELECT 'single' || i, TIMESTAMP '2022-06-01', 10.0 FROM range(50) t(i)"
    )


@pytest.fixture(scope="module")
def million_rows(tmp_path_factory) -> str:
    """The million-row log of the tests below, written once for them all."""
    path = tmp_path_factory.mktemp("native") / "tx.parquet"
    _big_log(duckdb.connect(), 20_000, 1_000_000).write_parquet(str(path), row_group_size=50_000)
    return str(path)


@pytest.mark.parametrize("threads", [1, 4])
@pytest.mark.parametrize("end,unit", [(None, "D"), ("2023-01-15", "W")])
def test_native_equals_sql_on_a_million_rows(million_rows, threads, end, unit):
    """Four threads make DuckDB aggregate in parallel and combine the states."""
    path = million_rows
    con = native.connect(threads=str(threads))
    if not native.load(con):
        pytest.skip(native.status())
    got = features.btyd_summary(path, end, unit, con=con)
    want = _sql(path, end, unit)
    assert len(got) == 20_050
    assert got["frequency"].max() > 40  # the hash set was used
    _same(got, want)


@pytest.mark.parametrize("threads", [1, 4])
def test_calibration_holdout_native_equals_sql_on_a_million_rows(million_rows, threads):
    """calibration_holdout takes two btyd_state in one GROUP BY (the holdout's with a
    FILTER): the same table as its SQL's customer-day table and join."""
    path = million_rows
    con = native.connect(threads=str(threads))
    if not native.load(con):
        pytest.skip(native.status())
    for end, unit in ((None, "D"), ("2023-01-15", "W")):
        got = features.calibration_holdout(path, "2022-06-30", end, unit, con=con)
        want = features.calibration_holdout(path, "2022-06-30", end, unit, con=duckdb.connect())
        assert got["frequency_holdout"].max() > 10 and (got["frequency_holdout"] == 0).any()
        _same(got, want)


def _on_four_threads(tx, order: str, path, *, row_group_size: int, seed: int):
    """``tx`` in time order or shuffled (``seed``), written to ``path`` in row groups of
    ``row_group_size`` rows, and a 4-thread connection with the aggregate: ``(tx, con)``."""
    tx = tx.sort_values("timestamp") if order == "time" else tx.sample(frac=1.0, random_state=seed)
    tx.to_parquet(path, row_group_size=row_group_size)
    con = native.connect(threads="4")
    if not native.load(con):
        pytest.skip(native.status())
    return tx, con


@pytest.mark.parametrize("order", ["time", "shuffled"])
def test_native_equals_pandas_for_1_to_40_days_on_four_threads(tmp_path, order):
    """Customers with 1 to 40 distinct days, one to three rows a day: days kept inline, moved
    to the set (the 17th), the set grown (the 33rd); on 4 threads DuckDB combines partial
    states of every kind. In time order most rows take the short ways (a new last day, the
    last day again); shuffled, most look at the days, and a new first day moves the inline
    ones (kept as offsets from the first)."""
    rng = np.random.default_rng(3)
    k = np.arange(6_000) % 40 + 1  # customer c has c % 40 + 1 days
    cust = np.repeat(np.arange(6_000), k)
    j = np.arange(len(cust)) - np.repeat(np.cumsum(k) - k, k)  # 0 .. k - 1 for each
    day = (cust * 37 + j * 13) % 400  # distinct for j < 400, not in time order
    per_day = 1 + (cust + j) % 3
    tx = pd.DataFrame(
        {
            "customer_id": np.char.add("c", np.repeat(cust, per_day).astype(str)),
            "timestamp": pd.Timestamp("2023-01-01")
            + pd.to_timedelta(np.repeat(day, per_day), unit="D")
            + pd.to_timedelta(rng.integers(0, 86_400, per_day.sum()), unit="s"),
            "amount": np.round(rng.gamma(2.0, 20.0, per_day.sum()), 2),
        }
    )
    path = tmp_path / "tx.parquet"
    tx, con = _on_four_threads(tx, order, path, row_group_size=4_000, seed=4)
    end = pd.Timestamp("2024-03-31")  # after the last day (every row counts)
    got = features.btyd_summary(str(path), end, con=con)
    # pandas, vectorized: the revenue of each customer-day, then per customer
    days = tx.assign(day=tx["timestamp"].dt.normalize())
    days = days.groupby(["customer_id", "day"])["amount"].sum().reset_index()
    g = days.groupby("customer_id")
    first = days.loc[g["day"].idxmin()].set_index("customer_id")["amount"]
    n = g.size()
    want = pd.DataFrame(
        {
            "frequency": n - 1,
            "recency": (g["day"].max() - g["day"].min()).dt.days.astype(float),
            "T": (end - g["day"].min()).dt.days.astype(float),
            "monetary": ((g["amount"].sum() - first) / (n - 1)).where(n > 1, 0.0),
        }
    )
    assert n.max() == 40 and n.min() == 1 and len(got) == 6_000
    _same(got, want.rename_axis("customer_id").reset_index().astype(got.dtypes.to_dict()))


_CONS: list = []


def _cons():
    """One connection with the aggregate and one without, for every example."""
    if not _CONS:
        con = native.connect()
        if not native.load(con):
            pytest.skip(native.status())
        _CONS.extend([con, duckdb.connect()])
    return _CONS


def test_native_equals_sql_when_duckdb_spills_the_states_to_disk(tmp_path):
    """Under a memory limit DuckDB writes partial aggregates, the states' bytes, to disk
    and reads them back: the heap pointers in a state must stay valid (they do: the
    memory is freed only by the destructor). 1M rows, 48 MB: about 40 MB spilled."""
    path = tmp_path / "tx.parquet"
    _big_log(duckdb.connect(), 200_000, 1_000_000).write_parquet(str(path))
    spill = tmp_path / "spill"
    con = native.connect(threads="2", memory_limit="48MB", temp_directory=str(spill))
    if not native.load(con):
        pytest.skip(native.status())
    spilled, done = [0], threading.Event()

    def size(entry):
        try:
            return entry.stat().st_size
        except FileNotFoundError:  # deleted since it was listed
            return 0

    def watch():  # DuckDB deletes its temporary files when the query ends
        while not done.is_set():
            with contextlib.suppress(FileNotFoundError):  # not made yet, or removed
                spilled[0] = max(spilled[0], sum(map(size, os.scandir(spill))))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        got = features.btyd_summary(str(path), con=con)
    finally:
        done.set()
        watcher.join()
    assert spilled[0] > 5 * 2**20, spilled[0]
    _same(got, _sql(str(path)))


def test_customer_features_are_the_same_with_the_aggregate_and_without(tmp_path):
    """customer_features puts btyd_state in its one GROUP BY per customer (no customer-day
    table, no join): every column equal to the SQL's, shares, orders and items too."""
    path = tmp_path / "tx.parquet"
    con = duckdb.connect()
    _big_log(con, 5_000, 300_000).project(
        "*, 'o' || (hash(timestamp) % 50000) AS order_id, 1 + hash(amount) % 3 AS quantity, "
        "['web', 'store', 'app'][CAST(1 + hash(customer_id) % 3 AS BIGINT)] AS channel"
    ).write_parquet(str(path))
    fast = native.connect(threads="4")
    if not native.load(fast):
        pytest.skip(native.status())
    for end in (None, "2022-09-30"):
        got = features.customer_features(str(path), end, "W", con=fast)
        want = features.customer_features(str(path), end, "W", con=duckdb.connect())
        assert list(got.columns) == list(want.columns) and "share_channel_web" in got
        _same(got, want)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(0, 40),  # day
            st.sampled_from([0.0, 1.5, -2.25, 10.0, 1e6]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.one_of(st.none(), st.integers(0, 40)),
)
def test_native_equals_sql_and_pandas_on_any_small_log(rows, end_day):
    tx = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    tx["timestamp"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(tx.pop("day"), unit="D")
    end = None if end_day is None else pd.Timestamp("2024-01-01") + pd.Timedelta(days=end_day)
    con, sql = _cons()
    got = features.btyd_summary(tx, end, con=con)
    _same(got, features.btyd_summary(tx, end, con=sql))
    ref = pandas_btyd(tx, end if end is not None else tx["timestamp"].max().normalize(), 1.0)
    if ref.empty:  # every row after the end
        assert got.empty
    else:
        _same(got, ref.reset_index(drop=True).astype(got.dtypes.to_dict()))
    cal = pd.Timestamp("2024-01-10")
    last = end if end is not None else tx["timestamp"].max().normalize()
    if cal < last and (tx["timestamp"] <= cal).any():  # a holdout, and customers before it
        got = features.calibration_holdout(tx, cal, end, con=con)
        _same(got, features.calibration_holdout(tx, cal, end, con=sql))
        days = tx.assign(day=tx["timestamp"].dt.normalize())
        days = days.groupby(["customer_id", "day"], as_index=False)["amount"].sum()
        hold = days[(days["day"] > cal) & (days["day"] <= last)].groupby("customer_id")["amount"]
        got = got.set_index("customer_id")
        np.testing.assert_allclose(
            got["monetary_holdout"], hold.mean().reindex(got.index).fillna(0.0), rtol=1e-12
        )


@pytest.mark.parametrize("order", ["time", "shuffled"])
def test_days_centuries_apart_equal_the_sql_on_four_threads(tmp_path, order):
    """Inline days are 16-bit offsets from the first day: a customer whose days span more
    than 65,534 days keeps them in the heap set however few they are. Customers with 1 to 30
    days, a third of them with days up to 240 years apart; row groups of 2,000 rows on 4
    threads, so that DuckDB combines partial states of both kinds, and shuffled, so that new
    first days move the inline ones."""
    rng = np.random.default_rng(5)
    k = np.arange(4_000) % 30 + 1
    cust = np.repeat(np.arange(4_000), k)
    near = rng.integers(0, 400, len(cust))
    far = rng.integers(-45_000, 45_000, len(cust))
    day = np.where((cust % 3 == 0) & (rng.random(len(cust)) < 0.3), far * 2, near)
    tx = pd.DataFrame(
        {
            "customer_id": np.char.add("c", cust.astype(str)),
            "timestamp": pd.Timestamp("2000-01-01") + pd.to_timedelta(day, unit="D"),
            "amount": np.round(rng.gamma(2.0, 20.0, len(cust)), 2),
        }
    )
    path = tmp_path / "tx.parquet"
    _, con = _on_four_threads(tx, order, path, row_group_size=2_000, seed=6)
    got = features.btyd_summary(str(path), con=con)
    assert (got["recency"] > 65_534).sum() > 500  # many customers beyond the offsets
    _same(got, _sql(str(path)))


@pytest.mark.parametrize("span", [65_533, 65_534, 65_535, 65_536])
def test_days_at_the_edge_of_the_inline_offsets(span):
    """The last span kept inline (65,534 days) and the first beyond it, reached by a new last
    day (up) and by a new first day (down); then a day further on sends the days to the heap
    set, and the days seen come again: to be found there, not counted twice."""
    rows = {"up": [0, span, span + 2, span, 100, 100], "down": [span, 0, span + 2, span, 100, 0]}
    tx = pd.DataFrame([(c, d) for c, days in rows.items() for d in days], columns=["id", "day"])
    tx["timestamp"] = pd.Timestamp("1900-01-01") + pd.to_timedelta(tx.pop("day"), unit="D")
    tx["amount"] = np.arange(len(tx), dtype=float)
    con, sql = _cons()
    got = features.btyd_summary(tx, customer_id_col="id", con=con)
    assert got["frequency"].tolist() == [3, 3] and (got["recency"] == span + 2).all()
    _same(got, features.btyd_summary(tx, customer_id_col="id", con=sql))


def test_bad_rows_stop_with_the_same_message_as_the_sql():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", None, "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-03-01"]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    messages = []
    for con in (native.connect(), duckdb.connect()):
        # the empty id is on a row before the end and after it: both are caught
        for end in (None, "2024-01-01"):
            with pytest.raises(SegkitError, match="has 1 empty values") as e:
                features.btyd_summary(tx, end, con=con)
            messages.append(str(e.value))
    assert len(set(messages)) == 1


def test_a_connection_without_unsigned_extensions_runs_the_sql():
    con = duckdb.connect()  # a user's own connection: allow_unsigned_extensions is off
    assert not native.load(con)
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-03"]),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    _same(features.btyd_summary(tx, con=con), features.btyd_summary(tx))


def test_without_a_compiler_segkit_says_so_and_runs_the_sql(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    assert native.extension() is None
    assert "could not compile btyd_state.c" in native.status()
    assert features.btyd_summary(_ONE_PURCHASE)["frequency"].tolist() == [0]
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no half-built file left


def test_a_damaged_build_is_reported_and_the_sql_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    if native.extension() is None:
        pytest.skip(native.status())
    native.extension().write_bytes(b"not a DuckDB extension")
    assert not native.load(native.connect())
    assert "delete that folder to build it again" in native.status()
    assert features.btyd_summary(_ONE_PURCHASE)["frequency"].tolist() == [0]


def test_without_a_connection_the_functions_use_the_aggregate(monkeypatch):
    if native.extension() is None:
        pytest.skip(native.status())
    loaded = []
    real = native.load
    monkeypatch.setattr(native, "load", lambda con: loaded.append(real(con)) or loaded[-1])
    features.btyd_summary(_ONE_PURCHASE)
    features.customer_features(_ONE_PURCHASE)
    features.calibration_holdout(_ONE_PURCHASE, "2024-01-01", "2024-01-08")
    assert loaded == [True, True, True]


def test_segkit_native_0_turns_it_off(monkeypatch):
    monkeypatch.setenv("SEGKIT_NATIVE", "0")
    assert not native.load(native.connect())
    assert native.status().startswith("off (SEGKIT_NATIVE=0)")


def test_the_metadata_footer_has_duckdbs_layout():
    """534 bytes: DuckDB reads the last 512 (eight 32-byte fields, backwards, then the
    256-byte signature) after a custom section header naming duckdb_signature."""
    footer = native._metadata("linux_amd64")
    assert len(footer) == 534 and footer[4:20] == b"duckdb_signature"
    fields = footer[22 : 22 + 256]
    names = [fields[i : i + 32].rstrip(b"\0").decode() for i in range(0, 256, 32)][::-1]
    assert names[:5] == ["4", "linux_amd64", "v1.2.0", "segkit", "C_STRUCT"]
    assert np.all(np.frombuffer(footer[-256:], dtype=np.uint8) == 0)
