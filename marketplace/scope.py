"""What an app lends the sessions it opens: its publisher, payment gateway, password hasher.

Why: services never import flask, so they cannot ask `current_app` which
publisher or gateway to use; and a module-level variable that `create_app`
overwrites makes the last app built serve every session of the process.
Instead each app builds one `AppScope` (kept in `app.extensions[EXTENSION]`)
and lends it to its engine, so every session opened on that engine -- a
request's, a Socket.IO event's, a scheduler task's, a command's -- finds its
own app's collaborators, and two apps in one process never meet.  A session
on an engine no app made (a test's own, a benchmark's) can be handed a scope
explicitly with `bind`.

A domain declares the typed `Slot` of what it needs next to the code that
uses it (events.PUBLISHER, ledger.sweeps.GATEWAY, clusters.accounts.PASSWORDS),
so this kernel module knows no domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

T = TypeVar("T")

#: Where an app keeps its scope: app.extensions[EXTENSION].
EXTENSION = "marketplace.scope"
_SESSION_KEY = "marketplace.scope"  # session.info: a scope given to this session only
_ENGINE_OPTION = "marketplace_scope"  # engine execution option: the scope of its app


class Slot(Generic[T]):
    """A typed name for one collaborator; `slot.of(session)` is the session's app's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"

    def of(self, session: Session) -> T | None:
        """What the session's app put in this slot (None: nothing, or no app)."""
        scope = scope_of(session)
        return None if scope is None else scope.get(self)


class AppScope:
    """One app's collaborators, by slot.  Filled while the app is built, read after."""

    def __init__(self, values: dict[Slot[Any], Any] | None = None) -> None:
        self._values: dict[Slot[Any], Any] = dict(values or {})

    def provide(self, slot: Slot[T], value: T | None) -> None:
        """Put `value` in `slot` (None empties it)."""
        if value is None:
            self._values.pop(slot, None)
        else:
            self._values[slot] = value

    def get(self, slot: Slot[T]) -> T | None:
        value: T | None = self._values.get(slot)
        return value

    def with_(self, slot: Slot[T], value: T | None) -> AppScope:
        """A copy with `slot` holding `value`; this scope is unchanged."""
        copy = AppScope(self._values)
        copy.provide(slot, value)
        return copy


def lend(engine: Engine, scope: AppScope) -> None:
    """Every session opened on `engine` (or on an engine derived from it afterwards,
    such as `db.reading(engine)`) acts with `scope`."""
    engine.update_execution_options(**{_ENGINE_OPTION: scope})


def bind(session: Session, scope: AppScope | None) -> None:
    """This session alone acts with `scope` (None: with its engine's again)."""
    if scope is None:
        session.info.pop(_SESSION_KEY, None)
    else:
        session.info[_SESSION_KEY] = scope


def scope_of(session: Session) -> AppScope | None:
    """The scope this session acts with: its own, else its engine's, else None."""
    scope = session.info.get(_SESSION_KEY)
    if isinstance(scope, AppScope):
        return scope
    bind_ = session.bind
    if bind_ is None:
        return None
    lent = bind_.get_execution_options().get(_ENGINE_OPTION)
    return lent if isinstance(lent, AppScope) else None


@contextmanager
def lending(session: Session, slot: Slot[T], value: T | None) -> Iterator[Session]:
    """Within the block, `session` acts with `value` in `slot` (the rest of its scope
    unchanged); afterwards as before.  For tests and one-off runs."""
    own = session.info.get(_SESSION_KEY)
    bind(session, (scope_of(session) or AppScope()).with_(slot, value))
    try:
        yield session
    finally:
        bind(session, own if isinstance(own, AppScope) else None)
