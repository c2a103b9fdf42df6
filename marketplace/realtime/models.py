"""The notification outbox: one row per recipient per event.

Rows are written in the same transaction as the change they describe, so an
event exists exactly when its change does.  The payload is already cut to what
that recipient may see (the information barrier is applied before storing),
and the text is kept as a message id plus parameters so it is rendered in the
recipient's own language when shown or emitted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class Notification(SQLModel, table=True):
    __table_args__ = (Index("ix_notification_user_id_id", "user_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    kind: str = Field(max_length=40)
    message: str = Field(max_length=500)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    link: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
