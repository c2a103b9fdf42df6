"""Two apps in one process, with different settings, never act with each other's parts.

What an app configures -- the publisher its commits hand notifications to, the
payment gateway its scheduler's money sweep uses, the argon2 cost its
passwords are hashed at -- lives on the app (marketplace/scope.py) and reaches
exactly the sessions opened on that app's engine.  These tests build two apps
side by side (one online with Stripe keys and a cheap hash, one offline with a
dearer hash, each on its own database, in both creation orders) and act in
them interleaved: whichever was built last, each keeps its own.  Before, the
last `create_app` overwrote module-level variables and served every session.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import extract_parameters
from flask import Flask
from sqlalchemy.engine import Engine
from sqlmodel import Session

from marketplace import create_app, events
from marketplace.clusters.accounts import PASSWORDS, hash_password, hasher_of, make_hasher
from marketplace.clusters.models import User
from marketplace.db import make_engine, session_scope
from marketplace.errors import N_
from marketplace.extensions import socketio_of
from marketplace.ledger import sweeps
from marketplace.realtime.publisher import flush
from marketplace.scheduling.leader import Leadership
from marketplace.scheduling.runner import run_task
from marketplace.scheduling.tasks import TASKS
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import AppScope, bind, lending, scope_of
from marketplace.web import db as request_db
from tests.conftest import (
    CHEAP_HASHING,
    PASSWORD,
    REDIS_URL,
    SECRET,
    World,
    empty_database,
    invite_user,
    login,
    make_world,
    own_session,
)

MESSAGE = N_("New overflow job near %(locality)s: %(title)s")
NOW = datetime.fromisoformat("2026-06-01T15:00:00+00:00")
SWEEP = next(task for task in TASKS if task.run is sweeps.execute_installed_payouts)


@dataclass
class Deployment:
    """One app as a test sees it: the app, the Socket.IO server its publisher emits on
    (what it emitted is recorded there), and a small world in its own database."""

    name: str
    app: Flask
    server: Any
    world: World
    emitted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.extensions["engine"]
        return engine

    def notify(self, user: User, title: str) -> None:
        """What a service does: notify in a session of this app and commit."""
        with session_scope(self.engine) as session:
            recipient = session.get(User, user.id)
            assert recipient is not None
            events.notify(session, [recipient], "job.posted", MESSAGE, now=NOW,
                          params={"locality": self.name, "title": title})
            session.commit()

    def titles(self) -> list[str]:
        return [message["text"].rsplit(": ", 1)[1] for _kind, message in self.emitted]


#: (name, settings): an online app with Stripe keys and the tests' cheap argon2 (and,
#: when the run has Redis, Socket.IO through it on a channel of its own), and an
#: offline app without Stripe at a dearer cost.
ONLINE: tuple[str, dict[str, Any]] = ("online", {"STRIPE_SECRET_KEY": "sk_test_online_app",
                     "STRIPE_API_BASE": "http://127.0.0.1:9",
                     "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 1024})
OFFLINE: tuple[str, dict[str, Any]] = ("offline", {"STRIPE_SECRET_KEY": None,
                       "PASSWORD_HASH_TIME_COST": 2, "PASSWORD_HASH_MEMORY_KIB": 2048})


def _build(name: str, settings: dict[str, Any], database_url: str, directory: Path,
           redis: bool) -> Deployment:
    directory.mkdir(parents=True, exist_ok=True)
    app = create_app({
        "UPLOAD_DIR": str(directory / "uploads"), "MAIL_FOLDER": str(directory / "mail"),
        "RATELIMIT_ENABLED": False, "TESTING": True, "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False, "PUBLIC_URL": "http://localhost",
        "REDIS_URL": REDIS_URL if redis else None,
        "SOCKETIO_CHANNEL": f"app-scoped-{name}-{secrets.token_hex(4)}",
        **CHEAP_HASHING, **settings,
    })
    server = socketio_of(app).server  # type: ignore[attr-defined]  # init_app sets it: this app's
    with session_scope(app.extensions["engine"]) as session:
        world = make_world(session)
    return Deployment(name, app, server, world)


@pytest.fixture(params=["online first", "offline first"])
def pair(request: pytest.FixtureRequest, database_url: str, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Deployment, Deployment]]:
    """(online, offline), built in the order of the parameter; the online one on the run's
    database (PostgreSQL in CI), the offline one on a SQLite file of its own."""
    (tmp_path / "offline").mkdir()
    with empty_database(tmp_path / "offline", None) as offline_url:
        urls = {"online": database_url, "offline": offline_url}
        order = [ONLINE, OFFLINE] if request.param == "online first" else [OFFLINE, ONLINE]
        built = {name: _build(name, settings, urls[name], tmp_path / name,
                              redis=name == "online" and REDIS_URL is not None)
                 for name, settings in order}
        for deployment in built.values():
            def record(kind: str, message: dict[str, Any], *_args: Any,
                       _into: Deployment = deployment, **_kwargs: Any) -> None:
                _into.emitted.append((kind, message))
            monkeypatch.setattr(deployment.server, "emit", record)
        try:
            yield built["online"], built["offline"]
        finally:
            for deployment in built.values():
                flush(deployment.app)
                deployment.engine.dispose()


def test_each_apps_commits_publish_through_its_own_publisher(
        pair: tuple[Deployment, Deployment]) -> None:
    """Commits in the two apps' sessions, interleaved in both directions: each app's
    publisher emits exactly its own app's notifications, on its own server."""
    online, offline = pair
    online.notify(online.world.owner_a, "online 1")
    offline.notify(offline.world.owner_b, "offline 1")
    offline.notify(offline.world.owner_a, "offline 2")
    online.notify(online.world.owner_b, "online 2")
    online.notify(online.world.crew_a, "online 3")
    offline.notify(offline.world.crew_a, "offline 3")
    assert flush(online.app) and flush(offline.app)
    assert online.titles() == ["online 1", "online 2", "online 3"]
    assert offline.titles() == ["offline 1", "offline 2", "offline 3"]


def test_a_request_of_each_app_publishes_through_that_app(
        pair: tuple[Deployment, Deployment]) -> None:
    """A session a request opens (web.db) is the app's too: what it commits is handed,
    when the request ends, to the publisher of the app that served it."""
    for deployment, other in (pair, pair[::-1]):
        with deployment.app.test_request_context("/", method="POST"):
            session = request_db()
            recipient = session.get(User, deployment.world.owner_b.id)
            events.notify(session, [recipient], "job.posted", MESSAGE, now=NOW,  # type: ignore[list-item]
                          params={"locality": deployment.name, "title": "by request"})
            session.commit()
            assert scope_of(session) is deployment.app.extensions[SCOPE]
            assert scope_of(session) is not other.app.extensions[SCOPE]
        assert flush(deployment.app)
        assert deployment.titles()[-1:] == ["by request"]
    assert [d.titles() for d in pair] == [["by request"], ["by request"]]


def _cost(password_hash: str) -> tuple[int, int]:
    parameters = extract_parameters(password_hash)
    return parameters.time_cost, parameters.memory_cost


def _hash_of(deployment: Deployment, user: User) -> str:
    with session_scope(deployment.engine) as session:
        row = session.get(User, user.id)
        assert row is not None
        return row.password_hash


def test_each_app_hashes_passwords_at_its_own_cost(pair: tuple[Deployment, Deployment],
                                                    ) -> None:
    """Accounts made in either app's sessions, interleaved, carry that app's argon2 cost;
    a login through either app verifies and rehashes at that app's cost."""
    online, offline = pair
    assert {_cost(_hash_of(online, u)) for u in (online.world.coordinator,
                                                  online.world.owner_a)} == {(1, 1024)}
    assert {_cost(_hash_of(offline, u)) for u in (offline.world.coordinator,
                                                   offline.world.owner_a)} == {(2, 2048)}
    made: dict[str, User] = {}
    for deployment in (offline, online, offline):
        with session_scope(deployment.engine) as session:
            made[deployment.name] = invite_user(session, deployment.world.owner_a,
                                                f"late-{len(made)}@alpha.test")
    assert _cost(_hash_of(online, made["online"])) == (1, 1024)
    assert _cost(_hash_of(offline, made["offline"])) == (2, 2048)

    # A hash made at the other app's cost is redone at the app's own on the next login.
    for deployment, foreign in ((offline, make_hasher(1, 1024)), (online, make_hasher(2, 2048))):
        with session_scope(deployment.engine) as session:
            user = session.get(User, deployment.world.owner_b.id)
            assert user is not None
            user.password_hash = hash_password(PASSWORD, foreign)
            session.commit()
    login(offline.app.test_client(), offline.world.owner_b)
    login(online.app.test_client(), online.world.owner_b)
    assert _cost(_hash_of(offline, offline.world.owner_b)) == (2, 2048)
    assert _cost(_hash_of(online, online.world.owner_b)) == (1, 1024)


def test_each_apps_scheduler_sweeps_money_with_its_own_gateway(
        pair: tuple[Deployment, Deployment], monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler's money sweep of the online app pays out through that app's Stripe
    gateway, and the offline app's sweep stays offline, whichever app was built last
    (before, the last app's `install_gateway` decided for both)."""
    online, offline = pair
    gateway = online.app.extensions[SCOPE].get(sweeps.GATEWAY)
    assert gateway is not None and offline.app.extensions[SCOPE].get(sweeps.GATEWAY) is None
    used: list[tuple[str, object]] = []

    def payouts(session: Session, gateway: object, now: datetime) -> int:
        used.append((session.get_bind().engine.url.render_as_string(), gateway))
        return 0

    monkeypatch.setattr(sweeps, "execute_due_payouts", payouts)
    leaders = {deployment.name: _leader(deployment) for deployment in pair}
    try:
        for deployment in (offline, online, offline, online):
            run_task(deployment.app, SWEEP, leaders[deployment.name])
    finally:
        for leadership in leaders.values():
            leadership.release()
    online_url = online.engine.url.render_as_string()
    assert used == [(online_url, gateway), (online_url, gateway)]


def _leader(deployment: Deployment) -> Leadership:
    leadership = Leadership(deployment.engine)
    assert leadership.tick()
    return leadership


def test_every_way_an_app_opens_a_session_finds_that_apps_parts(
        pair: tuple[Deployment, Deployment]) -> None:
    """A request that reads, one that writes, the scheduler's and a command's session:
    all act with their app's scope; a session no app opened acts with none."""
    for deployment, other in (pair, pair[::-1]):
        scope: AppScope = deployment.app.extensions[SCOPE]
        assert scope is not other.app.extensions[SCOPE]
        for method in ("GET", "POST"):
            with deployment.app.test_request_context("/", method=method):
                assert scope_of(request_db()) is scope
        with session_scope(deployment.engine) as session:
            assert scope_of(session) is scope
            assert hasher_of(session) is scope.get(PASSWORDS)
    stray = make_engine(pair[0].app.config["DATABASE_URL"], lock_on_begin=False)
    try:
        with Session(stray) as session:
            assert scope_of(session) is None and events.PUBLISHER.of(session) is None
            assert sweeps.GATEWAY.of(session) is None
    finally:
        stray.dispose()


def test_a_session_can_be_lent_one_part_for_a_while(pair: tuple[Deployment, Deployment],
                                                   database_url: str) -> None:
    """What tests do: a session of their own acts with an app's scope, and a part of it
    can be swapped for a block (the rest stays the app's); nothing else changes."""
    online, _offline = pair
    scope = online.app.extensions[SCOPE]
    published: list[events.Batch] = []
    with own_session(database_url) as session:
        assert scope_of(session) is None
        bind(session, scope)
        with lending(session, events.PUBLISHER, published.append):
            assert hasher_of(session) is scope.get(PASSWORDS)
            recipient = session.get(User, online.world.owner_a.id)
            events.notify(session, [recipient], "job.posted", MESSAGE, now=NOW,  # type: ignore[list-item]
                          params={"locality": "lent", "title": "lent"})
            session.commit()
        assert scope_of(session) is scope and len(published) == 1
    assert flush(online.app) and online.titles() == []
    assert AppScope().with_(events.PUBLISHER, published.append).get(sweeps.GATEWAY) is None


def test_building_apps_one_after_another_keeps_each_working(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the suite does (an app per test): the newest app works as before, and an older
    one still publishes through its own publisher, not the newest's."""
    first = _build("first", {}, database_url, tmp_path / "first", redis=False)
    later = [create_app({"DATABASE_URL": f"sqlite:///{tmp_path / f'later{n}.db'}",
                         "TESTING": True, "REDIS_URL": None, "SECRET_KEY": SECRET,
                         "MAIL_FOLDER": str(tmp_path / "mail"), **CHEAP_HASHING})
             for n in range(3)]
    monkeypatch.setattr(first.server, "emit",
                        lambda kind, message, *a, **k: first.emitted.append((kind, message)))
    newest = socketio_of(later[-1]).server  # type: ignore[attr-defined]  # the last app's own
    monkeypatch.setattr(newest, "emit", lambda *a, **k: pytest.fail("the newest app emitted"))
    first.notify(first.world.owner_a, "still mine")
    assert flush(first.app) and first.titles() == ["still mine"]
    for app in later:
        assert flush(app)
        app.extensions["engine"].dispose()
    first.engine.dispose()
