"""Journey 3 on phones: a bid window with a joint bid of two members.

B proposes a joint bid with C, C confirms its share from the live page, B
submits; D, a rival partner, bids alone.  Nobody touches the deadline: the
real APScheduler running beside the live server closes the window, and every
page shows it without a reload.  A awards the joint bid with one tap; B and C
then see the customer's address, D still does not.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from playwright.sync_api import Locator, Page, expect
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs import service
from marketplace.jobs.models import JobMode
from tests.browser.conftest import Phones, live
from tests.browser.steps import go, submit
from tests.conftest import World
from tests.jobs.conftest import (
    ADDRESS,
    CUSTOMER_CONTACT,
    CUSTOMER_NAME,
    add_partner,
    give_profile,
    job_draft,
)
from tests.live import in_process_scheduler, live_server

# Long enough for three phones to bid by tapping on a loaded machine, short enough
# that the test does not idle; the window is posted as if 15 minutes earlier.
WINDOW = timedelta(seconds=10)
TITLE = "Regrade the Bloor Street courtyard"
JOINT_PRICE, RIVAL_PRICE = "9876.54", "9500.00"
JOINT_SHOWN, RIVAL_SHOWN = "9,876.54", "9,500.00"


def _open_card(page: Page, job_id: int) -> None:
    """From the board, tap through to the job, whose page then listens for events."""
    go(page, "/jobs")
    submit(page, page.locator(f"[data-job-id='{job_id}'] h2 a"))
    live(page)


def _fill_bid(form: Locator, price: str, crew: str, start: str) -> None:
    """Fill a bid form by its labels: each must lead to this form's own input."""
    form.get_by_label("Your price").fill(price)
    form.get_by_label("Crew size").fill(crew)
    form.get_by_label("Earliest start").fill(start)


def test_joint_bid_window_closes_by_itself_and_only_winners_see_the_customer(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    owner_c = add_partner(session, world, "Cedar Gardens", "c@cedar.test")
    owner_d = add_partner(session, world, "Delta Decks", "d@delta.test")
    session.commit()
    today = utcnow().date()
    with live_server(app) as base, in_process_scheduler(app):
        b, c, d = (phones.log_in(base, u.email) for u in (world.owner_b, owner_c, owner_d))
        closes_at = utcnow() + WINDOW
        # Posted as the app writes (BEGIN IMMEDIATE): the test's own session reads first,
        # and on SQLite a read-then-write loses to the scheduler committing in between.
        with Session(app.extensions["engine"], expire_on_commit=False) as writer:
            job = service.post_job(writer, world.owner_a, job_draft(
                title=TITLE, mode=JobMode.BID_WINDOW.value, closes_at=closes_at,
                starts_on=today, ends_on=today + timedelta(days=3)),
                closes_at - timedelta(minutes=15))
        assert job.id is not None
        for page in (b, c, d):
            _open_card(page, job.id)
        phones.shot(b, "1-window-open")

        # B proposes a joint bid: 60 % for itself, 40 % for C.
        b.locator("summary", has_text="Bid jointly with partners").tap()
        joint = b.locator("form[action$='/joint']")
        _fill_bid(joint, JOINT_PRICE, "5", today.isoformat())
        joint.locator(f"#share-{world.member_b_id}").fill("60")
        joint.locator(f"#share-{owner_c.member_id}").fill("40")
        phones.shot(b, "2-joint-bid-form")
        joint.get_by_role("button", name="Propose joint bid").tap()
        expect(b.get_by_text("Joint bid proposed.")).to_be_visible()

        # C's open job page grows a confirm button without a reload.
        c.get_by_role("button", name="Confirm my share").tap()
        expect(c.get_by_text("You confirmed your share of the joint bid.")).to_be_visible()
        expect(b.locator("#bids li", has_text="Cedar Gardens: 40")).to_contain_text("✓")
        b.get_by_role("button", name="Submit the joint bid").tap()
        expect(b.get_by_text("Joint bid submitted; the shares are now frozen.")).to_be_visible()

        # D, a rival partner, bids alone; it sees that bids exist, never their prices.
        solo = d.locator("form[action$='/bid']")
        _fill_bid(solo, RIVAL_PRICE, "3", today.isoformat())
        solo.get_by_role("button", name="Send bid").tap()
        expect(d.get_by_text("Your bid is in.")).to_be_visible()
        assert utcnow() < closes_at, "bidding took longer than the window: widen WINDOW"
        expect(d.locator("#bids h2")).to_have_text("2 bids")
        assert JOINT_SHOWN not in d.content()
        phones.shot(d, "3-rival-sees-count-only")

        # A waits on its job page; the scheduler closes the window and the award buttons
        # appear by themselves.  The bidders' pages turn to "bids closed" too.
        a = phones.log_in(base, world.owner_a.email)
        go(a, "/jobs/mine")
        submit(a, a.get_by_role("link", name=TITLE))
        live(a)
        award = a.get_by_role("button", name="Award to Beta Stone")
        expect(award).to_be_visible(timeout=(WINDOW.total_seconds() + 10) * 1000)
        for page in (a, b, c, d):
            expect(page.locator("#job-status")).to_have_text("Bids closed")
        expect(a.get_by_role("button", name="Award to Delta Decks")).to_be_visible()
        expect(a.locator("#bids")).to_contain_text(JOINT_SHOWN)
        expect(a.locator("#bids")).to_contain_text(RIVAL_SHOWN)
        # ... and the bid forms go: nobody types a bid the server would refuse.
        for page in (b, c, d):
            expect(page.locator("#place-bid")).to_have_count(0)
        phones.shot(a, "4-closed-award-buttons")

        award.tap()
        expect(a.get_by_text("Job awarded.")).to_be_visible()
        expect(a.locator("#awarded-to")).to_have_text("Beta Stone")
        # The winners' pages show the customer as soon as the award lands.
        for page, step in ((b, "5-lead-sees-customer"), (c, "6-partner-sees-customer")):
            expect(page.locator("#customer-address")).to_have_text(ADDRESS)
            expect(page.locator("#job")).to_contain_text(CUSTOMER_NAME)
            expect(page.locator("#job-status")).to_have_text("Taken")
            phones.shot(page, step)

        d.reload()
        expect(d.locator("#job-status")).to_have_text("Taken")
        expect(d.locator("#job")).to_contain_text("Shared with the winning partner after award.")
        rival_view = d.content()
        for secret in (ADDRESS, CUSTOMER_NAME, CUSTOMER_CONTACT, JOINT_SHOWN):
            assert secret not in rival_view
        assert d.locator("#customer-address").count() == 0
        phones.shot(d, "7-rival-without-customer")
