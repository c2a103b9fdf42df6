"""How every domain fetches a row of the viewer's cluster and stores a row exactly once.

Two rules the product relies on everywhere, written once so no domain drifts:

- A row of another cluster looks *missing* (404), never forbidden: a rival must
  not learn that job 812 or machine 40 exists by the answer it gets.
- A row that a double tap may create twice (a connected account, a checkout
  session) is created by whichever commit wins the unique constraint; the other
  tap gets the winner's row back instead of an error.  The database settles
  the race, not a check-then-insert in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from marketplace.db import on_postgresql
from marketplace.errors import not_found

R = TypeVar("R", bound=SQLModel)


def in_cluster(session: Session, model: type[R], row_id: int, cluster_id: int, *,
               for_update: bool = False) -> R:
    """The `model` row `row_id` if it belongs to `cluster_id`; NotFound otherwise
    (whether it is missing or another cluster's).  `for_update` locks it.

    Only a lock needs the database asked again: a row this transaction already read
    (the view checked the machine exists before the service books it) comes from the
    session's identity map.  SQLite has no row locks (a writing transaction holds
    the whole database from its start), so there `for_update` asks nothing more.
    """
    if for_update and on_postgresql(session):
        # populate_existing: the locked read's values win over the copy read before it.
        query = select(model).where(model.id == row_id).with_for_update(  # type: ignore[attr-defined]  # every model with a cluster has an integer id
        ).execution_options(populate_existing=True)
        row = session.exec(query).first()
    else:
        row = session.get(model, row_id)
    if row is None or getattr(row, "cluster_id", None) != cluster_id:
        raise not_found()
    return row


def add_once(session: Session, row: R, existing: Callable[[], R | None]) -> R:
    """Commit `row`; if a concurrent commit already stored the same one (a unique
    constraint refused ours), roll back and return that one (`existing()` finds it)."""
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        found = existing()
        if found is None:  # the constraint was another one: not a duplicate of ours
            raise
        return found
    return row
