"""Stage 02, clustering: segments from customer features, with evidence for the number.

A first, deliberately small version: k-means (default) or Gaussian mixtures on
log-transformed, robustly scaled numeric features plus one-hot categorical attributes;
the number of segments chosen from silhouette, Calinski-Harabasz, Davies-Bouldin, BIC
(mixtures) and bootstrap stability (mean Jaccard per segment, as in Hennig's clusterboot),
within ``cluster.k_min..k_max`` and a minimum segment size. Segments are numbered by
revenue per customer (1 = most valuable), so segment 1 means the same on every rerun.
Not yet here (issue "Segments"): k-prototypes, RFM scores, the gap statistic, scoring of
new customers with out-of-range flags.
"""

from __future__ import annotations

from typing import NamedTuple

import joblib
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler

from segkit._checks import SegkitError, check_columns
from segkit.config import Run
from segkit.naming import segment_names

#: Default numeric features for transaction data (money and counts are log-transformed).
DEFAULT_FEATURES = ["days_since_last", "orders", "revenue", "aov", "tenure_days"]
_LOG = {"orders", "revenue", "aov", "frequency", "monetary", "items", "history"}


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


def preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """log1p for skewed money/counts, robust scaling, one-hot for categories."""
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


def _model(method: str, k: int, seed: int, n_init: int = 10):
    if method == "kmeans":
        return KMeans(k, n_init=n_init, random_state=seed)
    if method == "gmm":
        return GaussianMixture(k, n_init=max(1, n_init // 3), random_state=seed)
    raise SegkitError(f"cluster.method == {method!r} is not available yet; use kmeans or gmm")


def _jaccard_stability(X, labels, method, k, seed, n_boot) -> np.ndarray:
    """Mean over bootstrap resamples of each cluster's best Jaccard match (clusterboot)."""
    rng = np.random.default_rng(seed)
    scores = np.zeros((n_boot, k))
    for b in range(n_boot):
        idx = rng.integers(0, len(X), len(X))
        boot = _model(method, k, seed + b + 1, n_init=3).fit(X[idx]).predict(X[idx])
        orig = labels[idx]
        for c in range(k):
            a = orig == c
            best = 0.0
            for d in range(k):
                bb = boot == d
                union = np.sum(a | bb)
                best = max(best, np.sum(a & bb) / union if union else 0.0)
            scores[b, c] = best
    return scores.mean(axis=0)


def select_k(X, method, k_min, k_max, seed, n_boot, min_size) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per k with every index, stability and the smallest segment."""
    rows, stab = [], []
    rng = np.random.default_rng(seed)
    sil_idx = rng.choice(len(X), min(len(X), 5000), replace=False)
    for k in range(k_min, k_max + 1):
        model = _model(method, k, seed).fit(X)
        labels = model.predict(X)
        sizes = np.bincount(labels, minlength=k)
        jac = (
            _jaccard_stability(X, labels, method, k, seed, n_boot) if n_boot else np.full(k, np.nan)
        )
        stab += [{"k": k, "cluster": c + 1, "jaccard": j} for c, j in enumerate(jac)]
        rows.append(
            {
                "k": k,
                "silhouette": silhouette_score(X[sil_idx], labels[sil_idx])
                if len(set(labels)) > 1
                else np.nan,
                "calinski_harabasz": calinski_harabasz_score(X, labels),
                "davies_bouldin": davies_bouldin_score(X, labels),
                "bic": model.bic(X) if method == "gmm" else np.nan,
                "stability": float(np.mean(jac)),
                "min_stability": float(np.min(jac)),
                "min_size": int(sizes.min()),
            }
        )
    table = pd.DataFrame(rows)
    ok = table[(table["min_size"] >= min_size) & (table["min_stability"] >= 0.75)]
    pool = ok if len(ok) else table[table["min_size"] >= min_size]
    pool = pool if len(pool) else table
    best = int(pool.loc[pool["silhouette"].idxmax(), "k"])
    table["recommended"] = table["k"] == best
    return table, pd.DataFrame(stab)


class Clustering(NamedTuple):
    findings: list[str]
    k_selection: pd.DataFrame
    stability: pd.DataFrame
    segments: pd.DataFrame
    sizes: pd.DataFrame
    features: list[str]
    k: int
    explanation: str


def run_stage(run: Run) -> Clustering:
    """Cluster the customers of ``run``; writes segments, k_selection, stability, segmenter."""
    p = run.params["cluster"]
    customers = run.load("customers")
    num, cat = default_features(customers)
    if p["features"]:
        check_columns(customers, p["features"], "customers (cluster.features)")
        num = list(p["features"])
    if p["categorical"] is not None:
        check_columns(customers, p["categorical"], "customers (cluster.categorical)")
        cat = list(p["categorical"])
    if len(customers) < 10 * p["k_max"]:
        raise SegkitError(
            f"customers has {len(customers)} rows; cluster.k_max == {p['k_max']} "
            f"needs at least {10 * p['k_max']}"
        )
    data = customers[num + cat].copy()
    data[num] = data[num].fillna(data[num].median())
    data[cat] = data[cat].astype(str)
    prep = preprocessor(num, cat)
    rng = np.random.default_rng(run.seed)
    fit_idx = np.sort(rng.choice(len(data), min(len(data), p["sample_size"]), replace=False))
    X_all = prep.fit(data.iloc[fit_idx]).transform(data)
    X = X_all[fit_idx]
    table, stab = select_k(
        X, p["method"], p["k_min"], p["k_max"], run.seed, p["n_bootstrap"], p["min_segment_size"]
    )
    rec = int(table.loc[table["recommended"], "k"].iloc[0])
    k = p["k"] or rec
    model = _model(p["method"], k, run.seed).fit(X)
    raw = model.predict(X_all)
    value = customers["revenue"] if "revenue" in customers else pd.Series(X_all[:, 0])
    order = pd.Series(value.to_numpy()).groupby(raw).mean().sort_values(ascending=False).index
    relabel = {int(old): new + 1 for new, old in enumerate(order)}
    labels = pd.Series([relabel[int(x)] for x in raw], index=customers.index)
    names = segment_names(customers, labels, p["names"] or None)
    segments = pd.DataFrame({"customer_id": customers["customer_id"], "segment": labels.to_numpy()})
    segments["segment_name"] = segments["segment"].map(names)
    run.save("segments.parquet", segments)
    run.save("k_selection.csv", table)
    run.save("stability.csv", stab)
    joblib.dump(Pipeline([("prep", prep), ("model", model)]), run.artifacts / "segmenter.joblib")
    row = table[table["k"] == rec].iloc[0]
    explanation = (
        f"k = {rec} is recommended: among the k from {p['k_min']} to {p['k_max']} whose every "
        f"segment has at least {p['min_segment_size']} customers and is stable (Jaccard ≥ 0.75 "
        f"over {p['n_bootstrap']} resamples), it has the best silhouette ({row['silhouette']:.2f}; "
        f"mean stability {row['stability']:.2f})."
        + (f" The parameters fix k = {k}." if p["k"] else "")
    )
    sizes = segments.groupby(["segment", "segment_name"]).size().rename("customers").reset_index()
    sizes["share"] = sizes["customers"] / len(segments)
    big = sizes.iloc[0]
    findings = [
        f"{k} segments; the most valuable, '{big['segment_name']}', holds "
        f"{big['share']:.0%} of customers.",
        explanation,
    ] + [
        f"Segment {r.segment} '{r.segment_name}': {r.customers:,} customers ({r.share:.0%})."
        for r in sizes.itertuples()
    ]
    run.save_findings("cluster", findings)
    return Clustering(findings, table, stab, segments, sizes, num + cat, k, explanation)
