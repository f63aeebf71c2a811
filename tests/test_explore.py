"""segkit.explore: data quality that reconciles, cohorts, monthly summary, concentration."""

import numpy as np
import pandas as pd
import pytest

from segkit import explore, plots
from segkit.core.errors import SegkitError


def tx_frame():
    # a: Jan, Feb, Apr; b: Jan; c: Feb, Mar.  Cohorts: Jan {a, b}, Feb {c}.
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c", "c"],
            "timestamp": pd.to_datetime(
                ["2024-01-03", "2024-02-10", "2024-04-02", "2024-01-20", "2024-02-05", "2024-03-09"]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 8.0, 2.0],
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6"],
        }
    )


def test_cohort_retention_by_hand():
    got = explore.cohort_retention(tx_frame(), max_months=3, observation_end="2024-04-30")
    assert got.loc["2024-01", "size"] == 2 and got.loc["2024-02", "size"] == 1
    assert got.loc["2024-01", [0, 1, 2, 3]].tolist() == [1.0, 0.5, 0.0, 0.5]
    assert got.loc["2024-02", [0, 1, 2]].tolist() == [1.0, 1.0, 0.0]
    assert np.isnan(got.loc["2024-02", 3])  # May 2024 is after the observation end


def test_cohort_partial_last_month_is_not_a_zero():
    got = explore.cohort_retention(tx_frame(), max_months=3, observation_end="2024-04-15")
    assert np.isnan(got.loc["2024-01", 3])  # April is cut short by the observation end


def test_monthly_summary_by_hand():
    got = explore.monthly_summary(tx_frame())
    assert got["revenue"].tolist() == [15.0, 28.0, 2.0, 30.0]
    assert got["customers"].tolist() == [2, 2, 1, 1]
    assert got["new_customers"].tolist() == [2, 1, 0, 0]
    assert got["orders"].tolist() == [2, 2, 1, 1]


def test_revenue_concentration_and_gini():
    c = pd.DataFrame({"revenue": [1.0] * 8 + [46.0, 46.0]})
    got = explore.revenue_concentration(c)
    assert (got["top_10"], got["top_20"]) == (0.46, 0.92)
    # Gini from the mean-difference formula, computed independently
    x = c["revenue"].to_numpy()
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
    assert got["gini"] == pytest.approx(gini, abs=1e-6)
    with pytest.raises(SegkitError, match="no positive revenue"):
        explore.revenue_concentration(pd.DataFrame({"revenue": [0.0, 0.0]}))


def test_quality_table_reconciles():
    q = {
        "transactions": {
            "rows_in": 10,
            "rows_used": 6,
            "rows_rejected": 4,
            "rejected": {"duplicate_row": 1, "cancellation": 3},
        },
        "customers": {"rows_in": 3, "rows_used": 3, "rows_rejected": 0, "rejected": {}},
    }
    t = explore.quality_table(q)
    assert list(t.columns) == [
        "rows_in",
        "rows_used",
        "rows_rejected",
        "cancellation",
        "duplicate_row",
    ]
    assert t.loc["customers"].tolist() == [3, 3, 0, 0, 0]
    assert (t["rows_in"] == t["rows_used"] + t.iloc[:, 3:].sum(axis=1)).all()


def test_exploration_plots_are_labelled():
    tx = tx_frame()
    ax = plots.plot_monthly(explore.monthly_summary(tx))
    assert ax.get_title() and "revenue" in ax.get_ylabel()
    ax = plots.plot_cohort_retention(explore.cohort_retention(tx, 3))
    assert ax.get_xlabel() == "months since first purchase"
    conc = explore.revenue_concentration(pd.DataFrame({"revenue": [1.0, 2.0, 30.0]}))
    ax = plots.plot_concentration(conc)
    assert "Gini" in ax.get_title() and ax.get_ylabel() == "% of revenue"
    q = explore.quality_table(
        {"t": {"rows_in": 3, "rows_used": 2, "rows_rejected": 1, "rejected": {"cancellation": 1}}}
    )
    ax = plots.plot_quality(q)
    assert ax.get_xlabel() == "rows set aside"
