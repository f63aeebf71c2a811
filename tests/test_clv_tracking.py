"""segkit.clv.tracking against an independent pandas computation from the raw transactions.

The reference (:func:`reference_tracking`) follows the definition of the tracking plots
(Fader, Hardie & Lee 2005, figures 2-3) customer by customer: the calibration cohort's
purchase days, each customer's repeat days counted in the week since the origin they fall
in, and the model's expectation summed over the customers at each week's end. segkit
computes it from two aggregates of the log (customers per first day, repeat days per
week) in DuckDB SQL, or on Spark (tests/test_engine_stages.py); a Parquet file and a
Parquet folder (as Spark writes one) are both read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segkit import clv, datasets, features
from segkit.clv.fit import Fit

CAL, END = pd.Timestamp("2024-06-30"), pd.Timestamp("2024-12-20")


def reference_tracking(
    tx: pd.DataFrame, fits: dict[str, Fit], cal: pd.Timestamp, end: pd.Timestamp, unit: str
) -> pd.DataFrame:
    """The tracking table from the raw transactions, one customer at a time."""
    unit_days = {"D": 1.0, "W": 7.0}[unit]
    tx = tx.assign(day=tx["timestamp"].dt.normalize())
    tx = tx[tx["day"] <= end]
    first = tx.groupby("customer_id")["day"].min()
    cohort = first[first <= cal]
    origin = cohort.min()
    n_days = (end - origin).days + 1
    n_weeks = -(-n_days // 7)
    days = tx.loc[tx["customer_id"].isin(cohort.index), ["customer_id", "day"]].drop_duplicates()
    repeat_days = days[days["day"] > days["customer_id"].map(first)]
    week_of = (repeat_days["day"] - origin).dt.days // 7
    out = pd.DataFrame(
        {
            "week": np.arange(1, n_weeks + 1),
            "actual": [float((week_of == w).sum()) for w in range(n_weeks)],
        }
    )
    age_at_origin = (cohort - origin).dt.days.to_numpy()  # days from origin to first purchase
    for name, f in fits.items():
        cum = []
        for w in range(1, n_weeks + 1):
            age = (7 * w - age_at_origin) / unit_days
            alive = age > 0  # customers not yet acquired at the week's end add nothing
            cum.append(float(f.expected_new(age[alive]).sum()))
        out[name] = np.diff([0.0, *cum])
    out["period"] = np.where(out["week"] <= ((cal - origin).days + 1) / 7, "calibration", "holdout")
    out["complete"] = out["week"] * 7 <= n_days
    return out


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """~5k transactions of the synthetic retailer (times of day, same-day repeats), its
    calibration fits, as a Parquet file and as a folder of two part files."""
    folder = tmp_path_factory.mktemp("tracking")
    tx = datasets.make_retailer(n_customers=700, seed=3).transactions
    assert (tx["timestamp"] != tx["timestamp"].dt.normalize()).any()  # days are truncated
    file = folder / "tx.parquet"
    tx.to_parquet(file)
    parts = folder / "parts.parquet"
    parts.mkdir()
    half = len(tx) // 2
    tx.iloc[:half].to_parquet(parts / "part-00000.parquet")
    tx.iloc[half:].to_parquet(parts / "part-00001.parquet")
    (parts / "_SUCCESS").write_text("")  # what Spark leaves beside its part files
    cal = features.calibration_holdout(str(file), CAL, END, "W")
    fits = {m: clv.fit_purchases(m, cal["frequency"], cal["recency"], cal["T"]) for m in ("bgnbd",)}
    return {"tx": tx, "file": file, "parts": parts, "fits": fits}


def assert_tracking_equal(out: pd.DataFrame, ref: pd.DataFrame) -> None:
    """Counts, periods and completeness exactly; expectations to 1e-12 (relative)."""
    assert list(out.columns) == list(ref.columns)
    for c in ("week", "actual", "period", "complete"):
        assert out[c].tolist() == ref[c].tolist(), c
    for c in out.columns.drop(["week", "actual", "period", "complete"]):
        np.testing.assert_allclose(out[c], ref[c], rtol=1e-12, atol=1e-12, err_msg=c)


@pytest.mark.parametrize("where", ["file", "parts"])
@pytest.mark.parametrize("unit", ["W", "D"])
def test_tracking_equals_the_customer_by_customer_definition(log, where, unit):
    ref = reference_tracking(log["tx"], log["fits"], CAL, END, unit)
    assert ref["actual"].sum() > 1000 and (~ref["complete"]).sum() == 1  # a partial last week
    out = clv.tracking(
        str(log[where]),
        log["fits"],
        calibration_end=CAL,
        observation_end=END,
        time_unit=unit,
    )
    assert_tracking_equal(out, ref)


def test_tracking_leaves_out_later_customers_and_purchases(tmp_path):
    """A customer first seen after the calibration end and purchases after the observation
    end are not counted; two purchases on one day are one purchase day."""
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "b"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-02 09:00",
                    "2024-01-10 08:00",
                    "2024-01-10 17:00",  # the same day: one repeat purchase day
                    "2024-02-20 10:00",  # after the observation end
                    "2024-01-20 10:00",  # b: first seen after the calibration end
                    "2024-01-21 10:00",
                ]
            ),
        }
    )
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    out = clv.tracking(
        str(path), {}, calibration_end="2024-01-05", observation_end="2024-01-31", time_unit="D"
    )
    assert out["actual"].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # 2024-01-10: week 2 from 01-02
    assert out["complete"].tolist() == [True] * 4 + [False]
