"""Domain events: outbox rows written with the change, emitted only after commit.

A service calls `notify(...)` inside its transaction; the rows become part of
that transaction.  When (and only when) the transaction commits, the queued
notifications are handed to the publisher the app installed (Socket.IO in the
web process, a Redis emitter elsewhere).  A rollback drops them.  Because
every event is also a stored row, a client that was offline replays what it
missed from the table: nothing is lost when a phone drops off the network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, insert
from sqlmodel import Session, col, func, select

from marketplace.clusters.models import User
from marketplace.realtime.models import Notification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """One stored notification of a batch: its row id, whose it is, in which language."""

    notification_id: int
    user_id: int
    locale: str | None


@dataclass(frozen=True)
class Batch:
    """One `notify` call as committed: the same event for every recipient, one row each."""

    kind: str
    message: str
    params: dict[str, Any]
    payload: dict[str, Any]
    link: str | None
    created_at: datetime
    recipients: tuple[Recipient, ...]


Publisher = Callable[[Batch], None]
_OUTBOX_KEY = "marketplace.outbox"
_publisher: Publisher | None = None


def set_publisher(publisher: Publisher | None) -> None:
    """Install the function that delivers committed notifications (one per process)."""
    global _publisher
    _publisher = publisher


def notify(
    session: Session,
    recipients: Iterable[User],
    kind: str,
    message: str,
    *,
    now: datetime,
    params: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    link: str | None = None,
) -> list[int]:
    """Store one notification per recipient in the current transaction; their ids.

    The rows go in with multi-row INSERTs (not one ORM object each), and
    the batch is queued to be published after commit.  `payload` must already
    be what every one of these recipients may see; callers build it with the
    jobs visibility rules, never from raw rows.
    """
    users: list[User] = []
    seen: set[int] = set()
    for user in recipients:
        if user.id is None or user.id in seen or not user.active:
            continue
        seen.add(user.id)
        users.append(user)
    if not users:
        return []
    params, payload = params or {}, payload or {}
    # Users are unique here, so each returned row is matched by its user id; RETURNING
    # needs no order, which lets SQLite take the rows in a few multi-row INSERTs.
    stored = session.execute(
        insert(Notification).returning(col(Notification.user_id), col(Notification.id)),
        [
            {
                "user_id": user.id,
                "kind": kind,
                "message": message,
                "params": params,
                "payload": payload,
                "link": link,
                "created_at": now,
            }
            for user in users
        ],
    )
    id_of: dict[int, int] = {user_id: row_id for user_id, row_id in stored}
    ids = [id_of[user.id] for user in users]  # type: ignore[index]
    batch = Batch(
        kind=kind,
        message=message,
        params=params,
        payload=payload,
        link=link,
        created_at=now,
        recipients=tuple(
            Recipient(notification_id, user.id, user.locale)  # type: ignore[arg-type]
            for notification_id, user in zip(ids, users, strict=True)
        ),
    )
    session.info.setdefault(_OUTBOX_KEY, []).append(batch)
    return ids


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    pending: list[Batch] = session.info.pop(_OUTBOX_KEY, [])
    if not pending or _publisher is None:
        return
    for batch in pending:
        try:
            _publisher(batch)
        except Exception:  # the rows are stored; replay delivers them later
            log.exception(
                "could not deliver %s notifications from id=%s",
                batch.kind,
                batch.recipients[0].notification_id,
            )


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_OUTBOX_KEY, None)


def missed_since(
    session: Session, user_id: int, after_id: int, limit: int = 200
) -> list[Notification]:
    """The user's notifications newer than `after_id`, oldest first (for replay)."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.user_id == user_id, col(Notification.id) > after_id)
            .order_by(col(Notification.id))
            .limit(limit)
        )
    )


def recent(session: Session, user_id: int, limit: int = 100) -> list[Notification]:
    """The user's latest notifications, newest first (the notification centre)."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(col(Notification.id).desc())
            .limit(limit)
        )
    )


def latest_id(session: Session, user_id: int) -> int:
    """The id of the user's newest notification (0 for none): what a page rendered now
    already reflects, so the page's live connection replays only what comes after."""
    return session.exec(
        select(func.max(Notification.id)).where(Notification.user_id == user_id)
    ).one() or 0


def unread_count(session: Session, user_id: int) -> int:
    """How many notifications the user has not opened yet."""
    return session.exec(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, col(Notification.read_at).is_(None))
    ).one()


def mark_all_read(session: Session, user_id: int, now: datetime) -> None:
    """The user has seen the notification centre."""
    for row in session.exec(
        select(Notification).where(
            Notification.user_id == user_id, col(Notification.read_at).is_(None)
        )
    ):
        row.read_at = now
        session.add(row)
    session.commit()
