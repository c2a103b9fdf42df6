"""`POST /push/subscriptions`: what a browser may register as a place to push to.

The endpoint is a URL our worker will POST to, so only push services on the list
are accepted (plain http only to a listed loopback host, as here), never an
address inside our network; the keys must be a real P-256 point and a 16-byte
secret.  A refusal is a 422 with a message per field and stores nothing.  A
browser that another person subscribes with moves to them -- with everything
still queued for its previous owner.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlmodel import Session, select

from marketplace.delivery.models import DeliveryStatus, PushSubscription
from tests.conftest import NOW, World, login
from tests.delivery.push_world import (
    JSON,
    deliveries,
    fresh,
    post_job,
    run_worker,
    subscribe,
    subscription,
)
from tests.push_service import FakePushService, b64url_encode

NOT_ON_THE_CURVE = b64url_encode(b"\x04" + bytes(64))  # 65 bytes, 0x04, but no P-256 point


def _stored(session: Session) -> int:
    return fresh(session).exec(select(func.count()).select_from(PushSubscription)).one()


def _with(info: dict[str, Any], **changes: Any) -> dict[str, Any]:
    keys = {**info["keys"], **changes.pop("keys", {})}
    return {**info, **changes, "keys": {k: v for k, v in keys.items() if v is not None}}


@pytest.mark.parametrize(("change", "fields"), [
    ({"endpoint": "https://push.evil.example/push/abc"}, {"endpoint"}),
    ({"endpoint": "https://fcm.googleapis.com/fcm/send/abc"}, {"endpoint"}),  # not listed here
    ({"endpoint": "http://10.0.0.1/push/abc"}, {"endpoint"}),
    ({"endpoint": "http://169.254.169.254/latest/meta-data"}, {"endpoint"}),
    ({"endpoint": "ftp://127.0.0.1/push/abc"}, {"endpoint"}),
    ({"endpoint": None}, {"endpoint"}),
    ({"keys": {"p256dh": "not base64 at all!"}}, {"keys.p256dh"}),
    ({"keys": {"p256dh": b64url_encode(b"\x04" + bytes(31))}}, {"keys.p256dh"}),
    ({"keys": {"p256dh": NOT_ON_THE_CURVE}}, {"keys.p256dh"}),
    ({"keys": {"auth": None}}, {"keys.auth"}),
    ({"keys": {"auth": b64url_encode(bytes(8))}}, {"keys.auth"}),
    ({"endpoint": "http://10.0.0.1/x", "keys": {"p256dh": "", "auth": None}},
     {"endpoint", "keys.p256dh", "keys.auth"}),
])
def test_a_bad_subscription_is_refused_with_a_message_per_field(
    app: Flask, session: Session, world: World, push: FakePushService,
    change: dict[str, Any], fields: set[str],
) -> None:
    client = app.test_client()
    login(client, world.owner_b)
    response = client.post("/push/subscriptions", json=_with(push.subscriber().info(), **change),
                           headers=JSON)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "bad_subscription" and error["message"]
    assert set(error["fields"]) == fields
    assert all(isinstance(m, str) and m for m in error["fields"].values())
    assert _stored(session) == 0


def test_a_body_that_is_not_a_subscription_is_refused(
    app: Flask, session: Session, world: World
) -> None:
    client = app.test_client()
    login(client, world.owner_b)
    for body in ({"data": "not json", "content_type": "text/plain"}, {"json": [1, 2]}):
        response = client.post("/push/subscriptions", headers=JSON, **body)
        assert response.status_code == 422
        assert set(response.get_json()["error"]["fields"]) == {"body"}
    assert _stored(session) == 0


def test_nobody_subscribes_without_logging_in(
    app: Flask, session: Session, world: World, push: FakePushService
) -> None:
    response = app.test_client().post("/push/subscriptions", json=push.subscriber().info(),
                                      headers=JSON)
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert "/login" in response.headers["Location"]
    assert _stored(session) == 0


def test_subscribing_twice_keeps_one_row(
    app: Flask, session: Session, world: World, push: FakePushService
) -> None:
    browser = push.subscriber()
    first = subscribe(app, world.owner_b, browser)
    assert subscribe(app, world.owner_b, browser) == first
    assert _stored(session) == 1


def test_a_browser_subscribed_by_another_person_moves_to_them(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    """A shared tablet: B turned pushes on, later Gamma's crew lead did on the same
    browser.  New events for B no longer reach it -- nor does what was still queued
    for B (here: a push the service refused with 503, due again in 30 s)."""
    world = jobs_world
    tablet = push.subscriber()
    [tablet_id] = subscribe(app, world.owner_b, tablet)
    push.answer(tablet.token, 503)
    post_job(session, world.owner_a, NOW, title="Queued for B")
    assert run_worker(app, NOW).retried == 1

    assert subscribe(app, world.other_owner, tablet) == [tablet_id]
    row = subscription(session, tablet_id)
    assert (row.user_id, row.removed_at) == (world.other_owner.id, None)
    assert _stored(session) == 1

    post_job(session, world.owner_a, NOW + timedelta(minutes=1), title="After the move")
    assert len(deliveries(session)) == 1  # B's later job: no row for the moved browser
    run_worker(app, NOW + timedelta(hours=1))  # B's queued push is due again
    assert push.received == [], "B's notification was pushed to another person's browser"
    [queued] = deliveries(session)
    assert queued.status == DeliveryStatus.GONE
