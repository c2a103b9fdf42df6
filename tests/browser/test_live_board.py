"""In a real phone-sized Chromium: a job posted by A appears on B's board
without a reload, B claims it with one tap, and C (ineligible) never sees it."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs import service
from tests.browser.conftest import ARTIFACTS, PHONE, log_in
from tests.conftest import World
from tests.jobs.conftest import add_partner, give_profile, job_draft
from tests.live import live_server


def test_job_card_appears_live_and_is_claimed_in_one_tap(
        app: Flask, session: Session, world: World, browser: object) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    add_partner(session, world, "Cedar Fencing", "c@cedar.test", trades=("fencing",))
    session.commit()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(app) as base:
        b_page = log_in(browser.new_context(**PHONE), base, world.owner_b.email)  # type: ignore[attr-defined]
        c_page = log_in(browser.new_context(**PHONE), base, "c@cedar.test")  # type: ignore[attr-defined]
        for page in (b_page, c_page):
            page.goto(f"{base}/jobs")
            page.wait_for_function(
                "() => window.marketplaceSocket && window.marketplaceSocket.connected")
        now = utcnow()
        job = service.post_job(session, world.owner_a, job_draft(
            title="Live mowing job", starts_on=now.date(), ends_on=now.date() + timedelta(1)),
            now)
        card = b_page.locator(f"[data-job-id='{job.id}']")
        card.wait_for(timeout=5000)
        b_page.screenshot(path=str(ARTIFACTS / "board-live-card.png"), full_page=True)
        assert "Live mowing job" in card.inner_text()
        card.get_by_role("button").click()
        b_page.wait_for_url(f"{base}/jobs/{job.id}")
        assert "The job is yours" in b_page.content()
        b_page.screenshot(path=str(ARTIFACTS / "claimed.png"), full_page=True)
        c_page.wait_for_timeout(500)
        assert "Live mowing job" not in c_page.content()
