"""Journey 4 on phones: B books A's machine with the form; A, looking at the machine's
week, sees the booking appear without a reload and its unread count go up; C, a
rival asking for the same slot, is refused with a clear message; the booking is
in B's calendar."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from playwright.sync_api import Page, expect
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.equipment import listings
from tests.browser.conftest import Phones, live
from tests.browser.steps import go
from tests.conftest import World
from tests.equipment.conftest import anytime_draft, join
from tests.live import live_server


def book(page: Page, day: date, starts: str, ends: str, priced: bool = True) -> None:
    """On the machine's page: type the slot, wait for its price (or the reason it cannot
    be booked) to show, and tap Confirm."""
    page.fill("#starts_at", f"{day.isoformat()}T{starts}")
    page.fill("#ends_at", f"{day.isoformat()}T{ends}")
    page.locator("#book #quote .quote-total" if priced else "#book #quote .error").wait_for()
    page.locator("#book button[type=submit]").tap()
    page.wait_for_load_state()


def test_booking_appears_live_in_the_owners_week(app: Flask, session: Session, world: World,
                                                 phones: Phones) -> None:
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    join(session, world, "Cedar Diggers", "c@cedar.test")
    session.commit()
    tomorrow = (utcnow().astimezone(ZoneInfo("America/Toronto")) + timedelta(days=1)).date()
    week_url = f"/equipment/{machine.id}?week={tomorrow.isoformat()}"
    with live_server(app) as base:
        owner, booker, rival = (phones.log_in(base, email) for email in (
            world.owner_a.email, world.owner_b.email, "c@cedar.test"))
        owner.goto(base + week_url)
        live(owner)
        assert "Beta Stone" not in owner.inner_text("#week")
        # Mobile first: the week is a day list that fits the phone, even a 360 px one.
        assert owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        owner.set_viewport_size({"width": 360, "height": 740})
        assert owner.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        owner.set_viewport_size({"width": 390, "height": 844})

        booker.goto(base + week_url)
        book(booker, tomorrow, "09:00", "11:30")
        booker.wait_for_url(f"{base}/equipment/bookings/*")
        assert "Booked. It is in your calendar." in booker.content()

        owner.locator("#week", has_text="Beta Stone").wait_for(timeout=5000)
        assert owner.inner_text("#unread-badge") == "1"
        phones.shot(owner, "1-owner-week-live")
        assert "09:00–11:30" in owner.inner_text("#week")

        # The rival asks for an overlapping slot: refused, told why, nothing booked.
        rival.goto(base + week_url)
        book(rival, tomorrow, "10:00", "12:00", priced=False)
        expect(rival.locator("#book .alert-error")).to_contain_text(
            "Someone has booked the machine then (including 30 minutes to move and clean it "
            "between bookings). Choose another time.")
        expect(rival.locator("#week")).to_contain_text("booked")
        assert "Beta Stone" not in rival.inner_text("#week")  # taken, never by whom
        phones.shot(rival, "2-rival-refused")

        go(booker, "/equipment")
        booker.locator("main a[href='/equipment/bookings']").tap()
        expect(booker.locator("#bookings li", has_text="Vermeer SC30")).to_contain_text(
            "confirmed")
        phones.shot(booker, "3-my-bookings")


def test_a_crew_lead_books_by_tapping_the_week_and_sees_the_price_first(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    """360×740 with touch: tap tomorrow's free time, read what it costs, confirm."""
    machine = listings.list_machine(session, world.owner_a, anytime_draft(
        min_minutes=120, buffer_minutes=0), utcnow())
    session.commit()
    tomorrow = (utcnow().astimezone(ZoneInfo("America/Toronto")) + timedelta(days=1)).date()
    with live_server(app) as base:
        booker = phones.log_in(base, world.owner_b.email)
        booker.set_viewport_size({"width": 360, "height": 740})
        booker.goto(f"{base}/equipment/{machine.id}?week={tomorrow.isoformat()}")
        free = booker.locator(".seg-free a.seg-book").first
        box = free.bounding_box()
        assert box is not None and box["height"] >= 44  # a gloved thumb finds it
        with booker.expect_navigation():
            free.tap()
        assert "/book?start=" in booker.url
        expect(booker.locator("#quote .quote-total")).to_contain_text("$")
        total = booker.inner_text("#quote .quote-total")
        assert booker.evaluate("document.documentElement.scrollWidth <= 360")
        phones.shot(booker, "4-price-before-booking")
        with booker.expect_navigation():
            booker.locator("#book button[type=submit]").tap()
        booker.wait_for_url(f"{base}/equipment/bookings/*")
        assert "Booked. It is in your calendar." in booker.content()
        price = total.split()[-1]
        expect(booker.locator("main")).to_contain_text(price)  # what it showed is what it costs
