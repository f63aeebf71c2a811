"""The clustering methods: unfitted models, their metric space, and fitted models as arrays.

:func:`make_model` builds the estimator the stage fits (k-means, Gaussian mixture or
k-prototypes). A fitted model is kept by a saved segmenter as plain arrays
(:func:`model_to_dict`) and rebuilt as a small predictor (:func:`model_from_dict`) that
assigns rows with numpy exactly as the fitted estimator's ``predict`` does: nearest centre
for k-means, the largest weighted log density for mixtures, the nearest prototype in the
embedded space for k-prototypes, the quintile grid for RFM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture

from segkit.core.errors import SegkitError
from segkit.segment.kprototypes import KPrototypes
from segkit.segment.rfm import RFMScorer

#: The clustering methods (``cluster.method``).
METHODS = ("kmeans", "gmm", "kprototypes", "rfm")


def make_model(
    method: str,
    k: int,
    *,
    seed: int,
    layout: tuple[int, list[int]],
    n_init: int = 10,
    gamma: float | None = None,
) -> Any:
    """An unfitted model of ``method`` with ``k`` segments.

    Parameters
    ----------
    method : kmeans, gmm or kprototypes.
    k : number of segments.
    seed : random state.
    layout : (number of numeric columns, sizes of the one-hot blocks) of the matrix.
    n_init : starts (a third of them for mixtures, at least one).
    gamma : k-prototypes weight of a categorical mismatch; None = Huang's rule.

    Raises
    ------
    SegkitError
        An unknown method.

    Examples
    --------
    >>> make_model("kmeans", 3, seed=0, layout=(2, []))
    KMeans(n_clusters=3, n_init=10, random_state=0)
    """
    if method == "kmeans":
        return KMeans(k, n_init=n_init, random_state=seed)
    if method == "gmm":
        return GaussianMixture(k, n_init=max(1, n_init // 3), random_state=seed)
    if method == "kprototypes":
        n_num, blocks = layout
        return KPrototypes(k, n_num, tuple(blocks), gamma, n_init=n_init, random_state=seed)
    raise SegkitError(f"cluster.method == {method!r}: expected one of {', '.join(METHODS)}")


def metric_space(model: Any, X: np.ndarray) -> np.ndarray:
    """The matrix the indices are computed on: the model's own metric space."""
    return model.embed(X) if hasattr(model, "embed") else X


class Predictor(Protocol):
    """A fitted model as the segmenter uses it."""

    def predict(self, X: Any) -> np.ndarray: ...


@dataclass
class NearestCentre:
    """k-means assignment: the nearest centre (squared Euclidean distance)."""

    centers: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of each row's nearest centre (the first on a tie), as ``KMeans.predict``."""
        c = self.centers
        d = (c**2).sum(axis=1)[None, :] + (-2.0) * (np.asarray(X, dtype=float) @ c.T)
        return d.argmin(axis=1)


@dataclass
class Mixture:
    """Gaussian mixture (full covariances) assignment: the most probable component."""

    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of each row's most probable component, as ``GaussianMixture.predict``."""
        X = np.asarray(X, dtype=float)
        n_features = X.shape[1]
        chol = self.precisions_cholesky
        log_det = np.sum(np.log(chol.reshape(len(chol), -1)[:, :: n_features + 1]), axis=1)
        log_prob = np.empty((len(X), len(self.means)))
        for k, (mu, prec) in enumerate(zip(self.means, chol, strict=True)):
            y = (X @ prec) - (mu @ prec)
            log_prob[:, k] = np.sum(np.square(y), axis=1)
        log_prob = -0.5 * (n_features * math.log(2 * math.pi) + log_prob) + log_det
        return np.argmax(log_prob + np.log(self.weights), axis=1)


def model_to_dict(method: str, model: Any) -> dict[str, Any]:
    """The arrays of a fitted model of ``method``, as JSON-ready lists."""
    if method == "kmeans":
        return {"centers": model.cluster_centers_.tolist()}
    if method == "gmm":
        if model.covariance_type != "full":
            raise SegkitError(f"gmm: covariance_type {model.covariance_type!r}, expected 'full'")
        return {
            "weights": model.weights_.tolist(),
            "means": model.means_.tolist(),
            "precisions_cholesky": model.precisions_cholesky_.tolist(),
        }
    if method == "kprototypes":
        return {
            "centers": model.centers_.tolist(),
            "n_numeric": int(model.n_numeric),
            "blocks": [int(b) for b in model.blocks],
            "gamma": float(model.gamma_),
        }
    if method == "rfm":
        return {
            "columns": [[role, col] for role, col in model.role_columns().items()],
            "edges": {role: e.tolist() for role, e in model.edges_.items()},
        }
    raise SegkitError(f"method {method!r}: expected one of {', '.join(METHODS)}")


def _matrix(values: Any, name: str, ndim: int) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != ndim or not np.isfinite(a).all() or a.size == 0:
        raise SegkitError(f"{name}: expected a non-empty finite {ndim}-d array, got {a.shape}")
    return a


def _mixture(d: dict[str, Any]) -> Mixture:
    m = Mixture(
        _matrix(d["weights"], "gmm weights", 1),
        _matrix(d["means"], "gmm means", 2),
        _matrix(d["precisions_cholesky"], "gmm precisions_cholesky", 3),
    )
    k, p = m.means.shape
    if m.weights.shape != (k,) or m.precisions_cholesky.shape != (k, p, p):
        raise SegkitError(
            f"gmm: weights {m.weights.shape}, means {m.means.shape} and precisions "
            f"{m.precisions_cholesky.shape} do not fit together"
        )
    return m


def _rfm(d: dict[str, Any]) -> RFMScorer:
    scorer = RFMScorer({str(role): str(col) for role, col in d["columns"]})
    scorer.edges_ = {
        role: _matrix(d["edges"][role], f"rfm {role} edges", 1) for role in scorer.role_columns()
    }
    return scorer


def model_from_dict(method: str, d: dict[str, Any]) -> Predictor:
    """Rebuild the predictor of :func:`model_to_dict`; SegkitError on inconsistent arrays."""
    if method == "kmeans":
        return NearestCentre(_matrix(d["centers"], "kmeans centers", 2))
    if method == "gmm":
        return _mixture(d)
    if method == "kprototypes":
        return KPrototypes.from_arrays(
            _matrix(d["centers"], "kprototypes centers", 2),
            n_numeric=int(d["n_numeric"]),
            blocks=tuple(int(b) for b in d["blocks"]),
            gamma=float(d["gamma"]),
        )
    if method == "rfm":
        return _rfm(d)
    raise SegkitError(f"method {method!r}: expected one of {', '.join(METHODS)}")
