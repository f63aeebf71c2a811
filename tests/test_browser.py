"""The reports in a real browser (Chromium through Playwright): every page of a small run
loads offline without console errors, fits 1,400 px without horizontal scrolling, gives
every image an alt text, no table of any report shows NaN or an index column (and every
full-table CSV it links exists), and the run's summary shows the segment table. CI
installs Chromium (.ci/run); locally: `apt-get install chromium`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow
if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Chromium for the browser tests (see .ci/run)")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def run_folder(cdnow_run) -> Path:
    """The session's CDNOW run (tests/conftest.py: 3 bootstrap rounds, money in dollars)."""
    return cdnow_run


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(page_path.as_uri(), wait_until="load")
    return page, errors, outside


def test_every_report_loads_offline_clean_and_fits(run_folder, browser):
    pages = sorted(run_folder.glob("*.html"))
    assert {p.name for p in pages} >= {"index.html", "01_explore.html", "05_abtest.html"}
    for path in pages:
        page, errors, outside = _open(browser, path)
        assert not errors, (path.name, errors)
        assert not outside, (path.name, outside)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1400, (path.name, width)
        missing_alt = page.evaluate(
            "[...document.images].filter(i => !(i.getAttribute('alt') || '').trim()).length"
        )
        assert missing_alt == 0, path.name
        default = page.locator("img[alt='No description has been provided for this image']")
        assert default.count() == 0, path.name
        assert page.locator("nav.segkit a[href='index.html']").count() == 1, path.name
        assert path.stat().st_size < 2_000_000, path.name
        page.close()


_TABLES_JS = """[...document.querySelectorAll('table')].map(t =>
  [...t.rows].map(r => [...r.cells].map(c => c.innerText.trim())))"""


def _index_column(rows: list[list[str]]) -> bool:
    """A pandas index: an empty first header cell, or a first column reading 0..n-1."""
    if not rows or not rows[0]:
        return False
    if rows[0][0] == "":
        return True
    first = [r[0] for r in rows[1:] if r]
    return len(first) >= 2 and first == [str(i) for i in range(len(first))]


def test_no_report_table_shows_nan_or_an_index_column(run_folder, browser):
    checked = 0
    for path in sorted(run_folder.glob("*.html")):
        page, _, _ = _open(browser, path)
        for i, rows in enumerate(page.evaluate(_TABLES_JS)):
            bad = [c for r in rows for c in r if c in ("NaN", "nan", "None", "NaT", "<NA>")]
            assert not bad, (path.name, i, bad)
            assert not _index_column(rows), (path.name, i, rows[:3])
            checked += 1
        for href in page.eval_on_selector_all(
            "a[href$='.csv']", "as => as.map(a => a.getAttribute('href'))"
        ):
            assert (run_folder / href).is_file(), (path.name, href)
        page.close()
    assert checked >= 10  # the stage reports' tables and the summary's


def test_the_index_check_catches_a_pandas_dump():
    assert _index_column([["", "k", "silhouette"], ["0", "3", "0.255"], ["1", "4", "0.287"]])
    assert _index_column([["x", "k"], ["0", "3"], ["1", "4"], ["2", "5"]])
    assert not _index_column([["segments (k)", "silhouette"], ["3", "0.255"], ["4", "0.287"]])
    assert not _index_column([["segment", "name"], ["1", "a"], ["2", "b"]])


def test_the_summary_shows_the_segment_table_without_nan_or_index(run_folder, browser):
    page, _, _ = _open(browser, run_folder / "index.html")
    table = page.locator("table.seg").first
    head = table.locator("th").all_inner_texts()
    assert head[:3] == ["segment", "name", "customers"] and "CLV per customer" in head
    cells = table.locator("td").all_inner_texts()
    assert cells and not any(c.strip() in ("NaN", "nan", "None") for c in cells)
    assert any(c.startswith("$") for c in cells)  # report.currency
    assert page.locator("figure img").count() >= 3  # one chart per stage that ran


def test_a_skipped_stage_is_one_short_section(run_folder, browser):
    page, _, _ = _open(browser, run_folder / "05_abtest.html")  # CDNOW has no experiment
    text = page.inner_text("body")
    assert "This stage was skipped." in text and "What would enable it" in text
    assert "Skipped:" not in text  # said once
    assert page.locator("h2").count() == 0  # no empty section headings
