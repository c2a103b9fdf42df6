"""A job posted over HTTP reaches the eligible partner's phones by Web Push, at the wire.

The real worker signs with the app's VAPID key and encrypts with pywebpush; the
push service checks the signature and decrypts as the partner's browser would.
So each assertion is about what a phone really shows: once per device, in the
partner's language, tagged for the job, nothing the barrier hides, nothing for
people who may not see the job, and never at the expense of the poster's click.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from babel.support import Translations
from flask import Flask
from sqlmodel import Session

from marketplace import events
from marketplace.config import PROJECT_ROOT
from marketplace.db import utcnow
from marketplace.delivery.models import DeliveryStatus
from marketplace.delivery.worker import FIRST_RETRY
from marketplace.extensions import socketio_of
from marketplace.realtime.rooms import user_room
from tests.conftest import NOW, World, login
from tests.delivery.push_world import (
    deliveries,
    devices,
    notification_of,
    post_job,
    run_worker,
    subscribe,
    subscription,
)
from tests.jobs.conftest import SITE, add_partner
from tests.push_service import FakePushService, Subscriber

TITLE = "Mow the Annex lawns"
CUSTOMER = "Zelda Quackenbush"
CONTACT = "zelda.q@customer.example +1-416-555-0199"
ADDRESS = "742 Evergreen Terrace, Unit 9"
SPANISH_BODY = f"Nuevo trabajo excedente cerca de Annex, Toronto: {TITLE}"


def post_over_http(app: Flask, world: World, title: str = TITLE) -> int:
    """A posts a job with the form, as on the phone; the new job's id."""
    client = app.test_client()
    login(client, world.owner_a)
    today = utcnow().date().isoformat()
    response = client.post("/jobs/new", data={
        "title": title, "description": "Weekly mowing", "trades": ["mowing"],
        "locality": "Annex, Toronto", "site_lat": str(SITE[0]), "site_lng": str(SITE[1]),
        "address": ADDRESS, "customer_name": CUSTOMER, "customer_contact": CONTACT,
        "crew_days": "3", "starts_on": today, "ends_on": today, "value": "1234.50",
        "mode": "handoff",
    })
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    return int(response.headers["Location"].rsplit("/", 1)[1])


def spanish(message: str) -> str:
    catalog = Translations.load(str(PROJECT_ROOT / "marketplace" / "translations"), ["es"])
    return catalog.gettext(message)


@pytest.fixture
def partner_es(session: Session, jobs_world: World) -> World:
    """B reads the app in Spanish."""
    jobs_world.owner_b.locale = "es"
    session.add(jobs_world.owner_b)
    session.commit()
    return jobs_world


def test_a_posted_job_reaches_each_device_of_an_eligible_partner_once(
    app: Flask, session: Session, partner_es: World, push: FakePushService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = partner_es
    emitted: list[tuple[str, dict[str, Any], list[str]]] = []
    monkeypatch.setattr(socketio_of(app), "emit",
                        lambda kind, message, to: emitted.append((kind, message, to)))
    ineligible = add_partner(session, world, "Delta Fences", "d@delta.test", trades=("fencing",))
    session.commit()
    phone, tablet = devices(app, push, world.owner_b, 2)
    bystanders = [
        *devices(app, push, world.other_owner, 1),  # another cluster: same trades, same area
        *devices(app, push, ineligible, 1),  # our cluster, but no mowing
        *devices(app, push, world.owner_a, 1),  # the poster is not told of its own job
    ]

    job_id = post_over_http(app, world)
    assert push.received == [] and push.rejected == []  # the post sent nothing itself
    stored = notification_of(session, world.owner_b, "job.posted")
    assert [d.status for d in deliveries(session)] == [DeliveryStatus.PENDING] * 2

    done = run_worker(app)  # the scheduled task, real clock
    assert (done.sent, done.retried, done.failed, done.gone) == (2, 0, 0, 0)

    received = push.wait_for(2)
    assert sorted(m.token for m in received) == sorted([phone.token, tablet.token])
    assert all(push.for_token(b.token) == [] for b in bystanders)
    assert push.rejected == []
    [(kind, live, _rooms)] = [e for e in emitted
                              if user_room(world.owner_b.id) in e[2]]  # type: ignore[arg-type]
    assert kind == "job.posted"
    # the open page's message is numbered by its sync, so it is the same for everyone
    same_for_all = {k: v for k, v in live.items() if k not in ("id", "seq")}
    for message in received:
        payload = message.payload
        assert payload["id"] == stored.id and payload["seq"] == stored.seq
        assert payload["kind"] == "job.posted"
        assert payload["body"] == payload["text"] == SPANISH_BODY
        assert payload["lang"] == "es"
        assert payload["tag"] == payload["url"] == payload["link"] == f"/jobs/{job_id}"
        assert payload["data"] == stored.payload == live["data"]
        assert payload["data"]["id"] == job_id
        # the phone gets the very message the open page gets, plus what it displays
        assert {k: payload[k] for k in same_for_all} == same_for_all
        assert message.topic == f"jobs-{job_id}"
        assert message.ttl == app.config["PUSH_TTL_SECONDS"] > 0
        assert message.urgency == "high"
        for secret in (CUSTOMER, "Quackenbush", CONTACT, "555-0199", "customer.example",
                       ADDRESS, "742 Evergreen"):
            assert secret.encode() not in message.body, secret
    rows = deliveries(session)
    assert [(r.status, r.attempts) for r in rows] == [(DeliveryStatus.SENT, 1)] * 2
    assert {subscription(session, r.subscription_id).last_sent_at is not None  # type: ignore[arg-type]
            for r in rows} == {True}

    assert not run_worker(app)  # nothing is due any more: no second push
    assert len(push.received) == 2


def test_the_push_title_is_in_the_partners_language(
    app: Flask, session: Session, partner_es: World, push: FakePushService
) -> None:
    [phone] = devices(app, push, partner_es.owner_b, 1)
    post_over_http(app, partner_es)
    run_worker(app)
    [message] = push.wait_for(1)
    title = spanish("New job")
    assert title != "New job", "no Spanish for the title 'New job'"
    assert message.payload["title"] == f"{title} · Valley"


def test_a_gone_device_is_unsubscribed_and_the_other_keeps_getting_pushes(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    """410: the browser dropped the subscription; 404: the push service does not know
    it (any more).  Both mean: stop sending there, for this event and every later one."""
    world = jobs_world
    kept, expired, keys = push.subscriber(), push.subscriber(), push.subscriber()
    unknown = Subscriber("never-issued", f"{push.base}/push/never-issued", keys.p256dh,
                         keys.auth)
    kept_id, expired_id, unknown_id = subscribe(app, world.owner_b, kept, expired, unknown)
    push.gone(expired.token)

    first = post_over_http(app, world, "First lawn")
    done = run_worker(app)
    assert (done.sent, done.gone, done.retried, done.failed) == (1, 2, 0, 0)
    [message] = push.wait_for(1)
    assert message.token == kept.token and message.payload["data"]["id"] == first
    assert {r.subscription_id: r.status for r in deliveries(session)} == {
        kept_id: DeliveryStatus.SENT, expired_id: DeliveryStatus.GONE,
        unknown_id: DeliveryStatus.GONE}
    for gone_id in (expired_id, unknown_id):
        row = subscription(session, gone_id)
        assert row.removed_at is not None and row.removed_reason == "gone"
    assert subscription(session, kept_id).removed_at is None
    assert sorted(status for _t, status, _r in push.rejected) == [404, 410]

    second = post_over_http(app, world, "Second lawn")
    newest = max(r.notification_id for r in deliveries(session))
    assert [(r.subscription_id, r.status) for r in deliveries(session)
            if r.notification_id == newest] == [(kept_id, DeliveryStatus.PENDING)]
    assert run_worker(app).sent == 1
    assert [m.payload["data"]["id"] for m in push.for_token(kept.token)] == [first, second]
    assert len(push.rejected) == 2  # nothing more went to the gone devices


def test_an_unreachable_push_service_never_fails_the_members_action(
    app: Flask, session: Session, jobs_world: World
) -> None:
    """The push service is down when A posts: the post succeeds, the worker notes a
    retry and raises nothing."""
    with FakePushService() as gone_service:
        browser = gone_service.subscriber()
    [sub_id] = subscribe(app, jobs_world.owner_b, browser)  # its port is closed now

    started = utcnow()
    job_id = post_over_http(app, jobs_world)
    assert notification_of(session, jobs_world.owner_b, "job.posted").payload["id"] == job_id

    done = run_worker(app)
    assert (done.claimed, done.retried, done.sent, done.failed) == (1, 1, 0, 0)
    [row] = deliveries(session)
    assert row.subscription_id == sub_id
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.last_error is not None and "unreachable" in row.last_error
    assert row.due_at >= started + FIRST_RETRY
    assert subscription(session, sub_id).removed_at is None  # down is not gone
    assert not run_worker(app)  # not due again yet


def test_a_push_that_cannot_be_rendered_fails_alone(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    """A message whose placeholders its parameters do not fill (a slip in code or in a
    translation) fails its own row; the worker raises nothing and the batch goes out."""
    [phone] = devices(app, push, jobs_world.owner_b, 1)
    events.notify(session, [jobs_world.owner_b], "job.awarded", "You won %(job)s",
                  now=NOW, params={"title": "Lawn"}, link="/jobs/1")
    session.commit()
    job = post_job(session, jobs_world.owner_a, NOW)

    done = run_worker(app, NOW)
    assert (done.claimed, done.sent, done.failed) == (2, 1, 1)
    [message] = push.wait_for(1)
    assert message.token == phone.token and message.payload["data"]["id"] == job.id
    broken, posted = deliveries(session)
    assert (broken.status, broken.last_error) == (DeliveryStatus.FAILED,
                                                  "could not render: KeyError")
    assert posted.status == DeliveryStatus.SENT
    assert not run_worker(app, NOW + timedelta(hours=1))  # nothing left claimed or due

