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
