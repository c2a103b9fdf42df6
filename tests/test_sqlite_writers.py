"""SQLite's one writer, shared fairly: writers queue in order, readers do not queue,
and a reader that writes is upgraded or run again -- with real threads and a real file.

(marketplace/db.py says why: SQLite's own busy handler gave 50 booking clients
multi-second tails.)  On PostgreSQL none of this applies and the tests skip.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, request
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from marketplace.db import (
    ReadersWrite,
    WriterQueue,
    WriteWaitTimeout,
    is_sqlite,
    make_engine,
    reading,
    writer_queue,
)
from marketplace.errors import N_, Conflict
from marketplace.web import db
from tests.conftest import World, login

WAIT_S = 10.0  # generous: far above any correct wait, far below a stuck busy handler


def _wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.005)


# ------------------------------------------------------------------ the queue


def test_writers_get_their_turn_in_the_order_they_came() -> None:
    queue = WriterQueue()
    queue.acquire()
    order: list[int] = []
    threads = []
    for number in range(8):
        thread = threading.Thread(target=lambda n=number: (queue.acquire(), order.append(n),
                                                           queue.release()))
        thread.start()
        threads.append(thread)
        _wait_until(lambda n=number: len(queue._waiters) == n + 1, f"writer {number} queues")
    queue.release()
    for thread in threads:
        thread.join(WAIT_S)
    assert order == list(range(8))
    assert queue._owner is None and not queue._waiters


def test_a_writer_may_enter_again_and_leaves_when_it_left_as_often() -> None:
    queue = WriterQueue()
    queue.acquire()
    queue.acquire()  # the same thread: a second session inside a transaction
    queue.release()
    entered = threading.Event()
    other = threading.Thread(target=lambda: (queue.acquire(), entered.set(), queue.release()))
    other.start()
    assert not entered.wait(0.2)  # still held once
    queue.release()
    assert entered.wait(WAIT_S)
    other.join(WAIT_S)


def test_a_writer_gives_up_after_its_wait_and_leaves_the_queue_as_it_was() -> None:
    queue = WriterQueue()
    queue.acquire()
    failed: list[BaseException] = []

    def impatient() -> None:
        try:
            queue.acquire(timeout=0.05)
        except WriteWaitTimeout as error:
            failed.append(error)

    thread = threading.Thread(target=impatient)
    thread.start()
    thread.join(WAIT_S)
    assert len(failed) == 1 and not queue._waiters
    queue.release()
    queue.acquire(timeout=0.05)  # free again
    queue.release()


def test_engines_on_one_file_share_one_queue(tmp_path: Path) -> None:
    assert writer_queue(str(tmp_path / "a.db")) is writer_queue(str(tmp_path / "." / "a.db"))
    assert writer_queue(str(tmp_path / "a.db")) is not writer_queue(str(tmp_path / "b.db"))


# ------------------------------------------------------- engines on one file


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    made = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with made.begin() as connection:
        connection.execute(text("CREATE TABLE probe (n INTEGER NOT NULL)"))
    yield made
    made.dispose()


def _numbers(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return sorted(session.execute(text("SELECT n FROM probe")).scalars())


def _insert(engine: Engine, number: int) -> None:
    with Session(engine) as session:
        session.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": number})
        session.commit()


def test_a_reader_does_not_wait_for_a_writer_holding_the_lock(engine: Engine) -> None:
    writing = threading.Event()
    done = threading.Event()

    def slow_writer() -> None:
        with Session(engine) as session:
            session.execute(text("INSERT INTO probe (n) VALUES (1)"))
            writing.set()
            done.wait(WAIT_S)
            session.commit()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert writing.wait(WAIT_S)
    started = time.monotonic()
    with Session(reading(engine)) as reader:  # the old BEGIN IMMEDIATE waited here
        assert reader.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0
    assert time.monotonic() - started < 1.0
    done.set()
    writer.join(WAIT_S)
    assert _numbers(engine) == [1]


def test_a_reader_that_writes_is_upgraded_when_nothing_changed_since_it_read(
        engine: Engine) -> None:
    with Session(reading(engine)) as reader:
        count = reader.execute(text("SELECT count(*) FROM probe")).scalar_one()
        reader.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": count + 10})
        reader.commit()
    assert _numbers(engine) == [10]
    assert writer_queue(engine.url.database or "")._owner is None  # the turn was given back


def test_a_reader_that_writes_after_another_commit_writes_nothing_and_says_so(
        engine: Engine) -> None:
    with Session(reading(engine)) as reader:
        assert reader.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0
        other = threading.Thread(target=_insert, args=(engine, 1))  # a real writer, meanwhile
        other.start()
        other.join(WAIT_S)
        with pytest.raises(ReadersWrite):  # what it read (0 rows) is no longer true
            reader.execute(text("INSERT INTO probe (n) VALUES (100)"))
        reader.rollback()
    assert _numbers(engine) == [1]
    _insert(engine, 2)  # and the writers' queue is free again
    assert _numbers(engine) == [1, 2]


def test_many_readers_and_writers_at_once_lose_nothing(engine: Engine) -> None:
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            if number % 2:
                _insert(engine, number)
            else:
                with Session(reading(engine)) as reader:
                    reader.execute(text("SELECT count(*) FROM probe")).scalar_one()
        except BaseException as error:  # noqa: BLE001 - asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S * 3)
    assert errors == []
    assert _numbers(engine) == list(range(1, 40, 2))


# ------------------------------------------------------------- web requests


@pytest.fixture
def probe_app(app: Flask) -> Iterator[tuple[Flask, Engine, list[bool]]]:
    """The app with a GET that reads the probe table, then writes into it."""
    engine = app.extensions["engine"]
    if not is_sqlite(engine):
        pytest.skip("readers and writers share SQLite's one lock; PostgreSQL has row locks")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE probe (n INTEGER NOT NULL)"))
    as_writer: list[bool] = []  # one entry per run of the view: was it run as a writer?

    def read_then_write() -> str:
        session = db()
        as_writer.append(bool(request.environ.get("marketplace.as_writer")))
        count = session.execute(text("SELECT count(*) FROM probe")).scalar_one()
        if request.args.get("interfere") and len(as_writer) == 1:
            other = threading.Thread(target=_insert, args=(engine, -1))
            other.start()
            other.join(WAIT_S)
        session.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": count})
        session.commit()
        return f"read {count}"

    app.add_url_rule("/_probe", "probe", read_then_write)
    yield app, engine, as_writer


def test_a_get_that_writes_is_upgraded_in_place(
        probe_app: tuple[Flask, Engine, list[bool]]) -> None:
    app, engine, as_writer = probe_app
    response = app.test_client().get("/_probe")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "read 0")
    assert as_writer == [False]
    assert _numbers(engine) == [0]


def test_a_get_whose_data_changed_before_it_wrote_is_run_again_as_a_writer(
        probe_app: tuple[Flask, Engine, list[bool]]) -> None:
    app, engine, as_writer = probe_app
    response = app.test_client().get("/_probe?interfere=1")
    # The first run read 0 rows, then another writer committed one: its write was refused
    # and dropped; the second run, a writer from the start, read 1 and wrote once.
    assert (response.status_code, response.get_data(as_text=True)) == (200, "read 1")
    assert as_writer == [False, True]
    assert _numbers(engine) == [-1, 1]


def test_a_refused_action_takes_the_write_lock_once(
        probe_app: tuple[Flask, Engine, list[bool]], session: Session, world: World) -> None:
    """Rendering a refusal reloads the viewer after the rollback: as a reader, not by
    queueing behind every writer a second time."""
    app, engine, _as_writer = probe_app

    def refuse() -> str:
        db().execute(text("INSERT INTO probe (n) VALUES (7)"))
        raise Conflict("probe_refused", N_("Refused on purpose."))

    app.add_url_rule("/_refuse", "refuse", refuse, methods=["POST"])
    client = app.test_client()
    login(client, world.owner_a)
    begins: list[str] = []
    listener = lambda *args: begins.append(args[2]) if args[2].startswith("BEGIN") else None  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.post("/_refuse", headers={"Accept": "application/json"})
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == "Refused on purpose."
    assert begins.count("BEGIN IMMEDIATE") == 1, begins
    assert _numbers(engine) == []


GEVENT_WRITERS = r'''
from gevent import monkey
monkey.patch_all()
import sys, time
import gevent
from sqlalchemy import text
from sqlmodel import Session
from marketplace.db import make_engine, reading

engine = make_engine(f"sqlite:///{sys.argv[1]}")
with engine.begin() as connection:
    connection.execute(text("CREATE TABLE probe (n INTEGER NOT NULL)"))

def writer(number):
    with Session(engine) as session:
        session.execute(text("INSERT INTO probe (n) VALUES (:n)"), {"n": number})
        gevent.sleep(0.01)  # yields to the loop with the write lock held (a Redis call)
        session.commit()

def reader():
    with Session(reading(engine)) as session:
        return session.execute(text("SELECT count(*) FROM probe")).scalar_one()

started = time.monotonic()
jobs = [gevent.spawn(writer, n) for n in range(20)] + [gevent.spawn(reader) for _ in range(20)]
gevent.joinall(jobs, timeout=20, raise_error=True)
with Session(engine) as session:
    count = session.execute(text("SELECT count(*) FROM probe")).scalar_one()
print(count, round(time.monotonic() - started, 2))
'''


def test_under_gevent_writers_wait_for_their_turn_by_yielding(tmp_path: Path) -> None:
    """Waiting in SQLite's busy handler is waiting in C, where no greenlet runs: a writer
    that yields with the lock held would leave the next one spinning there, holding the
    loop the first one needs (a 30 s stall, then "database is locked").  The queue's
    locks are gevent's once gevent has patched threading, so waiting yields."""
    import subprocess
    import sys

    pytest.importorskip("gevent")
    script = tmp_path / "writers.py"
    script.write_text(GEVENT_WRITERS)
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "g.db")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    count, seconds = done.stdout.split()
    assert int(count) == 20
    assert float(seconds) < 5.0  # 20 turns of ~10 ms, not a busy handler's 30 s
