"""Real-time job events through a real server and real Socket.IO clients.

A job posted over HTTP reaches the eligible partner's phone, never the
ineligible partner's nor another cluster's; a phone that was offline gets it
on reconnect; payloads never carry what the barrier hides.
"""

from __future__ import annotations

import json

import requests
import socketio
from flask import Flask
from sqlmodel import Session

from marketplace.db import utcnow
from tests.conftest import PASSWORD, World
from tests.jobs.conftest import ADDRESS, CUSTOMER_NAME, SITE, give_profile
from tests.live import Cursor, Inbox, live_server, logged_in_cookie, socket_client


def _post_job(base: str, cookie: str, title: str) -> int:
    today = utcnow().date().isoformat()
    response = requests.post(f"{base}/jobs/new", headers={"Cookie": cookie}, data={
        "title": title, "description": "Weekly mowing", "trades": ["mowing"],
        "locality": "Annex, Toronto", "site_lat": str(SITE[0]), "site_lng": str(SITE[1]),
        "address": ADDRESS, "customer_name": CUSTOMER_NAME, "customer_contact": "555-0199",
        "crew_days": "3", "starts_on": today, "ends_on": today, "value": "1234.50",
        "mode": "handoff",
    }, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:2000]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _setup(session: Session, world: World) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)  # mowing, near the site: eligible
    give_profile(session, world.other_owner)
    session.commit()


def test_posted_job_reaches_only_eligible_partners(app: Flask, session: Session,
                                                   world: World) -> None:
    _setup(session, world)
    give_profile(session, world.owner_b, trades=("fencing",))  # B now lacks mowing
    from tests.jobs.conftest import add_partner

    add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    session.commit()
    with live_server(app) as base:
        poster = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        eligible = socket_client(base, logged_in_cookie(base, "g@gamma.test", PASSWORD))
        ineligible = socket_client(base, logged_in_cookie(base, world.owner_b.email, PASSWORD))
        rival = socket_client(base, logged_in_cookie(base, world.other_owner.email, PASSWORD))
        inboxes = [Inbox(c) for c in (eligible, ineligible, rival)]
        job_id = _post_job(base, poster, "Mow the Annex")
        posted = inboxes[0].wait_for("job.posted")
        assert posted is not None and posted["data"]["id"] == job_id
        assert "Mow the Annex" in posted["text"]
        wire = json.dumps(posted)
        assert CUSTOMER_NAME not in wire and ADDRESS not in wire
        assert inboxes[1].wait_for("job.posted", timeout=1) is None
        assert inboxes[2].wait_for("job.posted", timeout=0.2) is None
        for client in (eligible, ineligible, rival):
            client.disconnect()


def test_offline_phone_replays_missed_events_on_reconnect(app: Flask, session: Session,
                                                          world: World) -> None:
    _setup(session, world)
    with live_server(app) as base:
        poster = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        partner_cookie = logged_in_cookie(base, world.owner_b.email, PASSWORD)
        page = Cursor(0)  # the page's bookkeeping, as live.js keeps it
        phone = socket_client(base, partner_cookie)
        inbox = Inbox(phone)
        _post_job(base, poster, "First job")
        first = inbox.wait_for("job.posted")
        assert first is not None and page.receive("job.posted", first)
        phone.disconnect()  # the crew lead drives out of coverage
        missed_id = _post_job(base, poster, "Second job")
        again = socketio.Client(reconnection=False)
        replayed = Inbox(again)
        again.connect(base, headers={"Cookie": partner_cookie}, transports=["websocket"],
                      auth=page.auth(), wait_timeout=5)
        got = replayed.wait_for("job.posted")
        assert got is not None and got["data"]["id"] == missed_id
        assert replayed.wait_for("sync") is not None  # numbers the first, not sent again
        assert [d["data"]["id"] for k, d in replayed.events if k == "job.posted"] == [missed_id]
        for kind, message in list(replayed.events):
            page.receive(kind, message)
        assert page.cursor == 2 and page.repeats == 0 and len(page.shown_keys) == 2
        again.disconnect()


def test_claim_over_http_tells_poster_and_gives_409_to_the_late(app: Flask, session: Session,
                                                                 world: World) -> None:
    _setup(session, world)
    from tests.jobs.conftest import add_partner

    add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    session.commit()
    with live_server(app) as base:
        poster_cookie = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        poster = socket_client(base, poster_cookie)
        inbox = Inbox(poster)
        job_id = _post_job(base, poster_cookie, "Claim me")
        b = logged_in_cookie(base, world.owner_b.email, PASSWORD)
        g = logged_in_cookie(base, "g@gamma.test", PASSWORD)
        won = requests.post(f"{base}/jobs/{job_id}/claim", headers={"Cookie": b},
                            allow_redirects=False, timeout=10)
        assert won.status_code == 302
        late = requests.post(f"{base}/jobs/{job_id}/claim",
                             headers={"Cookie": g, "Accept": "application/json"}, timeout=10)
        assert late.status_code == 409
        assert late.json()["error"]["message"] == "Another partner claimed this job first."
        claimed = inbox.wait_for("job.claimed")
        assert claimed is not None and "Beta Stone" in claimed["text"]
        page = requests.get(f"{base}/jobs/{job_id}", headers={"Cookie": b}, timeout=10).text
        assert ADDRESS in page  # the winner now sees the customer's address
        rival_page = requests.get(f"{base}/jobs/{job_id}", headers={"Cookie": g}, timeout=10)
        assert ADDRESS not in rival_page.text and CUSTOMER_NAME not in rival_page.text
        poster.disconnect()


def test_french_partner_gets_the_notification_in_french(app: Flask, session: Session,
                                                        world: World) -> None:
    """The poster writes in English; the partner's phone speaks French."""
    from babel.support import Translations

    from marketplace.clusters.service import update_preferences

    _setup(session, world)
    update_preferences(session, world.owner_b, "fr_CA", None, None)
    french = Translations.load(str(app.root_path) + "/translations", ["fr_CA"])
    expected = french.gettext("New overflow job near %(locality)s: %(title)s") % {
        "locality": "Annex, Toronto", "title": "Mow the Annex"}
    assert expected.startswith("Nouv")  # the catalog really is French
    with live_server(app) as base:
        phone = socket_client(base, logged_in_cookie(base, world.owner_b.email, PASSWORD))
        inbox = Inbox(phone)
        _post_job(base, logged_in_cookie(base, world.owner_a.email, PASSWORD), "Mow the Annex")
        posted = inbox.wait_for("job.posted")
        assert posted is not None and posted["text"] == expected
        phone.disconnect()
