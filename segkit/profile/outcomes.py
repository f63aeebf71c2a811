"""Outcome rates: the rate (0/1 outcomes) or mean of each outcome per segment.

:func:`outcome_rates` gives each with its 95% interval (Wilson for rates, Student t for
means), the all-customer value and the index; segments under ``min_size`` show no
numbers (privacy).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segkit.core.checks import SegkitError, check_columns, check_scalar
from segkit.core.params import MIN_SEGMENT_SIZE
from segkit.naming import align_segments

#: Columns of :func:`outcome_rates` (``outcome_rates.csv``), in order.
OUTCOME_RATE_COLUMNS = [
    "segment",
    "segment_name",
    "outcome",
    "kind",
    "customers",
    "estimate",
    "ci_low",
    "ci_high",
    "overall",
    "index",
    "suppressed",
]


def _is_binary(values: pd.Series) -> bool:
    v = values.dropna()
    return bool(len(v) and v.isin([0, 1]).all())


def _estimate(values: pd.Series, binary: bool, alpha: float) -> tuple[int, float, float, float]:
    """(customers, estimate, ci_low, ci_high) of the non-missing ``values``: a Wilson
    interval for a rate, a t interval for a mean (NaN bounds under two customers)."""
    from scipy import stats
    from statsmodels.stats.proportion import proportion_confint

    v = values.dropna().astype("float64")
    n = len(v)
    if n == 0:
        return 0, np.nan, np.nan, np.nan
    if binary:
        lo, hi = proportion_confint(int(v.sum()), n, alpha=alpha, method="wilson")
        return n, float(v.mean()), float(lo), float(hi)
    if n < 2:
        return n, float(v.mean()), np.nan, np.nan
    half = stats.t.ppf(1 - alpha / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return n, float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def outcome_rates(
    customers: pd.DataFrame,
    segments: pd.Series | pd.DataFrame,
    outcomes: list[str] | tuple[str, ...],
    *,
    alpha: float = 0.05,
    min_size: int = MIN_SEGMENT_SIZE,
    names: dict[int, str] | None = None,
) -> pd.DataFrame:
    """The rate (0/1 outcomes) or mean (numeric outcomes) of each outcome per segment.

    Parameters
    ----------
    customers : one row per customer with ``customer_id`` and the ``outcomes`` columns.
    segments : frame with ``customer_id`` and ``segment``, or one segment per row.
    outcomes : numeric outcome columns (campaign acceptance, response, complaints, spend…).
        A column whose non-missing values are all 0 or 1 is a rate, any other a mean.
    alpha : 1 - confidence of the intervals (0.05: 95% intervals).
    min_size : segments with fewer customers show no numbers (privacy, as :func:`profile`).
    names : segment number -> name; "Segment k" when absent.

    Returns
    -------
    DataFrame with :data:`OUTCOME_RATE_COLUMNS`, one row per (segment, outcome), segments
    in order, outcomes as given: ``kind`` "rate" or "mean"; ``customers`` with a
    non-missing value; ``estimate`` the rate or mean with its interval ``ci_low..ci_high``
    (Wilson score for rates, Student t for means); ``overall`` the same over all customers;
    ``index`` = estimate / overall × 100 (NaN when overall is not positive). Rows of a
    suppressed segment have ``suppressed`` True and no numbers.

    Raises
    ------
    SegkitError
        An outcome is not a column of ``customers`` or is not numeric.

    Examples
    --------
    >>> t = pd.DataFrame({"customer_id": list("abcd"), "Response": [1, 0, 1, 1]})
    >>> r = outcome_rates(t, pd.Series([1, 1, 2, 2]), ["Response"], min_size=1)
    >>> r[["segment", "kind", "customers", "estimate", "index"]]
       segment  kind  customers  estimate       index
    0        1  rate          2       0.5   66.666667
    1        2  rate          2       1.0  133.333333
    """
    check_scalar(alpha, "alpha", float, gt=0, lt=1)
    check_scalar(min_size, "min_size", int, ge=1)
    outcomes = list(outcomes)
    check_columns(customers, outcomes, "customers")
    for c in outcomes:
        if not pd.api.types.is_numeric_dtype(customers[c]):
            raise SegkitError(
                f"outcome {c!r} is not numeric (dtype {customers[c].dtype}); an outcome "
                "is a 0/1 result or a number"
            )
    seg = align_segments(customers, segments, "segments")
    sizes = seg.value_counts().sort_index()
    values = {c: customers[c].astype("float64") for c in outcomes}
    binary = {c: _is_binary(values[c]) for c in outcomes}
    overall = {c: _estimate(values[c], binary[c], alpha)[1] for c in outcomes}
    rows = []
    for s in sizes.index:
        members = (seg == s).to_numpy()
        hidden = bool(sizes[s] < min_size)
        for c in outcomes:
            n, est, lo, hi = (
                (pd.NA, np.nan, np.nan, np.nan)
                if hidden
                else _estimate(values[c][members], binary[c], alpha)
            )
            rows.append(
                (int(s), (names or {}).get(int(s), f"Segment {s}"), c)
                + ("rate" if binary[c] else "mean", n, est, lo, hi, overall[c], np.nan, hidden)
            )
    out = pd.DataFrame(rows, columns=OUTCOME_RATE_COLUMNS)
    out["customers"] = out["customers"].astype("Int64")
    ok = out["overall"] > 0
    out.loc[ok, "index"] = out.loc[ok, "estimate"] / out.loc[ok, "overall"] * 100
    return out.reset_index(drop=True)
