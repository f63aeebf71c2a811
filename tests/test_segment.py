"""The cluster stage (segkit.stages.cluster) end to end: methods, choice of k, RFM view,
names, artifacts, ``segkit score``, bad input; and the data helpers of the other
tests/test_segment_*.py modules (one per module of segkit/segment/).

Reference values come from the known truth of synthetic data.
"""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from segkit import Run
from segkit.core.errors import SegkitError
from segkit.segment import RFM_SEGMENTS, Segmenter
from segkit.stages import cluster, explore


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


def mixed(seed=0, n=200):
    """Three groups told apart by a categorical attribute and one numeric feature."""
    rng = np.random.default_rng(seed)
    frames = []
    for g, (channel, spend) in enumerate([("web", 20), ("store", 200), ("app", 2000)]):
        frames.append(
            pd.DataFrame(
                {
                    "history": rng.lognormal(np.log(spend), 0.2, n),
                    "channel": np.where(
                        rng.random(n) < 0.9, channel, rng.choice(["web", "store", "app"], n)
                    ),
                    "truth": g,
                }
            )
        )
    c = pd.concat(frames, ignore_index=True)
    c.insert(0, "customer_id", [f"m{i:04d}" for i in range(len(c))])
    return c


def run_on(tmp_path, customers, **options):
    params = {
        "name": "t",
        "data": {"source": "files", "customers": "unused.csv"},
        "cluster": {"k_min": 2, "k_max": 5, "n_bootstrap": 5, "gap_references": 5, **options},
    }
    run = Run.open(params, tmp_path / "run")
    run.save("customers.parquet", customers)
    return run


def run_mixed(tmp_path, c):
    """The mixed-data path: k-prototypes on log history and the channel."""
    params = {"method": "kprototypes", "features": ["history"], "categorical": ["channel"]}
    return cluster.run(run_on(tmp_path, c.drop(columns="truth"), **params))


# ------------------------------------------------------------------ the stage end to end


def test_separable_blobs_are_recovered_and_ordered_by_revenue(tmp_path):
    customers, truth = blobs()
    res = cluster.run(run_on(tmp_path, customers))
    table = res.k_selection
    assert res.k == 3 and table.loc[table["recommended"], "k"].item() == 3
    assert adjusted_rand_score(truth, res.segments["segment"]) == pytest.approx(1.0)
    mean_rev = customers.groupby(res.segments["segment"])["revenue"].mean()
    assert mean_rev.is_monotonic_decreasing  # segment 1 = highest revenue per customer
    assert table.loc[table["k"] == 3, "min_stability"].item() > 0.9
    # every index is there; the three classic ones vote for the true k (the gap statistic
    # keeps rising here: the Poisson order counts split into levels; see the pure gap test)
    assert {"silhouette", "calinski_harabasz", "davies_bouldin", "gap", "gap_se"} <= set(table)
    assert table.loc[table["k"] == 3, "votes"].item().count(",") == 2
    assert "k = 3 is recommended" in res.explanation
    # the RFM view comes with transaction features
    assert {"r_score", "f_score", "m_score", "rfm_segment"} <= set(res.segments)
    assert res.rfm["customers"].sum() == len(customers)


def test_demo_recovers_the_true_segments(tmp_path):
    """Issue "Segments": the recommended k is the true number, ARI >= 0.8."""
    from segkit import datasets

    run = Run.open("demo", tmp_path / "demo")
    explore.run(run)
    res = cluster.run(run)
    truth = datasets.make_retailer(**run.params["data"]["demo"], seed=run.seed).truth
    merged = res.segments.merge(truth.segments, on="customer_id")
    assert len(merged) == len(res.segments)
    assert res.k == truth.segments["true_segment"].nunique() == 4
    assert adjusted_rand_score(merged["true_segment"], merged["segment"]) >= 0.8


def test_same_seed_same_labels(tmp_path):
    customers, _ = blobs(1)
    a = cluster.run(run_on(tmp_path / "a", customers)).segments
    b = cluster.run(run_on(tmp_path / "b", customers)).segments
    pd.testing.assert_frame_equal(a, b)


def test_fixed_k_and_bad_input(tmp_path):
    customers, _ = blobs(2)
    assert cluster.run(run_on(tmp_path / "k", customers, k=4)).k == 4
    with pytest.raises(SegkitError, match=r"missing column 'nope'"):
        cluster.run(run_on(tmp_path / "f", customers, features=["nope"]))
    with pytest.raises(SegkitError, match=r"customers has 450 rows; cluster.k_max == 50"):
        cluster.run(run_on(tmp_path / "n", customers, k_max=50))
    with pytest.raises(
        SegkitError, match=r"customers has 12 rows; cluster.k == 8 needs at least 80"
    ):
        cluster.run(run_on(tmp_path / "k8", customers.head(12), k=8))
    with pytest.raises(SegkitError, match=r"customers has 1 row\(s\): a single customer"):
        cluster.run(run_on(tmp_path / "one", customers.head(1)))


def test_gmm_adds_bic(tmp_path):
    customers, truth = blobs(3)
    res = cluster.run(run_on(tmp_path, customers, method="gmm"))
    assert res.k_selection["bic"].notna().all()
    assert res.k == 3 and adjusted_rand_score(truth, res.segments["segment"]) > 0.95


def test_stage_reports_dropped_columns(tmp_path):
    customers, _ = blobs()
    customers["constant"] = 1.0
    res = cluster.run(
        run_on(tmp_path, customers, features=["days_since_last", "orders", "constant"])
    )
    assert res.features == ["days_since_last", "orders"]
    assert any("'constant' has the same value" in f for f in res.findings)


def test_mixed_data_path_end_to_end(tmp_path):
    c = mixed()
    res = run_mixed(tmp_path, c)
    assert res.method == "kprototypes" and res.k == 3
    assert adjusted_rand_score(c["truth"], res.segments["segment"]) > 0.9
    assert res.rfm is None  # no transaction features, no RFM view
    scored = Segmenter.load(tmp_path / "run").score(c)
    assert (scored["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()


def test_rfm_method(tmp_path):
    customers, _ = blobs()
    res = cluster.run(run_on(tmp_path, customers, method="rfm", names={1: "VIP"}))
    seg = res.segments
    assert res.method == "rfm" and res.k == seg["segment"].nunique()
    renamed = seg["segment"] == 1
    assert (seg.loc[renamed, "segment_name"] == "VIP").all()
    assert (seg.loc[~renamed, "segment_name"] == seg.loc[~renamed, "rfm_segment"]).all()
    assert set(seg["rfm_segment"]) <= set(RFM_SEGMENTS)
    attrs = pd.DataFrame({"customer_id": ["a", "b"] * 50, "age": range(100)})
    with pytest.raises(SegkitError, match=r"'rfm' needs the columns"):
        cluster.run(run_on(tmp_path / "x", attrs, method="rfm"))


def test_segkit_score_command(tmp_path, capsys):
    from segkit.cli import main

    customers, _ = blobs(5)
    cluster.run(run_on(tmp_path, customers))
    path = tmp_path / "new.csv"
    customers.assign(revenue=lambda d: d["revenue"].where(d.index > 0, 1e9)).to_csv(
        path, index=False
    )
    assert main(["score", str(tmp_path / "run"), str(path)]) == 0
    out = pd.read_csv(tmp_path / "new.segments.csv")
    assert len(out) == len(customers) and out["segment"].isna().sum() == 1
    assert "flagged, not assigned (outside the fitted range): 1" in capsys.readouterr().out
    assert main(["score", str(tmp_path / "nowhere"), str(path)]) == 2
    assert "no fitted segmenter" in capsys.readouterr().err


def test_stage_writes_the_artifacts_and_findings(tmp_path):
    customers, _ = blobs(6)
    run = run_on(tmp_path, customers)
    res = cluster.run(run)
    names = {p.name for p in run.artifacts.iterdir()}
    assert {"segments.parquet", "k_selection.csv", "stability.csv", "rfm.csv"} <= names
    assert "segmenter.json" in names and "segmenter.joblib" not in names
    saved = json.loads((run.artifacts / "findings_cluster.json").read_text())
    assert saved["findings"] == res.findings
    assert res.findings[0].startswith(
        f"{res.k} segments (k-means), numbered by mean revenue per customer; the most valuable"
    )
    assert any(f.startswith("RFM view: the largest RFM group is") for f in res.findings)


def test_rfm_needs_three_usable_columns(tmp_path):
    customers, _ = blobs()
    customers["orders"] = 1  # the same for everyone: dropped, two RFM columns left
    with pytest.raises(SegkitError, match=r"cluster.method == 'rfm': 'orders' has the same"):
        cluster.run(run_on(tmp_path, customers, method="rfm"))


def test_score_file_writes_next_to_the_table(tmp_path):
    customers, _ = blobs(7)
    res = cluster.run(run_on(tmp_path, customers))
    src = tmp_path / "new.parquet"
    customers.to_parquet(src)
    out, scored = cluster.score_file(tmp_path / "run", src)
    assert out == tmp_path / "new.segments.csv" and out.is_file()
    assert (scored["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()
    out, _ = cluster.score_file(
        tmp_path / "run" / "artifacts" / "segmenter.json", src, tmp_path / "x.csv"
    )
    assert pd.read_csv(out)["segment"].tolist() == res.segments["segment"].tolist()


# ------------------------------------------------------------------------------ plots


def test_k_selection_plot_marks_the_chosen_k():
    from segkit import plots

    table = pd.DataFrame(
        {
            "k": [2, 3, 4],
            "silhouette": [0.3, 0.5, 0.4],
            "calinski_harabasz": [10, 30, 20],
            "davies_bouldin": [1.2, 0.8, 1.0],
            "gap": [0.1, 0.5, 0.52],
            "gap_se": [0.02, 0.02, 0.02],
            "bic": [np.nan] * 3,
            "stability": [0.9, 0.97, 0.7],
            "min_stability": [0.9, 0.95, 0.6],
            "admissible": [True, True, False],
        }
    )
    axes = plots.plot_k_selection(table, 3)
    assert len(axes) == 5  # no BIC panel for k-means
    assert [ax.get_xlabel() for ax in axes] == ["number of segments k"] * 5
    assert axes[2].get_ylabel() == "Davies-Bouldin (lower is better)"
    assert axes[0].lines[-1].get_xdata()[0] == 3  # the vertical line at the chosen k


def test_rfm_grid_plot(tmp_path):
    from segkit import plots

    customers, _ = blobs()
    seg = cluster.run(run_on(tmp_path, customers)).segments
    ax = plots.plot_rfm_grid(seg)
    assert ax.get_ylabel() == "R score (5 = most recent)"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 25 and any(t.startswith("Champions") for t in texts)
