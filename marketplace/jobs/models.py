"""Tables for overflow jobs, their bids, the contracts they end in, and ratings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel, col

from marketplace.db import UTCDateTime


class JobMode(StrEnum):
    HANDOFF = "handoff"  # first eligible partner to claim gets it
    BID_WINDOW = "bid_window"  # partners bid until closes_at; the poster awards one bid


class JobStatus(StrEnum):
    OPEN = "open"
    WINDOW_CLOSED = "window_closed"  # bids are in; the poster chooses
    AWARDED = "awarded"  # a contract exists (claimed hand-off or awarded bid)
    DONE = "done"  # the winner reported the work done
    CONFIRMED = "confirmed"  # the poster confirmed completion
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # its start date passed while it was still on offer: nobody took it


class OverflowJob(SQLModel, table=True):
    """A contract too big for its poster, offered to eligible partners.

    `address`, `customer_name` and `customer_contact` are private until award;
    `locality` and a rounded location are what partners see before that.
    """

    __table_args__ = (
        CheckConstraint("value_minor > 0", name="job_value_positive"),
        CheckConstraint("ends_on >= starts_on", name="job_dates_ordered"),
        # The board's question: this cluster's open jobs, whatever its history.
        Index("ix_overflowjob_cluster_status", "cluster_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    poster_member_id: int = Field(foreign_key="member.id", index=True)
    posted_by_id: int = Field(foreign_key="user.id")
    title: str = Field(max_length=120)
    description: str = Field(max_length=4000)
    mode: str = Field(max_length=20)
    status: str = Field(default=JobStatus.OPEN.value, max_length=20, index=True)
    site_lat: float
    site_lng: float
    #: What partners see of the location before award, drawn once at posting
    #: (geo.approximate_point): stable, and at least geo.APPROX_MIN_KM from the site.
    approx_lat: float
    approx_lng: float
    locality: str = Field(max_length=120)
    address: str = Field(max_length=300)
    customer_name: str = Field(max_length=120)
    customer_contact: str = Field(max_length=200)
    crew_days: int
    starts_on: date
    ends_on: date
    value_minor: int
    currency: str = Field(max_length=3)
    closes_at: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime(), nullable=True))
    window_closed_at: datetime | None = Field(default=None,
                                              sa_column=Column(UTCDateTime(), nullable=True))
    #: when the "closes in an hour" reminder went out (once per window)
    closing_reminded_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True))
    awarded_member_id: int | None = Field(default=None, foreign_key="member.id")
    cancel_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


@dataclass(frozen=True, slots=True)
class JobFacts:
    """What the eligibility rule and the board's order read about a job, as plain
    values: the board weighs every open job of the cluster to show one page, and
    building hundreds of ORM objects cost more than the rule itself."""

    id: int
    cluster_id: int
    poster_member_id: int
    approx_lat: float
    approx_lng: float
    ends_on: date
    currency: str


#: The columns a JobFacts is read from, in its fields' order.
JOB_FACTS = tuple(col(getattr(OverflowJob, name.name)) for name in fields(JobFacts))


class JobTrade(SQLModel, table=True):
    job_id: int = Field(foreign_key="overflowjob.id", primary_key=True)
    trade: str = Field(primary_key=True, max_length=40)


class BidStatus(StrEnum):
    DRAFT = "draft"  # a joint bid whose partners have not all confirmed
    SUBMITTED = "submitted"


class Bid(SQLModel, table=True):
    """One bid per lead member per job; a joint bid carries partner shares."""

    __table_args__ = (
        UniqueConstraint("job_id", "member_id"),
        CheckConstraint("price_minor > 0", name="bid_price_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="overflowjob.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    placed_by_id: int = Field(foreign_key="user.id")
    price_minor: int
    crew_size: int
    earliest_start: date
    note: str = Field(default="", max_length=1000)
    is_joint: bool = Field(default=False)
    status: str = Field(default=BidStatus.SUBMITTED.value, max_length=20)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    submitted_at: datetime | None = Field(default=None,
                                          sa_column=Column(UTCDateTime(), nullable=True))


class BidShare(SQLModel, table=True):
    """A member's share of a joint bid; frozen once the bid is submitted."""

    bid_id: int = Field(foreign_key="bid.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    share_bp: int
    confirmed_at: datetime | None = Field(default=None,
                                          sa_column=Column(UTCDateTime(), nullable=True))


class JobContract(SQLModel, table=True):
    """What the money issue settles from: parties, shares, value and fees.  Immutable."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="overflowjob.id", unique=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    poster_member_id: int = Field(foreign_key="member.id")
    bid_id: int | None = Field(default=None, foreign_key="bid.id")
    value_minor: int
    currency: str = Field(max_length=3)
    referral_fee_bp: int
    referral_fee_minor: int
    platform_fee_bp: int
    agreement_id: int = Field(foreign_key="agreement.id")
    signed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ContractParty(SQLModel, table=True):
    contract_id: int = Field(foreign_key="jobcontract.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    share_bp: int


class JobRating(SQLModel, table=True):
    """After completion, poster and winners rate each other once per job."""

    __table_args__ = (
        UniqueConstraint("job_id", "rater_member_id", "ratee_member_id"),
        CheckConstraint("score BETWEEN 1 AND 5", name="rating_score_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="overflowjob.id", index=True)
    rater_member_id: int = Field(foreign_key="member.id")
    ratee_member_id: int = Field(foreign_key="member.id", index=True)
    score: int
    on_time: bool
    comment: str = Field(default="", max_length=1000)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
