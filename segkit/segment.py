"""Stage 02, clustering: segments from customer features, with evidence for the number.

Methods (``cluster.method``):

- ``kmeans`` (default): k-means on log-transformed, robustly scaled numeric features and
  one-hot categorical attributes.
- ``gmm``: Gaussian mixtures (full covariances) on the same matrix; BIC joins the evidence.
- ``kprototypes``: Huang's k-prototypes for mixed numeric and categorical data (squared
  distance on the scaled numeric features plus ``gamma`` per mismatched category), with a
  ``predict``; see :class:`KPrototypes`.
- ``rfm``: the rule-based RFM segmentation marketers know: recency, frequency and money
  quintile scores 1-5 and a named cell for every combination; see :data:`RFM_GRID`.

The number of segments is chosen within ``cluster.k_min..k_max`` from silhouette,
Calinski-Harabasz, Davies-Bouldin, the gap statistic (Tibshirani, Walther & Hastie 2001),
BIC (mixtures) and bootstrap stability (each segment's mean Jaccard over resamples, as in
Hennig's clusterboot: under 0.6 unstable, over 0.75 stable); see :func:`select_k`.
Models are fitted on a sample of ``cluster.sample_size`` customers and everyone is assigned,
so the cost grows linearly with the customers. Segments are numbered by value per customer
(1 = most valuable), so segment 1 means the same on every rerun.

The fitted :class:`Segmenter` is saved with the run (``segmenter.joblib``) and assigns new
customers to the same segments (``segkit score``); a customer whose features fall outside
what it was fitted on is flagged and left unassigned rather than forced into a segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import joblib
import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.compose import ColumnTransformer
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler

from segkit.core.checks import SegkitError, check_columns
from segkit.stages.run import Run
from segkit.naming import segment_names

#: Default numeric features for transaction data (money and counts are log-transformed).
DEFAULT_FEATURES = ["days_since_last", "orders", "revenue", "aov", "tenure_days"]
_LOG = {"orders", "revenue", "aov", "frequency", "monetary", "items", "history"}
#: Column whose mean per segment orders the segments (first present wins).
VALUE_COLUMNS = ("revenue", "monetary", "history", "spend")

STABLE, UNSTABLE = 0.75, 0.6  # Hennig (2008), clusterboot documentation


# ------------------------------------------------------------------ features and checks


def default_features(customers: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns to cluster on when the parameters give none."""
    num = [c for c in DEFAULT_FEATURES if c in customers.columns]
    num += [c for c in customers.columns if c.startswith("share_")]
    skip = {
        "customer_id",
        "first_purchase",
        "last_purchase",
        "frequency",
        "recency",
        "T",
        "monetary",
        "items",
        "mean_ipt_days",
        *num,
    }
    rest = [c for c in customers.columns if c not in skip]
    num += [
        c
        for c in rest
        if pd.api.types.is_numeric_dtype(customers[c]) and customers[c].nunique() > 2
    ]
    cat = [c for c in rest if c not in num and customers[c].nunique() <= 30]
    return num, cat


def _offenders(customers: pd.DataFrame, mask, n: int = 5) -> str:
    """'customer_id a, b, c and 4 more' (or row numbers) for the rows where ``mask``."""
    mask = np.asarray(mask, dtype=bool)
    if "customer_id" in customers:
        ids = customers.loc[mask, "customer_id"].astype(str).tolist()
        what = "customer_id"
    else:
        ids = [str(i) for i in np.flatnonzero(mask)]
        what = "rows"
    more = f" and {len(ids) - n} more" if len(ids) > n else ""
    return f"{what} {', '.join(ids[:n])}{more}"


class Prepared(NamedTuple):
    data: pd.DataFrame  # the clustering columns, missing values filled
    numeric: list[str]
    categorical: list[str]
    notes: list[str]  # what was dropped or filled, for the report


def prepare(
    customers: pd.DataFrame, numeric: list[str], categorical: list[str], where: str = "customers"
) -> Prepared:
    """Check and tidy the clustering columns; every problem named, nothing silently changed.

    - a numeric feature that is not numeric, or holds infinite values: an error naming the
      column and the first offending customers;
    - a column with no values at all, or with one value only: dropped, with a note (it
      cannot separate customers); an error if no feature is left;
    - missing values: numeric filled with the column's median, categorical with the level
      ``"missing"``, with a note giving the count.
    """
    check_columns(customers, numeric + categorical, where)
    notes: list[str] = []
    num, cat = [], []
    for col in numeric:
        s = customers[col]
        if not pd.api.types.is_numeric_dtype(s):
            bad = pd.to_numeric(s, errors="coerce").isna() & s.notna()
            raise SegkitError(
                f"{where}: column {col!r} must be numeric to cluster on, found {s.dtype} "
                f"values such as {s[bad].astype(str).unique()[:3].tolist()}; list it under "
                f"cluster.categorical instead ({_offenders(customers, bad)})."
            )
        inf = np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
        if inf.any():
            raise SegkitError(
                f"{where}: column {col!r} has {int(inf.sum())} infinite value(s); segkit "
                f"expects finite numbers; fix the source or drop the rows "
                f"({_offenders(customers, inf)})."
            )
    for col in numeric + categorical:
        s = customers[col]
        if s.isna().all():
            notes.append(f"{col!r} is empty for every customer and was left out.")
        elif s.nunique(dropna=True) < 2 and not s.isna().any():
            notes.append(f"{col!r} has the same value for every customer and was left out.")
        else:
            (num if col in numeric else cat).append(col)
    if not num and not cat:
        raise SegkitError(
            f"{where}: no usable clustering feature: {' '.join(notes)} Give "
            f"cluster.features / cluster.categorical columns that vary between customers."
        )
    data = customers[num + cat].copy()
    for col in num:
        n = int(data[col].isna().sum())
        if n:
            data[col] = data[col].fillna(data[col].median())
            notes.append(f"{col!r}: {n:,} missing value(s) filled with the median.")
    for col in cat:
        n = int(data[col].isna().sum())
        data[col] = data[col].astype("string").fillna("missing").astype(str)
        if n:
            notes.append(f"{col!r}: {n:,} missing value(s) kept as the level 'missing'.")
    return Prepared(data, num, cat, notes)


def preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """log1p for skewed money/counts, robust scaling, one-hot for categories.

    Output columns: the numeric features first, then one block of indicator columns per
    categorical attribute (the layout :class:`KPrototypes` and the gap reference rely on).
    """
    logged = [c for c in numeric if c in _LOG]
    plain = [c for c in numeric if c not in _LOG]
    parts = []
    if logged:
        parts.append(
            (
                "log",
                make_pipeline(FunctionTransformer(np.log1p), RobustScaler(quantile_range=(5, 95))),
                logged,
            )
        )
    if plain:
        parts.append(("num", RobustScaler(quantile_range=(5, 95)), plain))
    if categorical:
        parts.append(
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)
        )
    return ColumnTransformer(parts)


def _layout(prep: ColumnTransformer) -> list[int]:
    """Sizes of the one-hot blocks after the numeric columns of a fitted preprocessor."""
    if "cat" not in prep.named_transformers_:
        return []
    return [len(c) for c in prep.named_transformers_["cat"].categories_]


# ------------------------------------------------------------------------- k-prototypes


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
    ):
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

    def fit(self, X, y=None):
        Z = self.embed(X)
        w = float(np.sqrt(self.gamma_ / 2))
        k, n = self.n_clusters, len(Z)
        if n < k:
            raise SegkitError(f"KPrototypes: {n} customers cannot form {k} segments")
        rng = np.random.default_rng(self.random_state)
        best = None
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
        self.cost_, self.centers_, self.labels_, self.n_iter_ = best
        return self

    def predict(self, X) -> np.ndarray:
        return self._assign(self.embed(X), self.centers_)[0]


def _space(model, X: np.ndarray) -> np.ndarray:
    """The matrix the indices are computed on: the model's own metric space."""
    return model.embed(X) if hasattr(model, "embed") else X


# -------------------------------------------------------------------------- the methods


def make_model(
    method: str,
    k: int,
    seed: int,
    layout: tuple[int, list[int]],
    n_init: int = 10,
    gamma: float | None = None,
):
    """An unfitted model of ``method`` with ``k`` segments (``layout``: numeric, blocks)."""
    if method == "kmeans":
        return KMeans(k, n_init=n_init, random_state=seed)
    if method == "gmm":
        return GaussianMixture(k, n_init=max(1, n_init // 3), random_state=seed)
    if method == "kprototypes":
        n_num, blocks = layout
        return KPrototypes(k, n_num, tuple(blocks), gamma, n_init=n_init, random_state=seed)
    raise SegkitError(
        f"cluster.method == {method!r}: expected one of kmeans, gmm, kprototypes, rfm"
    )


def within_ss(Z: np.ndarray, labels: np.ndarray) -> float:
    """Tibshirani's W_k: sum over segments of squared distances to the segment mean."""
    total = 0.0
    for c in np.unique(labels):
        part = Z[labels == c]
        total += float(((part - part.mean(axis=0)) ** 2).sum())
    return total


def _reference(X: np.ndarray, n_numeric: int, blocks: list[int], rng) -> np.ndarray:
    """A structureless data set like ``X``: numeric columns uniform over their range
    (Tibshirani et al.'s reference (a)), each categorical attribute a uniformly drawn level."""
    n = len(X)
    lo, hi = X[:, :n_numeric].min(axis=0), X[:, :n_numeric].max(axis=0)
    parts = [rng.uniform(lo, hi, size=(n, n_numeric))]
    for size in blocks:
        block = np.zeros((n, size))
        block[np.arange(n), rng.integers(0, size, n)] = 1.0
        parts.append(block)
    return np.hstack(parts)


def gap_statistic(
    X: np.ndarray,
    labels: dict[int, np.ndarray],
    factory,
    layout: tuple[int, list[int]],
    n_refs: int,
    seed: int,
    Z: np.ndarray | None = None,
) -> pd.DataFrame:
    """Gap(k) = E*[log W_k] - log W_k with its standard error s_k (Tibshirani et al. 2001).

    ``labels[k]`` are the found segments of the rows of ``X``; ``Z`` is ``X`` in the
    method's metric space (``X`` itself unless k-prototypes); ``factory(k, seed)`` fits the
    same method on ``n_refs`` reference data sets. Returns k, gap, gap_se.
    """
    n_num, blocks = layout
    rng = np.random.default_rng(seed)
    ks = sorted(labels)
    Z = X if Z is None else Z
    log_w = np.array([np.log(within_ss(Z, labels[k])) for k in ks])
    ref = np.zeros((n_refs, len(ks)))
    for b in range(n_refs):
        R = _reference(X, n_num, blocks, rng)
        for j, k in enumerate(ks):
            model = factory(k, seed + b).fit(R)
            ref[b, j] = np.log(within_ss(_space(model, R), model.predict(R)))
    sd = ref.std(axis=0) * np.sqrt(1 + 1 / max(n_refs, 1))
    return pd.DataFrame({"k": ks, "gap": ref.mean(axis=0) - log_w, "gap_se": sd})


def gap_choice(table: pd.DataFrame) -> int:
    """Smallest k with Gap(k) >= Gap(k+1) - s(k+1); the largest k if none."""
    t = table.sort_values("k").reset_index(drop=True)
    for i in range(len(t) - 1):
        if t.loc[i, "gap"] >= t.loc[i + 1, "gap"] - t.loc[i + 1, "gap_se"]:
            return int(t.loc[i, "k"])
    return int(t["k"].iloc[-1])


def jaccard_stability(X, labels, factory, k, seed, n_boot) -> np.ndarray:
    """Each segment's mean, over bootstrap resamples, of its best Jaccard match (clusterboot).

    As in Hennig (2007), the comparison is on the distinct customers of each resample:
    the segments refitted on the resample against the original segments restricted to it.
    """
    rng = np.random.default_rng(seed)
    scores = np.zeros((n_boot, k))
    for b in range(n_boot):
        idx = rng.integers(0, len(X), len(X))
        boot = factory(k, seed + b + 1, n_init=3).fit(X[idx])
        u = np.unique(idx)
        orig, new = labels[u], boot.predict(X[u])
        table = np.zeros((k, k))
        np.add.at(table, (orig, new), 1)
        union = table.sum(1)[:, None] + table.sum(0)[None, :] - table
        with np.errstate(invalid="ignore", divide="ignore"):
            jac = np.where(union > 0, table / union, 0.0)
        scores[b] = jac.max(axis=1)
    return scores.mean(axis=0)


def indices(Z: np.ndarray, labels: np.ndarray, probe: np.ndarray) -> dict[str, float]:
    """Silhouette (on the rows ``probe``: it is quadratic), Calinski-Harabasz and
    Davies-Bouldin of ``labels`` in the space ``Z``; NaN where only one segment shows."""
    one = len(np.unique(labels)) < 2
    return {
        "silhouette": np.nan
        if len(np.unique(labels[probe])) < 2
        else silhouette_score(Z[probe], labels[probe]),
        "calinski_harabasz": np.nan if one else calinski_harabasz_score(Z, labels),
        "davies_bouldin": np.nan if one else davies_bouldin_score(Z, labels),
    }


_INDICES = {  # index -> (column, better)
    "silhouette": ("silhouette", "max"),
    "Calinski-Harabasz": ("calinski_harabasz", "max"),
    "Davies-Bouldin": ("davies_bouldin", "min"),
    "gap statistic": ("gap", "rule"),
    "BIC": ("bic", "min"),
}


def select_k(
    X: np.ndarray,
    factory,
    layout: tuple[int, list[int]],
    k_min: int,
    k_max: int,
    seed: int,
    n_boot: int,
    min_size: int,
    n_refs: int = 10,
    X_all: np.ndarray | None = None,
    progress=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evidence for every k in ``k_min..k_max``, side by side, and a recommendation.

    Every index votes for its best k among the *admissible* ones: every segment has at
    least ``min_size`` customers (counted over ``X_all``, everyone) and is stable (mean
    Jaccard >= 0.75; if no k qualifies, >= 0.6; then size alone). The k with most votes
    is recommended; a tie goes to the more stable k (least stable segment's Jaccard, to two
    decimals), then to the better silhouette.

    Returns (table: one row per k with silhouette, calinski_harabasz, davies_bouldin, gap,
    gap_se, bic, stability, min_stability, min_size, admissible, votes, recommended;
    stability: one row per k and segment with its Jaccard).
    """
    X_all = X if X_all is None else X_all
    rng = np.random.default_rng(seed)
    probe = rng.choice(len(X), min(len(X), 4000), replace=False)
    rows, stab, probe_labels = [], [], {}
    Z = _space(factory(k_min, seed), X)  # the metric space is the method's, not k's
    for k in range(k_min, k_max + 1):
        model = factory(k, seed).fit(X)
        labels = model.predict(X)
        sizes = np.bincount(model.predict(X_all), minlength=k)
        jac = (
            jaccard_stability(X, labels, factory, k, seed, n_boot) if n_boot else np.full(k, np.nan)
        )
        stab += [{"k": k, "segment_label": c, "jaccard": j} for c, j in enumerate(jac)]
        probe_labels[k] = labels[probe]
        rows.append(
            {
                "k": k,
                **indices(Z, labels, probe),
                "bic": model.bic(X) if hasattr(model, "bic") else np.nan,
                "stability": float(np.mean(jac)),
                "min_stability": float(np.min(jac)),
                "min_size": int(sizes.min()),
            }
        )
        if progress:
            progress(k)
    table = pd.DataFrame(rows)
    if n_refs:
        gap = gap_statistic(X[probe], probe_labels, factory, layout, n_refs, seed, Z[probe])
        table = table.merge(gap, on="k")
    else:
        table["gap"], table["gap_se"] = np.nan, np.nan
    table = table[
        ["k", "silhouette", "calinski_harabasz", "davies_bouldin", "gap", "gap_se", "bic"]
        + ["stability", "min_stability", "min_size"]
    ]
    big = table["min_size"] >= min_size
    stable = table["min_stability"] >= STABLE if n_boot else big
    fair = table["min_stability"] >= UNSTABLE if n_boot else big
    for mask in (big & stable, big & fair, big, pd.Series(True, index=table.index)):
        if mask.any():
            break
    table["admissible"] = mask
    pool = table[mask]
    votes: dict[int, list[str]] = {int(k): [] for k in table["k"]}
    for name, (col, better) in _INDICES.items():
        if pool[col].isna().all():
            continue
        if better == "rule":  # the gap rule at an admissible k, or no vote
            k = gap_choice(table)
            if k not in set(pool["k"]) or (k == table["k"].max() and len(table) > 1):
                continue
        else:
            k = int(pool.loc[pool[col].idxmax() if better == "max" else pool[col].idxmin(), "k"])
        votes[k].append(name)
    table["votes"] = table["k"].map(lambda k: ", ".join(votes[int(k)]))
    n_votes = table["k"].map(lambda k: len(votes[int(k)])).where(mask, -1)
    top = table[n_votes == n_votes.max()]
    # a tie goes to the most stable k (its least stable segment), then the best silhouette
    key = top["min_stability"].fillna(0).round(2) * 10 + top["silhouette"].fillna(-1)
    best = int(top.loc[key.idxmax(), "k"])
    table["recommended"] = table["k"] == best
    return table, pd.DataFrame(stab)


def explain_choice(table: pd.DataFrame, k: int | None, min_size: int, n_boot: int) -> str:
    """Why the recommended k, in words: votes, dissent, stability, size, exclusions."""
    row = table[table["recommended"]].iloc[0]
    rec = int(row["k"])
    named = [v for v in row["votes"].split(", ") if v]
    others = [
        f"{v} prefers {int(r.k)}"
        for r in table.itertuples()
        if r.k != rec
        for v in (r.votes.split(", ") if r.votes else [])
    ]
    text = (
        f"k = {rec} is recommended: {len(named)} of "
        f"{sum(len(v.split(', ')) for v in table['votes'] if v)} measures point to it "
        f"({', '.join(named) or 'none; best silhouette'})"
        + (f"; {'; '.join(others)}" if others else "")
        + "."
    )
    if n_boot:
        text += (
            f" Its least stable segment keeps a Jaccard of {row['min_stability']:.2f} over "
            f"{n_boot} bootstrap resamples (over {STABLE} is stable, under {UNSTABLE} unstable)"
        )
    else:
        text += " Stability was not measured (cluster.n_bootstrap = 0)"
    text += f" and its smallest segment has {int(row['min_size']):,} customers."
    if n_boot and table["min_stability"].max() < UNSTABLE:
        text += (
            f" Caution: no k from {int(table['k'].min())} to {int(table['k'].max())} gives "
            f"stable segments (best least-stable Jaccard "
            f"{table['min_stability'].max():.2f}); the data have no strong natural groups, "
            f"so read these segments as a convenient partition, not as distinct types."
        )
    if "gap statistic" not in ",".join(table["votes"]) and table["gap"].notna().any():
        text += (
            f" The gap statistic keeps rising up to k = {gap_choice(table)} and gives no "
            f"admissible choice."
        )
    out = table[~table["admissible"]]
    if len(out):
        text += (
            f" Not admissible: k = {', '.join(str(int(x)) for x in out['k'])} (a segment "
            f"under {min_size} customers or unstable)."
        )
    if k and k != rec:
        text += f" The parameters fix k = {k} (cluster.k) instead."
    return text


# ----------------------------------------------------------------------------------- RFM

#: Feature columns behind R, F and M.
RFM_COLUMNS = {"recency": "days_since_last", "frequency": "orders", "monetary": "revenue"}
#: Named cells of the recency score R (rows, 1..5) by the combined frequency-money score
#: FM = floor((F + M) / 2) (columns, 1..5). The cells follow the widely used ten-segment
#: RFM map (Putler, "RFM Analysis for Successful Customer Segmentation"; the same grid on
#: recency against combined frequency and money is in churned.io's RFM model docs), made
#: non-overlapping so that every one of the 125 (R, F, M) combinations has exactly one name.
RFM_GRID = [
    # FM = 1           2                      3                      4                  5
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 1
    ["Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"],  # R = 2
    ["About to Sleep", "About to Sleep", "Need Attention", "Loyal", "Loyal"],  # R = 3
    ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal", "Loyal"],  # R = 4
    ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
]
#: The RFM segments, best first, and what marketers usually do with each.
RFM_SEGMENTS = {
    "Champions": "reward; ask for reviews and referrals",
    "Loyal": "upsell; loyalty programme",
    "Potential Loyalists": "membership or a second-category offer",
    "New Customers": "onboarding; make the second purchase easy",
    "Promising": "build awareness; small incentives",
    "Need Attention": "limited-time offer based on past purchases",
    "Can't Lose Them": "win back with a personal offer; ask what went wrong",
    "At Risk": "reconnect with personal e-mails and offers",
    "About to Sleep": "reactivate with popular products",
    "Hibernating": "low-cost reminders only",
}


def rfm_segment_name(r: int, f: int, m: int) -> str:
    """The named cell of scores (r, f, m), each 1..5."""
    return RFM_GRID[r - 1][(f + m) // 2 - 1]


class RFMScorer(BaseEstimator):
    """Quintile scores 1-5 for recency, frequency and money, and the named RFM segment.

    The cut points are the 20/40/60/80 % quantiles of the customers it is fitted on and
    are kept, so new customers are scored on the same scale. A value equal to a cut point
    takes the lower score and tied values share a score (so a class can hold more than
    20 %, e.g. all one-time buyers get F = 1); R is reversed: the most recent get 5.
    """

    def __init__(self, columns: dict[str, str] | None = None):
        self.columns = columns

    def _cols(self) -> dict[str, str]:
        return self.columns or RFM_COLUMNS

    def fit(self, data: pd.DataFrame, y=None):
        self.edges_ = {
            role: np.quantile(data[col].to_numpy(float), [0.2, 0.4, 0.6, 0.8])
            for role, col in self._cols().items()
        }
        self.labels_ = self.predict(data)
        return self

    def scores(self, data: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for role, col in self._cols().items():
            up = 1 + np.searchsorted(self.edges_[role], data[col].to_numpy(float), side="left")
            out[f"{role[0]}_score"] = (6 - up if role == "recency" else up).astype("int8")
        return pd.DataFrame(out, index=data.index)

    def names(self, data: pd.DataFrame) -> np.ndarray:
        s = self.scores(data)
        grid = np.array(RFM_GRID, dtype=object)
        fm = (s["f_score"].to_numpy() + s["m_score"].to_numpy()) // 2
        return grid[s["r_score"].to_numpy() - 1, fm - 1]

    def predict(self, data: pd.DataFrame) -> np.ndarray:
        """Index of each customer's RFM segment in :data:`RFM_SEGMENTS`."""
        order = {name: i for i, name in enumerate(RFM_SEGMENTS)}
        return np.array([order[n] for n in self.names(data)])


def rfm_table(customers: pd.DataFrame, scorer: RFMScorer) -> pd.DataFrame:
    """Customers, share of customers and revenue, mean scores per RFM segment (all ten)."""
    s = scorer.scores(customers)
    s["rfm_segment"] = scorer.names(customers)
    s["revenue"] = customers[scorer._cols()["monetary"]].to_numpy()
    g = s.groupby("rfm_segment")
    out = pd.DataFrame({"customers": g.size(), "revenue": g["revenue"].sum()})
    out = out.reindex(list(RFM_SEGMENTS), fill_value=0)
    for col in ("r_score", "f_score", "m_score"):
        out[f"mean_{col}"] = g[col].mean().reindex(out.index)
    out["share_customers"] = out["customers"] / len(s)
    out["share_revenue"] = out["revenue"] / max(s["revenue"].sum(), 1e-12)
    out["action"] = [RFM_SEGMENTS[n] for n in out.index]
    return out.rename_axis("rfm_segment").reset_index()


# ----------------------------------------------------------------------- the segmenter

UNASSIGNED = "not assigned: outside the fitted range"


def _version() -> str:
    from segkit import __version__

    return __version__


@dataclass
class Segmenter:
    """A fitted segmentation that assigns new customers to the same numbered segments.

    Saved with each run as ``artifacts/segmenter.joblib``; load it with :meth:`load` and
    call :meth:`score`, or use ``segkit score RUN CUSTOMERS``.
    """

    method: str
    numeric: list[str]
    categorical: list[str]
    prep: Any  # fitted ColumnTransformer; None for rfm
    model: Any
    relabel: dict[int, int]  # model label -> segment number
    names: dict[int, str]
    medians: dict[str, float]
    ranges: dict[str, tuple[float, float]]
    levels: dict[str, list[str]]
    n_customers: int
    run: str = ""
    version: str = field(default_factory=_version)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def _raw(self, data: pd.DataFrame) -> np.ndarray:
        if self.method == "rfm":
            return self.model.predict(data)
        return self.model.predict(self.prep.transform(data))

    def assign(self, data: pd.DataFrame) -> np.ndarray:
        """Segment numbers for prepared rows (no range checks); -1 for an unknown label."""
        return np.array([self.relabel.get(int(x), -1) for x in self._raw(data)])

    def flags(self, customers: pd.DataFrame) -> pd.Series:
        """Per row, why it is outside what the segmenter was fitted on ('' when inside)."""
        reasons = pd.Series("", index=customers.index, dtype=object)

        def add(mask, text):
            mask = np.asarray(mask)
            reasons[mask] = reasons[mask] + np.where(reasons[mask] == "", "", "; ") + text

        for col in self.numeric:
            lo, hi = self.ranges[col]
            v = pd.to_numeric(customers[col], errors="coerce").to_numpy(float)
            add(v < lo, f"{col} below the fitted minimum {lo:g}")
            add(v > hi, f"{col} above the fitted maximum {hi:g}")
            add(np.isnan(v) & customers[col].notna().to_numpy(), f"{col} not a number")
        for col in self.categorical:
            v = customers[col].astype("string").fillna("missing").astype(str)
            add(~v.isin(self.levels[col]).to_numpy(), f"{col} level not seen in fitting")
        return reasons

    def score(self, customers: pd.DataFrame, where: str = "customers") -> pd.DataFrame:
        """Assign ``customers`` (one row each, the fitted feature columns) to segments.

        Returns customer_id, segment (<NA> when flagged), segment_name, nearest_segment
        (what the model would say regardless) and flag (the reason; '' when in range).
        Missing values are filled as in fitting (numeric median, level 'missing').
        """
        check_columns(customers, ["customer_id", *self.features], where)
        flag = self.flags(customers)
        data = customers[self.features].copy()
        for col in self.numeric:
            v = pd.to_numeric(data[col], errors="coerce").replace([np.inf, -np.inf], np.nan)
            data[col] = v.fillna(self.medians[col])
        for col in self.categorical:
            data[col] = data[col].astype("string").fillna("missing").astype(str)
        nearest = pd.array(self.assign(data), dtype="Int64")
        inside = (flag == "").to_numpy()
        segment = nearest.copy()
        segment[~inside] = pd.NA
        out = pd.DataFrame(
            {
                "customer_id": customers["customer_id"].to_numpy(),
                "segment": segment,
                "segment_name": [
                    self.names.get(int(s), "") if ok else UNASSIGNED
                    for s, ok in zip(nearest, inside, strict=True)
                ],
                "nearest_segment": nearest,
                "flag": flag.to_numpy(),
            }
        )
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        joblib.dump(self, tmp)
        tmp.replace(path)
        return path

    @staticmethod
    def load(path: str | Path) -> Segmenter:
        """Load a segmenter from its file or from a run folder that holds one."""
        path = Path(path)
        if path.is_dir():
            path = next(
                (
                    p
                    for p in (path / "artifacts" / "segmenter.joblib", path / "segmenter.joblib")
                    if p.is_file()
                ),
                path / "artifacts" / "segmenter.joblib",
            )
        if not path.is_file():
            raise SegkitError(
                f"no fitted segmenter at {path}; run the clustering stage first "
                f"(segkit run --stages explore,cluster)"
            )
        obj = joblib.load(path)
        if not isinstance(obj, Segmenter):
            raise SegkitError(f"{path} holds a {type(obj).__name__}, not a segkit Segmenter")
        return obj


def read_customers(path: str | Path) -> pd.DataFrame:
    """A customer table for scoring: Parquet, or CSV (any delimiter, .gz) with string ids."""
    path = Path(path)
    if not path.is_file():
        raise SegkitError(f"customer table {path} not found")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, sep=None, engine="python", dtype={"customer_id": str})
    if df.empty:
        raise SegkitError(f"{path}: no customer rows (header only or empty)")
    return df


def score_file(run_or_segmenter: str | Path, customers: str | Path, out: str | Path | None = None):
    """Score a customer table with a saved segmenter; write CSV; return (path, scored)."""
    seg = Segmenter.load(run_or_segmenter)
    table = read_customers(customers)
    scored = seg.score(table, where=str(customers))
    src = Path(customers)
    name = src.name.split(".")[0]
    out = Path(out) if out else src.with_name(f"{name}.segments.csv")
    tmp = out.with_name(out.name + ".tmp")
    scored.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(out)
    return out, scored


# ---------------------------------------------------------------------------- the stage


class Clustering(NamedTuple):
    findings: list[str]
    k_selection: pd.DataFrame
    stability: pd.DataFrame
    segments: pd.DataFrame
    sizes: pd.DataFrame
    features: list[str]
    k: int
    explanation: str
    method: str
    rfm: pd.DataFrame | None  # RFM segment table (transaction data), else None
    notes: list[str]  # columns dropped or filled before clustering
    segmenter: Segmenter


def _value_column(customers: pd.DataFrame, numeric: list[str]) -> str:
    return next((c for c in VALUE_COLUMNS if c in customers.columns), numeric[0] if numeric else "")


def _order(customers: pd.DataFrame, raw: np.ndarray, value: str) -> dict[int, int]:
    """Model label -> segment number, 1 = highest mean ``value`` (then the larger)."""
    v = customers[value].to_numpy(float) if value else np.zeros(len(raw))
    g = pd.DataFrame({"raw": raw, "v": v}).groupby("raw")["v"].agg(["mean", "size"])
    g = g.sort_values(["mean", "size"], ascending=False, kind="stable")
    return {int(old): new + 1 for new, old in enumerate(g.index)}


def run_stage(run: Run, progress=None) -> Clustering:
    """Segment the customers of ``run``; writes segments, k_selection, stability, rfm,
    segmenter."""
    p = run.params["cluster"]
    customers = run.load("customers")
    method = p["method"]
    n = len(customers)
    has_rfm = set(RFM_COLUMNS.values()) <= set(customers.columns)
    if n < 2:
        raise SegkitError(f"customers has {n} row(s): a single customer cannot be segmented")
    if method == "rfm":
        if not has_rfm:
            raise SegkitError(
                f"cluster.method == 'rfm' needs the columns {sorted(RFM_COLUMNS.values())} of a "
                f"transaction log; customers has {sorted(customers.columns)}. Use kmeans or "
                f"kprototypes on customer attributes."
            )
        num, cat = list(RFM_COLUMNS.values()), []
    else:
        num, cat = default_features(customers)
        if p["features"]:
            check_columns(customers, p["features"], "customers (cluster.features)")
            num = list(p["features"])
        if p["categorical"] is not None:
            check_columns(customers, p["categorical"], "customers (cluster.categorical)")
            cat = list(p["categorical"])
        k_need = max(p["k_max"], p["k"] or 0)
        if n < 10 * k_need:
            raise SegkitError(
                f"customers has {n} rows; cluster.k_max == {p['k_max']} needs at least "
                f"{10 * k_need} (10 customers per segment). Lower cluster.k_max (and "
                f"cluster.k_min) or give more customers."
            )
    prepared = prepare(customers, num, cat, "customers (clustering features)")
    data, num, cat = prepared.data, prepared.numeric, prepared.categorical
    if method == "rfm" and len(num) < 3:
        raise SegkitError(f"cluster.method == 'rfm': {' '.join(prepared.notes)}")
    prep = preprocessor(num, cat)
    rng = np.random.default_rng(run.seed)
    fit_idx = np.sort(rng.choice(n, min(n, p["sample_size"]), replace=False))
    X_all = prep.fit(data.iloc[fit_idx]).transform(data)
    X = X_all[fit_idx]
    layout = (len(num), _layout(prep))

    gamma = p["gamma"]
    if method == "kprototypes" and gamma is None and num:  # Huang's rule on the whole sample
        gamma = 0.5 * float(X[:, : len(num)].std(axis=0).mean()) or 1.0

    def factory(k, seed, n_init=10):
        kind = method if method != "rfm" else "kmeans"
        return make_model(kind, k, seed, layout, n_init, gamma)

    scorer = RFMScorer().fit(customers) if has_rfm else None
    if method == "rfm":
        model = scorer
        raw = scorer.labels_
        present = np.unique(raw)
        k = len(present)
        dense = np.searchsorted(present, raw)
        Z = X_all
        probe = rng.choice(n, min(n, 4000), replace=False)
        table = pd.DataFrame(
            [
                {
                    "k": k,
                    **indices(Z, dense, probe),
                    "gap": np.nan,
                    "gap_se": np.nan,
                    "bic": np.nan,
                    "stability": np.nan,
                    "min_stability": np.nan,
                    "min_size": int(np.bincount(dense).min()),
                    "admissible": True,
                    "votes": "rule-based (RFM)",
                    "recommended": True,
                }
            ]
        )
        stab = pd.DataFrame(columns=["k", "segment_label", "jaccard"])
        explanation = (
            f"RFM segmentation (cluster.method = rfm): quintile scores and the named R × FM "
            f"grid give {k} non-empty segments; the number is set by the rules, not chosen."
        )
    else:
        table, stab = select_k(
            X,
            factory,
            layout,
            p["k_min"],
            p["k_max"],
            run.seed,
            p["n_bootstrap"],
            p["min_segment_size"],
            p["gap_references"],
            X_all,
            progress,
        )
        rec = int(table.loc[table["recommended"], "k"].iloc[0])
        k = p["k"] or rec
        model = factory(k, run.seed).fit(X)
        raw = model.predict(X_all)
        explanation = explain_choice(table, p["k"], p["min_segment_size"], p["n_bootstrap"])
    value = _value_column(customers, num)
    relabel = _order(customers, raw, value)
    labels = pd.Series([relabel[int(x)] for x in raw], index=customers.index)
    if method == "rfm":
        rfm_names = list(RFM_SEGMENTS)
        names = {relabel[int(r)]: rfm_names[int(r)] for r in np.unique(raw)}
        for key, val in (p["names"] or {}).items():
            names[int(key)] = str(val)
    else:
        names = segment_names(customers, labels, p["names"] or None)
    segments = pd.DataFrame({"customer_id": customers["customer_id"], "segment": labels.to_numpy()})
    segments["segment_name"] = segments["segment"].map(names)
    rfm = None
    if scorer is not None:
        segments = pd.concat([segments, scorer.scores(customers).reset_index(drop=True)], axis=1)
        segments["rfm_segment"] = scorer.names(customers)
        rfm = rfm_table(customers, scorer)
        run.save("rfm.csv", rfm)
    segmenter = Segmenter(
        method=method,
        numeric=num,
        categorical=cat,
        prep=None if method == "rfm" else prep,
        model=model,
        relabel=relabel,
        names=names,
        medians={c: float(data[c].median()) for c in num},
        ranges={c: (float(data[c].min()), float(data[c].max())) for c in num},
        levels={c: sorted(data[c].unique().tolist()) for c in cat},
        n_customers=n,
        run=run.params["name"],
    )
    run.save("segments.parquet", segments)
    run.save("k_selection.csv", table)
    run.save("stability.csv", stab)
    segmenter.save(run.artifacts / "segmenter.joblib")
    sizes = segments.groupby(["segment", "segment_name"]).size().rename("customers").reset_index()
    sizes["share"] = sizes["customers"] / len(segments)
    if value:
        sizes[f"mean_{value}"] = (
            customers[value].groupby(labels.to_numpy()).mean().reindex(sizes["segment"]).to_numpy()
        )
    top = sizes.iloc[0]
    how = {
        "kmeans": "k-means",
        "gmm": "Gaussian mixtures",
        "kprototypes": "k-prototypes (mixed numeric and categorical)",
        "rfm": "RFM scores",
    }[method]
    findings = [
        f"{k} segments ({how}); the most valuable, '{top['segment_name']}', holds "
        f"{top['share']:.0%} of customers.",
        explanation,
    ]
    findings += [
        f"Segment {r.segment} '{r.segment_name}': {r.customers:,} customers ({r.share:.0%})."
        for r in sizes.itertuples()
    ]
    if rfm is not None and method != "rfm":
        big = rfm.sort_values("customers", ascending=False).iloc[0]
        champ = rfm.set_index("rfm_segment").loc["Champions"]
        findings.append(
            f"RFM view: the largest RFM group is '{big['rfm_segment']}' "
            f"({big['share_customers']:.0%} of customers); Champions are "
            f"{champ['share_customers']:.0%} of customers and {champ['share_revenue']:.0%} of "
            f"revenue."
        )
    findings += [f"Data note: {note}" for note in prepared.notes]
    run.save_findings("cluster", findings)
    return Clustering(
        findings,
        table,
        stab,
        segments,
        sizes,
        num + cat,
        k,
        explanation,
        method,
        rfm,
        prepared.notes,
        segmenter,
    )
