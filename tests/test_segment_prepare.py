"""segkit.segment.prepare: default features, checks and fills, the preprocessor as arrays."""

import numpy as np
import pandas as pd
import pytest
from test_segment import blobs, mixed

from segkit import segment
from segkit.core.errors import SegkitError
from segkit.segment import Transform


def test_prepare_drops_constant_and_empty_columns_with_a_note():
    customers, _ = blobs()
    customers["constant"] = 7.0
    customers["empty"] = np.nan
    customers.loc[:9, "revenue"] = np.nan
    p = segment.prepare(customers, ["revenue", "constant", "empty", "orders"], [])
    assert p.numeric == ["revenue", "orders"]
    text = " ".join(p.notes)
    assert "'constant' has the same value" in text and "'empty' is empty" in text
    assert "'revenue': 10 missing value(s) filled with the median" in text
    assert p.data["revenue"].notna().all()


def test_prepare_errors_name_the_column_and_rows():
    customers, _ = blobs()
    bad = customers.copy()
    bad.loc[[5, 7], "revenue"] = np.inf
    with pytest.raises(SegkitError, match=r"'revenue' has 2 infinite.*customer_id c0005, c0007"):
        segment.prepare(bad, ["revenue"], [])
    text = customers.assign(revenue=customers["revenue"].astype(str))
    text.loc[3, "revenue"] = "n/a"
    with pytest.raises(SegkitError, match=r"'revenue' must be numeric.*'n/a'"):
        segment.prepare(text, ["revenue"], [])
    flat = customers.assign(a=1.0, b=np.nan)
    with pytest.raises(SegkitError, match=r"no usable clustering feature"):
        segment.prepare(flat, ["a", "b"], [])


def test_default_features_skip_ids_dates_and_btyd_summaries():
    customers, _ = blobs()
    customers["frequency"] = customers["orders"] - 1  # a BTYD summary, not a feature
    customers["share_web"] = 0.5
    customers["region"] = np.where(customers.index % 2, "north", "south")
    num, cat = segment.default_features(customers)
    assert num == ["days_since_last", "orders", "revenue", "share_web"]
    assert cat == ["region"]


@pytest.mark.parametrize("with_cat", [False, True])
def test_transform_arrays_give_the_fitted_preprocessor_output(with_cat):
    c = mixed().assign(orders=lambda d: np.arange(len(d)) % 7, age=lambda d: d.index % 50)
    num, cat = ["history", "orders", "age"], ["channel"] if with_cat else []
    data = segment.prepare(c, num, cat).data
    prep = segment.preprocessor(num, cat).fit(data.iloc[::3])  # levels all in the sample
    t = Transform.from_fitted(prep)
    assert t.logged == ["history", "orders"] and t.plain == ["age"]
    new = data.copy()
    if with_cat:
        new.loc[:4, "channel"] = "fax"  # an unseen level: a block of zeros, as sklearn
    assert np.array_equal(t.apply(new), prep.transform(new))
    assert np.array_equal(Transform.from_dict(t.to_dict()).apply(new), prep.transform(new))
    assert t.width == prep.transform(new).shape[1]
    assert segment.onehot_layout(prep) == t.blocks == ([3] if with_cat else [])


def test_transform_from_bad_arrays_raises():
    d = {
        "logged": ["revenue"],
        "log_center": [1.0, 2.0],
        "log_scale": [1.0],
        "plain": [],
        "center": [],
        "scale": [],
        "categorical": [],
        "categories": [],
    }
    with pytest.raises(SegkitError, match=r"centers/scales do not match the columns \['revenue'\]"):
        Transform.from_dict(d)
    d.update(log_center=[1.0], categorical=["channel"], categories=[["a", "a"]])
    with pytest.raises(SegkitError, match=r"the levels of 'channel' repeat"):
        Transform.from_dict(d)


def test_a_categorical_with_thousands_of_levels_is_left_out_with_a_note():
    import pandas as pd

    c = pd.DataFrame({"x": np.arange(2000.0) % 7, "code": [f"id{i}" for i in range(2000)]})
    prep = segment.prepare(c, ["x"], ["code"])
    assert prep.categorical == [] and "code" not in prep.data.columns
    assert any("2,000 levels for 2,000 customers, mostly unique" in n for n in prep.notes)


def test_rare_levels_are_grouped_as_other_with_a_count():
    import pandas as pd

    levels = ["a"] * 500 + ["b"] * 300 + [f"r{i % 100}" for i in range(200)]
    c = pd.DataFrame({"x": np.arange(1000.0) % 5, "shop": levels})
    prep = segment.prepare(c, ["x"], ["shop"])
    assert prep.data["shop"].nunique() == 30
    assert any("'shop': 102 levels; the 29 most frequent kept" in n for n in prep.notes)


# ------------------------------------------------- preparation decided by the data


def test_skewed_columns_are_logged_whatever_they_are_called():
    import pandas as pd

    rng = np.random.default_rng(1)
    spend = pd.Series(rng.lognormal(6, 1.0, 1000))  # skewness of a lognormal(σ=1) ≈ 6
    from segkit.segment.prepare import is_skewed

    assert is_skewed(spend)
    assert not is_skewed(pd.Series(rng.normal(50, 5, 1000)))  # symmetric
    assert not is_skewed(-spend)  # negative values: no log
    assert not is_skewed(pd.Series([0, 1] * 500))  # two values
    # one wild value does not make a symmetric column skewed (percentiles cap it first)
    income = pd.Series(np.r_[rng.normal(50_000, 10_000, 999), 666_666])
    assert pd.Series(income).skew() > 10 and not is_skewed(income)
    # the ratio rule: 99th percentile over 10 × the median
    ratio = pd.Series(np.r_[np.ones(900), np.full(99, 30.0), 31.0])
    assert is_skewed(ratio)
    c = pd.DataFrame({"MntWines": spend, "age": rng.normal(45, 10, 1000)})
    prep = segment.prepare(c, ["MntWines", "age"], [])
    assert prep.logged == ["MntWines"]


def test_implausible_values_by_the_robust_rule():
    import pandas as pd

    from segkit.segment.prepare import implausible_bounds

    x = pd.Series([10.0, 11, 12, 13, 14, 15, 16, 500], name="x")
    # median 13.5, MAD 2 -> scaled 2.9652; 10 of them: 13.5 ± 29.65 -> 500 is out
    assert implausible_bounds(x, logged=False) == (10.0, 16.0)
    assert implausible_bounds(x.iloc[:-1], logged=False) is None
    # spend over orders of magnitude: 20,000 is implausible on the raw scale (median 150,
    # scaled MAD 203.9) but not on the log scale it is clustered on (log1p: median 4.96,
    # scaled MAD 2.05, 20,000 -> 9.90)
    spend = pd.Series([5.0, 20, 50, 100, 200, 400, 800, 20_000])
    assert implausible_bounds(spend, logged=False) == (5.0, 800.0)
    assert implausible_bounds(spend, logged=True) is None
    years = pd.Series([1893, 1899, 1950, 1960, 1970, 1980, 1990], name="Year_Birth")
    assert implausible_bounds(years, logged=False) == (1950.0, 1990.0)
    assert implausible_bounds(years.rename("founded"), logged=False) is None
    assert implausible_bounds(pd.Series([0.0] * 10 + [5.0]), logged=False) is None  # MAD 0
    # far values that are not rare: a zero-inflated share, not an error (4 of 150 > 3, 1%)
    share = pd.Series([0.01] * 50 + [0.02] * 48 + [0.03] * 48 + [0.9, 0.95, 0.8, 0.85])
    assert implausible_bounds(share, logged=False) is None
    assert implausible_bounds(share.iloc[:-1], logged=False) == (0.01, 0.03)  # 3: rare
    rare = pd.Series(np.r_[np.linspace(10, 20, 199), 500.0])  # 1 of 200 = 0.5%
    assert implausible_bounds(rare, logged=False) == (10.0, 20.0)


def test_capping_is_part_of_the_saved_transform():
    import pandas as pd

    rng = np.random.default_rng(2)
    c = pd.DataFrame(
        {
            "Income": np.r_[rng.normal(50_000, 8_000, 300), 666_666],
            "spend": rng.lognormal(5, 1, 301),
        }
    )
    c["customer_id"] = [f"k{i}" for i in range(len(c))]
    prep = segment.prepare(c, ["Income", "spend"], [])
    assert prep.capped == {"Income": 1} and prep.bounds["Income"][1] < 100_000
    assert prep.data["Income"].max() == 666_666  # the data keep it; the transform caps
    assert any("'Income': 1 implausible value(s) (666666;" in n and "k300" in n for n in prep.notes)
    pre = segment.preprocessor(prep.numeric, [], prep.logged, prep.bounds).fit(prep.data)
    t = Transform.from_fitted(pre)
    assert t.clip == {"Income": prep.bounds["Income"]}
    assert np.array_equal(t.apply(prep.data), pre.transform(prep.data))
    again = Transform.from_dict(t.to_dict())
    assert np.array_equal(again.apply(prep.data), pre.transform(prep.data))
    # the capped customer sits where the highest plausible income sits
    out = t.apply(prep.data)
    j = len(t.logged) + t.plain.index("Income")
    assert out[300, j] == out[:300, j].max()
    bad = {**t.to_dict(), "clip": {"nope": [1.0, 2.0]}}
    with pytest.raises(SegkitError, match=r"the capping bounds do not fit the columns"):
        Transform.from_dict(bad)


def test_roles_inferred_from_names_and_values():
    import pandas as pd

    from segkit.segment.prepare import infer_outcomes, is_id_like

    t = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "ID": [5524, 2174, 4141],
            "Response": [1, 0, 0],
            "AcceptedCmp3": [0, 0, 1],
            "Complain": [0, 0, 0],
            "Kidhome": [0, 1, 2],
            "paid": [3, 1, 2],
            "response_text": ["y", "n", "y"],
        }
    )
    assert infer_outcomes(t) == ["Response", "AcceptedCmp3", "Complain"]
    assert [c for c in t if is_id_like(t[c])] == ["ID"]  # 'paid' is not an id by name
    num, cat = segment.default_features(t, exclude=infer_outcomes(t))
    assert num == ["Kidhome", "paid"] and cat == ["response_text"]
    assert segment.as_levels(pd.Series([1.0, 3.0, np.nan])).tolist() == ["1", "3", "missing"]
    assert segment.as_levels(pd.Series([1.5, 3.0])).tolist() == ["1.5", "3.0"]


def test_rare_levels_are_kept_or_merged_under_a_share_the_user_sets():
    """cluster.rare_share / cluster.rare_levels: counted and named either way."""
    from segkit.segment.prepare import prepare

    df = pd.DataFrame(
        {
            "spend": np.arange(300, dtype=float),
            "status": ["Single"] * 150 + ["Married"] * 140 + ["Widow"] * 8 + ["YOLO"] * 2,
        }
    )
    kept = prepare(df, ["spend"], ["status"])
    assert sorted(kept.data["status"].unique()) == ["Married", "Single", "Widow", "YOLO"]
    assert any("'YOLO' (2); kept as levels" in n for n in kept.notes)
    merged = prepare(df, ["spend"], ["status"], rare_share=0.05, rare_levels="other")
    assert sorted(merged.data["status"].unique()) == ["Married", "Single", "other"]
    note = next(n for n in merged.notes if "rare level" in n)
    assert "10 customers hold a rare level (under 5% of customers each): 'YOLO' (2), " in note
    assert "'Widow' (8); merged into 'other'" in note
    assert (merged.data["status"] == "other").sum() == 10


def test_personal_data_and_postal_codes_are_not_clustered_by_default():
    """A CRM export: first names (8 levels) were clustered as a category, the ZIP code as
    a quantity."""
    from segkit.segment.prepare import default_features, prepare
    from segkit.segment.roles import Declared, feature_table

    n = 120
    t = pd.DataFrame(
        {
            "customer_id": [f"K{i}" for i in range(n)],
            "FirstName": [["Anna", "Ben", "Clara"][i % 3] for i in range(n)],
            "Nachname": [["Müller", "Schmidt"][i % 2] for i in range(n)],
            "Email": [f"u{i}@x.de" for i in range(n)],
            "ZIP": [10000 + 7 * i for i in range(n)],
            "zip_code": [["Urban", "Rural"][i % 2] for i in range(n)],  # Hillstrom's: a category
            "Income": [30000.0 + 250 * i for i in range(n)],
            "City": [["Berlin", "Köln"][i % 2] for i in range(n)],
        }
    )
    num, cat = default_features(t)
    assert num == ["Income"] and cat == ["zip_code", "City"]
    prepared = prepare(t, num, cat)
    roles = feature_table(t, prepared, Declared()).set_index("feature")
    assert roles.loc[["FirstName", "Nachname", "Email"], "role"].tolist() == ["personal"] * 3
    assert roles.loc["ZIP", "reason"].startswith("a postal code: a code, not a quantity, with 120")


@pytest.mark.parametrize(
    "name, personal",
    [
        *[
            (n, True)
            for n in [
                "FirstName",
                "last_name",
                "Name",
                "Vorname",
                "Nachname",
                "E-Mail",
                "email_address",
                "PhoneNumber",
                "mobile_phone",
                "Telefonnummer",
                "Adresse",
                "address_line_1",
                "street_address",
                "Straße",
                "IBAN",
                "Prénom",
                "Apellido",
                "Cognome",
            ]
        ],
        *[
            (n, False)
            for n in [
                "product_name",
                "email_opens",
                "phone_orders",
                "mobile_purchases",
                "share_channel_mobile",
                "street_price",
                "username",
                "emails_clicked",
                "Income",
            ]
        ],
    ],
)
def test_personal_data_is_told_by_its_name(name, personal):
    from segkit.segment.prepare import is_personal

    assert is_personal(name) is personal
