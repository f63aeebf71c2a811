"""The synthetic retailer: seeded, well-formed, and its data agree with its truth."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

from segkit import datasets
from segkit.core.errors import SegkitError


@pytest.fixture(scope="module")
def shop():
    return datasets.make_retailer(6000, seed=3)


def test_same_seed_same_frames_other_seed_other_frames(shop):
    again = datasets.make_retailer(6000, seed=3)
    pd.testing.assert_frame_equal(shop.transactions, again.transactions)
    pd.testing.assert_frame_equal(shop.experiment, again.experiment)
    other = datasets.make_retailer(6000, seed=4)
    assert not shop.transactions["amount"].equals(other.transactions["amount"])


def test_well_formed(shop):
    tx = shop.transactions
    assert (tx["amount"] > 0).all()
    assert tx["timestamp"].between("2023-01-01", "2025-01-01").all()
    assert tx["order_id"].is_unique
    assert set(tx["customer_id"]) == set(shop.customers["customer_id"])
    counts = shop.experiment["arm"].value_counts()
    assert counts.max() - counts.min() <= 1  # equal thirds
    with pytest.raises(SegkitError, match="n_customers == 10, must be >= 50"):
        datasets.make_retailer(10)


def bgnbd_expected_repeats(r, alpha, a, b, t):
    """E[X(t)] of the BG/NBD model (Fader, Hardie & Lee 2005, eq. 9), written independently."""
    z = t / (alpha + t)
    return (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, z))
    )


def test_repeat_purchases_match_the_bgnbd_expectation(shop):
    """Per segment, mean repeat purchases over each customer's window vs E[X(T)]."""
    tx, truth = shop.transactions, shop.truth
    first = tx.groupby("customer_id")["timestamp"].min().dt.normalize()
    T = (pd.Timestamp("2025-01-01") - first).dt.days.astype(float)
    repeats = tx.groupby("customer_id").size() - 1
    seg = truth.segments.set_index("customer_id")["true_segment"]
    for _, p in truth.params.iterrows():
        ids = seg.index[seg == p["segment"]]
        want = bgnbd_expected_repeats(p["r"], p["alpha"], p["a"], p["b"], T[ids].to_numpy())
        got = repeats[ids].to_numpy()
        se = got.std() / np.sqrt(len(got))
        assert abs(got.mean() - want.mean()) < 4 * se + 0.05, p["name"]


def test_campaign_data_agree_with_true_effects(shop):
    exp = shop.experiment.merge(shop.truth.segments, on="customer_id")
    eff = shop.truth.effects
    for (segment, arm), g in exp[exp["arm"] != "control"].groupby(["true_segment", "arm"]):
        want = eff[(eff.segment == segment) & (eff.arm == arm) & (eff.metric == "conversion")]
        p = want["treatment_value"].item()
        se = np.sqrt(p * (1 - p) / len(g))
        assert abs(g["conversion"].mean() - p) < 4 * se + 1e-9
    assert (exp["conversion"] <= exp["visit"]).all()
    assert (exp.loc[exp["conversion"] == 0, "spend"] == 0).all()


def test_bundled_files_match_their_recorded_checksums():
    import re

    from segkit import io
    from segkit.core.paths import data_dir

    text = (data_dir() / "SOURCES.md").read_text()
    found = re.findall(r"`([\w.]+)` \(([0-9a-f]{64})", text)
    assert len(found) == 5
    for name, digest in found:
        assert io.sha256(data_dir() / name) == digest, name


def test_true_spend_effect_is_conversion_effect_times_segment_mean_spend():
    shop = datasets.make_retailer(200, seed=3)
    eff = shop.truth.effects.set_index(["segment", "arm", "metric"])["abs_effect"]
    params = shop.truth.params.set_index("segment")
    for k in params.index:
        mean_spend = params.loc[k, "p"] * params.loc[k, "v"] / (params.loc[k, "q"] - 1)
        for arm in ("discount", "content"):
            assert eff[(k, arm, "spend")] == pytest.approx(eff[(k, arm, "conversion")] * mean_spend)


@pytest.mark.parametrize(
    ("loader", "inputs", "rows_in"),
    [
        ("load_cdnow", {"transactions"}, 6_919),
        ("load_online_retail", {"transactions"}, 541_909),
        ("load_hillstrom", {"customers", "experiment"}, 64_000),
        ("load_wholesale", {"customers"}, 440),
    ],
)
def test_bundled_loaders_reconcile(loader, inputs, rows_in):
    """Each bundled set loads through its parameter set; used + rejected = rows read."""
    b = getattr(datasets, loader)()
    assert set(b.tables) == inputs
    for kind in inputs:
        q = b.quality[kind]
        assert q["rows_in"] == rows_in
        assert len(b.tables[kind]) == q["rows_used"]
        assert len(b.tables[kind]) + len(b.rejects[kind]) == rows_in
        assert sum(q["rejected"].values()) == len(b.rejects[kind])


def test_write_retailer_in_chunks(tmp_path):
    """Large logs are written chunk by chunk: unique ids, counts reconcile, reproducible."""
    info = datasets.write_retailer(tmp_path / "a", 230, chunk_customers=100, seed=3)
    tx = pd.read_parquet(info["paths"]["transactions"])
    customers = pd.read_parquet(info["paths"]["customers"])
    assert info["customers"] == len(customers) == customers["customer_id"].nunique() == 230
    assert info["transactions"] == len(tx) and tx["order_id"].is_unique
    assert set(tx["customer_id"]) == set(customers["customer_id"])  # everyone buys once
    truth = pd.read_parquet(info["paths"]["truth_segments"])
    assert truth["customer_id"].tolist() == customers["customer_id"].tolist()
    again = datasets.write_retailer(tmp_path / "b", 230, chunk_customers=100, seed=3)
    pd.testing.assert_frame_equal(tx, pd.read_parquet(again["paths"]["transactions"]))
    # the last 30 customers were folded into the second chunk (make_retailer needs 50)
    assert customers["customer_id"].iloc[-1] == "C000230"


def test_wholesale_total_spend_is_the_sum_of_the_six_categories():
    """The derived value column: checked against the raw file, summed by pandas."""
    from segkit.core.paths import data_dir

    raw = pd.read_csv(data_dir() / "wholesale_customers.csv.gz")
    table = datasets.load_wholesale().tables["customers"]
    spend = ["Fresh", "Milk", "Grocery", "Frozen", "Detergents_Paper", "Delicassen"]
    assert table["customer_id"].tolist()[:2] == ["R000001", "R000002"]
    np.testing.assert_array_equal(table["total_spend"], raw[spend].sum(axis=1).astype(float))
    assert (table[["Channel", "Region"]].to_numpy() == raw[["Channel", "Region"]].to_numpy()).all()


def test_customer_table_is_seeded_and_its_outcomes_follow_the_known_rates():
    a = datasets.make_customer_table(3000, seed=5)
    pd.testing.assert_frame_equal(a.table, datasets.make_customer_table(3000, seed=5).table)
    assert not a.table["MntWines"].equals(
        datasets.make_customer_table(3000, seed=6).table["MntWines"]
    )
    t = a.table.merge(a.truth, on="ID")
    assert t["ID"].is_unique and (t["Z_CostContact"] == 3).all()
    assert t["Income"].max() == 666_666 and (t["Year_Birth"] < 1900).sum() == 2
    for r in a.rates.itertuples():
        x = t.loc[t["true_segment"] == r.segment, r.outcome]
        se = np.sqrt(r.rate * (1 - r.rate) / len(x))
        assert abs(x.mean() - r.rate) < 4 * se + 0.005, (r.segment, r.outcome)
    shares = t["true_segment"].value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(shares, datasets.TABLE_SEGMENTS["share"], atol=0.03)
    with pytest.raises(SegkitError, match="n == 10, must be >= 100"):
        datasets.make_customer_table(10)
