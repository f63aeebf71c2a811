"""Bundled data, the synthetic retailer of the demo run, a synthetic customer table.

:func:`make_retailer` draws customers from latent segments that differ in purchase rate,
drop-out, spend, channel and category mix and in their attributes; purchases follow the
BG/NBD process and spend the Gamma-Gamma model exactly (so the CLV stage can be checked),
and a randomized three-arm campaign has effects that differ by segment (so the A/B stage
can be checked). It returns the ground truth with the data. Everything is drawn from one
``numpy.random.default_rng(seed)``: the same seed gives the same frames.
:func:`make_customer_table` is a CRM-export-like customer table (no transaction log)
with known segments and known response rates. :func:`load_wholesale` and the other
``load_*`` read the bundled real data sets through their parameter sets.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from segkit.core.checks import check_scalar

#: The latent segments: share, BG/NBD (r, alpha per day, a, b), Gamma-Gamma (p, q, v),
#: favourite category and channel, mean age, and campaign response.
# fmt: off
SEGMENTS = pd.DataFrame(
    [
        # name, share, r, alpha, a, b, p, q, v, category, channel, age
        ("Loyal regulars", 0.25, 3.0, 60.0, 2.0, 40.0, 4.0, 6.0, 75.0, "grocery", "app", 34),
        ("Big-ticket occasional", 0.20, 2.0, 180.0, 2.0, 16.0, 4.0, 6.0, 312.5, "electronics", "store", 48),  # noqa: E501
        ("Bargain hunters", 0.30, 3.0, 90.0, 2.0, 12.0, 4.0, 6.0, 25.0, "fashion", "web", 22),
        ("Lapsed one-timers", 0.25, 1.0, 400.0, 3.0, 3.0, 4.0, 6.0, 43.75, "home", "web", 62),
    ],
    columns=["name", "share", "r", "alpha", "a", "b", "p", "q", "v", "category", "channel", "age"],
)
# fmt: on
CATEGORIES = ["grocery", "electronics", "fashion", "home"]
CHANNELS = ["app", "store", "web"]
REGIONS = ["North", "South", "East", "West"]
ARMS = ["control", "discount", "content"]
#: Campaign truth per segment (rows as SEGMENTS): visit and conversion probability by arm.
_VISIT = np.array([[0.30, 0.34, 0.42], [0.15, 0.18, 0.16], [0.20, 0.32, 0.21], [0.05, 0.05, 0.05]])
_CONVERT = np.array(
    [[0.10, 0.11, 0.16], [0.04, 0.06, 0.04], [0.05, 0.12, 0.05], [0.01, 0.01, 0.01]]
)


class Truth(NamedTuple):
    segments: pd.DataFrame  # customer_id, true_segment (1..k), true_segment_name
    params: pd.DataFrame  # per segment: share, r, alpha (per day), a, b, p, q, v
    effects: pd.DataFrame  # segment, arm, metric, control_value, treatment_value, abs_effect


class Retailer(NamedTuple):
    transactions: pd.DataFrame
    customers: pd.DataFrame
    experiment: pd.DataFrame
    truth: Truth


def _mix(rng, favourite: np.ndarray, values: list[str], weight: float = 0.75) -> np.ndarray:
    """The favourite value with probability ``weight``, else any value uniformly."""
    other = np.asarray(values)[rng.integers(0, len(values), len(favourite))]
    return np.where(rng.random(len(favourite)) < weight, favourite, other)


def make_retailer(
    n_customers: int = 4000,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    seed: int = 42,
    *,
    id_offset: int = 0,
    order_offset: int = 0,
) -> Retailer:
    """A seeded synthetic retailer with its ground truth.

    ``id_offset`` and ``order_offset`` shift the customer and order numbers (used by
    :func:`write_retailer` to build large logs chunk by chunk with unique ids).

    Each customer joins on a uniform day in the first 60 % of the window and buys at once;
    then purchases arrive as a Poisson process of rate ``lambda ~ Gamma(r, alpha)`` per
    day and after each repeat purchase the customer drops out with ``p ~ Beta(a, b)``
    (BG/NBD). Each purchase is worth ``z ~ Gamma(p, nu)`` with ``nu ~ Gamma(q, v)`` per
    customer (Gamma-Gamma). The campaign is randomized after ``end`` in equal thirds.

    >>> shop = make_retailer(200, seed=1)
    >>> sorted(shop.experiment["arm"].unique())
    ['content', 'control', 'discount']
    """
    check_scalar(n_customers, "n_customers", int, ge=50)
    check_scalar(seed, "seed", int, ge=0)
    rng = np.random.default_rng(seed)  # one stream, drawn from in this order throughout
    t_start, t_end = pd.Timestamp(start), pd.Timestamp(end)
    window = (t_end - t_start).days + 1
    seg = rng.choice(len(SEGMENTS), n_customers, p=SEGMENTS["share"].to_numpy())
    s = SEGMENTS.iloc[seg].reset_index(drop=True)
    ids = np.array([f"C{i + 1 + id_offset:06d}" for i in range(n_customers)])
    cust, day, nu = _histories(rng, s, n_customers, window)
    tx = _transactions(rng, s, ids, cust, day, nu, t_start=t_start, order_offset=order_offset)
    customers = _customers(rng, s, ids, seg)
    experiment = _experiment(rng, s, ids, seg, tx, t_end=t_end)
    truth = Truth(
        segments=pd.DataFrame(
            {"customer_id": ids, "true_segment": seg + 1, "true_segment_name": s["name"]}
        ),
        params=SEGMENTS.drop(columns=["category", "channel", "age"]).assign(
            segment=np.arange(1, len(SEGMENTS) + 1)
        ),
        # per segment, not per customer: indexing the customer array by segment number
        # gave the first customers' values (caught by the A/B coverage benchmark)
        effects=_effects((SEGMENTS["p"] * SEGMENTS["v"] / (SEGMENTS["q"] - 1)).to_numpy()),
    )
    return Retailer(tx, customers, experiment, truth)


def _histories(
    rng: np.random.Generator, s: pd.DataFrame, n_customers: int, window: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD purchase days per customer (first purchase included), sorted; and nu."""
    lam = rng.gamma(s["r"], 1 / s["alpha"])
    p_drop = rng.beta(s["a"], s["b"])
    nu = rng.gamma(s["q"], 1 / s["v"])
    t = rng.uniform(0, 0.6 * window, n_customers)
    rows_c, rows_t = [np.arange(n_customers)], [t.copy()]
    alive = np.ones(n_customers, bool)
    while alive.any():
        t = t + rng.exponential(1 / lam)
        alive &= t < window
        idx = np.flatnonzero(alive)
        rows_c.append(idx)
        rows_t.append(t[idx])
        alive[idx[rng.random(len(idx)) < p_drop[idx]]] = False
    cust = np.concatenate(rows_c)
    day = np.concatenate(rows_t)
    order = np.lexsort((day, cust))
    return cust[order], day[order], nu


def _transactions(
    rng: np.random.Generator,
    s: pd.DataFrame,
    ids: np.ndarray,
    cust: np.ndarray,
    day: np.ndarray,
    nu: np.ndarray,
    *,
    t_start: pd.Timestamp,
    order_offset: int,
) -> pd.DataFrame:
    """The transaction log: Gamma-Gamma amounts, a time of day, category and channel."""
    n = len(cust)
    amount = np.round(rng.gamma(s["p"].to_numpy()[cust], 1 / nu[cust]), 2) + 0.01
    ts = t_start + pd.to_timedelta(np.floor(day), unit="D")
    ts = ts + pd.to_timedelta(rng.integers(8 * 3600, 22 * 3600, n), unit="s")
    return pd.DataFrame(
        {
            "customer_id": ids[cust],
            "order_id": [f"O{i + 1 + order_offset:08d}" for i in range(n)],
            "timestamp": ts.astype("datetime64[us]"),
            "amount": amount,
            "quantity": rng.integers(1, 4, n),
            "category": _mix(rng, s["category"].to_numpy()[cust], CATEGORIES),
            "channel": _mix(rng, s["channel"].to_numpy()[cust], CHANNELS),
        }
    )


def _customers(
    rng: np.random.Generator, s: pd.DataFrame, ids: np.ndarray, seg: np.ndarray
) -> pd.DataFrame:
    """The customer table: age, gender, region and income band, tied to the segment."""
    n_customers = len(ids)
    region_p = np.full((len(SEGMENTS), len(REGIONS)), 0.1)
    region_p[np.arange(len(SEGMENTS)), np.arange(len(SEGMENTS)) % len(REGIONS)] = 0.7
    region = np.array([rng.choice(REGIONS, p=region_p[k]) for k in seg])
    return pd.DataFrame(
        {
            "customer_id": ids,
            "age": np.clip(np.round(rng.normal(s["age"], 6)), 18, 95).astype(int),
            "gender": rng.choice(["female", "male"], n_customers),
            "region": region,
            "income_band": np.where(
                s["v"].to_numpy() > 100,
                "high",
                np.where(rng.random(n_customers) < 0.5, "low", "mid"),
            ),
        }
    )


def _experiment(
    rng: np.random.Generator,
    s: pd.DataFrame,
    ids: np.ndarray,
    seg: np.ndarray,
    tx: pd.DataFrame,
    *,
    t_end: pd.Timestamp,
) -> pd.DataFrame:
    """The randomized campaign after the window, with a pre-period spend covariate."""
    n_customers = len(ids)
    recent = tx[tx["timestamp"] > t_end - pd.Timedelta(days=90)]
    pre = recent.groupby("customer_id")["amount"].sum().reindex(ids, fill_value=0.0)
    arm = rng.permutation(np.arange(n_customers) % len(ARMS))
    visit = rng.random(n_customers) < _VISIT[seg, arm]
    convert = visit & (rng.random(n_customers) < _CONVERT[seg, arm] / _VISIT[seg, arm])
    mean_spend = (s["p"] * s["v"] / (s["q"] - 1)).to_numpy()
    spend = np.where(convert, np.round(rng.gamma(4.0, mean_spend / 4.0), 2), 0.0)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "arm": np.asarray(ARMS)[arm],
            "visit": visit.astype(int),
            "conversion": convert.astype(int),
            "spend": spend,
            "pre_spend": pre.to_numpy().round(2),
        }
    )


def _effects(mean_spend: np.ndarray) -> pd.DataFrame:
    rows = []
    for k in range(len(SEGMENTS)):
        for a in (1, 2):
            for metric, table, scale in (
                ("visit", _VISIT, 1.0),
                ("conversion", _CONVERT, 1.0),
                ("spend", _CONVERT, mean_spend[k]),
            ):
                c, t = table[k, 0] * scale, table[k, a] * scale
                rows.append((k + 1, ARMS[a], metric, c, t, t - c))
    return pd.DataFrame(
        rows, columns=["segment", "arm", "metric", "control_value", "treatment_value", "abs_effect"]
    )


# ------------------------------------------------------------------ the bundled real data


class Bundled(NamedTuple):
    """A bundled data set, cleaned: used rows and rejects per input, and the quality counts."""

    tables: dict[str, pd.DataFrame]  # input name -> used rows
    rejects: dict[str, pd.DataFrame]  # input name -> rejected rows with their reason
    quality: dict[str, dict]  # input name -> rows_in, rows_used, rejected (reason -> count)


def load_bundled(name: str) -> Bundled:
    """Load and clean bundled set ``name`` (cdnow, online_retail, hillstrom, wholesale) as its
    parameter set ``notebooks/params/<name>.yaml`` tells the exploration stage to."""
    from segkit import derive, io
    from segkit.core.params import load_params

    d = load_params(name)["data"]
    if d["source"] != "files":
        raise ValueError(f"{name!r} is not a bundled file set; use make_retailer for the demo")
    con = io.connect()
    loaders = {
        "transactions": lambda spec: io.load_transactions(spec, d["observation_end"], con=con),
        "customers": lambda spec: io.load_customers(
            spec, con=con, observation_end=d["observation_end"]
        ),
        "experiment": lambda spec: io.load_experiment(spec, con=con),
    }
    out = Bundled({}, {}, {})
    for kind, load in loaders.items():
        if d[kind]:
            table = load(d[kind])
            out.tables[kind] = table.used.df()
            if kind == "customers":
                out.tables[kind] = derive.apply_spec(out.tables[kind], d[kind])[0]
            out.rejects[kind] = table.rejects.df()
            out.quality[kind] = table.quality
    return out


def load_cdnow() -> Bundled:
    """CDNOW sample (Fader, Hardie & Lee 2005): 2,357 customers' purchases, 1997-01 to 1998-06."""
    return load_bundled("cdnow")


def load_online_retail() -> Bundled:
    """UCI Online Retail (Chen, Sain & Guo 2012): a UK gift retailer, 2010-12 to 2011-12."""
    return load_bundled("online_retail")


def load_hillstrom() -> Bundled:
    """Hillstrom's MineThatData e-mail experiment (2008): attributes and the 3-arm test."""
    return load_bundled("hillstrom")


def load_wholesale() -> Bundled:
    """UCI Wholesale customers (Cardoso 2014): 440 clients' annual spend per category,
    channel and region; a customer table without a transaction log."""
    return load_bundled("wholesale")


# ------------------------------------------------------------ a synthetic customer table

#: The latent segments of :func:`make_customer_table`: share, then per segment the median
#: birth year, income, wine / meat / fruit spend, web / store / deal purchases, children.
# fmt: off
TABLE_SEGMENTS = pd.DataFrame(
    [
        ("Affluent wine lovers", 0.25, 1958, 82_000, 900.0, 500.0, 60.0, 6.0, 9.0, 1.0, 0.2),
        ("Family shoppers", 0.30, 1970, 58_000, 250.0, 120.0, 25.0, 6.0, 6.0, 4.0, 1.8),
        ("Young deal seekers", 0.25, 1985, 32_000, 25.0, 20.0, 5.0, 7.0, 2.0, 6.0, 0.6),
        ("Occasional fruit buyers", 0.20, 1965, 45_000, 60.0, 40.0, 120.0, 1.0, 6.0, 0.5, 0.3),
    ],
    columns=["name", "share", "birth", "income", "wines", "meat", "fruits", "web", "store",
             "deals", "children"],
)
#: Known rates per segment (rows as TABLE_SEGMENTS) of the outcome columns.
TABLE_OUTCOMES = {
    "Response": np.array([0.35, 0.12, 0.20, 0.04]),
    "AcceptedCmp1": np.array([0.25, 0.05, 0.02, 0.01]),
    "Complain": np.array([0.005, 0.01, 0.02, 0.01]),
}
# fmt: on


class CustomerTable(NamedTuple):
    """:func:`make_customer_table`: the table and its truth."""

    table: pd.DataFrame  # as a CRM export: ID, attributes, spend, purchases, outcomes
    truth: pd.DataFrame  # ID, true_segment (1..4, as TABLE_SEGMENTS), true_segment_name
    rates: pd.DataFrame  # segment, outcome, rate: the probabilities the outcomes are drawn with


def make_customer_table(n: int = 2000, seed: int = 42) -> CustomerTable:
    """A customer table with known segments and known response rates (for tests).

    Four latent segments (:data:`TABLE_SEGMENTS`) differ in income, birth year, spend on
    wine, meat and fruit (log-normal), purchases per channel (Poisson) and children; the
    0/1 outcomes ``Response``, ``AcceptedCmp1`` and ``Complain`` are drawn with the
    segment's rate (:data:`TABLE_OUTCOMES`). Like a real export it has an ``ID`` column,
    a join date ``Dt_Customer`` (dd-mm-yyyy text), an ``Education`` level, a constant
    ``Z_CostContact``, about 1% missing incomes, one income of 666,666 and two years of
    birth before 1900. One ``numpy.random.default_rng(seed)`` draws everything.

    Parameters
    ----------
    n : customers (at least 100).
    seed : the random seed.

    Returns
    -------
    :class:`CustomerTable`.
    """
    check_scalar(n, "n", int, ge=100)
    rng = np.random.default_rng(seed)
    s = TABLE_SEGMENTS
    seg = rng.choice(len(s), n, p=s["share"].to_numpy())
    col = {c: s[c].to_numpy()[seg] for c in s.columns[2:]}

    def spend(median: np.ndarray) -> np.ndarray:
        return np.round(rng.lognormal(np.log(median), 0.35))

    children = rng.poisson(col["children"])
    kids = rng.binomial(children, 0.5)
    income = np.round(rng.normal(col["income"], 0.12 * col["income"]), 0)
    income[rng.random(n) < 0.01] = np.nan
    income[0] = 666_666.0
    birth = np.round(rng.normal(col["birth"], 5)).astype(int)
    birth[1:3] = (1893, 1899)
    joined = pd.Timestamp("2012-07-30") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    education = np.where(
        rng.random(n) < 0.7,
        np.array(["PhD", "Graduation", "Basic", "Master"])[seg],
        rng.choice(["Graduation", "Master", "2n Cycle"], n),
    )
    table = pd.DataFrame(
        {
            "ID": rng.permutation(np.arange(1, n + 1) * 7 + 1000),
            "Year_Birth": birth,
            "Education": education,
            "Income": income,
            "Kidhome": kids,
            "Teenhome": children - kids,
            "Dt_Customer": joined.strftime("%d-%m-%Y"),
            "MntWines": spend(col["wines"]),
            "MntMeatProducts": spend(col["meat"]),
            "MntFruits": spend(col["fruits"]),
            "NumWebPurchases": rng.poisson(col["web"]),
            "NumStorePurchases": rng.poisson(col["store"]),
            "NumDealsPurchases": rng.poisson(col["deals"]),
            **{
                name: (rng.random(n) < rate[seg]).astype(int)
                for name, rate in TABLE_OUTCOMES.items()
            },
            "Z_CostContact": 3,
        }
    )
    truth = pd.DataFrame(
        {
            "ID": table["ID"],
            "true_segment": seg + 1,
            "true_segment_name": s["name"].to_numpy()[seg],
        }
    )
    rates = pd.DataFrame(
        [
            (k + 1, name, float(rate[k]))
            for name, rate in TABLE_OUTCOMES.items()
            for k in range(len(s))
        ],
        columns=["segment", "outcome", "rate"],
    )
    return CustomerTable(table, truth, rates)


# ------------------------------------------------------------------- large synthetic logs


def write_retailer(
    folder: str | Path,
    n_customers: int,
    start: str = "2023-01-01",
    end: str = "2024-12-31",
    seed: int = 42,
    chunk_customers: int = 100_000,
    progress: bool = False,
) -> dict:
    """Write a synthetic retailer of any size to Parquet, chunk by chunk, in bounded memory.

    Each chunk of ``chunk_customers`` customers is a :func:`make_retailer` with its own
    seed (from ``numpy.random.SeedSequence([seed, chunk])``) and ids that continue the
    previous chunk's, appended to ``transactions.parquet``, ``customers.parquet``,
    ``experiment.parquet`` and ``truth_segments.parquet`` in ``folder``. About 7.8
    transactions per customer with the default window: 2.6 million customers give about
    20 million transactions. Memory stays that of one chunk.

    Returns the paths and the counts (customers, transactions).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    check_scalar(n_customers, "n_customers", int, ge=50)
    check_scalar(chunk_customers, "chunk_customers", int, ge=50)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("transactions", "customers", "experiment", "truth_segments")
    paths = {n: folder / f"{n}.parquet" for n in names}
    writers: dict[str, pq.ParquetWriter] = {}
    n_tx = done = 0
    bar = tqdm(total=n_customers, disable=not progress, unit="customer", desc="write_retailer")
    try:
        for i in itertools.count():
            if done >= n_customers:
                break
            size = min(chunk_customers, n_customers - done)
            if n_customers - done - size < 50:  # make_retailer needs 50: fold a small tail in
                size = n_customers - done
            sub_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            shop = make_retailer(size, start, end, sub_seed, id_offset=done, order_offset=n_tx)
            frames = (shop.transactions, shop.customers, shop.experiment, shop.truth.segments)
            for name, frame in zip(names, frames, strict=True):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(paths[name], table.schema)
                writers[name].write_table(table)
            n_tx += len(shop.transactions)
            done += size
            bar.update(size)
    finally:
        for w in writers.values():
            w.close()
        bar.close()
    return {"paths": paths, "customers": done, "transactions": n_tx}
