"""The dashboard on real phones (Debian's Chromium, 390 px): the charts draw under the
strict Content-Security-Policy, fit the screen, and their tables open with a tap."""

from __future__ import annotations

from flask import Flask
from playwright.sync_api import Page
from sqlmodel import Session

from tests.browser.conftest import Phones, browser  # noqa: F401 - browser is a fixture
from tests.browser.conftest import phones as phones  # noqa: F401 - a fixture
from tests.dashboard.conftest import MONTHS, Spring
from tests.live import live_server

#: Recorded before any page script runs: every Content-Security-Policy violation.
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));
"""


def fits(page: Page) -> bool:
    return bool(page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth && "
        "[...document.querySelectorAll('svg.chart-svg')].every("
        "  s => s.getBoundingClientRect().right <= window.innerWidth)"))


def test_charts_draw_and_fit_on_a_phone(app: Flask, session: Session, spring: Spring,
                                        phones: Phones) -> None:
    session.commit()
    url = f"/dashboard?first={MONTHS[0]}&last={MONTHS[-1]}"
    with live_server(app) as base:
        for user, charts in ((spring.world.coordinator, 8), (spring.world.owner_b, 7)):
            page = phones.log_in(base, user.email)
            page.context.add_init_script(WATCH_CSP)
            page.goto(base + url)
            assert page.locator("svg.chart-svg[role=img]").count() == charts
            assert page.locator("svg.chart-svg rect, svg.chart-svg circle").count() > 3
            assert page.evaluate("window.cspViolations") == []
            assert fits(page)
            page.set_viewport_size({"width": 360, "height": 740})
            assert fits(page)
            page.set_viewport_size({"width": 390, "height": 844})
            # Month labels stay legible: at least 9 CSS pixels tall on the phone.
            label_height = page.evaluate(
                "document.querySelector('#chart-jobs-card svg text').getBoundingClientRect()"
                ".height")
            assert label_height >= 9
            table = page.locator("#table-revenue")
            assert not table.is_visible()
            page.locator("#chart-revenue-card summary").tap()
            assert table.is_visible()
            assert "$75.00" in table.inner_text() or "$0.00" in table.inner_text()
            phones.shot(page, f"dashboard-{user.role}")
