"""Tables for outside delivery: push subscriptions, delivery rows, preferences.

`Delivery` is one row per (notification, channel, device): the unit the worker
claims, sends and marks.  Its status only moves forward
(pending -> sending -> sent | gone | failed; or skipped at once), so a row that
is marked sent is never sent again, whatever crashes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class Channel(StrEnum):
    PUSH = "push"
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waits for its due time (now, or the end of quiet hours)
    SENDING = "sending"  # claimed by a worker until claimed_until; then due again
    SENT = "sent"  # the outside service accepted it
    GONE = "gone"  # the device unsubscribed (404/410): nothing to send to
    FAILED = "failed"  # refused for good, or retries used up
    SKIPPED = "skipped"  # the person asked not to get it (quiet hours, skip)


class PushSubscription(SQLModel, table=True):
    """One browser on one device that opted in to Web Push.

    A subscription the push service says is gone (404/410), or that its owner
    turned off, keeps its row with `removed_at` (its deliveries refer to it) and
    receives nothing more; subscribing again with the same endpoint revives it.
    """

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    endpoint: str = Field(max_length=1000, unique=True)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    device: str = Field(default="", max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_sent_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    removed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    removed_reason: str | None = Field(default=None, max_length=40)


class Delivery(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", "subscription_id",
                         name="uq_delivery_once"),
        Index("ix_delivery_status_due_at", "status", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: the event told (None for a mail that is not a notification: invite, reset)
    notification_id: int | None = Field(default=None, foreign_key="notification.id",
                                        index=True)
    channel: str = Field(max_length=10)
    subscription_id: int | None = Field(default=None, foreign_key="pushsubscription.id")
    #: the composed-at-send-time mail this row sends (e-mail only)
    mail_id: int | None = Field(default=None, foreign_key="outboundmail.id", index=True)
    #: a new-job mail that waits for the person's daily digest, sent with the others
    digest: bool = Field(default=False)
    status: str = Field(default=DeliveryStatus.PENDING.value, max_length=10)
    attempts: int = Field(default=0)
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claimed_until: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ChannelPreference(SQLModel, table=True):
    """Whether one kind of event reaches one person by one channel.  Only choices
    that differ from the default (on) need a row; the page writes all of them."""

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    channel: str = Field(max_length=10, primary_key=True)
    category: str = Field(max_length=20, primary_key=True)
    enabled: bool = Field(default=True)
    #: e-mail only: collect these into one mail a day, at this minute of the person's day
    digest_minute: int | None = Field(default=None)


class OutboundMail(SQLModel, table=True):
    """A mail that is not one notification (an invite, a password reset, a digest is
    built from its deliveries instead): what to compose, for whom, in which language.
    Composed when sent, so secrets such as a reset link are never stored."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)
    to_address: str = Field(max_length=254)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    locale: str = Field(max_length=10)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class UndeliverableAddress(SQLModel, table=True):
    """An address a mail server refused for good (5xx): no more mail goes there until
    its owner asks to try again; the account page and the coordinator say so."""

    address: str = Field(max_length=254, primary_key=True)
    code: int | None = Field(default=None)
    reason: str = Field(default="", max_length=300)
    since: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class QuietHours(SQLModel, table=True):
    """A person's nightly quiet time, in minutes after midnight of their own time
    zone (start > end wraps past midnight: 21:00-06:30).  New jobs announced then
    wait for the end of it or are skipped, as the person chose; everything else
    waits."""

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    start_minute: int
    end_minute: int
    skip_new_jobs: bool = Field(default=False)
