"""The sunset review on a 360 px touch phone (real chromium, headless), with the phone-fit
measure of tests/browser/test_phone_fit.py: the review, its record, the list and the
dashboard's targets fit the screen with big enough targets, in every language; and the
answer form works with JavaScript off."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.review.models import ReviewAnswer
from tests.browser.conftest import browser  # noqa: F401 - a fixture
from tests.conftest import PASSWORD, World
from tests.live import live_server
from tests.review.test_review_pages import open_review

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREEN = {"width": 360, "height": 740}
PHONE = {"viewport": SCREEN, "screen": SCREEN, "has_touch": True, "is_mobile": True}
MEASURE = (Path(__file__).parents[1] / "browser" / "phone_fit.js").read_text()


@pytest.fixture
def site(app: Flask) -> Iterator[str]:
    with live_server(app) as base:
        yield base


def phone(browser: Browser, base: str, email: str, *, javascript: bool = True  # noqa: F811
          ) -> Page:
    page = browser.new_context(**PHONE, java_script_enabled=javascript).new_page()  # type: ignore[arg-type]
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").tap()
    return page


def problems(page: Page, base: str, path: str) -> list[str]:
    response = page.goto(base + path)
    assert response is not None and response.ok, path
    found: list[str] = page.evaluate(MEASURE, {"screen": SCREEN["width"]})["problems"]
    return [f"{path}: {p}" for p in found]


def test_the_review_pages_fit_a_360_px_phone_in_every_language(
        browser: Browser, site: str, session: Session, world: World) -> None:  # noqa: F811
    found = open_review(session, world)
    seen: list[str] = []
    for email in (world.owner_a.email, world.coordinator.email):
        page = phone(browser, site, email)
        for lang in ("en", "es", "fr", "de"):
            page.goto(f"{site}/lang/{lang}?next=/")
            for path in (f"/agreement/reviews/{found.id}", f"/agreement/reviews/{found.id}/record",
                         "/agreement/reviews", "/dashboard?member=cluster"):
                seen += [f"[{email} {lang}] {p}" for p in problems(page, site, path)]
        page.context.close()
    assert not seen, "\n".join(seen)


def test_an_owner_answers_on_a_phone_without_javascript(
        browser: Browser, site: str, session: Session, world: World) -> None:  # noqa: F811
    found = open_review(session, world)
    page = phone(browser, site, world.owner_a.email, javascript=False)
    page.goto(f"{site}/agreement/reviews/{found.id}")
    page.locator("input[name=choice][value=change]").tap()
    page.fill("textarea[name=lessons]", "Share the trailer calendar earlier.")
    with page.expect_navigation():
        page.locator("#answer button[type=submit]").tap()
    assert "Share the trailer calendar earlier." in page.content()
    page.context.close()
    session.rollback()
    stored = session.exec(select(ReviewAnswer)).one()
    assert (stored.choice, stored.lessons) == ("change", "Share the trailer calendar earlier.")
