"""Counting the SQL a piece of work runs: the suite's cost tests share this.

Why a helper: "this page costs the same for 3 jobs as for 40" is asserted by
comparing the statements an engine ran, and every such test needs the same
listener and the same folding of IN lists (SQLAlchemy compiles an IN list once
and spells out its placeholders only when it runs, so two runs of one statement
differ in text only there).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

_IN_LIST = re.compile(r" IN \((?:[^()]|\([^()]*\))*\)")


@contextmanager
def recorded(engine: Engine, *, this_thread_only: bool = False) -> Iterator[list[str]]:
    """Every statement `engine` runs meanwhile (only this thread's, if asked: a
    background task on the same engine is then left out)."""
    seen: list[str] = []
    thread = threading.get_ident()

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not this_thread_only or threading.get_ident() == thread:
            seen.append(statement)

    with _listening(engine, record):
        yield seen


@contextmanager
def recorded_with_parameters(engine: Engine) -> Iterator[list[tuple[str, object]]]:
    """Every statement `engine` runs meanwhile with the parameters it was sent (what a
    test asks of the values, or what it runs again under EXPLAIN)."""
    seen: list[tuple[str, object]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: object,
               *_args: object) -> None:
        seen.append((statement, parameters))

    with _listening(engine, record):
        yield seen


@contextmanager
def _listening(engine: Engine, record: Callable[..., None]) -> Iterator[None]:
    """`record` hears every statement `engine` runs meanwhile."""
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", record)


def shapes(statements: list[str]) -> list[str]:
    """The statements with their IN lists folded, to compare two runs' work."""
    return [_IN_LIST.sub(" IN (...)", statement) for statement in statements]
