"""Fixtures: an app on a real database, and a small cluster world to act in.

SQLite by default (a fresh file per test).  When TEST_DATABASE_URL points at
PostgreSQL (CI), the schema is built once and every table is emptied between
tests.  With CI=true a missing PostgreSQL or Redis fails the run; it is never
skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis.connection import parse_url
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from marketplace import create_app
from marketplace.clusters import agreements, invites, service
from marketplace.clusters.models import Cluster, User
from marketplace.db import make_engine
from marketplace.models import import_all_models
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind

PASSWORD = "correct horse battery"
SECRET = "test-secret-key"
NOW = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
IN_CI = os.environ.get("CI") == "true"
# The suite's apps (and the servers it starts, which inherit this) write a post's
# notifications in the posting transaction, so a test can read them as soon as the
# request answered; tests/realtime/test_fanout.py runs them in the background, as
# production does (FANOUT_IN_BACKGROUND is on by default).
os.environ.setdefault("FANOUT_IN_BACKGROUND", "0")
# Under pytest-xdist each worker ("gw0", "gw1", ...) gets a PostgreSQL database and
# a Redis database of its own, so workers never empty each other's tables, take each
# other's scheduler lock or hear each other's Socket.IO channel.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def _worker_database(url: str | None) -> str | None:
    """`…/test` becomes `…/test_gw1` for worker gw1 (the database is created on first use)."""
    if not url or not WORKER:
        return url
    base = make_url(url)
    return base.set(database=f"{base.database}_{WORKER}").render_as_string(hide_password=False)


def redis_database(url: str, number: int) -> str:
    """The same Redis server, database `number` (a tcp or tls URL)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


def _worker_redis(url: str | None) -> str | None:
    """`redis://host/0` becomes `redis://host/2` for worker gw1: Redis database 1 + the
    worker's number (13 is the CI bench's; 14 and 15 are for tests of two deployments)."""
    if not url or not WORKER:
        return url
    number = (parse_url(url).get("db") or 0) + 1 + int(WORKER.removeprefix("gw"))
    if number >= 13:
        raise RuntimeError(f"too many test workers for one Redis server: {WORKER}")
    return redis_database(url, number)


PG_URL = _worker_database(os.environ.get("TEST_DATABASE_URL"))
REDIS_URL = _worker_redis(os.environ.get("TEST_REDIS_URL"))
# argon2 at its production cost makes every test user take ~0.1 s; the
# algorithm is the same, only cheaper.
CHEAP_HASHING = {"PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 1024}

import_all_models()


def pytest_report_header() -> str:
    return f"database: {PG_URL or 'SQLite (file per test)'}; redis: {REDIS_URL or 'none'}"


@pytest.fixture(scope="session")
def _pg_engine() -> Iterator[Engine | None]:
    if not PG_URL:
        yield None
        return
    if WORKER:
        _create_database(PG_URL)
    engine = make_engine(PG_URL)
    with engine.begin() as conn:  # fails loudly when PostgreSQL is unreachable
        conn.execute(text("SELECT 1"))
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    yield engine
    SQLModel.metadata.drop_all(engine)
    engine.dispose()


def _create_database(url: str) -> None:
    """Create this worker's PostgreSQL database unless it exists (fails loudly when the
    server is unreachable)."""
    name = make_url(url).database
    server = create_engine(os.environ["TEST_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": name}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        server.dispose()


@contextmanager
def empty_database(directory: Path, pg_engine: Engine | None) -> Iterator[str]:
    """A database with the full schema and no rows: a new SQLite file in `directory`,
    or the PostgreSQL test database, emptied again afterwards."""
    if pg_engine is None:
        url = f"sqlite:///{directory / 'test.db'}"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
        engine.dispose()
        yield url
        return
    try:
        yield PG_URL  # type: ignore[misc]
    finally:
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with pg_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def database_url(tmp_path: Path, _pg_engine: Engine | None) -> Iterator[str]:
    """A database with the full schema and no rows."""
    with empty_database(tmp_path, _pg_engine) as url:
        yield url


@pytest.fixture(scope="session")
def _empty_redis() -> None:
    """This run's Redis database starts empty: counters (rate limits) that an earlier run
    on the same server left behind must not decide this run's answers."""
    if REDIS_URL:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def redis_url(_empty_redis: None) -> str:
    """A reachable Redis, or a skip outside CI (a failure in CI)."""
    if REDIS_URL:
        return REDIS_URL
    if IN_CI:
        pytest.fail("TEST_REDIS_URL is not set in CI: Redis tests must run")
    pytest.skip("set TEST_REDIS_URL to run Redis tests")


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    flask_app = create_app({
        "UPLOAD_DIR": str(tmp_path / "uploads"), "MAIL_FOLDER": str(tmp_path / "mail"),
        "RATELIMIT_ENABLED": False,
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        **CHEAP_HASHING,
    })
    yield flask_app
    flask_app.extensions["engine"].dispose()


@pytest.fixture
def session(app: Flask, database_url: str) -> Iterator[Session]:
    """The test's own session.  On SQLite its transactions do not take the write
    lock up front, so a test that reads rows never blocks the app it is driving.
    It acts with the app's collaborators (publisher, gateway, hasher) as the app's
    own sessions do (marketplace/scope.py)."""
    with own_session(database_url) as s:
        bind(s, app.extensions[SCOPE])
        yield s


@contextmanager
def own_session(database_url: str) -> Iterator[Session]:
    """A session of the test's own (see the `session` fixture)."""
    engine = make_engine(database_url, lock_on_begin=False)
    try:
        with Session(engine, expire_on_commit=False) as s:
            yield s
    finally:
        engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class World:
    """Two clusters: ours (coordinator, members A and B, A's crew) and a rival one."""

    cluster: Cluster
    coordinator: User
    owner_a: User
    crew_a: User
    owner_b: User
    other_coordinator: User
    other_owner: User

    @property
    def member_a_id(self) -> int:
        assert self.owner_a.member_id is not None
        return self.owner_a.member_id

    @property
    def member_b_id(self) -> int:
        assert self.owner_b.member_id is not None
        return self.owner_b.member_id


def terms(**changes: object) -> agreements.AgreementTerms:
    """Valid agreement terms; override any field."""
    base = dict(
        purpose="Share overflow work fairly.", scope_overflow_jobs=True, scope_equipment=True,
        scope_joint_bids=True, referral_fee_bp=500, platform_fee_bp=100,
        sunset_on=date(2028, 1, 1), exit_notice_days=30,
        information_rules="No bid prices across the barrier.",
    )
    base.update(changes)
    return agreements.AgreementTerms(**base)  # type: ignore[arg-type]


#: The agreement editor's form, filled with valid terms (a proposal adds its reason and
#: voting days); override any field.
AGREEMENT_FORM = {
    "purpose": "Share overflow work, v2.",
    "scope_overflow_jobs": "y",
    "referral_fee_percent": "5",
    "platform_fee_percent": "1",
    "sunset_on": (date.today() + timedelta(days=300)).isoformat(),
    "exit_notice_days": "30",
    "information_rules": "No bid prices across the barrier.",
}


def make_cluster(session: Session, name: str, email: str) -> tuple[Cluster, User]:
    return service.create_cluster(
        session, service.ClusterSettings(name=name, currency="CAD", default_locale="en_CA",
                                         timezone="America/Toronto"),
        f"{name} coordinator", email, PASSWORD, NOW)


def invite_member(session: Session, coordinator: User, business: str, email: str) -> User:
    invite = invites.create_member_invite(session, coordinator, email, business, NOW, 7)
    return invites.accept_invite(session, SECRET, invites.invite_token(SECRET, invite),
                                 f"{business} owner", PASSWORD, NOW)


def invite_user(session: Session, owner: User, email: str, role: str = "crew") -> User:
    assert owner.member_id is not None
    invite = invites.create_user_invite(session, owner, owner.member_id, email, role, NOW, 7)
    return invites.accept_invite(session, SECRET, invites.invite_token(SECRET, invite),
                                 email.split("@")[0], PASSWORD, NOW)


@pytest.fixture
def world(session: Session) -> World:
    return make_world(session)


def make_world(session: Session) -> World:
    """Our cluster (coordinator, A with its crew, B; agreement accepted) and a rival one."""
    cluster, coordinator = make_cluster(session, "Valley", "coord@valley.test")
    agreement = agreements.publish_agreement(session, coordinator, terms(), NOW)
    owner_a = invite_member(session, coordinator, "Alpha Lawns", "a@alpha.test")
    owner_b = invite_member(session, coordinator, "Beta Stone", "b@beta.test")
    crew_a = invite_user(session, owner_a, "crew@alpha.test")
    for owner in (owner_a, owner_b):
        agreements.accept_agreement(session, owner, agreement.version, NOW)
    _other, other_coordinator = make_cluster(session, "Rival Hills", "coord@rival.test")
    agreements.publish_agreement(session, other_coordinator, terms(), NOW)
    other_owner = invite_member(session, other_coordinator, "Rival Yard", "r@rival.test")
    return World(cluster, coordinator, owner_a, crew_a, owner_b, other_coordinator, other_owner)


def login(client: FlaskClient, user: User) -> None:
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)


def sent_mails(app: Flask) -> list[EmailMessage]:
    """Run the mail worker once and read what it wrote to the app's MAIL_FOLDER (the
    embedded default's .eml files), oldest first."""
    from marketplace.db import session_scope, utcnow
    from marketplace.mail.runner import send_due_mails

    with app.app_context(), session_scope(app.extensions["engine"]) as work:
        send_due_mails(work, utcnow())
    folder = Path(app.config["MAIL_FOLDER"])
    return [message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
            for path in sorted(folder.glob("*.eml"))]


def later(days: int) -> datetime:
    return NOW + timedelta(days=days)
