"""Plots return their Axes, titled and labelled, and keep data text literal (Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

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
