"""A Redis that stops answering cannot wedge the live publishing task.

The one background task of a process publishes every live message; without a
socket timeout a publish to a Redis that accepts the connection and then never
answers (a stopped server, a half-open connection) would wait forever, and every
later live message of the process with it.  The stand-in here is a TCP server on
loopback that accepts and never replies: nothing outside the machine is mocked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from flask import Flask

from marketplace import create_app
from marketplace.extensions import socketio_of
from tests.conftest import CHEAP_HASHING, SECRET


@pytest.fixture()
def silent_redis() -> Iterator[str]:
    """redis://... of a server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(2)
        for connection in held:
            connection.close()
        listener.close()


def _app(redis_url: str) -> Flask:
    return create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "SECRET_KEY": SECRET,
                       "REDIS_URL": redis_url, "PUBLIC_URL": "http://localhost",
                       "RATELIMIT_ENABLED": False, **CHEAP_HASHING})


def test_a_publish_to_a_silent_redis_gives_up_instead_of_hanging(silent_redis: str) -> None:
    app = _app(silent_redis)
    manager = socketio_of(app).server.manager  # type: ignore[attr-defined]  # init_app sets it
    manager.timeout = 0.3  # the app's is PUBLISH_TIMEOUT (5 s); the same path, sooner
    done = threading.Event()

    def publish() -> None:
        manager._publish({"method": "emit", "event": "job.posted", "data": {}})
        done.set()

    threading.Thread(target=publish, daemon=True).start()
    assert done.wait(10), "the publish waited for a Redis that never answers"
    app.extensions["engine"].dispose()


def test_the_subscriber_has_no_read_timeout(silent_redis: str) -> None:
    """Its connection is silent whenever nothing happens: a read timeout there would
    make it drop and re-subscribe, missing what is published meanwhile."""
    app = _app(silent_redis)
    manager = socketio_of(app).server.manager  # type: ignore[attr-defined]  # init_app sets it
    manager._redis_connect()  # connects lazily: no command is sent yet
    publishing = manager.redis.connection_pool.connection_kwargs
    listening = manager.pubsub.connection_pool.connection_kwargs
    assert publishing["socket_timeout"] > 0
    assert listening.get("socket_timeout") is None and listening["socket_keepalive"]
    app.extensions["engine"].dispose()

