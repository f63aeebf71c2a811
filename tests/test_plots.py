"""Plots return their Axes, titled and labelled, and keep data text literal (Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from segkit import plots  # noqa: E402


def test_dollar_labels_are_not_mathematics():
    profiles = pd.DataFrame(
        {
            "segment": [1, 2],
            "segment_name": ["$0-100 buyers", "$100-200 buyers"],
            "share": [0.4, 0.6],
            "share_revenue": [0.3, 0.7],
        }
    )
    ax = plots.plot_segment_shares(profiles)
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert matplotlib.rcParams["text.parse_math"] is False
    assert any("$0-100" in label for label in labels) or "$0-100" in " ".join(
        t.get_text() for t in ax.texts
    )
    plt.close("all")


def test_quality_plot_is_titled_and_labelled():
    quality = pd.DataFrame(
        {"rows_in": [10], "rows_used": [8], "rows_rejected": [2], "cancellation": [2]},
        index=pd.Index(["transactions"], name="input"),
    )
    ax = plots.plot_quality(quality)
    assert ax.get_title() and (ax.get_xlabel() or ax.get_ylabel())
    plt.close("all")


def test_outcome_rates_heatmap_blank_for_suppressed_segments():
    rates = pd.DataFrame(
        {
            "segment": [1, 1, 2, 2, 3, 3],
            "segment_name": [
                "Wine lovers",
                "Wine lovers",
                "$5 deal seekers",
                "$5 deal seekers",
                "Tiny",
                "Tiny",
            ],
            "outcome": ["Response", "AcceptedCmp1"] * 3,
            "kind": ["rate", "mean"] * 3,
            "estimate": [0.35, 2.5, 0.05, 1.0, float("nan"), float("nan")],
            "index": [175.0, 125.0, 25.0, 50.0, float("nan"), float("nan")],
            "suppressed": [False, False, False, False, True, True],
        }
    )
    ax = plots.plot_outcome_rates(rates)
    texts = [t.get_text() for t in ax.texts]
    assert texts == ["35%\n(175)", "2.5\n(125)", "5.0%\n(25)", "1\n(50)"]  # row by row
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "Wine lovers",
        "$5 deal seekers",
        "Tiny",
    ]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["response", "accepted cmp1"]
    colours = np.ma.ravel(ax.collections[0].get_array())
    assert np.ma.getmaskarray(colours).tolist() == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]  # Tiny: blank
    assert colours[0] == pytest.approx(np.log2(1.75)) and colours[2] == pytest.approx(-2)
    assert "Which segment" in ax.get_title()
    assert ax.get_xlabel() == "outcome" and ax.get_ylabel() == "segment"
    plt.close("all")
