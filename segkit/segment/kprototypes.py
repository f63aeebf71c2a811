"""Huang's k-prototypes for mixed numeric and categorical data, vectorized, with ``predict``."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import kmeans_plusplus

from segkit.core.errors import SegkitError


class KPrototypes(ClusterMixin, BaseEstimator):
    """Huang's (1998) k-prototypes on ``[scaled numeric | one-hot blocks]``, with ``predict``.

    The cost of a customer against a prototype is the squared distance on the numeric
    columns plus ``gamma`` times the number of categorical attributes that differ from the
    prototype's modes. Since a mismatch between two one-hot rows is half their squared
    distance, that cost is the squared distance after scaling the indicator columns by
    ``sqrt(gamma / 2)`` (:meth:`embed`): the Lloyd iterations below are k-means in that
    space with each categorical block of a prototype held at its mode. Silhouette and the
    other indices are computed in the same space.

    Written here rather than taken from ``kmodes`` (0.12.2, last release 2022): its
    ``KPrototypes`` moves points one at a time in Python and took 35 s for a single fit
    (8,000 Hillstrom customers, k = 4, n_init = 10) on this machine, which makes a choice
    of k with bootstrap stability impractical; this vectorized version takes well under a
    second (benchmarks/results/bench_segment.md).

    Parameters
    ----------
    n_clusters : number of prototypes.
    n_numeric : the first ``n_numeric`` columns are numeric.
    blocks : sizes of the one-hot blocks that follow, one per categorical attribute.
    gamma : weight of one categorical mismatch; None = half the mean standard deviation of
        the numeric columns (Huang's suggestion, the ``kmodes`` default).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        n_numeric: int = 0,
        blocks: tuple[int, ...] = (),
        gamma: float | None = None,
        n_init: int = 10,
        max_iter: int = 100,
        random_state: int | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.n_numeric = n_numeric
        self.blocks = blocks
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _weights(self, X: np.ndarray) -> np.ndarray:
        if self.n_numeric + sum(self.blocks) != X.shape[1]:
            raise SegkitError(
                f"KPrototypes: {X.shape[1]} columns, expected {self.n_numeric} numeric + "
                f"{sum(self.blocks)} one-hot"
            )
        if not hasattr(self, "gamma_"):
            num = X[:, : self.n_numeric]
            gamma = self.gamma
            if gamma is None:
                gamma = 0.5 * float(num.std(axis=0).mean()) if self.n_numeric else 1.0
            self.gamma_ = float(gamma) if gamma > 0 else 1.0
        w = np.ones(X.shape[1])
        w[self.n_numeric :] = np.sqrt(self.gamma_ / 2)
        return w

    def embed(self, X: np.ndarray) -> np.ndarray:
        """``X`` in the space where squared distance is the k-prototypes cost."""
        return np.asarray(X, dtype=float) * self._weights(X)

    def _modes(self, centers: np.ndarray, w: float) -> np.ndarray:
        start = self.n_numeric
        for size in self.blocks:
            block = centers[:, start : start + size]
            mode = np.zeros_like(block)
            mode[np.arange(len(block)), block.argmax(axis=1)] = w
            centers[:, start : start + size] = mode
            start += size
        return centers

    @staticmethod
    def _assign(Z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = (Z**2).sum(1)[:, None] - 2 * Z @ centers.T + (centers**2).sum(1)[None, :]
        labels = d.argmin(axis=1)
        return labels, np.maximum(d[np.arange(len(Z)), labels], 0)

    def fit(self, X: np.ndarray, y: Any = None) -> KPrototypes:
        """Fit the prototypes (best of ``n_init`` k-means++ starts by total cost)."""
        Z = self.embed(X)
        w = float(np.sqrt(self.gamma_ / 2))
        k, n = self.n_clusters, len(Z)
        if n < k:
            raise SegkitError(f"KPrototypes: {n} customers cannot form {k} segments")
        rng = np.random.default_rng(self.random_state)
        best: tuple[float, np.ndarray, np.ndarray, int] | None = None
        for _ in range(self.n_init):
            seed = int(rng.integers(2**31 - 1))
            centers, _ = kmeans_plusplus(Z, k, random_state=seed)
            centers = self._modes(centers.copy(), w)
            labels = np.full(n, -1)
            for it in range(1, self.max_iter + 1):  # noqa: B007 (n_iter_ below)
                new, dist = self._assign(Z, centers)
                if np.array_equal(new, labels):
                    break
                labels = new
                member = sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(k, n))
                counts = np.asarray(member.sum(axis=1)).ravel()
                sums = np.asarray(member @ Z)
                empty = counts == 0
                centers = np.where(empty[:, None], centers, sums / np.maximum(counts, 1)[:, None])
                if empty.any():  # reseed an empty prototype at the worst-served customer
                    centers[empty] = Z[np.argsort(dist)[::-1][: int(empty.sum())]]
                centers = self._modes(centers, w)
            cost = float(self._assign(Z, centers)[1].sum())
            if best is None or cost < best[0]:
                best = (cost, centers, labels, it)
        if best is None:
            raise SegkitError(f"KPrototypes: n_init == {self.n_init}, must be >= 1")
        self.cost_, self.centers_, self.labels_, self.n_iter_ = best
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of each row's nearest prototype."""
        return self._assign(self.embed(X), self.centers_)[0]

    @classmethod
    def from_arrays(
        cls, centers: np.ndarray, *, n_numeric: int, blocks: tuple[int, ...], gamma: float
    ) -> KPrototypes:
        """A fitted model from its prototypes (in the embedded space) and ``gamma_``."""
        centers = np.asarray(centers, dtype=float)
        if centers.ndim != 2 or centers.shape[1] != n_numeric + sum(blocks) or gamma <= 0:
            raise SegkitError(
                f"KPrototypes: centers of shape {centers.shape} and gamma {gamma} do not fit "
                f"{n_numeric} numeric + {sum(blocks)} one-hot columns (gamma > 0)"
            )
        model = cls(len(centers), n_numeric, tuple(blocks))
        model.gamma_ = float(gamma)
        model.centers_ = centers
        return model
