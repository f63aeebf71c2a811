"""How many segments: the indices, the gap statistic, bootstrap stability and the vote.

The number of segments is chosen within ``k_min..k_max`` from silhouette,
Calinski-Harabasz, Davies-Bouldin, the gap statistic (Tibshirani, Walther & Hastie 2001),
BIC (mixtures) and bootstrap stability (each segment's mean Jaccard over resamples, as in
Hennig's clusterboot: under :data:`~segkit.core.params.UNSTABLE` unstable, over
:data:`~segkit.core.params.STABLE` stable); see :func:`select_k` and, for the wording,
:func:`explain_choice`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score

from segkit.core.params import STABLE, UNSTABLE
from segkit.segment.models import metric_space

#: Rows the silhouette and the gap statistic are computed on (both are costly in n).
PROBE_SIZE = 4000

#: ``factory(k, seed, n_init=...)`` -> an unfitted model with ``fit`` and ``predict``.
Factory = Callable[..., Any]


def within_ss(Z: np.ndarray, labels: np.ndarray) -> float:
    """Tibshirani's W_k: sum over segments of squared distances to the segment mean.

    >>> within_ss(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1]))
    2.0
    """
    total = 0.0
    for c in np.unique(labels):
        part = Z[labels == c]
        total += float(((part - part.mean(axis=0)) ** 2).sum())
    return total


def _reference(
    X: np.ndarray, n_numeric: int, blocks: list[int], rng: np.random.Generator
) -> np.ndarray:
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
    factory: Factory,
    *,
    layout: tuple[int, list[int]],
    n_refs: int,
    seed: int,
    Z: np.ndarray | None = None,
) -> pd.DataFrame:
    """Gap(k) = E*[log W_k] - log W_k with its standard error s_k (Tibshirani et al. 2001).

    Parameters
    ----------
    X : the rows (numeric columns first, then one-hot blocks as in ``layout``).
    labels : ``labels[k]``, the found segments of the rows of ``X``, for every k.
    factory : ``factory(k, seed)`` fits the same method on each reference data set.
    layout : (number of numeric columns, sizes of the one-hot blocks).
    n_refs : number of reference data sets.
    seed : random seed.
    Z : ``X`` in the method's metric space (``X`` itself unless k-prototypes).

    Returns
    -------
    k, gap, gap_se.
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
            ref[b, j] = np.log(within_ss(metric_space(model, R), model.predict(R)))
    sd = ref.std(axis=0) * np.sqrt(1 + 1 / max(n_refs, 1))
    return pd.DataFrame({"k": ks, "gap": ref.mean(axis=0) - log_w, "gap_se": sd})


def gap_choice(table: pd.DataFrame) -> int:
    """Smallest k with Gap(k) >= Gap(k+1) - s(k+1); the largest k if none.

    >>> gap_choice(pd.DataFrame({"k": [2, 3, 4], "gap": [0.1, 0.5, 0.52],
    ...                          "gap_se": [0.02, 0.02, 0.05]}))
    3
    """
    t = table.sort_values("k").reset_index(drop=True)
    for i in range(len(t) - 1):
        if t.loc[i, "gap"] >= t.loc[i + 1, "gap"] - t.loc[i + 1, "gap_se"]:
            return int(t.loc[i, "k"])
    return int(t["k"].iloc[-1])


def jaccard_stability(
    X: np.ndarray, labels: np.ndarray, factory: Factory, *, k: int, seed: int, n_boot: int
) -> np.ndarray:
    """Each segment's mean, over bootstrap resamples, of its best Jaccard match (clusterboot).

    As in Hennig (2007), the comparison is on the distinct customers of each resample:
    the segments refitted on the resample against the original segments restricted to it.

    Parameters
    ----------
    X : the rows; ``labels`` their segments 0..k-1.
    factory : ``factory(k, seed, n_init=3)`` is refitted on each resample.
    k, seed, n_boot : number of segments, random seed, number of resamples.

    Returns
    -------
    The mean Jaccard of each of the k segments.
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
_COLUMNS = ["k", "silhouette", "calinski_harabasz", "davies_bouldin", "gap", "gap_se", "bic"]
_COLUMNS += ["stability", "min_stability", "min_size"]


def _sweep(
    X: np.ndarray,
    factory: Factory,
    *,
    ks: range,
    seed: int,
    n_boot: int,
    X_all: np.ndarray,
    probe: np.ndarray,
    progress: Callable[[int], Any] | None,
) -> tuple[list[dict], list[dict], dict[int, np.ndarray], np.ndarray]:
    """Fit every k: its indices, BIC, stability and sizes; the probe rows' labels."""
    rows, stab, probe_labels = [], [], {}
    Z = metric_space(factory(ks[0], seed), X)  # the metric space is the method's, not k's
    for k in ks:
        model = factory(k, seed).fit(X)
        labels = model.predict(X)
        sizes = np.bincount(model.predict(X_all), minlength=k)
        jac = (
            jaccard_stability(X, labels, factory, k=k, seed=seed, n_boot=n_boot)
            if n_boot
            else np.full(k, np.nan)
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
    return rows, stab, probe_labels, Z


def admissible(table: pd.DataFrame, min_size: int, n_boot: int) -> pd.Series:
    """The k whose segments are all at least ``min_size`` and stable (Jaccard >=
    :data:`STABLE`); if none, fairly stable (>= :data:`UNSTABLE`); then size alone; then all."""
    big = table["min_size"] >= min_size
    stable = table["min_stability"] >= STABLE if n_boot else big
    fair = table["min_stability"] >= UNSTABLE if n_boot else big
    for mask in (big & stable, big & fair, big):
        if mask.any():
            return mask
    return pd.Series(True, index=table.index)


def _votes(table: pd.DataFrame, mask: pd.Series) -> dict[int, list[str]]:
    """k -> the indices that vote for it (each its best admissible k)."""
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
    return votes


def select_k(
    X: np.ndarray,
    factory: Factory,
    *,
    layout: tuple[int, list[int]],
    k_min: int,
    k_max: int,
    seed: int,
    n_boot: int,
    min_size: int,
    n_refs: int = 10,
    X_all: np.ndarray | None = None,
    progress: Callable[[int], Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evidence for every k in ``k_min..k_max``, side by side, and a recommendation.

    Every index votes for its best k among the *admissible* ones: every segment has at
    least ``min_size`` customers (counted over ``X_all``, everyone) and is stable (mean
    Jaccard >= :data:`STABLE`; if no k qualifies, >= :data:`UNSTABLE`; then size alone).
    The k with most votes is recommended; a tie goes to the more stable k (least stable
    segment's Jaccard, to two decimals), then to the better silhouette.

    Parameters
    ----------
    X : the fitting sample (transformed); ``X_all`` everyone (default ``X``).
    factory : ``factory(k, seed, n_init=10)`` -> an unfitted model.
    layout : (number of numeric columns, sizes of the one-hot blocks) of ``X``.
    k_min, k_max : the range of k.
    seed : random seed.
    n_boot : bootstrap resamples for the stability (0 = not measured).
    min_size : smallest admissible segment.
    n_refs : reference data sets of the gap statistic (0 = no gap).
    progress : called with each k when it is done.

    Returns
    -------
    (table: one row per k with silhouette, calinski_harabasz, davies_bouldin, gap, gap_se,
    bic, stability, min_stability, min_size, admissible, votes, recommended;
    stability: one row per k and segment with its Jaccard).
    """
    X_all = X if X_all is None else X_all
    rng = np.random.default_rng(seed)
    probe = rng.choice(len(X), min(len(X), PROBE_SIZE), replace=False)
    rows, stab, probe_labels, Z = _sweep(
        X,
        factory,
        ks=range(k_min, k_max + 1),
        seed=seed,
        n_boot=n_boot,
        X_all=X_all,
        probe=probe,
        progress=progress,
    )
    table = pd.DataFrame(rows)
    if n_refs:
        gap = gap_statistic(
            X[probe], probe_labels, factory, layout=layout, n_refs=n_refs, seed=seed, Z=Z[probe]
        )
        table = table.merge(gap, on="k")
    else:
        table["gap"], table["gap_se"] = np.nan, np.nan
    table = table[_COLUMNS]
    mask = admissible(table, min_size, n_boot)
    table["admissible"] = mask
    votes = _votes(table, mask)
    table["votes"] = table["k"].map(lambda k: ", ".join(votes[int(k)]))
    table["recommended"] = table["k"] == recommended_k(table)
    return table, pd.DataFrame(stab)


def recommended_k(table: pd.DataFrame) -> int:
    """The admissible k with most votes; a tie goes to the more stable k (its least stable
    segment's Jaccard, to two decimals), then to the better silhouette, then to the smaller k.

    The order is lexicographic: any stability difference of 0.01 or more decides before
    the silhouette is looked at. An unmeasured stability counts as 0, an unmeasured
    silhouette as -1.

    Parameters
    ----------
    table : one row per k with k, admissible, votes (comma-separated index names),
        min_stability, silhouette (as returned by :func:`select_k`).

    Returns
    -------
    The recommended k.

    >>> t = pd.DataFrame({"k": [3, 4], "admissible": [True, True], "votes": ["gap", "BIC"],
    ...                   "min_stability": [0.80, 0.79], "silhouette": [0.10, 0.25]})
    >>> recommended_k(t)
    3
    """
    n_votes = table["votes"].map(lambda v: len([x for x in str(v).split(", ") if x]))
    n_votes = n_votes.where(table["admissible"].astype(bool), -1)
    top = pd.DataFrame(
        {
            "k": table["k"].astype(int),
            "votes": n_votes,
            "stability": table["min_stability"].astype(float).fillna(0.0).round(2),
            "silhouette": table["silhouette"].astype(float).fillna(-1.0),
        }
    )
    top = top.sort_values(
        ["votes", "stability", "silhouette", "k"], ascending=[False, False, False, True]
    )
    return int(top["k"].iloc[0])


def _votes_text(table: pd.DataFrame, row: pd.Series) -> str:
    """'k = 3 is recommended: 3 of 4 measures point to it (...); BIC prefers 4.'"""
    rec = int(row["k"])
    named = [v for v in row["votes"].split(", ") if v]
    others = [
        f"{v} prefers {int(r.k)}"
        for r in table.itertuples()
        if r.k != rec
        for v in (r.votes.split(", ") if r.votes else [])
    ]
    return (
        f"k = {rec} is recommended: {len(named)} of "
        f"{sum(len(v.split(', ')) for v in table['votes'] if v)} measures point to it "
        f"({', '.join(named) or 'none; best silhouette'})"
        + (f"; {'; '.join(others)}" if others else "")
        + "."
    )


def _stability_text(table: pd.DataFrame, row: pd.Series, n_boot: int) -> str:
    if n_boot:
        text = (
            f" Its least stable segment keeps a Jaccard of {row['min_stability']:.2f} over "
            f"{n_boot} bootstrap resamples (over {STABLE} is stable, under {UNSTABLE} unstable)"
        )
    else:
        text = " Stability was not measured (cluster.n_bootstrap = 0)"
    text += f" and its smallest segment has {int(row['min_size']):,} customers."
    if n_boot and table["min_stability"].max() < UNSTABLE:
        text += (
            f" Caution: no k from {int(table['k'].min())} to {int(table['k'].max())} gives "
            f"stable segments (best least-stable Jaccard "
            f"{table['min_stability'].max():.2f}); the data have no strong natural groups, "
            f"so read these segments as a convenient partition, not as distinct types."
        )
    return text


def explain_choice(table: pd.DataFrame, k: int | None, min_size: int, n_boot: int) -> str:
    """Why the recommended k, in words: votes, dissent, stability, size, exclusions.

    Parameters
    ----------
    table : the first result of :func:`select_k`.
    k : the k fixed by the parameters (0 or None: the recommended one).
    min_size, n_boot : as given to :func:`select_k`.
    """
    row = table[table["recommended"]].iloc[0]
    rec = int(row["k"])
    text = _votes_text(table, row) + _stability_text(table, row, n_boot)
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
