"""The delivery cursor cannot skip: posters commit at once, phones keep reconnecting.

Several members post jobs at the same moment from threads of their own (real
concurrent transactions; on PostgreSQL their commits interleave in any order),
while every partner's phone connects, listens a little, drops off and
reconnects with the cursor it holds -- as a crew lead's phone does in and out
of coverage.  Afterwards each phone must have processed every notification
committed for its person exactly once: none skipped by the cursor, none
counted twice although replay and live emits overlap.

Commits are slowed on purpose right after the sequence numbers are taken, so
transactions stay open while others commit: with cursors built from row ids
(the old design), a row whose id is lower than one a phone already saw commits
after it and is never replayed.  The phone's bookkeeping below is the same as
static/js/live.js (tests.live.Cursor): a watermark over the person's gap-free
sequence, sets of ids and batch keys to drop repeats, and the keys of shared
live messages (which carry no number) until a reconnect's sync numbers them.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import socketio
from flask import Flask
from sqlalchemy import event
from sqlmodel import Session, select

from marketplace import events
from marketplace.clusters.models import User
from marketplace.jobs import service
from marketplace.realtime.models import Notification
from marketplace.realtime.wire import batch_key
from tests.conftest import NOW, PASSWORD, World
from tests.jobs.conftest import ENDS_ON, STARTS_ON, add_partner, give_profile, job_draft
from tests.live import Cursor, live_server, logged_in_cookie

POSTS_EACH = 10


class Phone:
    """One person's phone: reconnects in a loop with its cursor, processes each
    notification once (the rules of static/js/live.js, in `tests.live.Cursor`)."""

    def __init__(self, user_id: int, cookie: str, bases: list[str], cursor: int) -> None:
        self.user_id, self.cookie, self.bases = user_id, cookie, bases
        self.page = Cursor(cursor)
        self.connections = 0
        self._lock = threading.Lock()

    @property
    def cursor(self) -> int:
        return self.page.cursor

    @property
    def processed(self) -> list[str]:
        """The batch key of every notification the phone showed, in order."""
        return self.page.shown_keys

    def _on_any(self, kind: str, message: dict[str, Any]) -> None:
        with self._lock:
            self.page.receive(kind, message)

    def session(self, seconds: float) -> None:
        """Connect (to the next instance in turn) with the cursor held, listen, then lose
        coverage: whatever is still in flight to this connection is lost with it."""
        online = threading.Event()
        online.set()
        client = socketio.Client(reconnection=False)
        client.on("*", lambda kind, message: online.is_set() and self._on_any(kind, message))
        base = self.bases[self.connections % len(self.bases)]
        self.connections += 1
        with self._lock:
            auth = self.page.auth()
        client.connect(base, headers={"Cookie": self.cookie}, transports=["websocket"],
                       auth=auth, wait_timeout=10)
        time.sleep(seconds)
        online.clear()
        # the client library's clean close can take seconds; a phone just goes quiet
        threading.Thread(target=client.disconnect, daemon=True).start()

    def keep_reconnecting(self, until: threading.Event, rng: random.Random) -> None:
        while not until.is_set():
            self.session(rng.uniform(0.02, 0.12))

    def drain(self, committed: int, timeout: float = 20) -> None:
        """Reconnect until the phone holds everything committed (its final cursor)."""
        deadline = time.monotonic() + timeout
        while ((self.cursor < committed or self.page.unnumbered)
               and time.monotonic() < deadline):
            self.session(0.5)


@contextmanager
def slow_commits() -> Iterator[None]:
    """Hold every transaction open a little after its notifications are numbered."""
    rng = random.Random(7)

    def pause(session: Session) -> None:
        if session.info.get("slow_commit"):
            time.sleep(rng.uniform(0, 0.03))

    event.listen(Session, "before_commit", pause)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", pause)


def _partners(session: Session, world: World) -> list[User]:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    owners = [world.owner_a, world.owner_b]
    for letter in "cde":
        owners.append(add_partner(session, world, f"Partner {letter.upper()}",
                                  f"{letter}@partners.test"))
    session.commit()
    return owners


def _committed(session: Session, user_id: int) -> list[str]:
    """The batch key of every notification committed for the person (each job's
    is its own: the titles differ)."""
    session.rollback()
    return sorted(batch_key(n.kind, n.link, n.payload, n.created_at) for n in session.exec(
        select(Notification).where(Notification.user_id == user_id)))


def _check(session: Session, phones: list[Phone]) -> None:
    assert any(phone.page.shared for phone in phones)  # shared live messages were numbered
    for phone in phones:
        expected = _committed(session, phone.user_id)
        phone.drain(events.cursor_of(session, phone.user_id))
        assert len(expected) >= POSTS_EACH  # the storm reached this person
        assert sorted(phone.processed) == expected, (
            f"user {phone.user_id}: missing {sorted(set(expected) - set(phone.processed))}, "
            f"extra {sorted(set(phone.processed) - set(expected))}")
        assert phone.cursor == len(expected) and not phone.page.ahead
        assert not phone.page.unnumbered
        assert phone.connections > 2  # it really did drop off and come back


def _storm(posters: list[Callable[[int], None]], phones: list[Phone]) -> None:
    """Every poster posts POSTS_EACH jobs at once while every phone reconnects."""
    done = threading.Event()
    rng = random.Random(11)
    listeners = [threading.Thread(target=phone.keep_reconnecting,
                                  args=(done, random.Random(rng.random())), daemon=True)
                 for phone in phones]
    def post_all(post: Callable[[int], None], pace: random.Random) -> None:
        for number in range(POSTS_EACH):
            post(number)
            time.sleep(pace.uniform(0, 0.4))  # members post now and then, not in one burst

    workers = [threading.Thread(target=post_all, args=(post, random.Random(rng.random())))
               for post in posters]
    for thread in listeners + workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    time.sleep(0.3)
    done.set()
    for thread in listeners:
        thread.join(timeout=30)


def test_concurrent_posts_reach_every_reconnecting_phone_exactly_once(
        app: Flask, session: Session, world: World) -> None:
    owners = _partners(session, world)
    engine = app.extensions["engine"]

    def poster(owner: User) -> Callable[[int], None]:
        def post(number: int) -> None:
            with Session(engine, expire_on_commit=False) as own:
                own.info["slow_commit"] = True
                service.post_job(own, own.get(User, owner.id),  # type: ignore[arg-type]
                                 job_draft(title=f"Job {owner.id}-{number}"),
                                 NOW)
        return post

    with live_server(app) as base, slow_commits():
        phones = [Phone(o.id, logged_in_cookie(base, o.email, PASSWORD), [base],  # type: ignore[arg-type]
                        events.cursor_of(session, o.id))  # type: ignore[arg-type]
                  for o in owners]
        _storm([poster(o) for o in owners], phones)
        _check(session, phones)



@pytest.mark.redis
def test_two_instances_with_redis_lose_and_double_nothing(
        session: Session, world: World, database_url: str, redis_url: str,
        tmp_path: Path) -> None:
    """The same storm through two real app processes sharing the database and Redis:
    posts go to either instance over HTTP, phones reconnect to each in turn."""
    from tests.realtime.test_two_instances import _browser_login, _csrf, app_instance

    owners = _partners(session, world)
    with app_instance(database_url, redis_url) as first, \
            app_instance(database_url, redis_url) as second:
        bases = [first, second]
        phones = []
        for index, owner in enumerate(owners):
            http = _browser_login(bases[index % 2], owner.email)
            cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
            phones.append(Phone(owner.id, cookie, bases[index % 2:] + bases[:index % 2],  # type: ignore[arg-type]
                                events.cursor_of(session, owner.id)))  # type: ignore[arg-type]

        def poster(owner: User, base: str) -> Callable[[int], None]:
            http = _browser_login(base, owner.email)

            def post(number: int) -> None:
                token = _csrf(http.get(f"{base}/jobs/new", timeout=10).text)
                answer = http.post(f"{base}/jobs/new", timeout=20, allow_redirects=False, data={
                    "csrf_token": token, "title": f"Job {owner.id}-{number}",
                    "description": "", "trades": "mowing", "locality": "Annex, Toronto",
                    "site_lat": "43.6532", "site_lng": "-79.3832", "address": "1 Spadina Rd",
                    "customer_name": "P. Singh", "customer_contact": "", "crew_days": "3",
                    "starts_on": STARTS_ON.isoformat(), "ends_on": ENDS_ON.isoformat(),
                    "value": "4200.00", "mode": "handoff"})
                assert answer.status_code == 302, answer.text[:500]
            return post

        _storm([poster(o, bases[i % 2]) for i, o in enumerate(owners)], phones)
        _check(session, phones)
