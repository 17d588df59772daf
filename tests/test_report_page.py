"""The committed report page opened in a real headless browser (Debian's Chromium through
Selenium): every figure loads, the claims table has one row per claim of claims.yaml, and the
console shows no error. The screenshot is kept in pytest's temporary folder (its path is printed)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.outputs import layout
from pipeline.report.page_check import browser, check_page

PAGE = layout.REPORT / "index.html"


@pytest.mark.skipif(browser() is None, reason="Chromium and chromedriver are not installed: "
                    "apt-get install chromium chromium-driver (.ci/run installs them)")  # fmt: skip
def test_the_report_page_in_a_headless_browser(tmp_path):
    assert PAGE.is_file(), f"{PAGE} is missing: it is a committed output of the report stage"
    screenshot = tmp_path / "report.png"
    result = check_page(PAGE, screenshot)
    claims = yaml.safe_load(Path("claims.yaml").read_text())["claims"]
    print(f"screenshot: {screenshot}")
    assert result.images >= 15 and result.broken_images == []
    assert result.claim_rows == len(claims)
    assert result.console_errors == []
    assert screenshot.stat().st_size > 10_000
