"""The grid index of ``segkit batch`` compares its runs side by side (issue 17): k, segment
sizes, total CLV with its interval, the best campaign, each run's headline and a link to
its summary. Two small run folders are written by hand with the artifacts the index reads,
so the test runs no stage."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from segkit.pipeline.batch import PointResult, _best_campaign, write_index

SIZES = [789, 1028, 1171, 1012]


def _run_folder(root: Path, name: str, *, clv: bool, ab: bool, currency: str = "€") -> Path:
    folder = root / name
    art = folder / "artifacts"
    art.mkdir(parents=True)
    (folder / "params.yaml").write_text(
        yaml.safe_dump({"name": name, "report": {"currency": currency}})
    )
    manifest = {"stages": {"cluster": {"status": "ok", "headline": f"{name}: 4 segments"}}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    # segment 5 has 12 customers: folded into "other" (segment 0) by the profile
    segments = pd.DataFrame({"segment": np.repeat([1, 2, 3, 4, 5], SIZES + [12])})
    segments.to_parquet(art / "segments.parquet")
    n = sum(SIZES) + 12
    pd.DataFrame(
        {
            "segment": [1, 2, 3, 4, 0],
            "segment_name": ["A", "B", "C", "D", "other (suppressed)"],
            "n": SIZES + [12],
            "share_customers": [s / n for s in SIZES + [12]],
        }
    ).to_csv(art / "profiles.csv", index=False)
    if clv:
        pd.DataFrame(
            {
                "clv": [60.0, 40.0, 1000.0],
                "clv_delta_1": [3.0, 1.0, 20.0],
                "clv_delta_2": [0.0, 3.0, 10.0],
            }
        ).to_parquet(art / "clv.parquet")
    if ab:
        pd.DataFrame(
            {
                "segment_col": ["all", "segment", "segment"],
                "segment": ["all", "1", "2"],
                "campaign": ["Womens E-Mail", "Womens E-Mail", "none"],
                "action": ["send", "send", "leave alone"],
                "expected_profit": [900.0, 700.0, 0.0],
            }
        ).to_csv(art / "ab_recommendations.csv", index=False)
    return folder


@pytest.fixture
def index(tmp_path) -> str:
    a = _run_folder(tmp_path, "retail-k4", clv=True, ab=False)
    b = _run_folder(tmp_path, "mail-k4", clv=False, ab=True, currency="$")
    results = [
        PointResult(str(a), True, "", "retail-k4: 4 segments"),
        PointResult(str(b), True, "", "mail-k4: 4 segments"),
        PointResult(str(tmp_path / "broken"), False, "SegkitError: bad column", ""),
    ]
    return write_index("grid", tmp_path, results).read_text()


def _row(page: str, run: str) -> list[str]:
    """The cells of a run's row, then its headline (the row under it)."""
    row = re.search(rf"<tr class='run'><td><a href='{run}/index.html'.*?</tr>.*?</tr>", page, re.S)
    assert row, run
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))]
    return cells[:6] + cells[7:]  # the headline row starts with an empty cell


def test_runs_side_by_side(index):
    assert "<th class=num>k</th>" in index and "segment sizes" in index and "total CLV" in index
    retail = _row(index, "retail-k4")
    assert retail[0] == "retail-k4" and retail[1] == "ok"
    assert retail[2] == "5"  # five segments were made; the fifth is too small to detail
    assert retail[3] == "789 / 1,028 / 1,171 / 1,012 (+ 12 in 1 smaller segment)"
    # total 1,100; sd = sqrt(24² + 13²) (column sums of the delta columns); log-scale bounds
    total, sd = 1100.0, np.hypot(24.0, 13.0)
    z = stats.norm.ppf(0.975)
    low, high = total * np.exp(-z * sd / total), total * np.exp(z * sd / total)
    assert retail[4] == f"€1,100 (€{low:,.0f} to €{high:,.0f})"
    assert retail[5] == "–"  # no A/B test in this run
    assert retail[6] == "retail-k4: 4 segments"


def test_best_campaign_and_missing_clv(index):
    mail = _row(index, "mail-k4")
    assert mail[4] == "–" and mail[5] == "Womens E-Mail: send"


def test_failed_run_shows_its_error_and_no_numbers(index):
    broken = _row(index, "broken")
    assert broken[1] == "failed" and broken[2:6] == ["–"] * 4
    assert broken[6] == "SegkitError: bad column"


def test_each_run_links_to_its_summary(index):
    assert index.count("/index.html'") == 3
    assert "NaN" not in index and "nan" not in index


def test_best_campaign_without_an_overall_row():
    recs = pd.DataFrame(
        {
            "segment_col": ["segment", "segment"],
            "segment": ["1", "2"],
            "campaign": ["Mens E-Mail", "Womens E-Mail"],
            "action": ["test further", "send"],
            "expected_profit": [10.0, 50.0],
        }
    )
    assert _best_campaign(recs) == "Womens E-Mail: send (for segment 2)"


def test_total_clv_is_widened_as_the_clv_report_widens_it(tmp_path):
    """A run whose CLV model missed its holdout: the grid shows the widened range, not the
    parameter interval alone ([low / f, high · f], f from clv_params.json)."""
    import json

    from segkit.pipeline.batch import run_facts

    folder = _run_folder(tmp_path, "missed", clv=True, ab=False)
    factor = 1.32
    (folder / "artifacts" / "clv_params.json").write_text(
        json.dumps({"_meta": {"holdout_check": {"model_error_factor": factor}}})
    )
    total, sd = 1100.0, np.hypot(24.0, 13.0)
    z = stats.norm.ppf(0.975)
    low, high = total * np.exp(-z * sd / total) / factor, total * np.exp(z * sd / total) * factor
    assert run_facts(folder)["clv"] == (
        f"€1,100 (€{low:,.0f} to €{high:,.0f}; widened ×1.32: the model missed its holdout)"
    )


def test_total_clv_without_a_useful_interval_says_so(tmp_path):
    """40 customers: the grid showed '€1,091 (€0 to €811,664,205,791,…)', 186 digits."""
    from segkit.pipeline.batch import run_facts

    folder = _run_folder(tmp_path, "tiny", clv=True, ab=False)
    pd.DataFrame({"clv": [60.0, 40.0], "clv_delta_1": [1e9, 0.0]}).to_parquet(
        folder / "artifacts" / "clv.parquet"
    )
    assert run_facts(folder)["clv"] == "€100 (not identified: no useful interval)"
    assert run_facts(folder)["sizes"] == "789 / 1,028 / 1,171 / 1,012 (+ 12 in 1 smaller segment)"
