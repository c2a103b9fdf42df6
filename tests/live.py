"""A real HTTP + Socket.IO server on a free loopback port, for real clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
import socketio
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from werkzeug.serving import make_server

from marketplace.scheduling.runner import add_tasks


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` (Socket.IO included) in a thread; yields its base URL, which is also
    the app's PUBLIC_URL meanwhile, so the links it writes (invites) lead back to it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base, public_url = f"http://127.0.0.1:{server.server_port}", app.config["PUBLIC_URL"]
    app.config["PUBLIC_URL"] = base
    try:
        yield base
    finally:
        app.config["PUBLIC_URL"] = public_url
        server.shutdown()
        thread.join(timeout=5)


@contextmanager
def in_process_scheduler(app: Flask) -> Iterator[None]:
    """The embedded default's APScheduler running `app`'s periodic tasks in this process,
    as `python wsgi.py` starts it; on exit it stops and steps down as leader, so the
    next test's scheduler can lead (PostgreSQL's advisory lock would otherwise linger)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    leadership = add_tasks(scheduler, app)
    assert leadership.is_leader, "another scheduler holds the lead: tasks would not run"
    scheduler.start()
    try:
        yield
    finally:
        scheduler.shutdown(wait=True)
        leadership.release()


def logged_in_cookie(base_url: str, email: str, password: str) -> str:
    """Log in over HTTP like a browser and return the Cookie header to reuse."""
    http = requests.Session()
    response = http.post(f"{base_url}/login", data={"email": email, "password": password},
                         allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def socket_client(base_url: str, cookie: str | None) -> socketio.Client:
    """A python-socketio client connected with the given login cookie (websocket only)."""
    client = socketio.Client(reconnection=False)
    client.connect(base_url, headers={"Cookie": cookie} if cookie else {},
                   transports=["websocket"], wait_timeout=5)
    return client


class Inbox:
    """Collects every event a client receives, with a way to wait for one kind (and,
    with `where`, for one such event in particular)."""

    def __init__(self, client: socketio.Client) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._arrived = threading.Condition()
        client.on("*", self._on_any)

    def _on_any(self, kind: str, data: dict[str, Any]) -> None:
        with self._arrived:
            self.events.append((kind, data))
            self._arrived.notify_all()

    def wait_for(self, kind: str, timeout: float = 5,
                 where: Callable[[dict[str, Any]], bool] = lambda _data: True
                 ) -> dict[str, Any] | None:
        def found() -> dict[str, Any] | None:
            return next((d for k, d in self.events if k == kind and where(d)), None)

        with self._arrived:
            self._arrived.wait_for(lambda: found() is not None, timeout)
            return found()
