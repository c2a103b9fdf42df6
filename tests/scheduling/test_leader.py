"""One scheduler leads; a standby takes over when it dies, even by SIGKILL; /healthz
says who leads.  The failover test runs real `flask scheduler` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from marketplace.db import is_sqlite, make_engine, utcnow
from marketplace.jobs import bidding, service
from marketplace.jobs.models import JobMode, JobStatus, OverflowJob
from marketplace.realtime.models import Notification
from marketplace.scheduling.leader import LEASE_SECONDS, Leadership, current_leader
from marketplace.scheduling.models import SchedulerLease
from tests.conftest import REDIS_URL, SECRET, World
from tests.jobs.conftest import give_profile, job_draft

ROOT = Path(__file__).resolve().parents[2]


def _engine(app: Flask) -> Engine:
    return app.extensions["engine"]  # type: ignore[no-any-return]


def test_one_leader_at_a_time_and_a_takeover_when_it_stops(app: Flask) -> None:
    engine = _engine(app)
    now = utcnow()
    first, second = Leadership(engine, "first"), Leadership(engine, "second")
    assert first.tick(now) and not second.tick(now)
    assert first.tick(now + timedelta(seconds=5))  # renews
    assert not second.tick(now + timedelta(seconds=LEASE_SECONDS))  # lease still fresh
    first._drop_database_lock()  # the leader dies: its connection (and lock) go away
    later = now + timedelta(seconds=5 + LEASE_SECONDS + 1)  # and it stops renewing
    assert _takes_over(second, later, engine)
    with Session(engine) as session:
        assert current_leader(session, later).holder == "second"  # type: ignore[union-attr]
    assert not first.tick(later)  # the old leader, back, must stand by
    second.release()
    with Session(engine) as session:
        assert current_leader(session, later) is None  # a clean stop hands over at once


def _takes_over(standby: Leadership, now: datetime, engine: Engine) -> bool:
    """The standby asks again, as its scheduler does every TICK_SECONDS, for up to 5 s.

    PostgreSQL ends a closed connection's backend, and drops its advisory lock, a
    moment after the client hangs up, not at once; on a loaded machine the first
    ask can come before that.  A lock still held after 5 s is a real leak: the
    failure names the process holding it."""
    deadline = time.monotonic() + 5
    while not standby.tick(now):
        if time.monotonic() > deadline:
            raise AssertionError(f"the lock is still held: {_advisory_holders(engine)}")
        time.sleep(0.1)
    return True


def _advisory_holders(engine: Engine) -> list[tuple[object, ...]]:
    """Who holds advisory locks on PostgreSQL (pid, application, state, last query)."""
    if is_sqlite(engine):
        return []
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT a.pid, a.application_name, a.state, left(a.query, 80) FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory'"))]


def test_healthz_reports_database_redis_and_leader(app: Flask, client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 503  # no scheduler has ever led
    body = response.get_json()
    assert body["database"]["ok"] and body["redis"] == {"ok": True, "configured": False}
    assert body["scheduler"] == {"ok": False, "leader": None}
    leader = Leadership(_engine(app), "scheduler-1")
    assert leader.tick()
    body = client.get("/healthz").get_json()
    assert body["ok"] and body["scheduler"]["leader"] == "scheduler-1"
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/healthz")
    assert response.status_code == 503 and not response.get_json()["redis"]["ok"]
    leader.release()


def _bid_window(session: Session, world: World, closes_in: timedelta, title: str) -> int:
    """A bid window with one bid, closing `closes_in` from now (negative: overdue)."""
    posted_at = utcnow() + closes_in - timedelta(minutes=15)
    job = service.post_job(session, world.owner_a, job_draft(
        title=title, mode=JobMode.BID_WINDOW.value, closes_at=posted_at + timedelta(minutes=15),
        starts_on=posted_at.date(), ends_on=posted_at.date() + timedelta(days=1)), posted_at)
    bidding.place_bid(session, world.owner_b, job.id, bidding.BidTerms(  # type: ignore[arg-type]
        900_00, 3, posted_at.date()), posted_at)
    assert job.id is not None
    return job.id


def _scheduler_process(database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
           "REDIS_URL": REDIS_URL or "redis://127.0.0.1:1/0",
           "LOG_LEVEL": "WARNING"}  # a scheduler process needs a message queue, even one down
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "scheduler"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _wait(condition: object, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_standby_scheduler_takes_over_when_the_leader_is_killed(
        app: Flask, session: Session, world: World, database_url: str) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    overdue = _bid_window(session, world, timedelta(minutes=-5), "Overdue window")
    takeover = LEASE_SECONDS if is_sqlite(_engine(app)) else 5
    upcoming = _bid_window(session, world, timedelta(seconds=takeover + 8), "Later window")
    session.commit()
    reader = make_engine(database_url, lock_on_begin=False)
    processes = [_scheduler_process(database_url) for _ in range(2)]

    def status(job_id: int) -> str:
        with Session(reader) as s:
            return s.get(OverflowJob, job_id).status  # type: ignore[union-attr]

    def leader_pid() -> int | None:
        with Session(reader) as s:
            lease = s.exec(select(SchedulerLease)).first()
        return int(lease.holder.split(":")[1]) if lease else None

    try:
        _wait(lambda: status(overdue) == JobStatus.WINDOW_CLOSED, 30)
        pid = leader_pid()
        assert pid in {p.pid for p in processes}
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        _wait(lambda: status(upcoming) == JobStatus.WINDOW_CLOSED, takeover + 30)
        assert leader_pid() not in (None, pid)
        time.sleep(3)  # further sweeps by the new leader change nothing
        with Session(reader) as s:
            closed = s.exec(select(Notification).where(
                Notification.kind == "window.closed")).all()
        # each window told its poster's people (owner, crew) and its bidder once
        expected = sorted([world.owner_a.id, world.crew_a.id, world.owner_b.id] * 2)
        assert sorted(n.user_id for n in closed) == expected
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        reader.dispose()
