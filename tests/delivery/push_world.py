"""The delivery tests' shared pieces: the app's fixed VAPID key, subscribing like the
browser, running the worker, reading the delivery rows.

A plain module, not conftest.py: pytest's own import of a conftest and a test's
`from tests.delivery.conftest import ...` would be two modules with two keys, and
the fixtures' app, the tests and the worker subprocess (handed VAPID_PEM) must
all sign with one.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from py_vapid import Vapid
from sqlmodel import Session, col, select

from marketplace.clusters.models import User
from marketplace.db import session_scope, utcnow
from marketplace.delivery.models import Delivery, PushSubscription
from marketplace.delivery.runner import push_channel, render_push, send_due_pushes
from marketplace.delivery.worker import Round, WorkerSettings, send_due
from marketplace.jobs import service as jobs
from marketplace.jobs.models import OverflowJob
from marketplace.realtime.models import Notification
from tests.conftest import CHEAP_HASHING, SECRET, login
from tests.jobs.conftest import job_draft
from tests.push_service import FakePushService, Subscriber, b64url_encode, raw_public_key

_VAPID = Vapid()
_VAPID.generate_keys()
#: the application server key every test app signs with (PEM, as VAPID_PRIVATE_KEY takes it)
VAPID_PEM = _VAPID.private_pem().decode()
#: its public half, as a browser's `applicationServerKey` and the push service know it
VAPID_PUBLIC = b64url_encode(raw_public_key(_VAPID.private_key))
JSON = {"Accept": "application/json"}  # what push.js sends with every subscription call


def push_config(database_url: str, tmp_path: Path) -> dict[str, Any]:
    """tests/conftest.py's app settings plus the push channel's."""
    return {
        "UPLOAD_DIR": str(tmp_path / "uploads"), "RATELIMIT_ENABLED": False,
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        "PUSH_SERVICE_HOSTS": ["127.0.0.1"], "VAPID_PRIVATE_KEY": VAPID_PEM,
        "PUSH_TIMEOUT_SECONDS": 5.0, "INSTANCE_DIR": str(tmp_path / "instance"),
        **CHEAP_HASHING,
    }


# -- acting like the browser and the member ---------------------------------------------


def subscribe(app: Flask, user: User, *subscribers: Subscriber) -> list[int]:
    """Turn push on in one browser per subscriber, logged in as `user`; the row ids."""
    ids = []
    for subscriber in subscribers:
        client = app.test_client()
        login(client, user)
        response = client.post("/push/subscriptions", json=subscriber.info(), headers=JSON)
        assert response.status_code == 201, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    return ids


def devices(app: Flask, push: FakePushService, user: User, count: int) -> list[Subscriber]:
    """`count` new browsers of `user`, subscribed."""
    browsers = [push.subscriber() for _ in range(count)]
    subscribe(app, user, *browsers)
    return browsers


def post_job(session: Session, by: User, now: datetime, **changes: Any) -> OverflowJob:
    """Post a job through the real service (it commits, which plans the pushes)."""
    session.commit()  # a fresh transaction: the worker may have written meanwhile
    return jobs.post_job(session, by, job_draft(**changes), now)


# -- running the worker ------------------------------------------------------------------


def run_worker(app: Flask, at: datetime | None = None,
               settings: WorkerSettings | None = None) -> Round:
    """One round of the real worker with the app's real sender.

    Without `at`: the scheduled task itself (`send_due_pushes`, real clock).  With
    `at`: `send_due` with the clock standing at `at`, to step through back-off and
    quiet hours without sleeping.
    """
    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        if at is None:
            done = send_due_pushes(session, utcnow())
            assert done is not None, "the push channel is off"
            return done
        channel = push_channel(app)
        assert channel is not None
        return send_due(session, at, channel.sender, render_push, settings or channel.settings,
                        clock=lambda: at)


# -- reading what happened ---------------------------------------------------------------


def fresh(session: Session) -> Session:
    """End the test session's transaction so its next read sees every commit."""
    session.commit()
    session.expire_all()
    return session


def deliveries(session: Session, notification: Notification | None = None,
               channel: str = "push") -> list[Delivery]:
    """The delivery rows of one channel (push unless told), of one notification if given."""
    query = select(Delivery).where(Delivery.channel == channel).order_by(col(Delivery.id))
    if notification is not None:
        query = query.where(Delivery.notification_id == notification.id)
    return list(fresh(session).exec(query))


def subscription(session: Session, subscription_id: int) -> PushSubscription:
    row = fresh(session).get(PushSubscription, subscription_id)
    assert row is not None
    return row


def notification_of(session: Session, user: User, kind: str) -> Notification:
    """The one notification of `kind` that `user` got."""
    rows = list(fresh(session).exec(select(Notification).where(
        Notification.user_id == user.id, Notification.kind == kind)))
    assert len(rows) == 1, rows
    return rows[0]

