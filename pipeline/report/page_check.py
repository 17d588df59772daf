"""Open the report page in a real headless browser (Chromium through Selenium) and check it as a
reader would see it: every image loaded, one claims-table row per claim, no console errors.
Writes a screenshot of the whole page.

    python -m pipeline.report.page_check results/report/index.html --screenshot report.png

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVER = "chromedriver"


@dataclass
class PageCheck:
    images: int
    broken_images: list[str]
    claim_rows: int
    console_errors: list[str]


def browser() -> tuple[str, str] | None:
    """(browser, driver) executables, or None where they are not installed."""
    found = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver = shutil.which(DRIVER)
    return (found, driver) if found and driver else None


def check_page(page: Path, screenshot: Path) -> PageCheck:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    executables = browser()
    if executables is None:
        raise SystemExit("page_check: Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = executables[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executables[1]), options=options)
    try:
        driver.get(page.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]);"
        )
        rows = driver.execute_script("return document.querySelectorAll('#claims-table tbody tr.claim').length;")
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        height = driver.execute_script("return document.body.scrollHeight;")
        driver.set_window_size(1400, min(int(height), 20000))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return PageCheck(len(images), [src for src, ok in images if not ok], int(rows), errors)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--screenshot", type=Path, default=Path("report.png"))
    args = parser.parse_args(argv)
    if not args.page.is_file():
        raise SystemExit(f"page_check: {args.page} does not exist")
    result = check_page(args.page, args.screenshot)
    print(f"page_check: {result.images} images ({len(result.broken_images)} broken), {result.claim_rows} claims, "
          f"{len(result.console_errors)} console errors; screenshot {args.screenshot}")  # fmt: skip
    for problem in result.broken_images + result.console_errors:
        print(f"page_check: {problem}")
    if result.broken_images or result.console_errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
