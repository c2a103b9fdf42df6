"""The id of a persisted row, typed as what it is once the row is in the database.

SQLModel declares a table's primary key as ``id: int | None`` because a row built in
Python has no id until the session flushes it and the database assigns one.  That is
true for a moment and false everywhere else: services load rows from the session or
flush them right after ``add``, then pass ``row.id`` on as a foreign key, a query
argument or an idempotency key, all of which want an ``int``.  Annotating every such
use with ``# type: ignore`` (there were over a hundred) hid the one mistake the type
was there to catch -- using a row's id before the row was written.

``id_of`` is the single place where ``int | None`` becomes ``int``: it returns the id
of a row that has one and raises :class:`NotPersisted` for a row that was never
flushed, so the mistake fails loudly at the line that made it instead of writing a
NULL foreign key or matching nothing in a query.  The models keep their honest
``int | None`` annotation (the database, not Python, assigns ids), and no call site
needs an ignore.
"""

from __future__ import annotations

from typing import Protocol


class NotPersisted(RuntimeError):
    """A row's id was asked for before the session flushed the row (a programming error)."""


class HasId(Protocol):
    """Any table row with an autoincrement primary key called ``id``."""

    @property
    def id(self) -> int | None: ...


def id_of(row: HasId) -> int:
    """The database id of ``row``; raises :class:`NotPersisted` if it has none yet."""
    found = row.id
    if found is None:
        raise NotPersisted(f"{type(row).__name__} has no id: flush the session first")
    return found


def stored_id(selected: int | None) -> int:
    """An id column read back from the database (``select(Model.id)``), which the
    model types as ``int | None`` but a stored row always has."""
    if selected is None:
        raise NotPersisted("a stored row has no id")
    return selected
