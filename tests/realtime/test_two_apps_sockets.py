"""Two apps in one process each serve their own phones.

Flask-SocketIO dispatches a socket's events, joins its rooms and emits through the
one server of its `SocketIO` object, and `init_app` replaces that server: with one
shared object, an app built before another had its sockets' connect events ignored
(so they joined no room) and heard nothing live.  Each app now has its own
(`extensions.socketio_of`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from marketplace import create_app, events
from marketplace.db import session_scope
from marketplace.errors import N_
from marketplace.extensions import socketio_of
from marketplace.realtime.publisher import flush
from tests.conftest import CHEAP_HASHING, NOW, PASSWORD, SECRET, make_world
from tests.live import Inbox, live_server, logged_in_cookie, socket_client


def _app(database_url: str, directory: Path) -> Flask:
    return create_app({
        "UPLOAD_DIR": str(directory / "uploads"), "MAIL_FOLDER": str(directory / "mail"),
        "RATELIMIT_ENABLED": False, "TESTING": True, "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False, "REDIS_URL": None,
        "PUBLIC_URL": "http://localhost", **CHEAP_HASHING,
    })


@pytest.fixture
def two_apps(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    first = _app(database_url, tmp_path / "first")
    second = _app(f"sqlite:///{tmp_path / 'second.db'}", tmp_path / "second")
    yield first, second
    for app in (first, second):
        app.extensions["engine"].dispose()


def test_the_phones_of_an_app_built_before_another_hear_their_notifications(
        two_apps: tuple[Flask, Flask]) -> None:
    first, second = two_apps
    assert socketio_of(first) is not socketio_of(second)
    with session_scope(first.extensions["engine"]) as session:
        world = make_world(session)
        with live_server(first) as base:
            phone = socket_client(base, logged_in_cookie(base, world.owner_b.email, PASSWORD))
            inbox = Inbox(phone)
            events.notify(session, [world.owner_b], "job.posted",
                          N_("New overflow job near %(locality)s: %(title)s"), now=NOW,
                          params={"locality": "Annex", "title": "Mow"}, payload={"id": 1})
            session.commit()
            assert flush(first)
            heard = inbox.wait_for("job.posted")
            assert heard is not None and "Mow" in heard["text"]
            phone.disconnect()
