"""segkit.stages.tables: one test per formatting rule, expected strings written by hand."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segkit.core.errors import SegkitError
from segkit.stages import tables
from segkit.stages.run import Run
from segkit.stages.tables import Col


def _run(tmp_path, currency="€", value_metric=None) -> Run:
    run = Run(
        tmp_path, {"report": {"currency": currency}, "abtest": {"value_metric": value_metric}}
    )
    run.artifacts.mkdir(parents=True, exist_ok=True)
    return run


# ----------------------------------------------------------------------------- cells


def test_thousands_separators():
    assert tables.fmt_int(1234567) == "1,234,567"
    assert tables.fmt_int(np.int64(789)) == "789"
    assert tables.fmt_num(1234.5678) == "1,235"
    assert tables.fmt_num(12.345) == "12.3"


def test_no_trailing_zeros_of_a_float_dump():
    assert tables.fmt_num(0.820000) == "0.82"  # was "0.820000"
    assert tables.fmt_num(3, 1) == "3.0"


def test_money_carries_the_currency():
    assert tables.fmt_money(1234567.891, "€") == "€1,234,568"
    assert tables.fmt_money(12.3456, "$") == "$12.35"
    assert tables.fmt_money(-0.403, "€") == "-€0.40"
    assert tables.fmt_money(-0.001, "€") == "€0.00"  # no "-€0.00"
    assert tables.fmt_money(250, "") == "250"


def test_shares_as_percentages():
    assert tables.fmt_pct(0.197) == "20%"
    assert tables.fmt_pct(0.004) == "0.4%"
    assert tables.fmt_pct(1.0) == "100%"
    assert tables.fmt_pct(0.25, 1) == "25.0%"


def test_p_values():
    assert tables.fmt_p(0.0005) == "< 0.001"
    assert tables.fmt_p(0.00099) == "< 0.001"
    assert tables.fmt_p(0.001) == "0.001"
    assert tables.fmt_p(0.0024) == "0.002"
    assert tables.fmt_p(0.348) == "0.348"


def test_intervals_in_one_cell():
    assert tables.fmt_interval(0.070, 0.083, "pts") == "7.0 to 8.3 pts"
    assert tables.fmt_interval(0.0738, 0.4696, "pct") == "7.4% to 47.0%"
    assert tables.fmt_interval(-2.376, 3.557, "money", "€") == "-€2.38 to €3.56"
    assert tables.fmt_interval(96498.5, 100605.0, "money", "$") == "$96,498 to $100,605"
    assert tables.fmt_interval(0.6737, 0.7448) == "0.674 to 0.745"
    assert tables.fmt_interval(90.86, 286.2) == "91 to 286"


def test_missing_values_are_a_dash():
    for f in (tables.fmt_int, tables.fmt_num, tables.fmt_pct, tables.fmt_p, tables.fmt_bool):
        assert f(np.nan) == "–" and f(None) == "–"
    assert tables.fmt_money(np.nan, "€") == "–"
    assert tables.fmt_interval(np.nan, 1.0) == "–"


def test_an_interval_bound_a_million_times_the_estimate_is_not_trusted():
    assert tables.untrusted(161.3, 90.86, 2.693658e259) is not None
    assert tables.untrusted(1.0, -0.5, 1.5e6) is not None
    assert tables.untrusted(1.0, -0.5, 0.9e6) is None
    assert tables.fmt_interval(1.0, np.inf) == "not identified"


def test_an_unknown_column_kind_is_refused():
    with pytest.raises(SegkitError, match=r"table column 'x': kind 'euro', must be one of"):
        Col("x", "x", "euro")
    with pytest.raises(SegkitError, match=r"table column \('a', 'b'\): kind 'p'"):
        Col(("a", "b"), "interval", "p")


# ----------------------------------------------------------------------------- tables


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "segment": [1, 2, 3],
            "name": ["Loyal <b>big</b> spenders", "$0-100 buyers", "Lapsed"],
            "revenue": [1234567.891, 12.3456, np.nan],
            "share": [0.197, 0.004, 0.799],
            "lo": [0.070, -0.01, 0.001],
            "hi": [0.083, 0.02, 0.002],
            "empty": [np.nan, np.nan, np.nan],
        }
    )


def _cols() -> list[Col]:
    return [
        Col("segment", "segment", "int"),
        Col("name", "name"),
        Col("revenue", "revenue", "money"),
        Col("share", "share of customers", "pct"),
        Col(("lo", "hi"), "lift, 95% interval", "pts"),
        Col("empty", "never filled", "num"),
    ]


def test_show_formats_every_cell_without_an_index(frame, tmp_path):
    t = tables.show(frame, _cols(), run=_run(tmp_path))
    assert t.head == ["segment", "name", "revenue", "share of customers", "lift, 95% interval"]
    assert t.rows[0] == ["1", "Loyal <b>big</b> spenders", "€1,234,568", "20%", "7.0 to 8.3 pts"]
    assert t.rows[1] == ["2", "$0-100 buyers", "€12.35", "0.4%", "-1.0 to 2.0 pts"]
    assert t.rows[2][2] == "–"
    assert tables.DASH_NOTE in t.notes  # a dash is explained
    text = repr(t)
    assert text.splitlines()[0].startswith("segment  name")  # no index column first
    assert "NaN" not in text and "nan" not in text


def test_html_has_no_index_no_nan_and_escapes_text(frame):
    page = tables.show(frame, _cols())._repr_html_()
    assert "row_heading" not in page and "blank" not in page  # Styler's index cells
    assert not re.search(r">\s*(NaN|nan|None)\s*<", page)
    assert "Loyal &lt;b&gt;big&lt;/b&gt; spenders" in page and "<b>big" not in page
    assert tables.DASH_NOTE in page
    assert "http" not in page  # nothing from the network


def test_text_is_never_cut(tmp_path):
    rule = " and ".join(f"share of category {i} purchases ≤ {i}%" for i in range(8))
    t = tables.show(pd.DataFrame({"rule": [rule]}), [Col("rule", "rule")])
    assert rule in t._repr_html_()
    assert "…" not in repr(t) and "..." not in repr(t)
    assert " ".join(repr(t).split()[2:]) == rule  # every word, wrapped over lines


def test_the_text_view_is_deterministic(frame):
    a, b = tables.show(frame, _cols()), tables.show(frame, _cols())
    assert repr(a) == repr(b) and a._repr_html_() == b._repr_html_()
    assert "object at 0x" not in repr(a)
    assert "Styler" not in repr(a)


def test_a_reduced_table_links_its_full_csv(tmp_path):
    run = _run(tmp_path)
    features = pd.DataFrame(
        {
            "count": [10.0],
            "missing": [0],
            "mean": [2.5],
            "std": [1.0],
            "min": [0.0],
            "25%": [1.0],
            "50%": [2.0],
            "75%": [3.0],
            "95%": [4.0],
            "max": [9.0],
            "skew": [0.3],
        },
        index=pd.Index(["days_since_last"]),
    )
    t = tables.feature_summary(features, run)
    assert "std" not in t.head and "skew" not in t.head
    assert t.rows[0][0] == "last purchase"
    assert t.link == "artifacts/feature_summary.csv"
    full = pd.read_csv(run.path("feature_summary.csv"))
    assert {"feature", "std", "95%", "skew"} <= set(full.columns)
    assert '<a href="artifacts/feature_summary.csv">' in t._repr_html_()
    assert repr(t).endswith("Full table: artifacts/feature_summary.csv")


def test_clv_params_not_identified_with_the_reason():
    params = pd.DataFrame(
        {
            "model": ["Pareto/NBD", "Pareto/NBD", "Gamma-Gamma"],
            "parameter": ["r", "beta", "q"],
            "estimate": [1.051, 161.3, 1.323],
            "se": [0.03246, 47.21, 0.03394],
            "ci_low": [0.9889, 90.86, 1.258],
            "ci_high": [1.116, 2.693658e259, 1.391],
        }
    )
    weak = SimpleNamespace(spec=SimpleNamespace(label="Gamma-Gamma"), weak=["q"])
    ok = SimpleNamespace(spec=SimpleNamespace(label="Pareto/NBD"), weak=[])
    t = tables.clv_params(SimpleNamespace(params=params, fits={"pnbd": ok, "gg": weak}))
    assert t.rows[0] == ["Pareto/NBD", "r", "1.051", "0.0325", "0.99 to 1.12"]
    assert t.rows[1][2] == "not identified" and "1,000,000 times" in t.rows[1][4]
    assert t.rows[2][2] == "not identified" and "weakly identified" in t.rows[2][4]
    assert "e+259" not in repr(t) and "2.69" not in repr(t)


def test_effects_use_points_for_rates_and_the_currency_for_the_value_metric(tmp_path):
    effects = pd.DataFrame(
        {
            "metric": ["visit", "spend", "visit"],
            "kind": ["proportion", "mean", "proportion"],
            "arm": ["content", "content", "content"],
            "segment_col": ["all", "all", "segment"],
            "mean_control": [0.1717, 4.0144, 0.2],
            "mean_treatment": [0.2183, 4.9691, 0.3],
            "abs_lift": [0.0466, 0.9547, 0.1],
            "abs_ci_low": [0.0166, -1.1617, 0.0],
            "abs_ci_high": [0.0767, 3.0711, 0.2],
            "rel_lift": [0.2717, 0.2378, 0.5],
            "p_adjusted": [0.0047, 0.7512, 0.01],
            "power": [0.2172, 0.0736, 0.5],
        }
    )
    t = tables.effects(effects, _run(tmp_path, "€", value_metric="spend"))
    assert len(t.rows) == 2  # the overall rows only; the file holds the segments
    assert t.rows[0][2:] == ["17%", "22%", "4.7 pts", "1.7 to 7.7 pts", "27%", "0.005", "22%"]
    assert t.rows[1][2:6] == ["€4.01", "€4.97", "€0.95", "-€1.16 to €3.07"]


def test_profile_means_are_transposed_with_a_feature_column(tmp_path):
    profiles = pd.DataFrame(
        {
            "segment_name": ["Big", "Small"],
            "mean_revenue": [1239.0, 65.0],
            "median_revenue": [857.0, 50.3],
            "mean_orders": [4.99, np.nan],
            "median_orders": [4.0, np.nan],
        }
    )
    t = tables.profile_means(profiles, _run(tmp_path, "€"))
    assert t.head == ["feature", "Big", "Small"]
    assert t.rows == [
        ["orders", "4.99 (4.00)", "–"],
        ["revenue", "€1,239 (€857)", "€65.00 (€50.30)"],
    ]
    assert any("minimum size" in n for n in t.notes)
    run = _run(tmp_path, "€")
    run.params["data"] = {"customers": {"labels": {"orders": "purchases"}}}
    assert [r[0] for r in tables.profile_means(profiles, run).rows] == ["purchases", "revenue"]


def test_outcome_rates_show_rates_as_percent_and_means_as_numbers():
    rates = pd.DataFrame(
        {
            "segment": [1, 1, 2],
            "segment_name": ["Big", "Big", "Small"],
            "outcome": ["response", "spend", "response"],
            "kind": ["rate", "mean", "rate"],
            "customers": [1200, 1200, np.nan],
            "estimate": [0.153, 1234.6, np.nan],
            "ci_low": [0.133, 1100.0, np.nan],
            "ci_high": [0.175, 1369.0, np.nan],
            "overall": [0.12, 1000.0, 0.12],
            "index": [127.5, 123.45, np.nan],
            "suppressed": [False, False, True],
        }
    )
    t = tables.outcome_rates(rates)
    assert t is not None and tables.outcome_rates(None) is None
    assert t.rows[0][3:] == ["1,200", "15%", "13.3% to 17.5%", "12%", "128"]
    assert t.rows[1][4:7] == ["1,235", "1,100 to 1,369", "1,000"]
    assert t.rows[2][3:] == ["–", "–", "–", "12%", "–"]
    assert any("minimum size" in n for n in t.notes)


def test_the_summary_segment_table_uses_the_same_formats(tmp_path):
    from segkit.pipeline import summary

    (tmp_path / "artifacts").mkdir()
    pd.DataFrame(
        {
            "segment": [0, 1, 2],
            "segment_name": ["other", "Loyal <b>big</b>", "Lapsed"],
            "n": [3, 1234, 56],
            "share_customers": [0.001, 0.956, 0.043],
            "share_revenue": [0.0, 0.991, 0.009],
            "mean_revenue": [1.0, 1234567.891, 12.3456],
        }
    ).to_csv(tmp_path / "artifacts" / "profiles.csv", index=False)
    pd.DataFrame({"segment": [1], "clv_per_customer": [310.4]}).to_csv(
        tmp_path / "artifacts" / "clv_segments.csv", index=False
    )
    head, rows = summary.segment_rows(tmp_path, "€")
    assert rows == [
        ["1", "Loyal <b>big</b>", "1,234", "96%", "99%", "€1,234,568", "€310"],
        ["2", "Lapsed", "56", "4.3%", "0.9%", "€12.35", "–"],
        ["–", "other", "3", "0.1%", "–", "–", "–"],  # the small segments: their size only
    ]
    html = summary._table(head, rows)
    assert "Loyal &lt;b&gt;big&lt;/b&gt;" in html and "– no value" in html


def test_an_empty_table_still_shows_its_header():
    empty = pd.DataFrame(
        {"metric": pd.Series([], dtype=str), "p_value": pd.Series([], dtype=float)}
    )
    t = tables.show(empty, [Col("metric", "metric"), Col("p_value", "p", "p")])
    assert t.head == ["metric", "p"]
    assert repr(t).splitlines()[-1] == "(no rows)"
    assert "<th" in t._repr_html_() and "No rows." in t._repr_html_()
    assert repr(tables.show(empty, [])) == "(no columns)"


def test_show_without_columns_reads_the_kinds_from_the_dtypes():
    df = pd.DataFrame({"arm": ["a", "b"], "n_customers": [1234, 5], "mean": [0.8200, 1234.5678]})
    df["ok"] = [True, False]
    t = tables.show(df)
    assert t.head == ["arm", "n customers", "mean", "ok"]
    assert t.rows == [["a", "1,234", "0.82", "yes"], ["b", "5", "1,235", "no"]]
    assert t.numeric == [False, True, True, True]


def test_the_summary_segment_table_shows_the_cluster_value_of_a_customer_table(tmp_path):
    """A customer table's value (cluster.value, a derived total) in the summary, by its label."""
    from segkit.pipeline import summary

    (tmp_path / "artifacts").mkdir()
    pd.DataFrame(
        {
            "segment": [1, 2],
            "segment_name": ["Big spenders", "Small"],
            "n": [176, 264],
            "share_customers": [0.4, 0.6],
            "share_value": [0.552, 0.448],
            "mean_total_spend": [45847.2, 24812.0],
        }
    ).to_csv(tmp_path / "artifacts" / "profiles.csv", index=False)
    params = {
        "cluster": {"value": "total_spend"},
        "data": {"customers": {"labels": {"total_spend": "total spend"}}},
    }
    head, rows = summary.segment_rows(tmp_path, "", params)
    assert head[-2:] == ["share of total spend", "total spend per customer"]
    assert rows[0][-2:] == ["55%", "45,847"]
    assert summary.segment_rows(tmp_path, "")[0][-1] == "share of customers"  # no value: none
