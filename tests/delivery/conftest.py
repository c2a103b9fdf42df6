"""Web Push at the wire: the app's real worker and pywebpush against a local push service.

The app is built as tests/conftest.py builds it, plus two settings: the push
service hosts list names 127.0.0.1 (the only way a plain-http endpoint is
accepted), and the VAPID key is fixed, so `FakePushService` checks that every
push is signed with *our* key.  Devices subscribe through `POST
/push/subscriptions` as the logged-in person, exactly as static/js/push.js does
(helpers in push_world.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session

from marketplace import create_app
from marketplace.clusters import agreements
from tests.conftest import NOW, World
from tests.delivery.push_world import VAPID_PUBLIC, push_config
from tests.jobs.conftest import give_profile
from tests.push_service import FakePushService


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    flask_app = create_app(push_config(database_url, tmp_path))
    yield flask_app
    flask_app.extensions["engine"].dispose()


@pytest.fixture
def push() -> Iterator[FakePushService]:
    """The push service (and every subscribed browser); it accepts only our VAPID key."""
    with FakePushService(vapid_public_key=VAPID_PUBLIC) as service:
        yield service


@pytest.fixture
def jobs_world(session: Session, world: World) -> World:
    """A posts jobs; B is an eligible partner; the rival cluster's owner could take the
    job too (same trades, same area) if the barrier let it."""
    for owner in (world.owner_a, world.owner_b, world.other_owner):
        give_profile(session, owner)
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    agreements.accept_agreement(session, world.other_owner, current.version, NOW)
    session.commit()
    return world
