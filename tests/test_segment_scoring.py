"""Vectorized scoring equals the row-by-row scoring it replaced, and scikit-learn.

The reference below is the scoring code of segkit before it was vectorized (issue 18),
kept here only as the slow reference: strings built per row (``as_levels`` of every
value), reasons concatenated per check, labels mapped through a Series. The fast
:meth:`Segmenter.score` must give the same frame on a few thousand customers with every
kind of awkward input: out-of-range values, non-numbers in a numeric column, missing
values, unseen levels, numeric-coded categories.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans

from segkit.segment import Segmenter
from segkit.segment.prepare import as_levels, preprocessor
from segkit.segment.segmenter import UNASSIGNED, levels_of, order_labels

NUMERIC = ["recency", "orders", "revenue"]
CATEGORICAL = ["channel", "region_code"]


def _reference_columns(seg: Segmenter, customers: pd.DataFrame):
    cols, checks = {}, []
    for col in seg.numeric:
        lo, hi = seg.ranges[col]
        v = pd.to_numeric(customers[col], errors="coerce").to_numpy(float, na_value=np.nan)
        checks += [
            (v < lo, f"{col} below the fitted minimum {lo:g}"),
            (v > hi, f"{col} above the fitted maximum {hi:g}"),
            (np.isnan(v) & customers[col].notna().to_numpy(), f"{col} not a number"),
        ]
        cols[col] = np.where(np.isfinite(v), v, seg.medians[col])
    for col in seg.categorical:
        cols[col] = as_levels(customers[col])
        checks.append(
            (~cols[col].isin(seg.levels[col]).to_numpy(), f"{col} level not seen in fitting")
        )
    return cols, checks


def _reference_reasons(checks, index):
    reasons = np.full(len(index), "", dtype=object)
    for mask, text in checks:
        if mask.any():
            first = reasons[mask] == ""
            reasons[mask] = np.where(first, text, reasons[mask] + ("; " + text))
    return pd.Series(reasons, index=index, dtype=object)


def reference_score(seg: Segmenter, customers: pd.DataFrame) -> pd.DataFrame:
    """The pre-issue-18 ``Segmenter.score``, row by row."""
    cols, checks = _reference_columns(seg, customers)
    flag = _reference_reasons(checks, customers.index)
    raw = pd.Series(np.asarray(seg.model.predict(seg.transform.apply(cols))).astype(np.int64))
    nearest = raw.map(seg.relabel).fillna(-1).to_numpy(dtype=np.int64)
    inside = (flag == "").to_numpy()
    names = pd.Series(seg.names, dtype=object).reindex(nearest).fillna("").to_numpy()
    segment = pd.array(nearest, dtype="Int64")
    segment[~inside] = pd.NA
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy(),
            "segment": segment,
            "segment_name": np.where(inside, names, UNASSIGNED),
            "nearest_segment": pd.array(nearest, dtype="Int64"),
            "flag": flag.to_numpy(),
        }
    )


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "customer_id": [f"c{seed}_{i}" for i in range(n)],
            "recency": rng.gamma(3, [10.0, 60.0, 200.0])[g] * rng.uniform(0.5, 1.5, n),
            "orders": rng.poisson([12, 4, 1])[g] + 1.0,
            "revenue": rng.lognormal(np.log([800, 200, 40]), 0.4)[g] * rng.uniform(0.5, 2, n),
            "channel": np.array(["web", "store", "app"])[g],
            "region_code": rng.integers(1, 5, n).astype(float),  # a category coded as a number
        }
    )


@pytest.fixture(scope="module")
def seg() -> Segmenter:
    fit = table(3000, 0)
    data = fit[NUMERIC + CATEGORICAL].copy()
    data["region_code"] = as_levels(data["region_code"])
    prep = preprocessor(NUMERIC, CATEGORICAL, logged=["revenue", "orders"])
    km = KMeans(3, n_init=2, random_state=0).fit(prep.fit_transform(data))
    relabel = order_labels(data, km.labels_, "revenue")
    return Segmenter.from_fitted(
        method="kmeans",
        prep=prep,
        model=km,
        data=data,
        numeric=NUMERIC,
        categorical=CATEGORICAL,
        relabel=relabel,
        names={s: f"name {s}" for s in relabel.values()},
        n_customers=len(fit),
        run="t",
    )


def awkward(n: int = 4000, seed: int = 1) -> pd.DataFrame:
    """New customers: wider ranges than fitted, missing values, unseen levels, text in
    a numeric column, several reasons on one row."""
    new = table(n, seed)
    new["revenue"] *= np.random.default_rng(seed).uniform(0.2, 3.0, n)  # out of range
    new.loc[::50, "orders"] = np.nan
    new.loc[::70, "recency"] = -5.0
    new["channel"] = new["channel"].astype(object)
    new.loc[::30, "channel"] = "fax"
    new.loc[::45, "channel"] = None
    new.loc[::90, "region_code"] = 9.0  # unseen
    new.loc[::110, "region_code"] = np.nan
    return new


def test_score_equals_the_row_by_row_reference(seg):
    new = awkward()
    fast, slow = seg.score(new), reference_score(seg, new)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["flag"].str.contains("; ").any()  # rows with two reasons and more
    assert 0 < fast["segment"].isna().sum() < len(new)


def test_score_equals_reference_with_text_in_a_numeric_column(seg):
    new = awkward(600, 2)
    new["orders"] = new["orders"].astype(object)
    new.loc[::7, "orders"] = "n/a"
    new.loc[::11, "orders"] = "3"
    pd.testing.assert_frame_equal(seg.score(new), reference_score(seg, new))
    assert seg.score(new)["flag"].str.contains("orders not a number").sum() > 0


def test_flags_equal_reference(seg):
    new = awkward(1000, 3).set_index(pd.Index(np.arange(1000) * 3))
    checks = _reference_columns(seg, new)[1]
    pd.testing.assert_series_equal(seg.flags(new), _reference_reasons(checks, new.index))


def test_nearest_segment_equals_sklearn(seg):
    """The model label of every row, relabelled, is what KMeans.predict says."""
    new = table(3000, 4)
    data = new[NUMERIC + CATEGORICAL].copy()
    data["region_code"] = as_levels(data["region_code"])
    fit = table(3000, 0)
    fdata = fit[NUMERIC + CATEGORICAL].copy()
    fdata["region_code"] = as_levels(fdata["region_code"])
    prep = preprocessor(NUMERIC, CATEGORICAL, logged=["revenue", "orders"])
    km = KMeans(3, n_init=2, random_state=0).fit(prep.fit_transform(fdata))
    expected = pd.Series(km.predict(prep.transform(data))).map(seg.relabel).to_numpy()
    assert (seg.score(new)["nearest_segment"].to_numpy(dtype=np.int64) == expected).all()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.Series([2.0, None, 2.0, 3.0]), ["2", "missing", "2", "3"]),
        (pd.Series([2.5, 2.0]), ["2.5", "2.0"]),
        (pd.Series(["b", None, "a", "b"]), ["b", "missing", "a", "b"]),
        (pd.Series([1, 7, 1]), ["1", "7", "1"]),
        (pd.Series(["2", 2, None], dtype=object), ["2", "2", "missing"]),
    ],
)
def test_levels_of_equals_as_levels(values, expected):
    assert levels_of(values).astype(str).tolist() == expected == as_levels(values).tolist()
