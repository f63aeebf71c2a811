"""Clustering: separable blobs are found, labels are stable and ordered, bad input is clear."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segkit import Run, segment
from segkit._checks import SegkitError


def blobs(seed=0, n=150):
    rng = np.random.default_rng(seed)
    centers = [(5, 1, 2000), (60, 3, 300), (200, 1, 40)]  # days since last, orders, revenue
    rows, truth = [], []
    for k, (d, o, r) in enumerate(centers):
        rows.append(
            pd.DataFrame(
                {
                    "days_since_last": rng.normal(d, 3, n).clip(0),
                    "orders": rng.poisson(o * 5, n) + 1,
                    "revenue": rng.lognormal(np.log(r), 0.15, n),
                }
            )
        )
        truth += [k + 1] * n
    c = pd.concat(rows, ignore_index=True)
    c.insert(0, "customer_id", [f"c{i:04d}" for i in range(len(c))])
    return c, np.array(truth)


def run_on(tmp_path, customers, **cluster):
    params = {
        "name": "t",
        "data": {"source": "files", "customers": "unused.csv"},
        "cluster": {"k_min": 2, "k_max": 5, "n_bootstrap": 5, **cluster},
    }
    run = Run.open(params, tmp_path / "run")
    run.save("customers.parquet", customers)
    return run


def test_separable_blobs_are_recovered_and_ordered_by_revenue(tmp_path):
    customers, truth = blobs()
    res = segment.run_stage(run_on(tmp_path, customers))
    assert res.k == 3 and res.k_selection.loc[res.k_selection["recommended"], "k"].item() == 3
    assert adjusted_rand_score(truth, res.segments["segment"]) == pytest.approx(1.0)
    mean_rev = customers.groupby(res.segments["segment"])["revenue"].mean()
    assert mean_rev.is_monotonic_decreasing  # segment 1 = highest revenue per customer
    assert res.k_selection.loc[res.k_selection["k"] == 3, "min_stability"].item() > 0.9


def test_same_seed_same_labels(tmp_path):
    customers, _ = blobs(1)
    a = segment.run_stage(run_on(tmp_path / "a", customers)).segments
    b = segment.run_stage(run_on(tmp_path / "b", customers)).segments
    pd.testing.assert_frame_equal(a, b)


def test_fixed_k_and_bad_input(tmp_path):
    customers, _ = blobs(2)
    assert segment.run_stage(run_on(tmp_path / "k", customers, k=4)).k == 4
    with pytest.raises(SegkitError, match=r"missing column 'nope'"):
        segment.run_stage(run_on(tmp_path / "f", customers, features=["nope"]))
    with pytest.raises(SegkitError, match=r"customers has 450 rows; cluster.k_max == 50"):
        segment.run_stage(run_on(tmp_path / "n", customers, k_max=50))
    with pytest.raises(SegkitError, match=r"cluster.method == 'rfm' is not available yet"):
        segment.run_stage(run_on(tmp_path / "m", customers, method="rfm"))


def test_k_selection_plot_marks_the_chosen_k():
    from segkit import plots

    table = pd.DataFrame(
        {
            "k": [2, 3, 4],
            "silhouette": [0.3, 0.5, 0.4],
            "davies_bouldin": [1.2, 0.8, 1.0],
            "min_stability": [0.9, 0.95, 0.6],
        }
    )
    axes = plots.plot_k_selection(table, 3)
    assert [ax.get_xlabel() for ax in axes] == ["number of segments k"] * 3
    assert axes[1].get_ylabel() == "Davies-Bouldin (lower is better)"
    assert axes[0].lines[1].get_xdata()[0] == 3  # the vertical line at the chosen k
