"""Database engine, sessions and the column types every domain shares.

SQLite is the embedded default and PostgreSQL the scaled one; the code paths
are the same.  SQLite needs foreign keys switched on and WAL journalling so
readers do not block the single writer; `BEGIN IMMEDIATE` makes a write
transaction take the write lock up front, which is how "check then insert"
stays race-free there (DESIGN rule 6).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and always hand back aware UTC values.

    SQLite has no time zone type and would return naive values; refusing naive
    input keeps "time is UTC in storage" (DESIGN rule 4) a checked fact.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; pass an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only clock views use)."""
    return datetime.now(UTC)


def make_engine(url: str, *, lock_on_begin: bool = True) -> Engine:
    """Create the engine for `url`, with SQLite tuned for one writer.

    `lock_on_begin=False` gives plain deferred transactions on SQLite: fine for
    a reader that must not hold the write lock (a test inspecting rows while
    the app writes), wrong for concurrent writers.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool,
        )
        _tune_sqlite(engine, lock_on_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _tune_sqlite(engine: Engine, lock_on_begin: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Every transaction takes the write lock at once: a later upgrade from
        # reader to writer is what makes SQLite fail with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE" if lock_on_begin else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite (a few rules differ there)."""
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for work outside a request (CLI, scheduler, tests)."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


#: The largest id a table can hold (PostgreSQL INTEGER); anything larger names nothing.
MAX_ID = 2**31 - 1
#: What an id too large for any table becomes in a URL: no row has it.
NO_SUCH_ID = 0


def parse_id(text: object) -> int | None:
    """An id typed or carried in a form or query ("42"), or None for anything that cannot
    be one (text, signs, digits of other scripts such as "²", numbers too large for a
    table).  Ids start at 1, so `parse_id(text) or -1` is an id that names nothing."""
    if not isinstance(text, str) or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ID else None
