"""In real phone-sized Chromium: B books A's machine with the form; A, looking at the
machine's week, sees the booking appear without a reload and its unread count go up."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.equipment import listings
from tests.browser.conftest import ARTIFACTS, PHONE, log_in
from tests.conftest import World
from tests.equipment.conftest import anytime_draft
from tests.live import live_server

NARROW_PHONE = {**PHONE, "viewport": {"width": 360, "height": 740}}


def test_booking_appears_live_in_the_owners_week(app: Flask, session: Session, world: World,
                                                 browser: object) -> None:
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    tomorrow = (utcnow().astimezone(ZoneInfo("America/Toronto")) + timedelta(days=1)).date()
    week_url = f"/equipment/{machine.id}?week={tomorrow.isoformat()}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(app) as base:
        owner = log_in(browser.new_context(**NARROW_PHONE), base, world.owner_a.email)  # type: ignore[attr-defined]
        booker = log_in(browser.new_context(**NARROW_PHONE), base, world.owner_b.email)  # type: ignore[attr-defined]
        owner.goto(base + week_url)
        owner.wait_for_function(
                "() => window.marketplaceSocket && window.marketplaceSocket.connected")
        assert "Beta Stone" not in owner.inner_text("#week")
        # Mobile first: the week is a day list that fits a 360 px screen.
        assert owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        booker.goto(base + week_url)
        booker.fill("#starts_at", f"{tomorrow.isoformat()}T09:00")
        booker.fill("#ends_at", f"{tomorrow.isoformat()}T11:30")
        booker.click("#book button[type=submit]")
        booker.wait_for_url(f"{base}/equipment/bookings/*")
        assert "Booked. It is in your calendar." in booker.content()

        owner.locator("#week", has_text="Beta Stone").wait_for(timeout=5000)
        assert owner.inner_text("#unread-badge") == "1"
        owner.screenshot(path=str(ARTIFACTS / "equipment-week-live.png"), full_page=True)
        assert "09:00–11:30" in owner.inner_text("#week")
