"""The reports in a real browser (Chromium through Playwright): every page of a small run
loads offline without console errors, fits 1,400 px without horizontal scrolling, gives
every image an alt text, and the run's summary shows the segment table with no NaN and no
index column. CI installs Chromium (.ci/run); locally: `apt-get install chromium`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from segkit import pipeline

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow
if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Chromium for the browser tests (see .ci/run)")
    pytest.skip("Chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser") / "cdnow"
    res = pipeline.run(
        "cdnow", ["cluster.n_bootstrap=3", "report.currency=$"], folder, progress=False
    )
    assert res.ok
    return folder


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
    assert page.locator("h2").count() == 0  # no empty section headings
