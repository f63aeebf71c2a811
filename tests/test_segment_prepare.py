"""segkit.segment.prepare: default features, checks and fills, the preprocessor as arrays."""

import numpy as np
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
