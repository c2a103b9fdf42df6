"""Socket.IO connections: only logged-in people, only into their own rooms."""

from __future__ import annotations

import threading

import pytest
import socketio
from flask import Flask

from marketplace import create_app
from marketplace.realtime.rooms import coordinators_room, member_room, user_room
from tests.conftest import CHEAP_HASHING, PASSWORD, SECRET, World
from tests.live import live_server, logged_in_cookie, socket_client


def test_anonymous_connection_is_refused(app: Flask, world: World) -> None:
    with live_server(app) as url, pytest.raises(socketio.exceptions.ConnectionError):
        socket_client(url, None)




def test_logged_in_user_gets_its_rooms_only(app: Flask, world: World) -> None:
    from marketplace.extensions import socketio as server

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


@pytest.mark.redis
def test_emit_from_another_process_reaches_client_through_redis(
        database_url: str, redis_url: str, world: World) -> None:
    """The scale-out path: an emitter with only the Redis URL reaches a connected browser."""
    from flask_socketio import SocketIO

    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                      "WTF_CSRF_ENABLED": False, "REDIS_URL": redis_url,
                      "PUBLIC_URL": "http://localhost", **CHEAP_HASHING})
    try:
        with live_server(app) as url:
            owner = socket_client(url, logged_in_cookie(url, world.owner_a.email, PASSWORD))
            got = threading.Event()
            owner.on("ping", lambda data: got.set())
            external = SocketIO(message_queue=redis_url)
            external.emit("ping", {"from": "elsewhere"}, to=member_room(world.member_a_id))
            assert got.wait(5)
            owner.disconnect()
    finally:
        app.extensions["engine"].dispose()
