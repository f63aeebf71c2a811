"""The attribute join of the exploration stage counts attribute rows without
transactions (issue 18: by factorized codes instead of ``Series.isin``)."""

from __future__ import annotations

import pandas as pd

from segkit.stages.explore import _with_attributes


def test_attribute_rows_without_transactions_are_counted():
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "orders": [1, 2, 3]})
    attrs = pd.DataFrame({"customer_id": ["b", "c", "x", "y", "z"], "age": [30, 40, 50, 60, 70]})
    summary: dict = {}
    out = _with_attributes(customers, attrs, summary)
    assert summary["attribute_rows_without_transactions"] == 3  # x, y, z
    assert summary["customers_without_attributes"] == 1  # a
    assert out["age"].isna().tolist() == [True, False, False]


def test_integer_ids_are_counted_too():
    customers = pd.DataFrame({"customer_id": [1, 2], "orders": [1, 2]})
    attrs = pd.DataFrame({"customer_id": [2, 3], "age": [30, 40]})
    summary: dict = {}
    _with_attributes(customers, attrs, summary)
    assert summary["attribute_rows_without_transactions"] == 1
