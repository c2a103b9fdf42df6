"""Running one piece of work in several threads at the same instant, each in its own
session: the suite's "exactly once" tests (closing a bid window, closing a vote) share
this, so every such race starts from a barrier and reports errors the same way.  And
one piece of work in a thread of its own, for the tests that catch one transaction
waiting for another (`in_background`)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask
from sqlalchemy.engine import Engine
from sqlmodel import Session

from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind


def at_once(engine: Engine, count: int, work: Callable[[Session], object]) -> list[object]:
    """`work` in `count` threads released together; each one's answer, or the repr of
    the error it raised (for the caller's assertion to show)."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        with Session(engine, expire_on_commit=False) as own:
            barrier.wait()
            try:
                outcome = work(own)
            except Exception as error:  # noqa: BLE001 - reported by the caller's assertion
                outcome = repr(error)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "a racer never finished"
    return results


def in_background(app: Flask, database_url: str, work: Callable[[Session], object]
                  ) -> tuple[threading.Thread, dict[str, object]]:
    """`work` started in a thread with a session of its own, bound to the app's scope;
    the thread and where its answer ("done") or the error it raised ("error") lands."""
    from tests.conftest import own_session

    outcome: dict[str, object] = {}

    def run() -> None:
        with own_session(database_url) as own:
            bind(own, app.extensions[SCOPE])
            try:
                outcome["done"] = work(own)
            except Exception as error:  # noqa: BLE001 - asserted by the caller
                outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
