"""The report pages in a real browser: Debian's Chromium (installed by .ci/setup.sh), driven by Playwright. Each
kind of page loads with no console error and no request beyond its own file, every chart is drawn (one SVG per
figure, with a size and marks), and a screenshot is saved in the test's temporary folder.

The README's screenshot comes from here:
    DISTRICT_BENCHMARKS_README_SHOT=docs/report-district.png \\
        .venv/bin/python -m tests.harness -- .venv/bin/pytest tests/test_report_browser.py -k district
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from loader.cli import cli

CHROMIUM = os.environ.get("DISTRICT_BENCHMARKS_CHROMIUM", "/usr/bin/chromium")
# No traffic of the browser's own (this machine has no network but the package registries).
ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--no-first-run"]

# Per figure: how many SVGs it holds, the first one's laid-out size, its drawing's extent, and its marks.
CHARTS_JS = """() => [...document.querySelectorAll('figure')].map(f => {
    const all = f.querySelectorAll('svg'), s = all[0];
    if (!s) return {svgs: 0, width: 0, height: 0, drawn_width: 0, drawn_height: 0, marks: 0, label: null};
    const box = s.getBoundingClientRect(), drawn = s.getBBox();
    return {svgs: all.length, width: box.width, height: box.height, drawn_width: drawn.width,
            drawn_height: drawn.height, marks: s.querySelectorAll('path, rect, text, use, line').length,
            label: s.getAttribute('aria-label')};
})"""


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run .ci/setup.sh (it installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def inspect_page(browser, path: Path, screenshot: Path, top_shot: Path | None = None) -> dict:
    """Open `path` and report what a person would notice: requests beyond the file itself (all refused, so none
    leaves the machine), console errors and uncaught exceptions, and the charts as drawn (CHARTS_JS). Saves a
    full-page screenshot, and with `top_shot` one of the page's top down to the end of its first metric."""
    url = path.resolve().as_uri()
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    try:
        page.goto(url, wait_until="load")
        charts = page.evaluate(CHARTS_JS)
        page.screenshot(path=str(screenshot), full_page=True)
        if top_shot is not None:
            bottom = page.evaluate("() => document.querySelector('section[id]').getBoundingClientRect().bottom "
                                   "+ window.scrollY")
            page.screenshot(path=str(top_shot), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 16})
    finally:
        context.close()
    return {"requests": [u for u in requests if u != url], "errors": errors, "charts": charts}


def assert_drawn(found: dict, figures: int) -> None:
    assert found["requests"] == [], found["requests"]
    assert found["errors"] == [], found["errors"]
    assert len(found["charts"]) == figures
    for chart in found["charts"]:
        assert chart["svgs"] == 1, chart
        assert chart["width"] > 300 and chart["height"] > 150, chart
        assert chart["drawn_width"] > 300 and chart["drawn_height"] > 150, chart
        assert chart["marks"] > 20 and chart["label"], chart


def test_the_district_page_in_chromium(browser, sample_dsn, tmp_path):
    page = tmp_path / "district.html"
    res = CliRunner().invoke(cli, ["report", "4100030", "--out", str(page), "--dsn", sample_dsn])
    assert res.exit_code == 0, res.output
    readme_shot = os.environ.get("DISTRICT_BENCHMARKS_README_SHOT")
    found = inspect_page(browser, page, tmp_path / "district.png", Path(readme_shot) if readme_shot else None)
    assert_drawn(found, 16)
    assert (tmp_path / "district.png").stat().st_size > 50_000


def test_the_state_page_in_chromium(browser, sample_dsn, tmp_path):
    page = tmp_path / "state.html"
    res = CliRunner().invoke(cli, ["report", "--state", "OR", "--out", str(page), "--dsn", sample_dsn])
    assert res.exit_code == 0, res.output
    found = inspect_page(browser, page, tmp_path / "state.png")
    assert_drawn(found, 8)
    assert (tmp_path / "state.png").stat().st_size > 50_000


def test_the_inspection_catches_what_a_broken_page_does(browser, tmp_path):
    """The checks above can fail: a page that fetches, logs an error and draws an empty and a doubled chart."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='http://127.0.0.1:9/logo.png' alt=''>"
        "<script>console.error('boom')</script>"
        "<figure><svg width='400' height='200'></svg></figure>"
        "<figure><svg width='400' height='200'><rect width='40' height='40'/></svg><svg></svg></figure>"
        "</body></html>")
    found = inspect_page(browser, page, tmp_path / "broken.png")
    assert found["requests"] == ["http://127.0.0.1:9/logo.png"]
    assert "boom" in found["errors"]
    assert [c["svgs"] for c in found["charts"]] == [1, 2]
    assert found["charts"][0]["drawn_width"] == 0 and found["charts"][0]["marks"] == 0
    with pytest.raises(AssertionError):
        assert_drawn(found, 2)
