"""segkit.segment.rfm: the grid names every combination; quintile scores by definition."""

import itertools

import numpy as np
import pandas as pd
import pytest
from test_segment import blobs

from segkit import segment
from segkit.segment import RFM_GRID, RFM_SEGMENTS, RFMScorer


def test_rfm_grid_names_every_combination():
    names = {
        segment.rfm_segment_name(r, f, m) for r, f, m in itertools.product(range(1, 6), repeat=3)
    }
    assert names == set(RFM_SEGMENTS)  # all 125 combinations named, every name used
    assert len(RFM_GRID) == 5 and all(len(row) == 5 for row in RFM_GRID)
    assert segment.rfm_segment_name(5, 5, 5) == "Champions"
    assert segment.rfm_segment_name(1, 1, 1) == "Hibernating"
    assert segment.rfm_segment_name(1, 5, 5) == "Can't Lose Them"
    assert segment.rfm_segment_name(5, 1, 1) == "New Customers"


def test_rfm_quintile_scores():
    v = np.arange(1, 101, dtype=float)
    df = pd.DataFrame({"days_since_last": v, "orders": v, "revenue": v[::-1]})
    s = RFMScorer().fit(df).scores(df)
    quintile = np.ceil(v / 20).astype(int)  # 1..20 -> 1, ..., 81..100 -> 5
    assert (s["f_score"].to_numpy() == quintile).all()
    assert (s["r_score"].to_numpy() == 6 - quintile).all()  # the most recent score 5
    assert (s["m_score"].to_numpy() == quintile[::-1]).all()
    # ties share a score: 60 % one-time buyers all get F = 1
    df = pd.DataFrame({"days_since_last": v, "orders": [1] * 60 + list(range(2, 42)), "revenue": v})
    f = RFMScorer().fit(df).scores(df)["f_score"]
    assert (f[:60] == 1).all() and f[60:].min() > 1


def test_rfm_predict_indexes_the_names_and_table_sums_up():
    customers, _ = blobs()
    scorer = RFMScorer().fit(customers)
    names = scorer.names(customers)
    assert [list(RFM_SEGMENTS)[i] for i in scorer.predict(customers)] == names.tolist()
    table = segment.rfm_table(customers, scorer)
    assert table["rfm_segment"].tolist() == list(RFM_SEGMENTS)
    assert table["customers"].sum() == len(customers)
    assert table["share_revenue"].sum() == pytest.approx(1.0)


@pytest.fixture(scope="module")
def cdnow_customers():
    from segkit import datasets, features

    return features.customer_features(datasets.load_cdnow().tables["transactions"])


def test_rfm_f_score_keeps_five_levels_on_cdnow_ties(cdnow_customers):
    orders = cdnow_customers["orders"].to_numpy()
    # the data: over half buy once, so the 20 % and 40 % quantiles of orders coincide
    assert (orders == 1).mean() > 0.4
    assert np.quantile(orders, 0.2) == np.quantile(orders, 0.4) == 1
    scorer = RFMScorer().fit(cdnow_customers)
    f = scorer.scores(cdnow_customers)["f_score"].to_numpy()
    assert sorted(set(f)) == [1, 2, 3, 4, 5]  # the plain quintiles used only 1, 3, 4, 5
    # each of F = 1..4 is one order count, F = 5 the rest: a two-order customer gets F = 2
    for score, n_orders in [(1, 1), (2, 2), (3, 3), (4, 4)]:
        assert set(orders[f == score]) == {n_orders}
    assert orders[f == 5].min() == 5
    assert (np.diff(f[np.argsort(orders, kind="stable")]) >= 0).all()  # monotone in orders
    assert scorer.empty_scores_ == {"recency": [], "frequency": [], "monetary": []}
    assert scorer.notes() == []
    # R and M (few ties) keep near-quintile classes: each within 18-22 %
    s = scorer.scores(cdnow_customers)
    for col in ("r_score", "m_score"):
        shares = np.bincount(s[col], minlength=6)[1:] / len(s)
        assert shares.min() > 0.18 and shares.max() < 0.22
    # new customers are scored on the stored cut points
    new = pd.DataFrame(
        {"days_since_last": [1.0, 600.0], "orders": [2, 40], "revenue": [10.0, 5000.0]}
    )
    assert scorer.scores(new).to_numpy().tolist() == [[5, 2, 1], [1, 5, 5]]


def test_rfm_names_the_empty_scores_when_too_few_distinct_values():
    v = np.arange(1, 101, dtype=float)
    df = pd.DataFrame({"days_since_last": v, "orders": [1] * 70 + [2] * 30, "revenue": v})
    scorer = RFMScorer().fit(df)
    f = scorer.scores(df)["f_score"]
    assert (f[:70] == f.iloc[0]).all() and f.iloc[0] < f.iloc[99]  # two levels, in order
    assert len(scorer.empty_scores_["frequency"]) == 3
    assert scorer.empty_scores_["recency"] == scorer.empty_scores_["monetary"] == []
    (note,) = scorer.notes()
    assert "frequency score (column 'orders')" in note and "no customer scores" in note
