"""Tables for disputes between members over a job's or a booking's money.

A dispute covers ledger entries between member businesses (a damage fee, a share, a
referral fee ...).  `DisputedEntry.entry_id` is unique: an entry is disputed at most
once, so two disputes on the same money (a double tap, two parties at once) are
refused by the database, not by a check in Python.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class DisputeStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class Outcome(StrEnum):
    UPHOLD = "uphold"  # the money stands as recorded
    ADJUST = "adjust"  # the payer owes this amount instead
    SPLIT = "split"  # the payer owes this fraction (basis points) of it
    CANCEL = "cancel"  # nothing is owed


class MemberDispute(SQLModel, table=True):
    """One dispute: what it is about, who opened it, who decides, and the decision."""

    __table_args__ = (
        CheckConstraint("disputed_minor > 0", name="dispute_amount_positive"),
        CheckConstraint("decided_minor IS NULL OR (decided_minor >= 0 AND "
                        "decided_minor <= disputed_minor)", name="dispute_decided_in_range"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    subject: str = Field(max_length=10)  # job | booking
    subject_id: int  # the job's or the booking's id
    source: str = Field(max_length=30)  # the ledger source disputed (damage_fee, job_share ...)
    title: str = Field(default="", max_length=200)  # the job's title or the machine's name
    opened_by_id: int = Field(foreign_key="user.id")
    opened_by_member_id: int = Field(foreign_key="member.id")
    reason: str = Field(max_length=2000)
    disputed_minor: int
    currency: str = Field(max_length=3)
    resolver: str = Field(default="coordinator", max_length=20)  # coordinator | panel
    status: str = Field(default=DisputeStatus.OPEN.value, max_length=10, index=True)
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deadline: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: Set once by the scheduler when the deadline passed undecided (people are told).
    overdue_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    outcome: str | None = Field(default=None, max_length=10)
    decided_minor: int | None = Field(default=None)
    split_bp: int | None = Field(default=None)
    decision_note: str = Field(default="", max_length=2000)
    decided_by_id: int | None = Field(default=None, sa_column=Column(
        Integer, nullable=True))  # the user (coordinator or panellist) who decided
    decided_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))


class DisputedEntry(SQLModel, table=True):
    """A ledger entry under dispute and what the decision left of it."""

    __table_args__ = (UniqueConstraint("entry_id", name="uq_disputedentry_entry_id"),)

    dispute_id: int = Field(foreign_key="memberdispute.id", primary_key=True)
    entry_id: int = Field(foreign_key="ledgerentry.id", primary_key=True)
    amount_minor: int  # the entry's amount when disputed
    settled_minor: int | None = Field(default=None)  # its part of the decided amount


class DisputeParty(SQLModel, table=True):
    """A member business whose money is disputed: it reads and writes the messages."""

    dispute_id: int = Field(foreign_key="memberdispute.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)


class DisputePanelist(SQLModel, table=True):
    """An uninvolved member business on the dispute's panel (resolver "panel")."""

    dispute_id: int = Field(foreign_key="memberdispute.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)


class DisputeMessage(SQLModel, table=True):
    """A message (and maybe a photo) in a dispute: the parties and the coordinator read
    it, nobody else (not the panel)."""

    #: The one-time key is the author's: another reader reusing it posts its own.
    __table_args__ = (UniqueConstraint("dispute_id", "author_id", "request_key",
                                       name="uq_disputemessage_request_key"),)

    id: int | None = Field(default=None, primary_key=True)
    dispute_id: int = Field(foreign_key="memberdispute.id", index=True)
    author_id: int = Field(foreign_key="user.id")
    author_member_id: int | None = Field(default=None, foreign_key="member.id")
    body: str = Field(default="", max_length=2000)
    photo: str | None = Field(default=None, max_length=80)
    #: The form's one-time key: the same message sent twice is stored once.
    request_key: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class DisputeVote(SQLModel, table=True):
    """A panel business's decision for a dispute: the panel decides when more than half
    of its businesses cast the same one (the same outcome and the same amount owed).
    One per business: the primary key refuses a second."""

    dispute_id: int = Field(foreign_key="memberdispute.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id")
    outcome: str = Field(max_length=10)
    decided_minor: int
    split_bp: int | None = Field(default=None)
    note: str = Field(default="", max_length=2000)
    cast_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
