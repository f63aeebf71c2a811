"""Tests for segkit.naming: feature labels and segment names on hand-built frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segkit.core.errors import SegkitError
from segkit.naming import (
    align_segments,
    categorical_columns,
    feature_label,
    feature_unit,
    is_share,
    numeric_columns,
    segment_names,
)


def _rfm_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Three clear groups of 4: recent/frequent/high, lapsed/one-time/low, middle."""
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(12)],
            "days_since_last": [2, 5, 8, 10, 300, 320, 350, 400, 60, 70, 80, 90],
            "orders": [12, 15, 9, 20, 1, 1, 1, 1, 3, 4, 3, 4],
            "revenue": [900.0, 1200, 800, 1500, 10, 15, 12, 20, 100, 120, 90, 110],
        }
    )
    return df, pd.Series([1] * 4 + [2] * 4 + [3] * 4)


def test_names_from_rfm_profile():
    df, seg = _rfm_frame()
    assert segment_names(df, seg) == {
        1: "Recent frequent high spenders",
        2: "Lapsed one-time buyers",
        3: "Average customers",
    }


def test_names_from_attributes_only():
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(8)],
            "zip": ["Urban"] * 4 + ["Rural"] * 4,
            "channel": ["Web"] * 4 + ["Phone"] * 4,
        }
    )
    names = segment_names(df, pd.Series([1] * 4 + [2] * 4))
    assert names == {1: "Urban web customers", 2: "Rural phone customers"}


def test_names_keep_the_capitals_of_acronyms():
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(8)],
            "Education": ["PhD"] * 4 + ["Graduation"] * 4,
            "Country": ["Spain"] * 4 + ["USA"] * 4,
        }
    )
    names = segment_names(df, pd.Series([1] * 4 + [2] * 4))
    assert names == {1: "PhD spain customers", 2: "Graduation USA customers"}


def _flags() -> tuple[pd.DataFrame, pd.Series]:
    """Hillstrom's shape: 0/1 flags (an integer and a yes/no one), two segments of 4."""
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(8)],
            "newbie": [1] * 4 + [0] * 4,
            "mens": [0] * 4 + [1] * 4,
            "email_ok": ["yes"] * 4 + ["no"] * 4,
        }
    )
    return df, pd.Series([1] * 4 + [2] * 4)


def test_two_level_attributes_read_as_flags():
    # was "Newbie 1 mens 0 customers" on the bundled Hillstrom run
    df, seg = _flags()
    names = segment_names(df, seg, categorical=["newbie", "mens"], features=[])
    assert names == {1: "Newbie customers, not mens", 2: "Mens customers, not newbie"}
    # what a segment has comes before what it lacks
    df["newbie"] = [1, 1, 1, 0] + [0] * 4
    names = segment_names(df, seg, categorical=["newbie", "mens"], features=[])
    assert names[1] == "Newbie customers, not mens"
    names = segment_names(df, seg, categorical=["email_ok"], features=[])
    assert names == {1: "Email ok customers", 2: "Customers, not email ok"}


def test_level_labels_name_the_values_of_a_flag():
    df, seg = _flags()
    readable = {"newbie=1": "new", "newbie=0": "returning", "mens": "men's line"}
    names = segment_names(df, seg, categorical=["newbie", "mens"], features=[], readable=readable)
    assert names == {1: "New customers, not men's line", 2: "Returning men's line customers"}


def test_a_two_level_attribute_that_is_not_a_flag_keeps_its_values():
    df = pd.DataFrame({"customer_id": list("abcdefgh"), "tier": [1] * 4 + [2] * 4})
    names = segment_names(df, pd.Series([1] * 4 + [2] * 4), categorical=["tier"], features=[])
    assert names == {1: "Tier 1 customers", 2: "Tier 2 customers"}


def test_names_are_unique_when_profiles_repeat():
    df, _ = _rfm_frame()
    seg = pd.Series([1, 2] * 6)  # two interleaved, equally mixed segments
    names = segment_names(df, seg)
    assert len(set(names.values())) == 2
    assert names == {1: "Average customers (1)", 2: "Average customers (2)"}


def test_overrides_win_and_accept_string_keys():
    df, seg = _rfm_frame()
    names = segment_names(
        df, seg, overrides={"2": "Gone quiet", 3: "Recent frequent high spenders"}
    )
    assert names[2] == "Gone quiet"
    assert names[3] == "Recent frequent high spenders"
    assert names[1] == "Recent frequent high spenders (1)"


def test_override_of_unknown_segment_raises():
    df, seg = _rfm_frame()
    with pytest.raises(SegkitError, match=r"overrides names segment 7, segments are \[1, 2, 3\]"):
        segment_names(df, seg, overrides={7: "x"})
    with pytest.raises(SegkitError, match="overrides key 'vip' must be a segment number"):
        segment_names(df, seg, overrides={"vip": "x"})
    with pytest.raises(SegkitError, match="overrides has repeated names"):
        segment_names(df, seg, overrides={1: "x", 2: "x"})


def test_feature_labels():
    assert feature_label("days_since_last") == "last purchase"
    assert feature_label("share_channel_web") == "share of web purchases"
    assert feature_label("share_country_united_kingdom") == "share of purchases from united kingdom"
    assert feature_label("history_segment") == "history segment"


def test_labels_frame_with_unknown_ids_raises():
    df, _ = _rfm_frame()
    labels = pd.DataFrame({"customer_id": ["c0", "zz9"], "segment": [1, 2]})
    with pytest.raises(
        SegkitError, match=r"labels has 1 customer_id values not in customers, e.g. \['zz9'\]"
    ):
        segment_names(df, labels)
    with pytest.raises(SegkitError, match="labels has 3 values, must have one per customer"):
        segment_names(df, pd.Series([1, 2, 3]))
    with pytest.raises(SegkitError, match="customers is missing column 'customer_id'"):
        segment_names(df.drop(columns="customer_id"), np.ones(12))


def test_feature_units_and_shares():
    assert feature_unit("tenure_days") == "days ago" and feature_unit("share_channel_web") == ""
    assert is_share("share_country_united_kingdom") and not is_share("share_of_wallet")


def test_feature_and_attribute_columns():
    df = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "segment": [1, 2],
            "orders": [1, 2],
            "vip": [True, False],
            "city": ["x", "y"],
            "first": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    assert numeric_columns(df) == ["orders"]
    assert categorical_columns(df) == ["vip", "city"]
    assert categorical_columns(df, max_levels=1) == []


def test_align_segments_names_the_labels_in_errors():
    df, _ = _rfm_frame()
    ids = df["customer_id"]
    got = align_segments(df, pd.DataFrame({"customer_id": ids[::-1], "segment": range(12)}))
    assert got.tolist() == list(range(11, -1, -1)) and got.name == "segment"
    dup = pd.DataFrame({"customer_id": ["c0", "c0"], "segment": [1, 2]})
    with pytest.raises(SegkitError, match=r"segments has duplicated customer_id values"):
        align_segments(df, dup, "segments")
    with pytest.raises(SegkitError, match="segments: segment values must be integers"):
        align_segments(df, ["x"] * 12, "segments")


def test_profile_reexports_the_names_of_naming():
    from segkit import profile

    assert profile.segment_names is segment_names
    assert profile.feature_label is feature_label  # segkit.plots imports it from there


def test_a_date_attribute_reads_recent_or_early():
    df = pd.DataFrame(
        {
            "customer_id": list("abcdefgh"),
            "days_since_Dt_Customer": [5, 9, 12, 20, 700, 650, 800, 900],
        }
    )
    seg = pd.Series([1] * 4 + [2] * 4)
    assert segment_names(df, seg) == {
        1: "Recently joined customers",
        2: "Long-standing customers",
    }
    names = segment_names(df, seg, readable={"Dt_Customer": "joining date"})
    assert names == {1: "Customers, recent joining date", 2: "Customers, early joining date"}
    other = df.rename(columns={"days_since_Dt_Customer": "days_since_last_visit"})
    assert segment_names(other, seg) == {
        1: "Customers, recent last visit",
        2: "Customers, early last visit",
    }


def test_a_birth_date_reads_as_age():
    # a CRM export's BirthDate read "Customers, early birth date and recent member since"
    df = pd.DataFrame(
        {
            "customer_id": list("abcdefgh"),
            "days_since_BirthDate": [9000, 9100, 9300, 9500, 25000, 26000, 27000, 28000],
            "days_since_MemberSince": [3000, 2900, 2800, 2700, 30, 50, 70, 90],
        }
    )
    seg = pd.Series([1] * 4 + [2] * 4)
    assert segment_names(df, seg) == {
        1: "Long-standing younger customers",
        2: "Older recently joined customers",
    }


def test_gender_letters_read_as_words():
    # a CRM export's Gender f/m/d named its segments "F customers" and "M customers"
    df = pd.DataFrame(
        {"customer_id": list("abcdefgh"), "Gender": ["f", "f", "f", "f", "m", "m", "m", "d"]}
    )
    seg = pd.Series([1] * 4 + [2] * 4)
    assert segment_names(df, seg, categorical=["Gender"], features=[]) == {
        1: "Female customers",
        2: "Male customers",
    }
