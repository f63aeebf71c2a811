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


# ------------------------------------------------------------------ charts that read (#17)

NAMES = {1: "Loyal big spenders", 2: "$0-100 bargain hunters", 3: "New customers"}


class _Fit:
    """A stand-in for a fitted BTYD model: smooth surfaces of the right shape."""

    def expected(self, t, x, tx, T):
        return t * (np.asarray(x) + 1) / (np.asarray(T) + 1)

    def p_alive(self, x, tx, T):
        return 1 / (1 + np.exp(-(np.asarray(tx, float) - np.asarray(T, float) / 2)))


def _inputs() -> dict:
    rng = np.random.default_rng(7)
    seg = pd.DataFrame({"segment": [1, 2, 3], "segment_name": [NAMES[i] for i in (1, 2, 3)]})
    feats = ["recency", "frequency", "monetary", "tenure", "aov", "categories"] * 2
    index = pd.DataFrame(
        rng.uniform(40, 250, (3, len(feats))),
        index=seg["segment_name"],
        columns=[f"{f}_{i}" for i, f in enumerate(feats)],
    )
    clv = pd.DataFrame(
        {"segment": np.repeat([1, 2, 3], 40), "clv": rng.lognormal(4, 1, 120)}
    ).merge(seg)
    months = pd.date_range("2024-01-01", periods=12, freq="MS")
    cohorts = pd.DataFrame(rng.uniform(0, 0.4, (12, 13)), index=months.strftime("%Y-%m"))
    cohorts.columns = list(range(13))
    lorenz = pd.DataFrame(
        {"customers_share": np.linspace(0, 1, 11), "revenue_share": np.linspace(0, 1, 11) ** 3}
    )
    ks = np.arange(3, 11)
    k_sel = pd.DataFrame(
        {
            "k": ks,
            "silhouette": rng.uniform(0.2, 0.5, 8),
            "calinski_harabasz": rng.uniform(500, 900, 8),
            "davies_bouldin": rng.uniform(0.8, 1.4, 8),
            "gap": rng.uniform(0.1, 0.5, 8),
            "gap_se": 0.02,
            "min_stability": rng.uniform(0.5, 0.9, 8),
            "stability": rng.uniform(0.7, 0.95, 8),
            "admissible": [True] * 6 + [False] * 2,
        }
    )
    scores = pd.DataFrame(rng.integers(1, 6, (300, 3)), columns=["r_score", "f_score", "m_score"])
    outcomes = pd.DataFrame(
        {
            "segment": np.repeat([1, 2, 3], 2),
            "segment_name": np.repeat(seg["segment_name"], 2).to_numpy(),
            "outcome": ["Response", "AcceptedCmp1"] * 3,
            "kind": ["rate", "mean"] * 3,
            "estimate": rng.uniform(0.05, 0.5, 6),
            "index": rng.uniform(50, 200, 6),
            "suppressed": False,
        }
    )
    mig = pd.DataFrame(
        [(a, b, 0.33, 10) for a in seg["segment_name"] for b in seg["segment_name"]],
        columns=["from_segment", "to_segment", "row_share", "customers"],
    )
    effects = pd.DataFrame(
        [
            ("spend", True, "all" if s == "all" else "segment", arm, s, "mean", 1.0, 0.2, 1.8)
            for s in ["all", "1", "2", "3"]
            for arm in ["Mens E-Mail", "Womens E-Mail"]
        ],
        columns=[
            "metric",
            "evaluated",
            "segment_col",
            "arm",
            "segment",
            "kind",
            "abs_lift",
            "abs_ci_low",
            "abs_ci_high",
        ],
    )
    value = effects[effects["segment"] != "all"][["segment_col", "arm", "segment"]].assign(
        profit_per_contact=0.3, profit_per_contact_ci_low=-0.1, profit_per_contact_ci_high=0.7
    )
    weeks = np.arange(1, 53)
    return {
        "seg": seg,
        "index": index,
        "clv": clv,
        "cohorts": cohorts,
        "lorenz": lorenz,
        "k_sel": k_sel,
        "scores": scores,
        "outcomes": outcomes,
        "mig": mig,
        "effects": effects,
        "value": value,
        "months": months,
        "weeks": weeks,
    }


def _figures() -> dict:
    """Every plot function on small synthetic inputs, as the reports call them."""
    d = _inputs()
    seg = d["seg"]
    profiles = seg.assign(n=[100, 200, 300], share_customers=[0.2, 0.3, 0.5])
    profiles["share_revenue"] = [0.5, 0.3, 0.2]
    customers = pd.DataFrame(
        {
            "revenue": np.exp(np.random.default_rng(1).normal(4, 1, 200)),
            "recency_days": np.arange(200.0),
        }
    )
    quality = pd.DataFrame(
        {"rows_in": [10], "rows_used": [8], "rows_rejected": [2], "cancellation": [2]},
        index=pd.Index(["transactions"], name="input"),
    )
    holdout = pd.DataFrame(
        {"calibration_frequency": [0, 1, 2, 3], "actual": [0.2, 0.5, 0.9, 1.4], "bgnbd": 0.5}
    )
    tracking = pd.DataFrame(
        {"week": d["weeks"], "actual": 5.0, "bgnbd": 5.5, "period": "calibration", "complete": True}
    )
    tracking.loc[tracking["week"] > 39, "period"] = "holdout"
    wide_fig, wide = plt.subplots(1, 2, figsize=(13, 5))  # as 04_clv draws two matrices
    categories = pd.DataFrame(
        {
            "segment_name": np.repeat(seg["segment_name"], 2).to_numpy(),
            "attribute": "history_segment",
            "value": ["$0-100", "$100-200"] * 3,
            "share": [0.4, 0.6] * 3,
        }
    )
    clv_segments = seg.assign(
        share_of_customers=[0.2, 0.3, 0.5], share_of_value=[0.6, 0.3, 0.1], suppressed=False
    )
    monthly = pd.DataFrame({"month": d["months"], "revenue": 1e4, "customers": 300})
    conc = {"lorenz": d["lorenz"], "top_10": 0.4, "top_20": 0.55, "gini": 0.6}
    plan = seg.assign(
        campaign="mail",
        channel="email",
        contacts=[100, 0, 0],
        profit_per_contact=[0.5, 0.1, -0.2],
        profit_per_contact_low=[0.2, -0.1, -0.5],
        profit_per_contact_high=[0.8, 0.3, 0.1],
        decision=["send", "not proven", "do not send"],
    )
    comparison = pd.DataFrame(
        {
            "strategy": ["the plan", "send everyone 'mail'", "send nobody"],
            "expected_profit": [50.0, 20.0, 0.0],
            "expected_profit_low": [20.0, -30.0, 0.0],
            "expected_profit_high": [80.0, 70.0, 0.0],
        }
    )
    return {
        "quality": plots.plot_quality(quality),
        "features": plots.plot_feature_distributions(
            customers, {"revenue": True, "recency_days": False}
        )[0],
        "monthly": plots.plot_monthly(monthly),
        "cohorts": plots.plot_cohort_retention(d["cohorts"]),
        "concentration": plots.plot_concentration(conc),
        "k_selection": plots.plot_k_selection(d["k_sel"], 4)[0],
        "rfm": plots.plot_rfm_grid(d["scores"]),
        "index": plots.plot_index_heatmap(d["index"]),
        "snake": plots.plot_snake(d["index"] / 100 - 1),
        "category_mix": plots.plot_category_mix(categories, "history_segment"),
        "shares": plots.plot_segment_shares(profiles),
        "outcomes": plots.plot_outcome_rates(d["outcomes"]),
        "migration": plots.plot_migration(d["mig"]),
        "holdout": plots.plot_holdout_by_frequency(holdout),
        "tracking": plots.plot_tracking(tracking),
        "frequency_recency": plots.plot_frequency_recency(_Fit(), 52, 26, ax=wide[0]),
        "p_alive_matrix": plots.plot_p_alive_matrix(_Fit(), 52, ax=wide[1]),
        "p_alive_history": plots.plot_p_alive_history(_Fit(), [0, 5, 9], 52),
        "clv_by_segment": plots.plot_clv_by_segment(d["clv"]),
        "segment_value": plots.plot_segment_value(clv_segments),
        "forest": plots.plot_forest(
            d["effects"], "spend", "segment", labels={str(k): v for k, v in NAMES.items()}
        ),
        "roi": plots.plot_roi(d["value"], "segment", labels={str(k): v for k, v in NAMES.items()}),
        "plan_profit": plots.plot_plan_profit(plan),
        "plan_strategies": plots.plot_plan_strategies(comparison),
        "_wide": wide_fig.axes[0],
    }


@pytest.fixture(scope="module")
def figures():
    plots.set_context(currency="€", names=NAMES, value_metric="spend")
    figs = _figures()
    yield figs
    plots.set_context()
    plt.close("all")


def _shown_png_width(fig) -> int:
    """Width in px of the PNG a notebook shows (matplotlib-inline: dpi 100, tight crop)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    buf.seek(0)
    return matplotlib.image.imread(buf).shape[1]


def test_every_text_is_at_least_10_pt_at_the_size_a_report_shows_it(figures):
    from matplotlib.text import Text

    # 1,090 px: widest image in a report at a 1,400 px window (measured in Chromium)
    for name, ax in figures.items():
        fig = ax.figure
        scale = min(1.0, 1090 / _shown_png_width(fig))
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert texts, name
        small = [(t.get_text(), t.get_fontsize() * scale) for t in texts]
        small = [(s, round(f, 1)) for s, f in small if f < 10 - 1e-6]
        assert not small, f"{name}: text under 10 pt as shown: {small[:5]}"


def test_wide_user_figure_text_is_enlarged_not_left_small(figures):
    fig = figures["_wide"].figure  # 13 in wide: shown at 1090/1300 of its size
    assert fig.get_size_inches()[0] == 13
    assert figures["_wide"].xaxis.label.get_fontsize() > 10


def _bar_colours(ax) -> list:
    return [matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches]


def test_same_segment_same_colour_in_every_chart(figures):
    to_hex = matplotlib.colors.to_hex
    lines = {ln.get_label(): to_hex(ln.get_color()) for ln in figures["snake"].get_lines()}
    loyal, hunters = lines[NAMES[1]], lines[NAMES[2]]
    assert loyal != hunters
    # bars: the first three patches are the customers' shares, segment 1, 2, 3 from the top
    assert _bar_colours(figures["shares"])[:3] == [loyal, hunters, lines[NAMES[3]]]
    assert _bar_colours(figures["segment_value"])[:3] == [loyal, hunters, lines[NAMES[3]]]
    # boxes of the CLV chart, in their own (median) order: match by tick label
    box = figures["clv_by_segment"]
    faces = [to_hex(p.get_facecolor()) for p in box.patches]
    ticks = [t.get_text() for t in box.get_yticklabels()]
    assert faces[ticks.index(NAMES[1])] == loyal and faces[ticks.index(NAMES[2])] == hunters
    # the swatch beside a heatmap's or forest plot's segment label
    for name in ("index", "outcomes", "category_mix", "forest", "roi"):
        swatches = {
            to_hex(ln.get_color()) for ln in figures[name].get_lines() if ln.get_marker() == "s"
        }
        assert {loyal, hunters} <= swatches, name


def test_segment_colour_is_keyed_by_number_across_runs_and_orders():
    plots.set_context(names={2: "B", 1: "A"})
    first = plots.segment_palette(["A", "B"])
    plots.set_context(names={1: "A", 2: "B"})
    assert plots.segment_palette(["B", "A"]) == first
    assert plots.segment_colour(1) == plots.segment_colour("1") == first["A"]
    assert plots.segment_colour("all") != plots.segment_colour(0) != first["A"]
    # labels that are not segments of the run take colours no segment of the plot uses
    mixed = plots.segment_palette(["A", "unknown"])
    assert mixed["unknown"] != mixed["A"]
    plots.set_context()


def test_money_axes_show_the_currency(figures):
    assert "€" in figures["monthly"].get_ylabel()
    assert "€" in figures["clv_by_segment"].get_xlabel()
    assert "€" in figures["roi"].get_xlabel()
    assert "€" in figures["forest"].get_xlabel()  # spend is the value metric
    assert "€" in figures["features"].get_xlabel()  # revenue
    assert "days" in figures["features"].figure.axes[1].get_xlabel()
    assert "%" in figures["shares"].get_xlabel()


def test_dollar_text_is_literal_in_every_chart(figures):
    from matplotlib.text import Text

    dollars = [t for ax in figures.values() for t in ax.figure.findobj(Text) if "$" in t.get_text()]
    assert len(dollars) >= 5  # segment names, category values, legends
    assert not any(t.get_parse_math() for t in dollars)


def test_run_open_sets_the_plotting_context(tmp_path):
    import json

    from segkit import Run

    run = Run.open({"name": "t", "report": {"currency": "£"}}, run_dir=tmp_path / "r")
    assert plots.context().currency == "£"
    assert plots.money_label("revenue") == "revenue (£)"
    # names written later (by the profiling stage) still give segment 2 its colour
    (run.artifacts / "segment_names.json").write_text(json.dumps({"1": "X", "2": "Y"}))
    assert plots.segment_colour("Y") == plots.segment_colour(2) != plots.segment_colour(1)
    plots.set_context()
    plt.close("all")
