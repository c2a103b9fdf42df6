"""Database engine, sessions and the column types every domain shares.

SQLite is the embedded default and PostgreSQL the scaled one; the code paths
are the same.  SQLite needs foreign keys switched on and WAL journalling so
readers do not block the single writer; `BEGIN IMMEDIATE` makes a write
transaction take the write lock up front, which is how "check then insert"
stays race-free there (DESIGN rule 6).

How SQLite's one writer is shared within a process (measured with
bench/booking_contention.py: 50 clients booking one machine had a p99 of
4.6 s and a maximum of 8.8 s, for a median of 0.17 s):

* Writers queue in Python, first come first served (`WriterQueue`), before
  `BEGIN IMMEDIATE`.  Left to SQLite, a writer that finds the lock taken
  sleeps in its busy handler (1, 2, 5 ... up to 100 ms at a time, in C, where
  under gevent no other greenlet runs), and whoever happens to retry when the
  lock is free wins: the long tails.  A waiter sleeps on a `threading` lock
  made when it starts waiting, so under gevent's monkey-patching waiting
  yields to the loop.  (Another process writing the same file still
  meets SQLite's busy handler; in the embedded default every writer, the
  scheduler included, lives in the one process.)
* A session opened on `reading(engine)` (the web request of a GET or HEAD)
  starts a plain deferred transaction: it neither queues nor holds the write
  lock, and in WAL it reads a consistent snapshot.  Should it write after
  all, it queues for the writer lock at its first write statement and SQLite
  upgrades it -- which succeeds exactly when nothing was committed since its
  snapshot, so what it read still holds.  Otherwise SQLite refuses
  (SQLITE_BUSY_SNAPSHOT) and the statement raises `ReadersWrite`, nothing
  written: the web layer then runs the request again as a writer
  (marketplace/web.py).
* Connections are pooled: opening one and running its pragmas cost about a
  millisecond, twice per request.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import QueuePool
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


#: The execution option that marks a connection as a reader (see `reading`).
READER_OPTION = "marketplace_reader"
#: How long a writer waits in the queue before giving up, as SQLite's busy timeout did.
WRITE_WAIT_S = 30.0
#: Idle SQLite connections kept open for reuse; more are opened when needed.
SQLITE_POOL_SIZE = 20
#: A PostgreSQL connection idle longer than this is pinged before it is used again.
PING_AFTER_IDLE_S = 5.0
_IDLE_SINCE = "marketplace_idle_since"  # connection info: when it went back to the pool
_HELD = "marketplace_writer_holds"  # connection info: how often it entered the queue
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class WriteWaitTimeout(RuntimeError):
    """A writer waited WRITE_WAIT_S for the others ahead of it (what SQLite reported as
    "database is locked")."""


class ReadersWrite(RuntimeError):
    """A reader's transaction tried to write after another transaction had committed
    since it began reading: nothing was written; run the work again as a writer."""


class WriterQueue:
    """A first-come-first-served lock, reentrant per thread (per greenlet under gevent).

    Each waiter sleeps on a lock of its own and the holder hands the queue to the
    oldest waiter when it leaves, so nobody is overtaken: a writer waits for the
    writers ahead of it, not for luck.  A waiter's lock is made with whatever
    `threading` is when it starts waiting, so under gevent's monkey-patching it
    yields to the loop instead of blocking the process (`_mutex` is only ever
    held for a few lines that do not wait).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[tuple[int, Any]] = deque()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self, timeout: float = WRITE_WAIT_S) -> None:
        """Wait for the writers ahead; raise WriteWaitTimeout after `timeout` s."""
        me = threading.get_ident()
        with self._mutex:
            if self._owner in (None, me):
                self._owner = me
                self._depth += 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append((me, turn))
        if turn.acquire(timeout=timeout):
            return  # `release` made us the owner before letting us go
        with self._mutex:
            if (me, turn) in self._waiters:
                self._waiters.remove((me, turn))
                raise WriteWaitTimeout(f"waited {timeout:.0f} s for the database's writers")
        turn.acquire()  # handed over just as the wait timed out: ours after all

    def release(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth > 0:
                return
            if self._waiters:
                self._owner, turn = self._waiters.popleft()
                self._depth = 1
                turn.release()
            else:
                self._owner = None


# Process-wide on purpose: SQLite's write lock belongs to the database file, not to an
# engine or an app, so every engine of this process on one file (two apps', the
# scheduler's, a command's) must queue in the same line.  Apps on different files get
# different queues, so they never wait for each other.
_queues: dict[str, WriterQueue] = {}
_queues_lock = threading.Lock()


def writer_queue(database: str) -> WriterQueue:
    """The one queue of this process's writers to a SQLite file, shared by every
    engine on it (the app's, the scheduler's, a CLI command's), so they queue behind
    each other rather than meet in SQLite's busy handler."""
    if database in ("", ":memory:"):
        return WriterQueue()  # a database of its own engine only
    key = os.path.realpath(database)
    with _queues_lock:
        if key not in _queues:
            _queues[key] = WriterQueue()
        return _queues[key]


def make_engine(url: str, *, lock_on_begin: bool = True) -> Engine:
    """Create the engine for `url`, with SQLite tuned for one writer.

    `lock_on_begin=False` gives plain deferred transactions on SQLite: fine for
    a reader that must not hold the write lock (a test inspecting rows while
    the app writes), wrong for concurrent writers.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": WRITE_WAIT_S},
            poolclass=QueuePool, pool_size=SQLITE_POOL_SIZE, max_overflow=-1,
        )
        _tune_sqlite(engine, lock_on_begin)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle PING_AFTER_IDLE_S.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip per
    request, under load about one in eight of a booking tap's.  A connection that
    served a request a moment ago is alive; one idle longer (the database restarted
    overnight, a firewall dropped it) is pinged, and a dead one is replaced before the
    request sees it (the pool retries the checkout on `DisconnectionError`).
    """

    def idle_since(_dbapi: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # just connected, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"pooled connection is gone: {error}") from error

    event.listen(engine.pool, "checkin", idle_since)
    event.listen(engine.pool, "checkout", ping)


def reading(engine: Engine) -> Engine:
    """`engine` for work that only reads (a GET request): on SQLite its transactions
    neither queue for nor take the write lock until they write (see the module's
    docstring).  The same engine and pool; on PostgreSQL nothing changes."""
    return engine.execution_options(**{READER_OPTION: True})


def _tune_sqlite(engine: Engine, lock_on_begin: bool) -> None:
    writers = writer_queue(engine.url.database or "")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(WRITE_WAIT_S * 1000)}")
        cursor.close()

    def enter(info: dict[str, Any]) -> None:
        writers.acquire()
        info[_HELD] = info.get(_HELD, 0) + 1

    def leave(info: dict[str, Any]) -> None:
        while info.get(_HELD):
            info[_HELD] -= 1
            writers.release()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes the write lock at once, after its turn in the queue: a later
        # upgrade from reader to writer is what makes SQLite fail with "database is
        # locked".  A reader (see `reading`) begins deferred.
        if not lock_on_begin or connection.get_execution_options().get(READER_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        enter(connection.connection.info)
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "before_cursor_execute")
    def _before_write(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # A reader about to write takes its turn first, so that no writer of this
        # process holds the lock when SQLite upgrades the reader's transaction.
        if lock_on_begin and connection.get_execution_options().get(READER_OPTION) \
                and not connection.connection.info.get(_HELD) \
                and statement.lstrip()[:7].upper().startswith(_WRITES):
            enter(connection.connection.info)

    @event.listens_for(engine, "handle_error")
    def _reader_upgrade_failed(context: Any) -> None:
        connection = context.connection
        if connection is not None and connection.get_execution_options().get(READER_OPTION) \
                and "locked" in str(context.original_exception) \
                and context.statement is not None \
                and context.statement.lstrip()[:7].upper().startswith(_WRITES):
            raise ReadersWrite("the data read changed before this write; nothing was "
                               "written") from context.original_exception

    def _finish_then_leave(connection: Any, finish: str) -> None:
        # Fired just before SQLAlchemy sends COMMIT/ROLLBACK (`finish`).  Finish the
        # transaction here and only then hand the lock on, so the next writer's BEGIN
        # IMMEDIATE does not meet a lock still being released (and SQLite's sleeping busy
        # handler); the driver's own COMMIT/ROLLBACK that follows finds no transaction
        # and does nothing.
        info = connection.connection.info
        if not info.get(_HELD):
            return
        try:
            dbapi_connection = connection.connection.dbapi_connection
            if dbapi_connection.in_transaction:
                getattr(dbapi_connection, finish)()
        finally:
            leave(info)

    event.listen(engine, "commit", lambda connection: _finish_then_leave(connection, "commit"))
    event.listen(engine, "rollback",
                 lambda connection: _finish_then_leave(connection, "rollback"))
    # Backstops: a connection that goes back to the pool, or is closed, mid-transaction.
    event.listen(engine.pool, "checkin",
                 lambda _dbapi, record: leave(record.info) if record is not None else None)
    event.listen(engine.pool, "close", lambda _dbapi, record: leave(record.info))
    event.listen(engine.pool, "invalidate",
                 lambda _dbapi, record, _exc: leave(record.info))


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite (a few rules differ there)."""
    return engine.dialect.name == "sqlite"


def on_postgresql(session: Session) -> bool:
    """True when the session talks to PostgreSQL: row locks, `unnest` and ON CONFLICT
    exist there and not on SQLite."""
    return session.get_bind().dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for work outside a request (CLI, scheduler, tests).  On an app's engine
    it acts with that app's collaborators (marketplace/scope.py)."""
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
