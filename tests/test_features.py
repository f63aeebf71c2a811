"""Customer features: checked against an independent pandas implementation and the
published CDNOW calibration summary."""

import numpy as np
import pandas as pd
import pytest

from segkit import features, io
from segkit.core.errors import SegkitError


def random_log(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": rng.choice([f"c{i:03d}" for i in range(60)], n),
            "timestamp": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 200 * 24, n), unit="h"),
            "amount": rng.gamma(2.0, 20.0, n).round(2) + 0.01,
            "order_id": [f"o{i}" for i in range(n)],
            "channel": rng.choice(["web", "store", "app"], n),
        }
    )


def pandas_btyd(tx, end, unit):
    """The lifetimes convention written independently with pandas."""
    d = tx.assign(day=tx["timestamp"].dt.normalize())
    d = d[d["day"] <= end].groupby(["customer_id", "day"], as_index=False)["amount"].sum()
    rows = []
    for cid, g in d.groupby("customer_id"):
        g = g.sort_values("day")
        rows.append(
            {
                "customer_id": cid,
                "frequency": len(g) - 1,
                "recency": (g["day"].iloc[-1] - g["day"].iloc[0]).days / unit,
                "T": (end - g["day"].iloc[0]).days / unit,
                "monetary": g["amount"].iloc[1:].mean() if len(g) > 1 else 0.0,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("unit, div", [("D", 1.0), ("W", 7.0)])
@pytest.mark.parametrize("end", ["2024-06-30", "2024-07-18", "2025-01-01", None])
def test_btyd_summary_matches_independent_pandas(unit, div, end):
    # 2024-06-30: purchases after the end are left out; 2024-07-18 (the last day of the
    # log), 2025-01-01 and None (the last day): none is, and the ids are checked in the summary
    tx = random_log()
    assert tx["timestamp"].max().normalize() == pd.Timestamp("2024-07-18")
    got = features.btyd_summary(tx, end, unit)
    want = pandas_btyd(tx, pd.Timestamp(end or "2024-07-18"), div)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_btyd_summary_of_an_empty_window():
    tx = random_log()
    got = features.btyd_summary(tx.iloc[:0], "2024-06-30")
    assert got.empty and list(got.columns) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary",
    ]
    assert features.btyd_summary(tx, "2023-12-31").empty  # every purchase after the end
    with pytest.raises(SegkitError, match="transactions has no rows"):
        features.btyd_summary(tx.iloc[:0])


@pytest.mark.parametrize("rows", [0, 1, 5])
def test_btyd_frame_through_arrow_is_the_frame_of_df(rows):
    """btyd_summary fetches through Arrow for speed: the frame must be the one ``.df()``
    gives (str ids, int64, float64), with empty ids and NaN as well. With no rows ``.df()``
    gives ids as ``object``, Arrow as ``str``: the dtype of the frames with rows."""
    con = io.connect()
    sql = (
        "SELECT i AS customer_id, CAST(f AS BIGINT) AS frequency, CAST(r AS DOUBLE) AS recency, "
        "CAST(t AS DOUBLE) AS T, CAST(m AS DOUBLE) AS monetary "
        "FROM (VALUES ('b', '2', '1.5', '3.0', '0.25'), (NULL, '0', '0', '1', NULL), "
        "('a', '1', '2', '2', 'NaN'), ('c', '7', '1e300', '-0.0', '1'), ('ä', '0', '0', '0', '0')) "
        f"v(i, f, r, t, m) ORDER BY customer_id LIMIT {rows}"
    )
    got = features._frame(con, sql)
    want = con.execute(sql).df()
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_dtype=rows > 0)
    assert len(got) == rows and got["customer_id"].isna().sum() == (rows == 5)
    assert list(got.dtypes.astype(str)) == ["str", "int64", "float64", "float64", "float64"]


@pytest.mark.parametrize(
    "id_sql",
    [
        "CAST(2.5 AS DECIMAL(10, 1))",
        "CAST(7 AS HUGEINT)",
        "'00000000-0000-0000-0000-000000000007'::UUID",
        "7",
    ],
)
def test_btyd_frame_of_other_id_types_is_the_frame_of_df(id_sql):
    """Ids of other types: the same frame as ``.df()`` (Arrow would give DECIMAL and HUGEINT
    as objects, UUID as strings)."""
    con = io.connect()
    sql = f"SELECT {id_sql} AS customer_id, CAST(1 AS BIGINT) AS frequency, 0.5::DOUBLE AS T"
    got, want = features._frame(con, sql), con.execute(sql).df()
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    tx = pd.DataFrame({"customer_id": [3, 3, 5], "amount": [1.0, 2.0, 4.0]})
    tx["timestamp"] = pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"])
    assert features.btyd_summary(tx, "2024-01-09")["customer_id"].tolist() == [3, 5]


def test_customer_features_orders_revenue_shares():
    tx = random_log(1)
    end = pd.Timestamp("2024-08-01")  # after the last purchase: every row counts
    got = features.customer_features(tx, end).set_index("customer_id")
    grp = tx.groupby("customer_id")
    pd.testing.assert_series_equal(got["revenue"], grp["amount"].sum(), check_names=False)
    pd.testing.assert_series_equal(
        got["orders"], grp["order_id"].nunique(), check_names=False, check_dtype=False
    )
    assert np.allclose(got["aov"], got["revenue"] / got["orders"])
    shares = got.filter(like="share_channel_")
    assert sorted(shares.columns) == [
        "share_channel_app",
        "share_channel_store",
        "share_channel_web",
    ]
    assert np.allclose(shares.sum(axis=1), 1.0)
    web = tx[tx.channel == "web"].groupby("customer_id")["amount"].sum() / grp["amount"].sum()
    assert np.allclose(got["share_channel_web"], web.reindex(got.index).fillna(0))
    last = grp["timestamp"].max().dt.normalize()
    assert (got["days_since_last"] == (end - last).dt.days).all()


def test_rare_categories_are_pooled_in_other():
    tx = random_log(2).assign(category=[f"cat{i % 12}" for i in range(300)])
    got = features.customer_features(tx, top_n=3)
    cols = [c for c in got.columns if c.startswith("share_category_")]
    assert len(cols) == 4 and "share_category_other" in cols
    assert np.allclose(got[cols].sum(axis=1), 1.0)


def test_calibration_holdout_splits_at_the_date():
    tx = random_log(3)
    cal_end, end = pd.Timestamp("2024-04-01"), pd.Timestamp("2024-06-30")
    got = features.calibration_holdout(tx, cal_end, end, "D").set_index("customer_id")
    want = pandas_btyd(tx, cal_end, 1.0).set_index("customer_id")
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    days = tx.assign(day=tx.timestamp.dt.normalize()).drop_duplicates(["customer_id", "day"])
    hold = days[(days.day > cal_end) & (days.day <= end)].groupby("customer_id").size()
    assert (got["frequency_holdout"] == hold.reindex(got.index).fillna(0)).all()
    assert (got["duration_holdout"] == (end - cal_end).days).all()


def test_bad_arguments():
    tx = random_log()
    with pytest.raises(SegkitError, match=r"time_unit == 'M', must be one of \['D', 'W'\]"):
        features.btyd_summary(tx, time_unit="M")
    with pytest.raises(SegkitError, match=r"missing column 'amount' \(amount_col\)"):
        features.customer_features(tx.drop(columns="amount"))
    with pytest.raises(SegkitError, match=r"calibration_end == 2024-12-01 must be before"):
        features.calibration_holdout(tx, "2024-12-01", "2024-06-30")
    with pytest.raises(SegkitError, match=r"must be a DataFrame, a DuckDB relation or a file"):
        features.btyd_summary([1, 2, 3])


def test_cdnow_calibration_summary_matches_published_data_set():
    """Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
    Science 24(2): 2,357 customers; calibration weeks 1-39 (to 1997-09-30), same-day
    purchases merged: 1,411 with no repeat purchase (946 repeat buyers), 2,457 repeat
    transactions; holdout weeks 40-78: 1,882 repeat transactions; every T between 27 and
    39 weeks (the cohort joined in Q1 1997)."""
    t = io.load_transactions(
        {
            "path": "data/cdnow_sample.txt.gz",
            "format": "whitespace",
            "header": False,
            "names": ["customer_id", "cohort", "date", "cds", "amount"],
            "columns": {"customer_id": "customer_id", "timestamp": "date", "amount": "amount"},
            "date_formats": ["%Y%m%d"],
            "dedupe": False,
            "allow_zero_amount": True,
        }
    )
    cal = features.calibration_holdout(t.used.df(), "1997-09-30", "1998-06-30", "W")
    assert len(cal) == 2357
    assert (cal["frequency"] == 0).sum() == 1411
    assert cal["frequency"].sum() == 2457
    assert cal["frequency_holdout"].sum() == 1882
    assert cal["T"].between(27.0, 39.0).all()
    assert cal["duration_holdout"].iloc[0] == 39.0


def test_names_with_spaces_quotes_and_paths_with_quotes(tmp_path):
    tx = random_log(4).rename(
        columns={"customer_id": "customer id", "amount": 'amount "EUR"', "channel": "chan'nel"}
    )
    got = features.customer_features(
        tx,
        customer_id_col="customer id",
        amount_col='amount "EUR"',
        share_cols=("chan'nel",),
    )
    assert got["revenue"].sum() == pytest.approx(tx['amount "EUR"'].sum())
    assert np.allclose(got.filter(like="share_chan'nel_").sum(axis=1), 1.0)
    path = tmp_path / "it's.parquet"
    random_log(4).to_parquet(path)
    assert len(features.btyd_summary(str(path))) == random_log(4)["customer_id"].nunique()


def test_share_values_with_quotes_and_coinciding_slugs():
    tx = random_log(5)
    tx["category"] = np.where(np.arange(len(tx)) % 3 == 0, "O'Brien & Co", "o brien co")
    got = features.customer_features(tx)
    cols = sorted(c for c in got.columns if c.startswith("share_category_"))
    assert cols == ["share_category_o_brien_co", "share_category_o_brien_co_2"]
    assert np.allclose(got[cols].sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "column, value, match",
    [
        ("amount", np.inf, r"column 'amount' \(amount_col\) has 1 empty, NaN or infinite values"),
        ("amount", np.nan, r"column 'amount' \(amount_col\) has 1 empty, NaN or infinite values"),
        ("customer_id", None, r"column 'customer_id' \(customer_id_col\) has 1 empty values"),
        ("timestamp", pd.NaT, r"column 'timestamp' \(timestamp_col\) has 1 empty values"),
    ],
)
def test_unclean_logs_stop_with_a_count(column, value, match):
    tx = random_log(6)
    tx.loc[3, column] = value
    for fn in (features.btyd_summary, features.customer_features):
        with pytest.raises(SegkitError, match=match):
            fn(tx)
    with pytest.raises(SegkitError, match=match):
        features.calibration_holdout(tx, "2024-03-01")


@pytest.mark.parametrize("end", [None, "2024-12-31", "2024-03-01"])
def test_an_empty_id_stops_the_summary_before_or_after_the_end(end):
    # the id is empty on the last day: after the 2024-03-01 end, within the others
    tx = random_log(6)
    tx.loc[tx["timestamp"].idxmax(), "customer_id"] = None
    match = r"column 'customer_id' \(customer_id_col\) has 1 empty values"
    with pytest.raises(SegkitError, match=match):
        features.btyd_summary(tx, end)


def test_missing_columns_are_named_by_every_entry_point():
    tx = random_log().rename(columns={"timestamp": "date"})
    with pytest.raises(SegkitError, match=r"missing column 'timestamp' \(timestamp_col\)"):
        features.btyd_summary(tx)
    with pytest.raises(SegkitError, match=r"missing column 'timestamp' \(timestamp_col\)"):
        features.calibration_holdout(tx, "2024-03-01")
