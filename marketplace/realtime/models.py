"""The notification outbox: one row per recipient per event, numbered per person.

Rows are written in the same transaction as the change they describe, so an
event exists exactly when its change does.  The payload is already cut to what
that recipient may see (the information barrier is applied before storing),
and the text is kept as a message id plus parameters so it is rendered in the
recipient's own language when shown or emitted.

Why a per-person `seq` and not the row id: ids are handed out when a row is
inserted, commits happen later and in any order, so on PostgreSQL a client that
has seen id 13257 can still be missing 13225 (committed a moment after it).
`seq` is taken from the person's `NotificationSequence` row under a row lock,
at commit time, so a person's notifications commit in `seq` order and without
gaps: "everything after my cursor" can never skip a committed notification.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime

#: What the unread badge counts (every page draws it): a person's unread notifications
#: only, so the count does not grow with everything they ever read (migration 0021).
UNREAD = text("read_at IS NULL")


class Notification(SQLModel, table=True):
    __table_args__ = (Index("ix_notification_user_id_id", "user_id", "id"),
                      UniqueConstraint("user_id", "seq", name="uq_notification_user_seq"),
                      Index("ix_notification_unread", "user_id", "seq",
                            sqlite_where=UNREAD, postgresql_where=UNREAD))

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    #: this person's delivery cursor position: 1, 2, 3 ... in commit order, no gaps
    seq: int
    kind: str = Field(max_length=40)
    message: str = Field(max_length=500)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    link: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class NotificationSequence(SQLModel, table=True):
    """The last `seq` handed to one person.  Locked (SELECT ... FOR UPDATE) by the
    committing transaction, so two transactions notifying the same person take
    turns and the later one's rows get the higher numbers."""

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    last_seq: int = Field(default=0)


class PendingFanout(SQLModel, table=True):
    """A fan-out a commit asked for and nobody has done yet (marketplace/fanout.py).

    Written in the transaction of the change (a posted job), deleted in the
    transaction that stores the notifications: the row exists exactly while the
    work is owed, so a crash between the two leaves it for the sweep, and two
    workers cannot both do it (the second one's DELETE finds nothing)."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    subject_id: int
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
