"""Tables of the sunset review: one review per cluster and sunset date, one answer per
member business (its rules: clusters/review/service.py)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ReviewOutcome(StrEnum):
    """How a review ended: a version with a later sunset was published (renewed), or the
    sunset came with none (the cluster winds down on the date: clusters/exit/)."""

    RENEWED = "renewed"
    WOUND_DOWN = "wound_down"


class Choice(StrEnum):
    RENEW = "renew"
    CHANGE = "change"
    LEAVE = "leave"


class SunsetReview(SQLModel, table=True):
    """The review of one sunset: opened once by the scheduler 30 days before the sunset
    date (the unique key on cluster and sunset makes a second opening impossible),
    closed once (a conditional UPDATE) at the sunset or when a renewal is published."""

    __table_args__ = (UniqueConstraint("cluster_id", "sunset_on",
                                       name="uq_sunsetreview_sunset"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    #: The version in force when the review opened, and its sunset date.
    agreement_version: int
    sunset_on: date
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(default=ReviewStatus.OPEN.value, max_length=10, index=True)
    closed_at: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime(), nullable=True))
    outcome: str | None = Field(default=None, max_length=12)
    #: The version published by the renewal (or found in force at closing), if renewed.
    renewed_version: int | None = None
    renewed_sunset_on: date | None = None


class ReviewAnswer(SQLModel, table=True):
    """One member business's answer: renew, change or leave, and what it learned.  One
    row per review and member (unique); changed in place until the review closes."""

    __table_args__ = (UniqueConstraint("review_id", "member_id",
                                       name="uq_reviewanswer_member"),)

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="sunsetreview.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    choice: str = Field(max_length=10)
    lessons: str = Field(default="", max_length=4000)
    answered_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
