"""Publishing off the request path, one message per language, and nothing lost.

The committing request only queues its batches; a background task emits them.  A
publisher that fails, dies or falls behind loses live moments, never notifications:
the rows are stored and a page's replay (with the sync of shared messages) brings
each one exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import redis
import socketio
from flask import Flask
from sqlmodel import Session

from marketplace import create_app, events
from marketplace.clusters.models import User
from marketplace.config import socketio_channel
from marketplace.errors import N_
from marketplace.extensions import socketio_of
from marketplace.realtime.background import BackgroundPublisher
from marketplace.realtime.publisher import EXTENSION, flush
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind
from tests.conftest import CHEAP_HASHING, NOW, PASSWORD, SECRET, World
from tests.live import Cursor, live_server, logged_in_cookie

MESSAGE = N_("New overflow job near %(locality)s: %(title)s")


def _notify(session: Session, users: list[User], title: str) -> None:
    events.notify(session, users, "job.posted", MESSAGE, now=NOW,
                  params={"locality": "Annex, Toronto", "title": title},
                  payload={"id": abs(hash(title)) % 10**6, "title": title}, link="/jobs/1")
    session.commit()


def _wait(condition: Any, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _publisher(app: Flask) -> BackgroundPublisher[events.Batch]:
    publisher: BackgroundPublisher[events.Batch] = app.extensions[EXTENSION]
    return publisher


def test_the_commit_does_not_wait_for_the_emit(
        app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the emit hangs (a slow Redis), the posting transaction still commits at once."""
    release, emitted = threading.Event(), []

    def slow_emit(kind: str, message: dict[str, Any], to: Any) -> None:
        release.wait(10)
        emitted.append(to)

    monkeypatch.setattr(socketio_of(app), "emit", slow_emit)
    _notify(session, [world.owner_a, world.owner_b, world.crew_a], "Slow Redis")
    assert emitted == [] and _publisher(app).pending == 1
    release.set()
    assert flush(app) and len(emitted) == 1  # one language, one message


def test_a_request_hands_its_batches_over_when_it_ends(
        app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fan-out starts once the poster's request is done, not while it still runs
    (in the same process it would compete with it); Socket.IO events end alike."""
    emitted: list[Any] = []
    monkeypatch.setattr(socketio_of(app), "emit", lambda kind, message, to: emitted.append(to))
    with app.test_request_context("/jobs/new", method="POST"):
        _notify(session, [world.owner_a, world.owner_b], "At the end")
        assert flush(app) and emitted == []  # committed, not handed over yet
    assert flush(app) and len(emitted) == 1


def test_a_failing_emit_is_logged_and_the_next_batch_still_goes(
        app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    emitted: list[str] = []

    def emit(kind: str, message: dict[str, Any], to: Any) -> None:
        if message["data"]["title"] == "Broken":
            raise ConnectionError("redis went away")
        emitted.append(message["data"]["title"])

    monkeypatch.setattr(socketio_of(app), "emit", emit)
    _notify(session, [world.owner_a, world.owner_b], "Broken")
    _notify(session, [world.owner_a, world.owner_b], "Fine")
    assert flush(app)
    assert emitted == ["Fine"]


def test_a_task_that_died_is_started_again_by_the_next_batch() -> None:
    sent: list[int] = []

    def send(item: int) -> None:
        if item == 1:
            raise SystemExit  # ends the task itself, as a killed greenlet would
        sent.append(item)

    publisher: BackgroundPublisher[int] = BackgroundPublisher(
        send, start_task=lambda fn: threading.Thread(target=fn, daemon=True).start(),
        make_event=threading.Event, sleep=time.sleep)
    publisher.submit(1)
    assert publisher.flush(5)
    publisher.submit(2)
    publisher.submit(3)
    assert publisher.flush(5)
    assert sent == [2, 3] and publisher.starts == 2


def test_a_full_queue_drops_batches_instead_of_holding_the_request() -> None:
    gate = threading.Event()
    publisher: BackgroundPublisher[int] = BackgroundPublisher(
        lambda item: gate.wait(10), limit=2,
        start_task=lambda fn: threading.Thread(target=fn, daemon=True).start(),
        make_event=threading.Event, sleep=time.sleep)
    assert [publisher.submit(n) for n in range(4)] == [True, True, False, False]
    assert publisher.dropped == 2
    gate.set()
    assert publisher.flush(5) and publisher.submit(5)
    assert publisher.flush(5)


def test_the_queue_also_bounds_the_recipients_waiting() -> None:
    """Ten batches of a big cluster's posts weigh what a hundred thousand small ones
    do: beyond the recipients bound they are dropped (phones replay them), and once
    the queue drains it takes batches again."""
    gate = threading.Event()
    publisher: BackgroundPublisher[int] = BackgroundPublisher(
        lambda size: gate.wait(10), limit=100, size=lambda size: size, size_limit=1000,
        start_task=lambda fn: threading.Thread(target=fn, daemon=True).start(),
        make_event=threading.Event, sleep=time.sleep)
    assert publisher.submit(600)
    assert _wait(lambda: publisher.pending == 1)
    assert [publisher.submit(n) for n in (600, 400, 1)] == [True, True, False]
    assert publisher.dropped == 1
    gate.set()
    assert publisher.flush(5) and publisher.submit(1000) and publisher.flush(5)
    gate.clear()
    assert publisher.submit(5000)  # bigger than the bound, but nothing else waits


def test_an_idle_task_ends_and_the_next_batch_starts_one() -> None:
    sent: list[int] = []
    publisher: BackgroundPublisher[int] = BackgroundPublisher(
        sent.append, idle_seconds=0.05,
        start_task=lambda fn: threading.Thread(target=fn, daemon=True).start(),
        make_event=threading.Event, sleep=time.sleep)
    publisher.submit(1)
    assert publisher.flush(5)
    assert _wait(lambda: not publisher.running)
    publisher.submit(2)
    assert publisher.flush(5)
    assert sent == [1, 2] and publisher.starts == 2


def _phone(base: str, cookie: str, page: Cursor, got: threading.Event | None = None
           ) -> socketio.Client:
    client = socketio.Client(reconnection=False)
    lock = threading.Lock()

    def on_any(kind: str, message: dict[str, Any]) -> None:
        with lock:
            page.receive(kind, message)
        if got is not None:
            got.set()

    client.on("*", on_any)
    client.connect(base, headers={"Cookie": cookie}, transports=["websocket"],
                   auth=page.auth(), wait_timeout=5)
    return client


def test_a_page_numbers_shared_messages_by_sync_and_replay_fills_what_was_lost(
        app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A's page gets a shared live message (no number), misses one whose emit failed,
    then reconnects: the sync numbers the first without sending it again, the replay
    sends the lost one, and the page shows each once with its cursor at the end."""
    users = [world.owner_a, world.owner_b]
    with live_server(app) as base:
        cookie = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        page = Cursor(events.cursor_of(session, world.owner_a.id))  # type: ignore[arg-type]
        phone = _phone(base, cookie, page)
        _notify(session, users, "Shared")
        assert _wait(lambda: page.shown_keys)
        assert page.shared == 1 and page.cursor == 0 and len(page.unnumbered) == 1
        real_emit = socketio_of(app).emit

        def failing(kind: str, message: dict[str, Any], to: Any) -> None:
            raise ConnectionError("redis went away")

        monkeypatch.setattr(socketio_of(app), "emit", failing)
        _notify(session, users, "Lost")
        assert flush(app)
        monkeypatch.setattr(socketio_of(app), "emit", real_emit)
        phone.disconnect()
        again = _phone(base, cookie, page)
        assert _wait(lambda: page.cursor == 2)
        assert len(page.shown_keys) == 2 and page.unnumbered == [] and page.repeats == 0
        again.disconnect()


def test_replay_with_keys_answers_a_sync_and_sends_only_the_rest(
        app: Flask, session: Session, world: World) -> None:
    users = [world.owner_a, world.owner_b]
    with live_server(app) as base:
        cookie = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        page = Cursor(0)
        phone = _phone(base, cookie, page)
        _notify(session, users, "One")
        _notify(session, users, "Two")
        assert _wait(lambda: len(page.unnumbered) == 2)
        syncs: list[dict[str, Any]] = []
        bodies: list[dict[str, Any]] = []
        phone.on("sync", syncs.append)
        phone.on("job.posted", bodies.append)
        first, second = page.unnumbered
        unknown = "0123456789abcdef"
        answer = phone.call("replay", {"cursor": 0, "have": [second, unknown]}, timeout=5)
        assert answer == {"replayed": 1}
        assert [b["batch"] for b in bodies] == [first] and bodies[0]["seq"] == 1
        assert syncs == [{"matched": [[2, second]], "unknown": [unknown]}]
        # keys that are not keys: ignored, everything after the cursor comes again
        assert phone.call("replay", {"cursor": 0, "have": ["x" * 16]}, timeout=5) \
            == {"replayed": 2}
        phone.disconnect()


@pytest.mark.redis
def test_one_redis_message_per_language_for_a_post_to_many(
        database_url: str, redis_url: str, session: Session, world: World) -> None:
    """Three readers in two languages: two messages on the deployment's channel, where
    one per reader went before."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                      "WTF_CSRF_ENABLED": False, "REDIS_URL": redis_url,
                      # its own channel: other test processes publish on this Redis too
                      "SOCKETIO_CHANNEL": f"test-languages-{uuid.uuid4().hex}",
                      "RATELIMIT_ENABLED": False, "PUBLIC_URL": "http://localhost",
                      **CHEAP_HASHING})
    bind(session, app.extensions[SCOPE])  # the test's session commits as this app's
    try:
        world.crew_a.locale = "fr"
        session.add(world.crew_a)
        session.commit()
        listener = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        listener.subscribe(socketio_channel(app.config))
        time.sleep(0.2)
        _notify(session, [world.owner_a, world.owner_b, world.crew_a, world.other_owner],
                "Counted")
        assert flush(app)
        heard = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            message = listener.get_message(timeout=0.1)
            if message is not None:
                heard.append(message["data"])
        listener.close()
        assert len(heard) == 2, heard
    finally:
        app.extensions["engine"].dispose()
