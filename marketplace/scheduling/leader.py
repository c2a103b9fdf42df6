"""One scheduler leader per deployment, settled by the database.

Several scheduler processes may run (a hot standby, or an app restarted
while the old one is still shutting down); only the leader runs tasks.

- PostgreSQL: a session-level advisory lock held on a connection of its own.
  When the leader dies, even by SIGKILL, the server drops its connection and
  with it the lock; a standby asking every few seconds takes over at once.
- SQLite: a lease row that the leader renews every few seconds; a standby
  takes over when the lease has not been renewed for LEASE_SECONDS.

Either way the lease row names the current leader and when it last renewed,
which `/healthz` reports.  Tasks stay safe to run twice regardless (each
service uses conditional updates), so a short overlap during a takeover
cannot double anything; the lock keeps the work in one place.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, true
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, select, update

from marketplace.db import is_sqlite, utcnow
from marketplace.scheduling.models import SchedulerLease

log = logging.getLogger(__name__)
LEASE_NAME = "scheduler"
LEASE_SECONDS = 20
TICK_SECONDS = 5
ADVISORY_KEY = 0x5C4ED01E  # any constant shared by every scheduler of this app


def this_process() -> str:
    """How a leader is named in the lease row: host, process id and a random tag
    (two schedulers in one process, as in tests, are still two candidates)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Leadership:
    """Whether this process leads; `tick()` every TICK_SECONDS keeps it current."""

    def __init__(self, engine: Engine, holder: str | None = None) -> None:
        self.engine = engine
        self.holder = holder or this_process()
        self.is_leader = False
        self._lock_connection: Connection | None = None

    def tick(self, now: datetime | None = None) -> bool:
        """Renew the lead, or try to take it; returns whether this process leads now."""
        now = now or utcnow()
        try:
            if not self._hold_database_lock():
                self.is_leader = False
                return False
            self.is_leader = self._write_lease(now)
        except DBAPIError:
            log.exception("scheduler leadership check failed; standing by")
            self._drop_database_lock()
            self.is_leader = False
        return self.is_leader

    def release(self) -> None:
        """Step down (on a clean shutdown), so a standby need not wait for the lease."""
        if self.is_leader:
            with Session(self.engine) as session:
                session.execute(update(SchedulerLease).where(
                    col(SchedulerLease.name) == LEASE_NAME,
                    col(SchedulerLease.holder) == self.holder)
                    .values(renewed_at=datetime(1970, 1, 1, tzinfo=UTC)))
                session.commit()
        self._drop_database_lock()
        self.is_leader = False

    def _hold_database_lock(self) -> bool:
        """PostgreSQL: hold the advisory lock on our own connection (SQLite: nothing)."""
        if is_sqlite(self.engine):
            return True
        if self._lock_connection is not None:
            self._lock_connection.execute(text("SELECT 1"))  # raises if the server dropped us
            return True
        connection = self.engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                 {"key": ADVISORY_KEY}).scalar()
        connection.commit()
        if got:
            self._lock_connection = connection
            return True
        connection.close()  # holds no lock: fine to return to the pool
        return False

    def _drop_database_lock(self) -> None:
        """Close the lock's connection for real: back in the pool it would keep the lock."""
        if self._lock_connection is not None:
            try:
                self._lock_connection.invalidate()
                self._lock_connection.close()
            except DBAPIError:
                pass
            self._lock_connection = None

    def _write_lease(self, now: datetime) -> bool:
        """Take or renew the lease row; True when it names this process afterwards."""
        stale = now - timedelta(seconds=LEASE_SECONDS)
        ours_or_stale = (col(SchedulerLease.holder) == self.holder) | (
            col(SchedulerLease.renewed_at) < stale)
        with Session(self.engine) as session:
            # Holding PostgreSQL's advisory lock makes us the leader: a lease naming
            # someone else is left over from a process that died.
            renewed = session.exec(update(SchedulerLease).where(
                col(SchedulerLease.name) == LEASE_NAME,
                true() if self._lock_connection is not None else ours_or_stale)
                .values(holder=self.holder, renewed_at=now))
            if renewed.rowcount == 1:
                session.commit()
                return True
            session.add(SchedulerLease(name=LEASE_NAME, holder=self.holder, renewed_at=now))
            try:
                session.commit()
            except IntegrityError:  # someone else holds a fresh lease
                session.rollback()
                return False
            return True


def current_leader(session: Session, now: datetime | None = None) -> SchedulerLease | None:
    """The leader named by a lease renewed within LEASE_SECONDS, if any."""
    now = now or utcnow()
    lease = session.exec(select(SchedulerLease).where(SchedulerLease.name == LEASE_NAME)).first()
    if lease is None or lease.renewed_at < now - timedelta(seconds=LEASE_SECONDS):
        return None
    return lease
