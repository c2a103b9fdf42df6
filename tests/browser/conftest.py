"""Real Chromium (Debian's, never a downloaded one) driven by Playwright, and helpers.

Every journey runs on phones: 390x844 touch contexts, each with its own
cookies (one person per phone), tapped rather than clicked.  Each test saves
its screenshots under artifacts/browser/<test name>/<step>.png.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import IN_CI, PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "browser"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LIVE = "() => window.marketplaceSocket && window.marketplaceSocket.connected"


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("Debian's chromium is missing: make test installs it in CI")
        pytest.skip("install Debian's chromium to run browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


class Phones:
    """Phone-sized touch browsers for one test, and that test's screenshots."""

    def __init__(self, browser: Browser, folder: Path) -> None:
        self.browser = browser
        self.folder = folder

    def open(self, url: str) -> Page:
        """A fresh phone (its own cookies, nobody logged in) showing `url`."""
        page = self.browser.new_context(**PHONE).new_page()  # type: ignore[arg-type]
        page.goto(url)
        return page

    def log_in(self, base: str, email: str) -> Page:
        """A fresh phone on which `email` logs in with the form, landing on the home page."""
        page = self.open(f"{base}/login")
        page.fill("#email", email)
        page.fill("#password", PASSWORD)
        page.locator("button[type=submit]").tap()
        page.wait_for_url(f"{base}/")
        return page

    def shot(self, page: Page, step: str) -> None:
        """Save what the phone shows now as <step>.png in this test's folder."""
        page.screenshot(path=str(self.folder / f"{step}.png"), full_page=True)


def live(page: Page) -> Page:
    """Wait until the page's Socket.IO connection is up, so live updates reach it."""
    page.wait_for_function(LIVE)
    return page


@pytest.fixture
def phones(browser: Browser, request: pytest.FixtureRequest) -> Phones:
    """Phones for this test; its screenshot folder starts empty."""
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "-", request.node.name).strip("-")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Phones(browser, folder)
