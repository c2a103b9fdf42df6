"""Socket.IO connections: only logged-in people, only into their own rooms."""

from __future__ import annotations

import threading
import time

import pytest
import socketio
from flask import Flask
from sqlmodel import Session

from marketplace import create_app
from marketplace.config import socketio_channel
from marketplace.realtime.rooms import coordinators_room, member_room, user_room
from tests.conftest import CHEAP_HASHING, PASSWORD, SECRET, World, redis_database
from tests.live import live_server, logged_in_cookie, socket_client


def test_anonymous_connection_is_refused(app: Flask, world: World) -> None:
    with live_server(app) as url, pytest.raises(socketio.exceptions.ConnectionError):
        socket_client(url, None)




def test_logged_in_user_gets_its_rooms_only(app: Flask, world: World) -> None:
    from marketplace.extensions import socketio_of

    server = socketio_of(app)

    with live_server(app) as url:
        owner = socket_client(url, logged_in_cookie(url, world.owner_a.email, PASSWORD))
        rival = socket_client(url, logged_in_cookie(url, world.owner_b.email, PASSWORD))
        owner_got, rival_got = threading.Event(), threading.Event()
        owner.on("ping", lambda data: owner_got.set())
        rival.on("ping", lambda data: rival_got.set())
        server.emit("ping", {"n": 1}, to=member_room(world.member_a_id))
        assert owner_got.wait(5)
        assert not rival_got.wait(0.5)
        server.emit("ping", {"n": 2}, to=coordinators_room(world.cluster.id))
        server.emit("ping", {"n": 3}, to=user_room(world.crew_a.id))
        owner_got.clear()
        assert not owner_got.wait(0.5)
        owner.disconnect()
        rival.disconnect()


def _app_on_redis(database_url: str, redis_url: str) -> Flask:
    return create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                       "WTF_CSRF_ENABLED": False, "REDIS_URL": redis_url,
                       "RATELIMIT_ENABLED": False, "PUBLIC_URL": "http://localhost",
                       **CHEAP_HASHING})


@pytest.mark.redis
def test_emit_from_another_process_reaches_client_through_redis(
        database_url: str, redis_url: str, world: World) -> None:
    """The scale-out path: an emitter with only the Redis URL reaches a connected browser."""
    from flask_socketio import SocketIO

    app = _app_on_redis(database_url, redis_url)
    try:
        with live_server(app) as url:
            owner = socket_client(url, logged_in_cookie(url, world.owner_a.email, PASSWORD))
            got = threading.Event()
            owner.on("ping", lambda data: got.set())
            external = SocketIO(message_queue=redis_url,
                                channel=socketio_channel({"REDIS_URL": redis_url}))
            external.emit("ping", {"from": "elsewhere"}, to=member_room(world.member_a_id))
            assert got.wait(5)
            owner.disconnect()
    finally:
        app.extensions["engine"].dispose()


@pytest.mark.redis
def test_deployments_sharing_one_redis_do_not_hear_each_other(
        database_url: str, redis_url: str, world: World) -> None:
    """Two deployments on one Redis server, on databases /14 and /15: pub/sub ignores
    the database number, so an event one publishes must still never reach the other's
    phones (its ids name other people there).  A process of the same deployment,
    configured alike, still reaches them."""
    from flask_socketio import SocketIO

    ours, theirs = (redis_database(redis_url, n) for n in (14, 15))
    app = _app_on_redis(database_url, ours)
    try:
        with live_server(app) as url:
            owner = socket_client(url, logged_in_cookie(url, world.owner_a.email, PASSWORD))
            heard: list[str] = []
            got = threading.Event()
            owner.on("ping", lambda data: (heard.append(data["from"]), got.set()))
            for deployment in (theirs, ours):  # each emits as its scheduler process would
                emitter = SocketIO(message_queue=deployment, channel=socketio_channel(
                    {"REDIS_URL": deployment}))
                emitter.emit("ping", {"from": deployment}, to=member_room(world.member_a_id))
            assert got.wait(5)
            time.sleep(0.5)  # the other deployment's event, had it crossed, is here by now
            assert heard == [ours]
            owner.disconnect()
    finally:
        app.extensions["engine"].dispose()


def test_the_channel_follows_the_redis_database_unless_set() -> None:
    assert socketio_channel({"REDIS_URL": "redis://cache:6379/14"}) == "marketplace-db14"
    assert socketio_channel({"REDIS_URL": "redis://cache:6379"}) == "marketplace-db0"
    assert socketio_channel({"REDIS_URL": "redis://cache:6379/3",
                             "SOCKETIO_CHANNEL": "valley-prod"}) == "valley-prod"


def test_a_business_that_left_gets_no_socket_and_no_replay(
        app: Flask, session: Session, world: World) -> None:
    """Its people keep their statements, not the cluster's live events: the socket is
    refused once the exit date came, and so is a replay on a socket opened before it."""
    from datetime import timedelta

    from marketplace.clusters.models import Member
    from marketplace.db import utcnow

    with live_server(app) as url:
        cookie = logged_in_cookie(url, world.owner_b.email, PASSWORD)
        before = socket_client(url, cookie)
        assert before.call("replay", {"cursor": 0}, timeout=5)["replayed"] >= 0
        member = session.get(Member, world.member_b_id)
        assert member is not None
        member.exit_noticed_at = utcnow() - timedelta(days=31)
        member.exit_effective_at = utcnow() - timedelta(minutes=1)
        session.commit()
        assert before.call("replay", {"cursor": 0}, timeout=5) == {"error": "former_member"}
        before.disconnect()
        with pytest.raises(socketio.exceptions.ConnectionError):
            socket_client(url, cookie)
        # The partner still in the cluster connects as before.
        socket_client(url, logged_in_cookie(url, world.owner_a.email, PASSWORD)).disconnect()
