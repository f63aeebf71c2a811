"""segkit.segment.kprototypes and segkit.segment.models: Huang's cost, the methods, and
fitted models rebuilt from their arrays.

Reference values come from an explicit loop for Huang's k-prototypes cost and from
scikit-learn's own ``predict``.
"""

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from test_segment import mixed

from segkit import segment
from segkit.core.errors import SegkitError
from segkit.segment import KPrototypes


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


def test_make_model_unknown_method():
    with pytest.raises(SegkitError, match=r"expected one of kmeans, gmm, kprototypes, rfm"):
        segment.make_model("dbscan", 3, seed=0, layout=(1, []))


@pytest.mark.parametrize("method", ["kmeans", "gmm", "kprototypes"])
def test_models_from_arrays_predict_as_the_fitted_model(method):
    rng = np.random.default_rng(5)
    num = np.vstack([rng.normal(c, 1.0, size=(300, 3)) for c in ([0, 0, 0], [3, 0, 1], [0, 3, 2])])
    onehot = np.eye(2)[rng.integers(0, 2, len(num))]
    X = np.hstack([num, onehot])
    model = segment.make_model(method, 3, seed=0, layout=(3, [2])).fit(X)
    rebuilt = segment.model_from_dict(method, segment.model_to_dict(method, model))
    new = X + rng.normal(0, 0.5, size=X.shape)  # other rows than the fitted ones
    assert np.array_equal(rebuilt.predict(new), model.predict(new))


def test_models_from_bad_arrays_raise():
    with pytest.raises(SegkitError, match=r"kmeans centers: expected a non-empty finite 2-d"):
        segment.model_from_dict("kmeans", {"centers": [1.0, 2.0]})
    gm = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))
    d = segment.model_to_dict("gmm", gm)
    d["weights"] = [0.2, 0.3, 0.5]
    with pytest.raises(SegkitError, match=r"gmm: weights \(3,\), means \(2, 2\)"):
        segment.model_from_dict("gmm", d)
    with pytest.raises(SegkitError, match=r"KPrototypes: centers of shape \(1, 2\) and gamma"):
        KPrototypes.from_arrays(np.zeros((1, 2)), n_numeric=1, blocks=(2,), gamma=1.0)
    with pytest.raises(SegkitError, match=r"method 'dbscan': expected one of"):
        segment.model_from_dict("dbscan", {})
    with pytest.raises(SegkitError, match=r"method 'dbscan': expected one of"):
        segment.model_to_dict("dbscan", None)
    with pytest.raises(SegkitError, match=r"gmm: covariance_type 'diag', expected 'full'"):
        segment.model_to_dict("gmm", GaussianMixture(2, covariance_type="diag"))


def test_kprototypes_checks_its_columns():
    with pytest.raises(SegkitError, match=r"KPrototypes: 3 columns, expected 1 numeric \+ 3"):
        KPrototypes(2, 1, (3,)).fit(np.zeros((10, 3)))
    with pytest.raises(SegkitError, match=r"KPrototypes: 3 customers cannot form 4 segments"):
        KPrototypes(4, 3, ()).fit(np.random.default_rng(0).normal(size=(3, 3)))
    with pytest.raises(SegkitError, match=r"KPrototypes: n_init == 0, must be >= 1"):
        KPrototypes(2, 3, (), n_init=0).fit(np.random.default_rng(0).normal(size=(9, 3)))
