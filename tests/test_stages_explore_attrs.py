"""The attribute join of the exploration stage counts attribute rows without
transactions (issue 18: by factorized codes instead of ``Series.isin``)."""

from __future__ import annotations

import pandas as pd

from segkit.stages.explore import _match_sentences, _with_attributes, findings


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


def test_an_attribute_that_is_empty_for_a_matched_customer_is_no_mismatch():
    customers = pd.DataFrame({"customer_id": ["a", "b"], "orders": [1, 2]})
    attrs = pd.DataFrame({"customer_id": ["a", "b"], "age": [None, 40]})
    summary: dict = {}
    _with_attributes(customers, attrs, summary)
    assert summary["customers_without_attributes"] == 0  # was 1: a's age is empty
    assert _match_sentences({**summary, "customers": 2}) == []


def test_ids_written_differently_in_the_two_files_are_the_first_finding():
    # Excel dropped the leading zeros of the log's ids; the CRM export kept them
    customers = pd.DataFrame({"customer_id": ["123", "456", "C7"], "orders": [1, 2, 3]})
    attrs = pd.DataFrame({"customer_id": ["000123", "000456", "c7", "000999"], "age": [1, 2, 3, 4]})
    summary: dict = {"customers": 3}
    _with_attributes(customers, attrs, summary)
    assert summary["customers_without_attributes"] == 3
    assert summary["ids_matching_loosely"] == 3
    words = findings(
        summary={**summary, **_LOG}, quality={}, source="files", concentration=None, cohorts=None
    )
    assert words[0].startswith("No customer of the transaction log has a row in the customer")
    assert "3 more would match if leading zeros, case and blanks were ignored" in words[0]
    assert words[1].startswith("3 customers placed")  # the usual headline comes next


def test_a_partial_match_is_stated_without_a_cause_when_ids_are_pseudonymized():
    customers = pd.DataFrame({"customer_id": ["h1", "h2", "h3", "h4"], "orders": [1, 2, 3, 4]})
    attrs = pd.DataFrame({"customer_id": ["h1", "h2", "h3", "h9"], "age": [1, 2, 3, 4]})
    summary: dict = {"customers": 4}
    _with_attributes(customers, attrs, summary, pseudonymized=True)
    assert "ids_matching_loosely" not in summary
    assert _match_sentences(summary) == [
        "3 of the 4 customers in the transaction log (75%) have a row in the customer table "
        "(1 without attributes; 1 customer-table rows without purchases)."
    ]


_LOG = {
    "orders": 6,
    "revenue": 60.0,
    "first_date": "2024-01-01",
    "last_date": "2024-06-30",
    "top_20_share": 0.5,
    "transactions": 6,
}
