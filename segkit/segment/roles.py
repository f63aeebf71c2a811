"""Roles of the customer table's columns in the clustering, as a table for the report.

:func:`feature_table` lists every column of the customer table with what happened to it
(clustered, and how it was transformed; or left out, and why): ``cluster_features.csv``.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from segkit.core.params import MAX_LEVELS
from segkit.segment.prepare import (
    NOT_FEATURES,
    POSTAL_NAMES,
    Prepared,
    is_id_like,
    is_personal,
    prepare,  # noqa: F401 - used by the example below
)


class Declared(NamedTuple):
    """What the parameters say about the columns (for :func:`feature_table`)."""

    features: list[str] | None = None  # cluster.features as given
    categorical: list[str] | None = None  # cluster.categorical as given
    outcomes: tuple[str, ...] = ()  # the outcomes (given or inferred)
    outcomes_given: bool = False  # listed in data.customers.outcomes (else inferred)
    value: str = ""  # the column that orders the segments
    derived: tuple[str, ...] = ()  # data.customers.derive names
    consent: tuple[str, ...] = ()  # plan.consent_column: who may be contacted


def _numeric_transform(col: str, prepared: Prepared) -> str:
    text = "log1p, robust scaling" if col in prepared.logged else "robust scaling"
    if col in prepared.bounds:
        lo, hi = prepared.bounds[col]
        text += f"; {prepared.capped[col]:,} implausible value(s) capped to {lo:.6g}..{hi:.6g}"
    return text


def _used_reason(col: str, declared: Declared, outcomes: set[str], categorical: bool) -> str:
    listed = declared.categorical if categorical else declared.features
    if col in outcomes:
        return "an outcome, clustered because it is listed in cluster.features"
    where = "cluster.categorical" if categorical else "cluster.features"
    why = f"listed in {where}" if listed is not None and col in listed else "chosen by default"
    if col.startswith("days_since_"):
        why += " (a date, as days before the observation end)"
    elif col in declared.derived:
        why += " (derived: data.customers.derive)"
    return why


def _declared_role(col: str, declared: Declared, outcomes: set[str]) -> tuple | None:
    """(role, reason) of a column the parameters give a role other than clustering."""
    if col in outcomes:
        return "outcome", (
            "listed in data.customers.outcomes: profiled per segment, not clustered"
            if declared.outcomes_given
            else "named like a result (acceptance, response, complaint…): taken for an "
            "outcome, profiled per segment, not clustered (list it in cluster.features to "
            "cluster on it)"
        )
    if col == declared.value:
        return "value", "cluster.value: orders the segments, not clustered"
    if col in declared.consent:
        return "consent", (
            "plan.consent_column: who may be contacted, not a trait of a segment; not "
            "clustered (list it in cluster.features to cluster on it)"
        )
    return None


def _left_out(customers: pd.DataFrame, col: str, declared: Declared, outcomes: set[str]) -> tuple:
    """(role, reason) of a column that is not clustered."""
    s = customers[col]
    given = _declared_role(col, declared, outcomes)
    if given is not None:
        return given
    if pd.api.types.is_datetime64_any_dtype(s):
        return "date", "a date: clustered only as days (e.g. tenure_days, days_since_last)"
    if col in NOT_FEATURES:
        return "summary", "a purchase-history summary for the CLV models"
    if s.isna().all():
        return "empty", "empty for every customer"
    if s.nunique(dropna=False) < 2:
        return "constant", "the same value for every customer"
    if is_id_like(s):
        return "id-like", "a different whole number for every customer (an identifier)"
    if is_personal(col):
        return "personal", (
            "personal data (a name, e-mail, phone or address): it identifies a customer and "
            "describes no segment"
        )
    if POSTAL_NAMES.search(col) and s.nunique() > MAX_LEVELS:
        return "attribute", (
            f"a postal code: a code, not a quantity, with {s.nunique():,} levels (more than "
            f"{MAX_LEVELS}); derive a region from it (e.g. its first digits) to cluster on it"
        )
    if declared.features is not None or declared.categorical is not None:
        return "attribute", "not listed in cluster.features / cluster.categorical"
    if pd.api.types.is_numeric_dtype(s):
        return "attribute", "not a clustering feature by default"
    return "attribute", f"text with more than {MAX_LEVELS} levels"


def feature_table(customers: pd.DataFrame, prepared: Prepared, declared: Declared) -> pd.DataFrame:
    """Every column of the customer table with what happened to it before clustering.

    Parameters
    ----------
    customers : the customer table.
    prepared : the clustering columns as :func:`prepare` left them.
    declared : what the parameters say (:class:`Declared`).

    Returns
    -------
    DataFrame ``feature, role, used, transform, reason``: ``role`` is one of id, feature,
    outcome, value, date, summary, constant, empty, id-like, attribute; ``used`` whether
    it was clustered; ``transform`` how (log1p / robust scaling / capping / one-hot).

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": ["a", "b", "c"], "spend": [1.0, 5, 9],
    ...                   "Response": [0, 1, 0], "flat": [2, 2, 2]})
    >>> p = prepare(t, ["spend"], [])
    >>> feature_table(t, p, Declared(outcomes=("Response",)))[["feature", "role", "used"]]
        feature     role   used
    0  customer_id       id  False
    1        spend  feature   True
    2     Response  outcome  False
    3         flat constant  False
    """
    outcomes = set(declared.outcomes)
    rows = []
    for col in customers.columns:
        if col == "customer_id":
            rows.append((col, "id", False, "", "the customer id"))
        elif col in prepared.numeric:
            reason = _used_reason(col, declared, outcomes, categorical=False)
            rows.append((col, "feature", True, _numeric_transform(col, prepared), reason))
        elif col in prepared.categorical:
            n = prepared.data[col].nunique()
            reason = _used_reason(col, declared, outcomes, categorical=True)
            rows.append((col, "feature", True, f"one-hot ({n} levels)", reason))
        elif col in prepared.dropped:
            why = prepared.dropped[col]
            role = "id-like" if why.startswith("identifier") else why.split()[0]
            role = {"the": "constant"}.get(role, role)
            rows.append((col, role, False, "", why))
        else:
            role, reason = _left_out(customers, col, declared, outcomes)
            rows.append((col, role, False, "", reason))
    return pd.DataFrame(rows, columns=["feature", "role", "used", "transform", "reason"])
