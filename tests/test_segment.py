"""Clustering: methods, choice of k, RFM, scoring new customers, bad input.

Reference values come from independent computations (scipy's pairwise distances for
Tibshirani's W_k, an explicit loop for Huang's k-prototypes cost, sklearn's KMeans), from
the known truth of synthetic data, or from the definition of the RFM quintiles.
"""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from segkit import Run, segment
from segkit.core.errors import SegkitError
from segkit.segment import RFM_GRID, RFM_SEGMENTS, KPrototypes, RFMScorer, Segmenter


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


def run_on(tmp_path, customers, **cluster):
    params = {
        "name": "t",
        "data": {"source": "files", "customers": "unused.csv"},
        "cluster": {"k_min": 2, "k_max": 5, "n_bootstrap": 5, "gap_references": 5, **cluster},
    }
    run = Run.open(params, tmp_path / "run")
    run.save("customers.parquet", customers)
    return run


def run_mixed(tmp_path, c):
    """The mixed-data path: k-prototypes on log history and the channel."""
    params = {"method": "kprototypes", "features": ["history"], "categorical": ["channel"]}
    return segment.run_stage(run_on(tmp_path, c.drop(columns="truth"), **params))


# ------------------------------------------------------------------ the stage end to end


def test_separable_blobs_are_recovered_and_ordered_by_revenue(tmp_path):
    customers, truth = blobs()
    res = segment.run_stage(run_on(tmp_path, customers))
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
    from segkit import datasets, explore

    run = Run.open("demo", tmp_path / "demo")
    explore.run_stage(run)
    res = segment.run_stage(run)
    truth = datasets.make_retailer(**run.params["data"]["demo"], seed=run.seed).truth
    merged = res.segments.merge(truth.segments, on="customer_id")
    assert len(merged) == len(res.segments)
    assert res.k == truth.segments["true_segment"].nunique() == 4
    assert adjusted_rand_score(merged["true_segment"], merged["segment"]) >= 0.8


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
    with pytest.raises(SegkitError, match=r"customers has 1 row\(s\): a single customer"):
        segment.run_stage(run_on(tmp_path / "one", customers.head(1)))
    with pytest.raises(SegkitError, match=r"expected one of kmeans, gmm, kprototypes, rfm"):
        segment.make_model("dbscan", 3, 0, (1, []))


def test_gmm_adds_bic(tmp_path):
    customers, truth = blobs(3)
    res = segment.run_stage(run_on(tmp_path, customers, method="gmm"))
    assert res.k_selection["bic"].notna().all()
    assert res.k == 3 and adjusted_rand_score(truth, res.segments["segment"]) > 0.95


# ---------------------------------------------------------------------- input handling


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


def test_stage_reports_dropped_columns(tmp_path):
    customers, _ = blobs()
    customers["constant"] = 1.0
    res = segment.run_stage(
        run_on(tmp_path, customers, features=["days_since_last", "orders", "constant"])
    )
    assert res.features == ["days_since_last", "orders"]
    assert any("'constant' has the same value" in f for f in res.findings)


# ----------------------------------------------------------------- the gap statistic


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
    gap = segment.gap_statistic(X, labels, factory, (2, []), 10, 0)
    assert segment.gap_choice(gap) == 3
    noise = rng.uniform(size=(300, 2))
    labels = {k: factory(k, 0).fit_predict(noise) for k in range(1, 7)}
    assert segment.gap_choice(segment.gap_statistic(noise, labels, factory, (2, []), 10, 0)) == 1


def test_stability_high_for_blobs_low_for_noise():
    def factory(k, seed, n_init=3):
        return KMeans(k, n_init=n_init, random_state=seed)

    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(c, 0.5, size=(100, 2)) for c in ([0, 0], [6, 0], [0, 6])])
    labels = factory(3, 0).fit_predict(X)
    assert segment.jaccard_stability(X, labels, factory, 3, 0, 10).min() > 0.95
    noise = rng.uniform(size=(300, 2))
    labels = factory(6, 0).fit_predict(noise)
    assert segment.jaccard_stability(noise, labels, factory, 6, 0, 10).min() < 0.75


# ----------------------------------------------------------------------- k-prototypes


def _huang_cost(num, cat, centers_num, modes, labels, gamma):
    cost = 0.0
    for i in range(len(num)):
        c = labels[i]
        cost += ((num[i] - centers_num[c]) ** 2).sum()
        cost += gamma * sum(cat[i][j] != modes[c][j] for j in range(len(cat[i])))
    return cost


def test_kprototypes_cost_is_huangs_and_predict_agrees():
    c = mixed()
    num = np.log(c[["history"]].to_numpy())
    num = (num - num.mean()) / num.std()
    cats = c[["channel"]].astype(str).to_numpy()
    levels = sorted(set(cats[:, 0]))
    onehot = (cats[:, [0]] == np.array(levels)[None, :]).astype(float)
    X = np.hstack([num, onehot])
    model = KPrototypes(3, 1, (len(levels),), gamma=0.7, random_state=0).fit(X)
    centers_num = model.centers_[:, :1]
    modes = [[levels[int(np.argmax(row[1:]))]] for row in model.centers_]
    expected = _huang_cost(num, cats, centers_num, modes, model.labels_, 0.7)
    assert model.cost_ == pytest.approx(expected, rel=1e-9)
    assert np.array_equal(model.predict(X), model.labels_)
    assert adjusted_rand_score(c["truth"], model.labels_) > 0.9
    # numeric centres are the member means (Lloyd's fixed point)
    for k in range(3):
        assert centers_num[k, 0] == pytest.approx(num[model.labels_ == k, 0].mean())


def test_kprototypes_without_categories_is_kmeans():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(c, 0.4, size=(80, 2)) for c in ([0, 0], [5, 0], [0, 5])])
    ours = KPrototypes(3, 2, (), random_state=0).fit(X)
    ref = KMeans(3, n_init=10, random_state=0).fit(X)
    assert ours.cost_ == pytest.approx(ref.inertia_, rel=1e-6)
    assert adjusted_rand_score(ours.labels_, ref.labels_) == pytest.approx(1.0)


def test_mixed_data_path_end_to_end(tmp_path):
    c = mixed()
    res = run_mixed(tmp_path, c)
    assert res.method == "kprototypes" and res.k == 3
    assert adjusted_rand_score(c["truth"], res.segments["segment"]) > 0.9
    assert res.rfm is None  # no transaction features, no RFM view
    scored = Segmenter.load(tmp_path / "run").score(c)
    assert (scored["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()


# ------------------------------------------------------------------------------- RFM


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


def test_rfm_method(tmp_path):
    customers, _ = blobs()
    res = segment.run_stage(run_on(tmp_path, customers, method="rfm", names={1: "VIP"}))
    seg = res.segments
    assert res.method == "rfm" and res.k == seg["segment"].nunique()
    renamed = seg["segment"] == 1
    assert (seg.loc[renamed, "segment_name"] == "VIP").all()
    assert (seg.loc[~renamed, "segment_name"] == seg.loc[~renamed, "rfm_segment"]).all()
    assert set(seg["rfm_segment"]) <= set(RFM_SEGMENTS)
    attrs = pd.DataFrame({"customer_id": ["a", "b"] * 50, "age": range(100)})
    with pytest.raises(SegkitError, match=r"'rfm' needs the columns"):
        segment.run_stage(run_on(tmp_path / "x", attrs, method="rfm"))


# ----------------------------------------------------------------- scoring new customers


def test_segmenter_scores_and_flags(tmp_path):
    customers, _ = blobs(4)
    res = segment.run_stage(run_on(tmp_path, customers))
    seg = Segmenter.load(tmp_path / "run")
    again = seg.score(customers)
    assert (again["segment"].to_numpy() == res.segments["segment"].to_numpy()).all()
    assert (again["flag"] == "").all()
    new = customers.head(5).copy()
    new.loc[0, "revenue"] = 1e9
    new.loc[1, "days_since_last"] = -3
    new.loc[2, "orders"] = np.nan  # filled with the fitted median, as in fitting
    out = seg.score(new)
    assert out["segment"].isna().tolist() == [True, True, False, False, False]
    assert out.loc[0, "flag"].startswith("revenue above the fitted maximum")
    assert out.loc[1, "flag"].startswith("days_since_last below the fitted minimum")
    assert out.loc[0, "segment_name"] == segment.UNASSIGNED
    assert out["nearest_segment"].notna().all()
    with pytest.raises(SegkitError, match=r"missing column 'orders'"):
        seg.score(new.drop(columns="orders"))


def test_unseen_category_is_flagged(tmp_path):
    c = mixed()
    run_mixed(tmp_path, c)
    new = c.head(3).copy()
    new.loc[0, "channel"] = "fax"
    out = Segmenter.load(tmp_path / "run").score(new)
    assert out.loc[0, "flag"] == "channel level not seen in fitting"
    assert out["segment"].isna().tolist() == [True, False, False]


def test_segkit_score_command(tmp_path, capsys):
    from segkit.cli import main

    customers, _ = blobs(5)
    segment.run_stage(run_on(tmp_path, customers))
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
    seg = segment.run_stage(run_on(tmp_path, customers)).segments
    ax = plots.plot_rfm_grid(seg)
    assert ax.get_ylabel() == "R score (5 = most recent)"
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 25 and any(t.startswith("Champions") for t in texts)
