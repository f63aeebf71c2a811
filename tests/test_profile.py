"""Tests for segkit.profile on hand-built frames with the expected output written out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segkit.core.errors import SegkitError
from segkit.profile import (
    category_mix,
    describe_rules,
    index_table,
    migration,
    outcome_rates,
    profile,
    suggest_actions,
    with_levels,
)

# ----------------------------------------------------------------------- profile


def _small() -> tuple[pd.DataFrame, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "revenue": [10.0, 20, 30, 100, 200, 40],
            "channel": ["web", "web", "store", "store", "store", "web"],
        }
    )
    segments = pd.DataFrame(
        {"customer_id": ["f", "e", "d", "c", "b", "a"], "segment": [3, 2, 2, 1, 1, 1]}
    )
    return customers, segments


def test_profile_hand_built():
    customers, segments = _small()
    p = profile(customers, segments, min_segment_size=2, names={1: "one", 2: "two", 3: "three"})
    assert p["segment"].tolist() == [1, 2, 0]
    assert p["segment_name"].tolist()[:2] == ["one", "two"]
    assert p["n"].tolist() == [3, 2, 1]
    assert p["share_customers"].tolist() == pytest.approx([0.5, 1 / 3, 1 / 6])
    # revenue 60 and 300 of 400; the suppressed row shows only its count
    assert p["share_revenue"].tolist()[:2] == pytest.approx([0.15, 0.75])
    assert np.isnan(p["share_revenue"].iloc[2])
    assert p["mean_revenue"].tolist()[:2] == pytest.approx([20.0, 150.0])
    assert p["median_revenue"].tolist()[:2] == pytest.approx([20.0, 150.0])
    # population mean 400 / 6: indexes 20 / 66.67 = 30 and 150 / 66.67 = 225
    assert p["index_revenue"].tolist()[:2] == pytest.approx([30.0, 225.0])
    assert p["pct_channel=web"].tolist()[:2] == pytest.approx([2 / 3, 0.0])
    suppressed = p.iloc[2]
    assert "suppressed" in suppressed["segment_name"]
    assert suppressed.drop(["segment", "segment_name", "n", "share_customers"]).isna().all()
    idx = index_table(p)
    assert list(idx.index) == ["one", "two"]
    assert idx["revenue"].tolist() == pytest.approx([30.0, 225.0])
    mix = category_mix(p)
    row = mix[(mix["segment_name"] == "one") & (mix["value"] == "store")]
    assert row["share"].iloc[0] == pytest.approx(1 / 3)


def test_profile_does_not_mutate_input():
    customers, segments = _small()
    before = customers.copy()
    profile(customers, segments, min_segment_size=1)
    pd.testing.assert_frame_equal(customers, before)


def test_profile_without_suppression_has_no_other_row():
    customers, segments = _small()
    p = profile(customers, segments, min_segment_size=1)
    assert p["segment"].tolist() == [1, 2, 3]


def test_profile_bad_input():
    customers, segments = _small()
    with pytest.raises(SegkitError, match="min_segment_size == 0, must be >= 1"):
        profile(customers, segments, min_segment_size=0)
    bad = pd.concat([segments, pd.DataFrame({"customer_id": ["zz"], "segment": [1]})])
    with pytest.raises(SegkitError, match=r"segments has 1 customer_id values not in customers"):
        profile(customers, bad)
    with pytest.raises(SegkitError, match="segments is missing column 'segment'"):
        profile(customers, segments.rename(columns={"segment": "cluster"}))
    with pytest.raises(SegkitError, match="segments: 1 customers have no segment"):
        profile(customers, segments.iloc[1:])
    with pytest.raises(SegkitError, match="segments has duplicated customer_id values"):
        profile(customers, pd.concat([segments, segments.iloc[:1]]))
    with pytest.raises(SegkitError, match="segment values must be integers, found e.g. 'x'"):
        profile(customers, segments.assign(segment="x"))
    with pytest.raises(SegkitError, match="customers has no rows"):
        profile(customers.iloc[:0], segments.iloc[:0])
    with pytest.raises(SegkitError, match=r"profiles has no index_\* columns"):
        index_table(pd.DataFrame({"segment": [1], "segment_name": ["x"]}))


# ------------------------------------------------------------------------- rules


def _rule_frame() -> tuple[pd.DataFrame, pd.Series]:
    """Segment 1 is exactly 'orders >= 5 and days_since_last <= 30'; 10 customers per cell."""
    orders = [5] * 10 + [5] * 10 + [4] * 10 + [4] * 10
    days = [30] * 10 + [31] * 10 + [30] * 10 + [31] * 10
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(40)],
            "orders": orders,
            "days_since_last": days,
        }
    )
    return df, pd.Series([1] * 10 + [2] * 30)


def test_rules_recover_the_hand_built_rule():
    df, seg = _rule_frame()
    r = describe_rules(df, seg, depth=2)
    assert r.fidelity == 1.0
    one = r.rules[r.rules["segment"] == 1]
    assert len(one) == 1
    assert set(one["rule"].iloc[0].split(" and ")) == {"orders ≥ 5", "last purchase ≤ 30 days ago"}
    assert one[["customers", "precision", "recall", "coverage"]].iloc[0].tolist() == [
        10,
        1.0,
        1.0,
        0.25,
    ]
    two = r.rules[r.rules["segment"] == 2]
    assert two["recall"].sum() == pytest.approx(1.0)
    assert (two["precision"] == 1.0).all()


def test_rules_shares_and_categories_in_words():
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(20)],
            "share_channel_web": [0.2] * 10 + [0.8] * 10,
            "zip": ["rural"] * 10 + ["urban"] * 10,
        }
    )
    seg = pd.Series([1] * 10 + [2] * 10)
    r = describe_rules(df, seg, depth=1)
    assert r.fidelity == 1.0
    assert r.rules["rule"].tolist() in (
        ["share of web purchases ≤ 50%", "share of web purchases > 50%"],
        ["zip is rural", "zip is urban"],  # two levels: "is not rural" reads "is urban"
    )


def test_rules_say_not_for_a_two_level_attribute_with_missing_values():
    df = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(20)], "zip": ["rural"] * 10 + ["urban", None] * 5}
    )
    r = describe_rules(df, pd.Series([1] * 10 + [2] * 10), depth=1)
    assert sorted(r.rules["rule"]) in (
        ["zip is not rural", "zip is rural"],
        ["zip is not urban", "zip is urban"],
    )


def test_rules_fidelity_below_one_when_tree_too_shallow():
    df = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(30)], "orders": [1] * 10 + [5] * 10 + [9] * 10}
    )
    seg = pd.Series([1] * 10 + [2] * 10 + [3] * 10)
    r = describe_rules(df, seg, depth=1)
    # one split, two leaves, three segments: 20 of 30 customers right at best
    assert r.fidelity == pytest.approx(2 / 3)
    assert (r.rules["rule"] == "(no simple rule at this depth)").sum() == 1


def test_rules_bad_input():
    df, seg = _rule_frame()
    with pytest.raises(SegkitError, match="depth == 0, must be >= 1"):
        describe_rules(df, seg, depth=0)
    with pytest.raises(SegkitError, match="customers has no usable features for rules"):
        describe_rules(df[["customer_id"]], seg)


# ----------------------------------------------------------------------- actions


def _index_profiles() -> pd.DataFrame:
    """Indexes chosen to fall in each branch of suggest_actions (thresholds in its docstring)."""
    return pd.DataFrame(
        {
            "segment": [1, 2, 3, 4, 5, 0],
            "segment_name": ["champs", "lapsed big", "lapsed small", "newbies", "middle", "other"],
            "n": [100, 100, 100, 100, 100, 5],
            "index_days_since_last": [40.0, 200, 220, 50, 90, np.nan],
            "index_orders": [250.0, 130, 30, 40, 90, np.nan],
            "index_revenue": [300.0, 150, 20, 30, 80, np.nan],
            "index_tenure_days": [120.0, 130, 110, 20, 100, np.nan],
        }
    )


def test_actions_follow_indexes():
    a = suggest_actions(_index_profiles())
    assert a["segment"].tolist() == [1, 2, 3, 4, 5]  # the suppressed row gets none
    assert a["action"].tolist() == [
        "retain and reward",
        "win back",
        "leave alone / low-cost",
        "nurture new",
        "develop / cross-sell",
    ]
    assert a["reason"].iloc[0] == "buys recently (recency index 40), often (250) and a lot (300)"


def test_actions_use_clv_value():
    # value per customer 10, 1, 40, 10, 10 with n = 100 each: mean 14.2 ->
    # indexes 70, 7, 282, 70, 70: lapsed big (win back) has low value -> leave alone;
    # lapsed small has high value -> win back.
    clv = pd.DataFrame({"segment": [1, 2, 3, 4, 5], "clv_per_customer": [10.0, 1, 40, 10, 10]})
    a = suggest_actions(_index_profiles(), clv)
    assert a["action"].tolist()[1:3] == ["leave alone / low-cost", "win back"]
    assert a["value_index"].tolist() == pytest.approx([x / 14.2 * 100 for x in (10, 1, 40, 10, 10)])
    with pytest.raises(SegkitError, match="clv_segments has no value column"):
        suggest_actions(_index_profiles(), clv.rename(columns={"clv_per_customer": "x"}))


def test_actions_without_purchase_history():
    p = pd.DataFrame({"segment": [1], "segment_name": ["x"], "n": [50], "index_history": [120.0]})
    assert suggest_actions(p)["action"].tolist() == ["test and learn"]


# --------------------------------------------------------------------- migration


def test_migration_hand_built():
    before = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"], "segment": [1, 1, 2, 2, 2]})
    after = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d", "x", "y"], "segment": [1, 2, 2, 2, 1, 1]}
    )
    # a: 1->1, b: 1->2, c,d: 2->2, e: 2->gone, x,y: new->1
    expected = pd.DataFrame(
        {
            "from_segment": ["1", "1", "1", "2", "2", "2", "new", "new"],
            "to_segment": ["1", "2", "gone", "1", "2", "gone", "1", "2"],
            "customers": [1, 1, 0, 0, 2, 1, 2, 0],
            "row_share": [0.5, 0.5, 0.0, 0.0, 2 / 3, 1 / 3, 1.0, 0.0],
        }
    )
    got = migration(before, after)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_migration_bad_input():
    ok = pd.DataFrame({"customer_id": ["a"], "segment": [1]})
    with pytest.raises(SegkitError, match="before is missing column 'segment'"):
        migration(ok.rename(columns={"segment": "s"}), ok)
    with pytest.raises(SegkitError, match=r"after has duplicated customer_id values, e.g. \['a'\]"):
        migration(ok, pd.concat([ok, ok]))


# ------------------------------------------------------------------------- plots


def test_profile_plots_on_agg():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segkit import plots

    customers, segments = _small()
    p = profile(customers, segments, min_segment_size=1, names={1: "one", 2: "two", 3: "three"})
    ax = plots.plot_index_heatmap(index_table(p))
    assert "100 = average" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["30", "225", "60"]  # 40 / 66.67 = 60
    ax = plots.plot_snake(index_table(p, prefix="z_"))
    assert len(ax.get_lines()) == 3 + 1  # one per segment plus the zero line
    assert "standard deviations" in ax.get_ylabel()
    ax = plots.plot_category_mix(category_mix(p), "channel")
    assert ax.get_xlabel() == "share of segment (%)" and ax.get_title() == "Channel by segment"
    # data.customers.labels name the features on the axes and in the titles
    labels = {"channel": "sales channel", "revenue": "spend"}
    ax = plots.plot_category_mix(category_mix(p), "channel", labels=labels)
    assert ax.get_title() == "Sales channel by segment"
    assert ax.get_legend().get_title().get_text() == "sales channel"
    ax = plots.plot_index_heatmap(index_table(p), labels=labels)
    assert "spend" in [t.get_text() for t in ax.get_xticklabels()]
    ax = plots.plot_snake(index_table(p, prefix="z_"), labels=labels)
    assert "spend" in [t.get_text() for t in ax.get_xticklabels()]
    ax = plots.plot_segment_shares(p)
    # customers 3, 2, 1 of 6; revenue 60, 300, 40 of 400 (in %)
    widths = sorted(round(b.get_width()) for b in ax.patches if b.get_width() > 0)
    assert widths == [10, 15, 17, 33, 50, 75]
    before = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2]})
    after = pd.DataFrame({"customer_id": ["a", "c"], "segment": [2, 1]})
    ax = plots.plot_migration(migration(before, after))
    assert ax.get_ylabel() == "segment in earlier run"
    assert sorted(t.get_text() for t in ax.texts) == ["0", "0", "0", "0", "0", "1", "1", "1"]
    plt.close("all")


def test_rules_merge_two_bounds_into_a_range():
    # midpoints 3 and 7 split 1 | 5 | 9; the middle segment reads as one range
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(30)],
            "orders": [1] * 10 + [5] * 10 + [9] * 10,
            "days_since_last": [10] * 10 + [50] * 10 + [90] * 10,
        }
    )
    r = describe_rules(df[["customer_id", "orders"]], pd.Series([1] * 10 + [2] * 10 + [3] * 10), 2)
    assert r.rules["rule"].tolist() == ["orders ≤ 3", "orders 4-7", "orders ≥ 8"]
    r = describe_rules(
        df[["customer_id", "days_since_last"]], pd.Series([1] * 10 + [2] * 10 + [3] * 10), 2
    )
    assert r.rules["rule"].tolist() == [
        "last purchase ≤ 30 days ago",
        "last purchase 31-70 days ago",
        "last purchase ≥ 71 days ago",
    ]


def test_rules_categorical_and_binary_in_words():
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(30)],
            "channel": ["a"] * 10 + ["b"] * 10 + ["c"] * 10,
        }
    )
    seg = pd.Series([1] * 10 + [2] * 10 + [3] * 10)
    r = describe_rules(df, seg, 2)
    assert r.fidelity == 1.0
    rules = dict(zip(r.rules["segment"], r.rules["rule"], strict=True))
    # the tree asks two yes/no questions; whichever value it asks about first, each
    # segment is described by one phrase about channel, never "is not a and is b"
    for s, v in ((1, "a"), (2, "b"), (3, "c")):
        others = [o for o in "abc" if o != v]
        assert rules[s] in (
            f"channel is {v}",
            f"channel is neither {others[0]} nor {others[1]}",
            f"channel is neither {others[1]} nor {others[0]}",
        )
    flags = pd.DataFrame(
        {"customer_id": [f"c{i}" for i in range(20)], "newbie": [0] * 10 + [1] * 10}
    )
    r = describe_rules(flags, pd.Series([1] * 10 + [2] * 10), 1)
    assert r.rules["rule"].tolist() == ["newbie = 0", "newbie = 1"]


# ------------------------------------------------------------------ outcome rates


def _outcomes() -> tuple[pd.DataFrame, pd.Series]:
    """Segment 1: 6 customers (one Response missing), 2: 5, 3: 2 (under min_size 3)."""
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(13)],
            "Response": [1, 0, 1, 1, np.nan, 0, 0, 0, 1, 0, 0, 1, 1],
            "spend": [10.0, 12, 9, 15, 11, 13, 4, 6, 5, 7, 3, 50, 60],
        }
    )
    return customers, pd.Series([1] * 6 + [2] * 5 + [3] * 2)


def test_outcome_rates_match_statsmodels_and_scipy():
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    customers, seg = _outcomes()
    r = outcome_rates(customers, seg, ["Response", "spend"], min_size=3, names={1: "One"})
    assert r["segment"].tolist() == [1, 1, 2, 2, 3, 3]
    assert r["outcome"].tolist() == ["Response", "spend"] * 3
    assert r["segment_name"].tolist()[:3] == ["One", "One", "Segment 2"]
    row = r.set_index(["segment", "outcome"])
    # Response, segment 1: 3 of the 5 non-missing; overall 6 of 12
    lo, hi = proportion_confint(3, 5, alpha=0.05, method="wilson")
    got = row.loc[(1, "Response")]
    assert got["kind"] == "rate" and got["customers"] == 5
    assert got["estimate"] == pytest.approx(0.6)
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert got["overall"] == pytest.approx(0.5) and got["index"] == pytest.approx(120.0)
    lo, hi = proportion_confint(1, 5, alpha=0.05, method="wilson")
    assert row.loc[(2, "Response"), "ci_low"] == pytest.approx(lo)
    assert row.loc[(2, "Response"), "index"] == pytest.approx(40.0)
    # spend, segment 2: a t interval on 4, 6, 5, 7, 3
    x = np.array([4.0, 6, 5, 7, 3])
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    got = row.loc[(2, "spend")]
    assert got["kind"] == "mean" and got["customers"] == 5
    assert (got["estimate"], got["ci_low"], got["ci_high"]) == (
        pytest.approx(5.0),
        pytest.approx(lo),
        pytest.approx(hi),
    )
    overall = customers["spend"].mean()  # over all customers, the suppressed ones too
    assert got["index"] == pytest.approx(5.0 / overall * 100)


def test_outcome_rates_alpha_widens_the_interval():
    from statsmodels.stats.proportion import proportion_confint

    customers, seg = _outcomes()
    r = outcome_rates(customers, seg, ["Response"], alpha=0.01, min_size=3)
    lo, hi = proportion_confint(3, 5, alpha=0.01, method="wilson")
    assert r.loc[0, "ci_low"] == pytest.approx(lo) and r.loc[0, "ci_high"] == pytest.approx(hi)


def test_outcome_rates_suppress_small_segments():
    customers, seg = _outcomes()
    r = outcome_rates(customers, seg, ["Response", "spend"], min_size=3)
    small = r[r["segment"] == 3]
    assert small["suppressed"].all() and not r.loc[r["segment"] != 3, "suppressed"].any()
    assert small["customers"].isna().all()
    assert small[["estimate", "ci_low", "ci_high", "index"]].isna().all().all()
    # with a smaller threshold the same segment is shown: 2 of 2 responded
    shown = outcome_rates(customers, seg, ["Response"], min_size=2)
    assert shown.loc[shown["segment"] == 3, "estimate"].item() == 1.0


def test_outcome_rates_errors():
    customers, seg = _outcomes()
    with pytest.raises(SegkitError, match="customers is missing column .nope."):
        outcome_rates(customers, seg, ["nope"])
    with pytest.raises(SegkitError, match="outcome 'customer_id' is not numeric"):
        outcome_rates(customers, seg, ["customer_id"])
    with pytest.raises(SegkitError, match="alpha == 1.5"):
        outcome_rates(customers, seg, ["spend"], alpha=1.5)


# ------------------------------------------------------- a customer table (no purchases)


def test_profile_value_share_of_the_value_column():
    customers, segments = _small()
    c = customers.rename(columns={"revenue": "total_spend"})
    p = profile(c, segments, min_segment_size=2, value_col="total_spend", value_label="spend")
    # total_spend 60 and 300 of 400, as revenue in test_profile_hand_built
    assert p["share_value"].tolist()[:2] == pytest.approx([0.15, 0.75])
    assert "share_revenue" not in p.columns
    assert p.attrs == {"value_col": "total_spend", "value_label": "spend"}
    assert "share_value" not in profile(c, segments, value_col=None).columns
    assert "share_value" not in profile(c, segments, value_col="absent").columns


def test_with_levels_makes_codes_categories():
    t = pd.DataFrame({"customer_id": list("abcd"), "Region": [1, 2, 3, 1], "Fresh": [1.0, 2, 3, 4]})
    out = with_levels(t, ["Region", "absent"], {"Region=1": "Lisbon"})
    assert out["Region"].tolist() == ["Lisbon", "2", "3", "Lisbon"]
    assert t["Region"].tolist() == [1, 2, 3, 1]  # the input is not changed
    p = profile(out, pd.Series([1, 1, 2, 2]), min_segment_size=1)
    assert "mean_Region" not in p.columns and "index_Region" not in p.columns
    assert p["pct_Region=Lisbon"].tolist() == [0.5, 0.5]
    rules = describe_rules(out, pd.Series([1, 1, 2, 2]), depth=2, readable={"Region": "region"})
    assert not any("Region" in r for r in rules.rules["rule"])  # the label, not the code
    t = t.assign(Education=["PhD", "Basic", "PhD", None])
    out = with_levels(t, ["Education"], {"Education=PhD": "doctorate"})
    assert out["Education"].tolist() == ["doctorate", "Basic", "doctorate", pd.NA]
    assert with_levels(t, ["Education"])["Education"].tolist()[:2] == ["PhD", "Basic"]


def _attr_profiles() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": [1, 2, 3, 4, 5, 0],
            "segment_name": ["A", "B", "C", "D", "E", "other"],
            "n": [100] * 5 + [3],
            "mean_total_spend": [300.0, 250, 40, 30, 100, np.nan],
            "index_total_spend": [300.0, 250, 40, 30, 100, np.nan],
            "index_NumDealsPurchases": [50.0, 50, 200, 50, 90, np.nan],
        }
    )


def _rates(rows: list[tuple]) -> pd.DataFrame:
    cols = ["segment", "outcome", "kind", "estimate", "ci_low", "ci_high", "overall"]
    out = pd.DataFrame(rows, columns=cols)
    out["suppressed"] = False
    return out


def test_actions_for_a_customer_table_from_value_and_response():
    """Each branch once: A high value, high response; B high value, low response; C low
    value, goes for deals; D low value, low response; E average value, high complaints."""
    rates = _rates(
        [
            (1, "Response", "rate", 0.34, 0.30, 0.38, 0.18),
            (2, "Response", "rate", 0.05, 0.03, 0.08, 0.18),
            (3, "Response", "rate", 0.19, 0.15, 0.24, 0.18),  # interval holds 18%: not high
            (4, "Response", "rate", 0.04, 0.02, 0.07, 0.18),
            (5, "Response", "rate", 0.18, 0.14, 0.22, 0.18),
            (5, "Complain", "rate", 0.05, 0.03, 0.09, 0.01),
        ]
    )
    a = suggest_actions(
        _attr_profiles(), rates=rates, value_col="total_spend", labels={"Response": "reply"}
    )
    assert a["action"].tolist() == [
        "reward and upsell",
        "retain with service, contact sparingly",
        "use the offer they respond to (deals)",
        "low-cost channel only",
        "fix service first",
    ]
    assert a["reason"].iloc[0] == (
        "value index 300 (mean total spend 300 vs 100 for all customers); "
        "reply 34% vs 18% of all customers (95% interval 30%-38%)"
    )
    assert "num deals purchases index 200" in a["reason"].iloc[2]
    assert "complain 5.0% vs 1.0% of all customers" in a["reason"].iloc[4]
    assert a["value_index"].tolist() == [300.0, 250, 40, 30, 100]


def test_actions_for_a_customer_table_without_value_or_outcomes():
    p = _attr_profiles().drop(columns=["mean_total_spend", "index_total_spend"])
    p["index_NumDealsPurchases"] = 100.0
    rates = _rates([(1, "AcceptedCmp1", "rate", 0.2, 0.15, 0.26, 0.08)])
    a = suggest_actions(p, rates=rates)
    assert a["action"].iloc[0] == "use the offer they respond to (accepted cmp1)"
    assert a["action"].iloc[1] == "test and learn"
    assert a["reason"].iloc[1] == (
        "no value column (cluster.value) says what these customers are worth; no outcome "
        "clearly above or below all customers (95% intervals)"
    )
    no_rates = suggest_actions(_attr_profiles(), value_col="total_spend")
    assert no_rates["action"].tolist()[:2] == ["retain and reward", "retain and reward"]
    assert (
        no_rates["reason"].iloc[4].endswith("no outcomes (campaign acceptance, response…) to go by")
    )
    for frame in (a, no_rates):
        text = " ".join(frame["reason"]) + " ".join(frame["action"])
        assert "nan" not in text.lower() and "valuable" not in text
