"""segkit.segment.selection: W_k, the gap statistic, bootstrap stability, the vote for k.

Reference values come from independent computations (scipy's pairwise distances for
Tibshirani's W_k) or from synthetic data with a known number of groups.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from sklearn.cluster import KMeans

from segkit import segment
from segkit.core.params import STABLE, UNSTABLE


def test_within_ss_is_tibshiranis_w_k():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(60, 3))
    labels = rng.integers(0, 4, 60)
    # W_k = sum_r D_r / (2 n_r), D_r = sum over ordered pairs of squared distances
    expected = sum(
        2 * (pdist(Z[labels == r], "sqeuclidean").sum()) / (2 * (labels == r).sum())
        for r in range(4)
    )
    assert segment.within_ss(Z, labels) == pytest.approx(expected)


def test_gap_finds_three_blobs_and_one_group_in_noise():
    def factory(k, seed, n_init=3):
        return KMeans(k, n_init=n_init, random_state=seed)

    rng = np.random.default_rng(1)
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    X = np.vstack([rng.normal(c, 0.5, size=(100, 2)) for c in centers])
    labels = {k: factory(k, 0).fit_predict(X) for k in range(1, 7)}
    gap = segment.gap_statistic(X, labels, factory, layout=(2, []), n_refs=10, seed=0)
    assert segment.gap_choice(gap) == 3
    noise = rng.uniform(size=(300, 2))
    labels = {k: factory(k, 0).fit_predict(noise) for k in range(1, 7)}
    assert (
        segment.gap_choice(
            segment.gap_statistic(noise, labels, factory, layout=(2, []), n_refs=10, seed=0)
        )
        == 1
    )


def test_stability_high_for_blobs_low_for_noise():
    def factory(k, seed, n_init=3):
        return KMeans(k, n_init=n_init, random_state=seed)

    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(c, 0.5, size=(100, 2)) for c in ([0, 0], [6, 0], [0, 6])])
    labels = factory(3, 0).fit_predict(X)
    assert segment.jaccard_stability(X, labels, factory, k=3, seed=0, n_boot=10).min() > 0.95
    noise = rng.uniform(size=(300, 2))
    labels = factory(6, 0).fit_predict(noise)
    assert segment.jaccard_stability(noise, labels, factory, k=6, seed=0, n_boot=10).min() < 0.75


def _table(min_stability, min_size):
    return pd.DataFrame({"k": [2, 3, 4], "min_stability": min_stability, "min_size": min_size})


def test_admissible_falls_back_from_stable_to_fair_to_size():
    assert segment.admissible(_table([0.9, STABLE, 0.5], [50, 50, 50]), 20, 5).tolist() == [
        True,
        True,
        False,
    ]
    fair = _table([UNSTABLE, 0.7, 0.5], [50, 50, 50])
    assert segment.admissible(fair, 20, 5).tolist() == [True, True, False]
    assert segment.admissible(_table([0.1, 0.2, 0.3], [50, 5, 50]), 20, 5).tolist() == [
        True,
        False,
        True,
    ]
    assert segment.admissible(_table([0.9, 0.9, 0.9], [5, 5, 5]), 20, 5).all()
    assert segment.admissible(_table([np.nan] * 3, [50, 5, 50]), 20, 0).tolist() == [
        True,
        False,
        True,
    ]


def test_select_k_recommends_the_true_k_and_explains_it():
    def factory(k, seed, n_init=3):
        return KMeans(k, n_init=n_init, random_state=seed)

    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(c, 0.4, size=(120, 2)) for c in ([0, 0], [6, 0], [0, 6])])
    seen = []
    table, stab = segment.select_k(
        X,
        factory,
        layout=(2, []),
        k_min=2,
        k_max=5,
        seed=0,
        n_boot=4,
        min_size=20,
        n_refs=4,
        progress=seen.append,
    )
    assert seen == [2, 3, 4, 5]
    assert table.loc[table["recommended"], "k"].item() == 3
    assert len(stab) == 2 + 3 + 4 + 5
    text = segment.explain_choice(table, 4, 20, 4)
    assert text.startswith("k = 3 is recommended")
    assert f"over {STABLE} is stable, under {UNSTABLE} unstable" in text
    assert text.endswith("The parameters fix k = 4 (cluster.k) instead.")
    no_boot = segment.select_k(
        X, factory, layout=(2, []), k_min=2, k_max=4, seed=0, n_boot=0, min_size=20, n_refs=0
    )[0]
    assert "Stability was not measured" in segment.explain_choice(no_boot, 0, 20, 0)


def _k_table(rows):
    return pd.DataFrame(rows, columns=["k", "admissible", "votes", "min_stability", "silhouette"])


def test_a_tie_in_votes_goes_to_the_more_stable_k_then_the_silhouette():
    from segkit.segment.selection import recommended_k

    # the audit's case: one vote each; k = 3 is more stable (0.80 vs 0.79) and must win
    # although k = 4 has the far better silhouette (the old additive key chose 4)
    t = _k_table([(3, True, "gap statistic", 0.80, 0.10), (4, True, "BIC", 0.79, 0.25)])
    assert recommended_k(t) == 3
    # stability equal to two decimals: the silhouette decides
    t = _k_table([(3, True, "gap statistic", 0.801, 0.10), (4, True, "BIC", 0.798, 0.25)])
    assert recommended_k(t) == 4
    # more votes win whatever the stability; an inadmissible k never wins
    t = _k_table(
        [
            (2, True, "silhouette", 0.95, 0.60),
            (3, True, "gap statistic, BIC", 0.70, 0.10),
            (5, False, "Calinski-Harabasz, Davies-Bouldin, BIC", 0.99, 0.90),
        ]
    )
    assert recommended_k(t) == 3
    # stability not measured (NaN): silhouette, then the smaller k
    t = _k_table(
        [(4, True, "", np.nan, 0.2), (3, True, "", np.nan, 0.2), (5, True, "", np.nan, 0.3)]
    )
    assert recommended_k(t) == 5
    t = _k_table([(4, True, "", np.nan, 0.2), (3, True, "", np.nan, 0.2)])
    assert recommended_k(t) == 3
