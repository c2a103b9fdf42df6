"""The record of a member's exit taking effect, and of each co-owned machine's buy-out.

`MemberExit` is unique per member: the scheduler's sweep inserts it in the same
transaction as the exit's effects, so however many schedulers or reruns try, a
member's exit takes effect once (the second insert is refused by the database).
`summary` keeps what the exit did, with amounts, for the leaver's and the
coordinator's page: it is written once and never edited.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class ExitReason(StrEnum):
    NOTICE = "notice"  # the member's own exit date came
    WIND_DOWN = "wind_down"  # the agreement reached its sunset with no newer version


class MemberExit(SQLModel, table=True):
    """One member business's exit, as it took effect."""

    __table_args__ = (UniqueConstraint("member_id", name="uq_memberexit_member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    member_id: int = Field(foreign_key="member.id")
    reason: str = Field(max_length=10)
    effective_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    done_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: The month (YYYY-MM, cluster time) of the member's last statement.
    final_month: str = Field(max_length=7)
    #: What the exit did: cancelled jobs and bookings, refunds, buy-outs (see service).
    summary: dict[str, Any] = Field(default_factory=dict,
                                    sa_column=Column(JSON(), nullable=False))


class ExitBuyout(SQLModel, table=True):
    """The leaver's share of one co-owned machine, bought by the remaining co-owners.

    Its id is the ledger entries' source id (`EntrySource.BUYOUT`): one entry per
    remaining co-owner, paying the leaver its part of `price_minor`."""

    __table_args__ = (
        UniqueConstraint("exit_id", "equipment_id"),
        CheckConstraint("price_minor >= 0", name="buyout_price_not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exit_id: int = Field(foreign_key="memberexit.id", index=True)
    equipment_id: int = Field(foreign_key="equipment.id", index=True)
    leaver_share_bp: int
    agreed_value_minor: int | None = Field(default=None, sa_column=Column(BigInteger(),
                                                                          nullable=True))
    buyout_value_bp: int
    price_minor: int = Field(sa_column=Column(BigInteger(), nullable=False))
    currency: str = Field(max_length=3)
    #: Remaining co-owner (member id, as a string: JSON keys) -> what it paid, minor units.
    parts: dict[str, int] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    #: Remaining co-owner -> its new share in basis points (they sum to 10 000).
    new_shares: dict[str, int] = Field(default_factory=dict,
                                       sa_column=Column(JSON(), nullable=False))
