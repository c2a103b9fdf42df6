"""A real HTTP + Socket.IO server on a free loopback port, for real clients."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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


class Cursor:
    """A page's delivery bookkeeping, the rules of static/js/live.js in Python, so tests
    can hold the server to what the browser relies on.

    `cursor` is the highest number up to which the page has every notification;
    `ahead` the numbers known above it; `seen` ids already shown; `shown` the batch
    keys already shown; `unnumbered` the keys shown from a shared live message (no
    number of ours in it) that no sync has numbered yet.  `shown_keys` lists, in
    order, each notification the page showed (by batch key): a repeat never shows.

    `built_at` is when the page read its cursor: a shared message of an event from
    no later than that is `held` (the page may show it already) until a sync or its
    numbered replay says it is new (shown then) or the sync does not know it (the
    page has it: dropped)."""

    def __init__(self, cursor: int = 0, built_at: str | None = None) -> None:
        self.cursor = cursor
        self.built_at = _instant(built_at)
        self.held: dict[str, dict[str, Any]] = {}
        self.ahead: set[int] = set()
        self.seen: set[int] = set()
        self.shown: set[str] = set()
        self.unnumbered: list[str] = []
        self.shown_keys: list[str] = []
        self.repeats = 0
        self.shared = 0  # shared live messages taken (no number in them)

    def _advance(self) -> None:
        while self.cursor + 1 in self.ahead:
            self.ahead.remove(self.cursor + 1)
            self.cursor += 1

    def have(self) -> list[str]:
        """The keys a page sends with its cursor (live.js sends the newest 100)."""
        return self.unnumbered[-100:]

    def auth(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "have": self.have()}

    def receive(self, kind: str, message: dict[str, Any]) -> bool:
        """Take one event; True when the page shows it (a notification it did not have)."""
        if kind == "sync":
            self.sync(message)
            return False
        key = message.get("batch")
        if message.get("seq") is None:
            if key in self.shown or key in self.held:
                self.repeats += 1
                return False
            created = _instant(message.get("created_at"))
            if self.built_at is not None and created is not None and created <= self.built_at:
                self.held[key] = message
                self.unnumbered.append(key)
                return False
            self.shared += 1
            self.shown.add(key)
            self.unnumbered.append(key)
            self.shown_keys.append(key)
            return True
        seq = message["seq"]
        if seq <= self.cursor or message["id"] in self.seen or seq in self.ahead:
            self.repeats += 1
            return False
        self.seen.add(message["id"])
        self.ahead.add(seq)
        self._advance()
        if key in self.held:  # numbered after the cursor: new to the page after all
            del self.held[key]
            self.unnumbered.remove(key)
            self.shown.add(key)
            self.shown_keys.append(key)
            return True
        if key in self.unnumbered:  # shown already, from the shared live message
            self.unnumbered.remove(key)
            return False
        self.shown.add(key)
        self.shown_keys.append(key)
        return True

    def sync(self, answer: dict[str, Any]) -> None:
        fresher: list[str] = []
        for seq, key in answer.get("matched", []):
            if seq > self.cursor:
                self.ahead.add(seq)
            if key in self.unnumbered:
                self.unnumbered.remove(key)
            if self.held.pop(key, None) is not None:
                fresher.append(key)
        for key in answer.get("unknown", []):
            if key in self.unnumbered:
                self.unnumbered.remove(key)
            self.held.pop(key, None)  # at or before the cursor: the page has it
        self._advance()
        for key in fresher:
            self.shared += 1
            self.shown.add(key)
            self.shown_keys.append(key)


def _instant(text: str | None) -> datetime | None:
    """An ISO time as live.js reads it: one without a zone is UTC."""
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
