"""A phone that never opened the app before is not sent its whole history.

The page it loads already shows every notification so far (the unread badge,
the board); its live connection must replay only what comes after.  Replaying
from 0 counted each unread notification twice on the badge and made the
navigation grow and wrap after the first paint (Lighthouse's layout shift).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from playwright.sync_api import expect
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs.service import claim_job, post_job
from tests.browser.conftest import Phones, live
from tests.browser.steps import go
from tests.conftest import World
from tests.jobs.conftest import add_partner, give_profile, job_draft
from tests.live import live_server

RECORD_EVENTS = ("window.seen = []; document.addEventListener('marketplace:event', "
                 "e => window.seen.push(e.detail.kind))")
# Ask the server for what came after the page and wait for its answer: messages on
# one connection arrive in order, so whatever the connection replayed came first.
ROUND_TRIP = ("() => new Promise(done => window.marketplaceSocket.emit('replay', "
              "{cursor: Number(document.body.dataset.notificationCursor)}, done))")


def test_a_new_phone_is_not_sent_what_its_page_already_shows(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    rival = add_partner(session, world, "Cedar Lawns", "c@cedar.test")
    now = utcnow()
    start = now.date() + timedelta(days=7)
    jobs = [post_job(session, world.owner_a, job_draft(
        title=f"Mowing job {n}", starts_on=start, ends_on=start + timedelta(days=2)), now)
        for n in range(3)]
    claim_job(session, rival, jobs[0].id, now)  # type: ignore[arg-type]
    session.commit()
    with live_server(app) as base:
        b = phones.log_in(base, world.owner_b.email)
        live(b).evaluate(ROUND_TRIP)  # the home page's connection is done with its replay
        b.evaluate("localStorage.clear()")  # as on a phone that never had the app open
        b.context.add_init_script(RECORD_EVENTS)
        go(b, "/jobs")
        badge = b.locator("#unread-badge").inner_text()
        assert int(badge) >= 3  # the three posts at least, already counted by the page
        assert live(b).evaluate(ROUND_TRIP) == {"replayed": 0}
        assert b.evaluate("window.seen") == []
        expect(b.locator("#unread-badge")).to_have_text(badge)
        assert b.locator(".job-card").count() == 2  # the claimed job did not come back
