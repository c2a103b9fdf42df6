"""Ledger entries: who owes whom how much, why, and in which month.

Entries are never edited; a correction is a new entry (DESIGN rule 3: integer
minor units).  The unique key on (source, source_id, payer, payee) is what
makes writing them idempotent: recording the same fact twice is refused by
the database, not by hoping the caller checked first.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class EntrySource(StrEnum):
    BOOKING = "booking"  # equipment fee, booker -> owner(s)
    BOOKING_REFUND = "booking_refund"  # a cancelled booking's fee, back to the booker
    CANCELLATION_FEE = "cancellation_fee"  # late cancellation, booker -> owner(s)
    DAMAGE_FEE = "damage_fee"  # reported at return, booker -> owner(s)


class LedgerEntry(SQLModel, table=True):
    """`amount_minor` moves from the payer member to the payee member."""

    __table_args__ = (
        UniqueConstraint("source", "source_id", "payer_member_id", "payee_member_id",
                         name="ledger_entry_once"),
        CheckConstraint("amount_minor > 0", name="ledger_amount_positive"),
        CheckConstraint("payer_member_id <> payee_member_id", name="ledger_two_parties"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    source: str = Field(max_length=30)
    source_id: int
    payer_member_id: int = Field(foreign_key="member.id", index=True)
    payee_member_id: int = Field(foreign_key="member.id", index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    month: str = Field(max_length=7, index=True)  # YYYY-MM in the cluster's time zone
    memo: str = Field(default="", max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
