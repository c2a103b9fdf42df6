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

from marketplace import create_app
from tests.delivery.push_world import VAPID_PUBLIC, push_config
from tests.jobs.conftest import jobs_world  # noqa: F401 - the shared fixture
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
