"""Rule fidelity and derived names of segkit.profile on real/demo data.

Segments come from a plain seeded k-means (log1p + standard scaling) so this script does not
depend on segkit.segment; with --segments it uses segkit.segment when available.

    nice -n 10 .venv/bin/python benchmarks/profile_quality.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from segkit import features, io
from segkit.core.params import load_params
from segkit.naming import segment_names
from segkit.profile import describe_rules, profile, suggest_actions


def kmeans_segments(customers: pd.DataFrame, cols: list[str], k: int, seed: int = 42) -> pd.Series:
    x = StandardScaler().fit_transform(np.log1p(customers[cols].clip(lower=0)))
    labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
    # number segments by revenue per customer (1 = highest), as the contract says
    rev = pd.Series(customers["revenue"].to_numpy()).groupby(labels).mean()
    order = {old: new for new, old in enumerate(rev.sort_values(ascending=False).index, 1)}
    return pd.Series([order[v] for v in labels], index=customers.index)


def report(title: str, customers: pd.DataFrame, seg: pd.Series) -> list[str]:
    names = segment_names(customers, seg)
    p = profile(customers, seg, names=names)
    actions = suggest_actions(p).set_index("segment")["action"]
    lines = [
        f"## {title}",
        "",
        "| segment | name | customers | share revenue | action |",
        "|---|---|---|---|---|",
    ]
    for _, r in p.iterrows():
        rev = (
            f"{r['share_revenue']:.0%}"
            if "share_revenue" in p and pd.notna(r.get("share_revenue"))
            else ""
        )
        lines.append(
            f"| {r['segment']} | {r['segment_name']} | {r['n']:,} | {rev} | {actions.get(r['segment'], '')} |"
        )
    lines.append("")
    for depth in (2, 3, 4):
        r = describe_rules(customers, seg, depth, seed=42, names=names)
        lines.append(f"- surrogate tree depth {depth}: fidelity {r.fidelity:.3f}")
    t0 = time.perf_counter()
    r = describe_rules(customers, seg, 3, seed=42, names=names)
    lines.append(f"- describe_rules depth 3: {time.perf_counter() - t0:.2f} s")
    lines += [
        "",
        "Rules at depth 3:",
        "",
        "| segment | rule | precision | recall | coverage |",
        "|---|---|---|---|---|",
    ]
    for _, x in r.rules.iterrows():
        lines.append(
            f"| {x['segment']} | {x['rule']} | {x['precision']:.2f} | {x['recall']:.2f} | {x['coverage']:.3f} |"
        )
    return lines + [""]


def main() -> None:
    con = io.connect()
    out = ["# profile_quality", ""]
    # the bundled parameter set holds the table spec: one source of truth
    spec = load_params("online_retail")["data"]["transactions"]
    ol = io.load_transactions(spec, con=con)
    cust = features.customer_features(ol.used.df(), time_unit="D")
    seg = kmeans_segments(cust, ["days_since_last", "orders", "revenue"], k=4)
    out += report("UCI Online Retail (4,338 customers), k-means k=4 on log RFM", cust, seg)
    spec = {"path": "data/hillstrom.csv.gz", "id_from_row": True}
    attrs = io.load_customers(
        {
            **spec,
            "attributes": [
                "recency",
                "history_segment",
                "history",
                "mens",
                "womens",
                "zip_code",
                "newbie",
                "channel",
            ],
        },
        con=con,
    ).used.df()
    x = pd.get_dummies(attrs.drop(columns=["customer_id", "history_segment"]), dtype=float)
    x["history"] = np.log1p(x["history"])
    x = StandardScaler().fit_transform(x)
    hseg = pd.Series(KMeans(5, n_init=4, random_state=42).fit_predict(x) + 1)
    out += report(
        "Hillstrom attributes (64,000 customers), k-means k=5 on one-hot attributes", attrs, hseg
    )
    try:
        from segkit.datasets import make_retailer

        demo = make_retailer(n_customers=4000, seed=42)
        dcust = features.customer_features(demo.transactions, time_unit="D")
        truth = demo.truth
        if isinstance(truth, dict):
            truth = truth.get("segments", truth.get("segment"))
        t = pd.DataFrame(truth)
        t = (
            t[["customer_id", "segment"]]
            if "segment" in t
            else t.iloc[:, :2].set_axis(["customer_id", "segment"], axis=1)
        )
        t = t[t["customer_id"].isin(dcust["customer_id"])]
        dcust = dcust[dcust["customer_id"].isin(t["customer_id"])].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(t["segment"]):
            t["segment"] = t["segment"].astype(int)
        else:
            t["segment"] = pd.factorize(t["segment"], sort=True)[0] + 1
        out += report("Demo retailer (make_retailer n=4000, seed=42), true segments", dcust, t)
    except ImportError as exc:
        out += [f"Demo retailer: not available ({exc})", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
