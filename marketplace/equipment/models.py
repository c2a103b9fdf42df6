"""Tables for shared machines: listings, owners, availability, bookings, rotation.

A booking blocks its machine over [starts_at, blocked_until): the slot plus the
listing's buffer for transport and cleaning.  On PostgreSQL an exclusion
constraint over (machine, that range) makes two live bookings overlapping
impossible even when requests race; SQLite gets the same guarantee from the
write transaction that checks and inserts (DESIGN rule 6).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    DDL,
    BigInteger,
    CheckConstraint,
    Column,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class EquipmentKind(StrEnum):
    MOWER = "mower"
    SKID_STEER = "skid_steer"
    MINI_EXCAVATOR = "mini_excavator"
    AERATOR = "aerator"
    STUMP_GRINDER = "stump_grinder"
    TRENCHER = "trencher"
    TRAILER = "trailer"
    SNOW_PLOW = "snow_plow"
    CHIPPER = "chipper"
    COMPACTOR = "compactor"
    OTHER = "other"


class ListingStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # not bookable for now; may come back
    RETIRED = "retired"  # gone for good


class Equipment(SQLModel, table=True):
    """A machine members can book: owned by one member or co-owned by several."""

    __table_args__ = (
        CheckConstraint("hour_rate_minor >= 0 AND day_rate_minor >= 0",
                        name="equipment_rates_not_negative"),
        CheckConstraint("min_minutes > 0 AND max_minutes >= min_minutes",
                        name="equipment_booking_lengths"),
    )

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    name: str = Field(max_length=120)
    kind: str = Field(max_length=30)
    description: str = Field(default="", max_length=4000)
    photo: str | None = Field(default=None, max_length=80)
    locality: str = Field(max_length=120)
    base_lat: float
    base_lng: float
    hour_rate_minor: int
    day_rate_minor: int
    currency: str = Field(max_length=3)
    min_minutes: int
    max_minutes: int
    buffer_minutes: int = Field(default=0)
    granularity_minutes: int = Field(default=30)
    timezone: str = Field(max_length=64)
    needs_approval: bool = Field(default=False)
    cancel_cutoff_hours: int = Field(default=24)
    cancel_fee_bp: int = Field(default=0)
    status: str = Field(default=ListingStatus.ACTIVE.value, max_length=10, index=True)
    #: What the co-owners agree the machine is worth (minor units), for buying out a
    #: leaving co-owner's share (clusters/exit/); None: not agreed, a buy-out is free.
    agreed_value_minor: int | None = Field(default=None, sa_column=Column(BigInteger(),
                                                                          nullable=True))
    listed_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class EquipmentOwner(SQLModel, table=True):
    """Who owns a machine and how much of it; shares sum to 10 000 per machine."""

    __table_args__ = (CheckConstraint("share_bp > 0 AND share_bp <= 10000",
                                      name="owner_share_range"),)

    equipment_id: int = Field(foreign_key="equipment.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True, index=True)
    share_bp: int


class AvailabilityWindow(SQLModel, table=True):
    """Weekly bookable hours in the machine's time zone (minutes after local midnight)."""

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="availability_weekday"),
        CheckConstraint("start_minute >= 0 AND end_minute <= 1440 AND start_minute < end_minute",
                        name="availability_minutes"),
    )

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = Field(foreign_key="equipment.id", index=True)
    weekday: int  # 0 = Monday, as Python's date.weekday()
    start_minute: int
    end_minute: int


class Blackout(SQLModel, table=True):
    """A period the machine is not bookable: maintenance or the owner's own use."""

    __table_args__ = (CheckConstraint("ends_at > starts_at", name="blackout_ordered"),)

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = Field(foreign_key="equipment.id", index=True)
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    reason: str = Field(max_length=300)
    created_by_id: int = Field(foreign_key="user.id")


class BookingStatus(StrEnum):
    REQUESTED = "requested"  # waits for the owner's approval
    CONFIRMED = "confirmed"
    CHECKED_OUT = "checked_out"
    RETURNED = "returned"
    CLOSED = "closed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


#: Bookings in these states hold their slot; the exclusion constraint uses the same list.
HOLDING_STATUSES = (BookingStatus.REQUESTED.value, BookingStatus.CONFIRMED.value,
                    BookingStatus.CHECKED_OUT.value)
_HOLDING_SQL = "status IN ('requested', 'confirmed', 'checked_out')"


class Booking(SQLModel, table=True):
    """A member's slot on a machine, [starts_at, ends_at), and what happened to it."""

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="booking_ordered"),
        CheckConstraint("blocked_until >= ends_at", name="booking_buffer_after_end"),
        CheckConstraint("price_minor >= 0", name="booking_price_not_negative"),
        ExcludeConstraint(
            (Column("equipment_id"), "="),
            (func.tsrange(Column("starts_at"), Column("blocked_until")), "&&"),
            name="booking_no_overlap", using="gist", where=text(_HOLDING_SQL),
        ).ddl_if(dialect="postgresql"),
    )

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = Field(foreign_key="equipment.id", index=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    booked_by_id: int = Field(foreign_key="user.id")
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    blocked_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    status: str = Field(max_length=12, index=True)
    price_minor: int
    currency: str = Field(max_length=3)
    in_custody: bool = Field(default=False)  # booked by the custodian: no fee
    checkout_meter: float | None = Field(default=None)
    checkout_note: str = Field(default="", max_length=1000)
    checkout_photo: str | None = Field(default=None, max_length=80)
    return_meter: float | None = Field(default=None)
    return_note: str = Field(default="", max_length=1000)
    damage_minor: int = Field(default=0)
    damage_note: str = Field(default="", max_length=1000)
    cancel_fee_minor: int = Field(default=0)
    cancel_reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))


event.listen(Booking.__table__, "before_create",  # type: ignore[attr-defined]  # SQLModel sets it
             DDL("CREATE EXTENSION IF NOT EXISTS btree_gist").execute_if(dialect="postgresql"))


class RotationPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"


class RotationPlan(SQLModel, table=True):
    """How a co-owned machine rotates among its owners: one holder per period."""

    id: int | None = Field(default=None, primary_key=True)
    equipment_id: int = Field(foreign_key="equipment.id", unique=True)
    period: str = Field(max_length=5)
    starts_on: date
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Custody(SQLModel, table=True):
    """Who holds a co-owned machine during one period of its rotation plan."""

    __table_args__ = (UniqueConstraint("plan_id", "index"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="rotationplan.id", index=True)
    equipment_id: int = Field(foreign_key="equipment.id", index=True)
    index: int  # period number counted from the plan's start
    member_id: int = Field(foreign_key="member.id", index=True)
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    released: bool = Field(default=False)  # the holder lets others book this period
    eve_notice_at: datetime | None = Field(default=None,
                                           sa_column=Column(UTCDateTime(), nullable=True))
    start_notice_at: datetime | None = Field(default=None,
                                             sa_column=Column(UTCDateTime(), nullable=True))


class SwapStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class CustodySwap(SQLModel, table=True):
    """A co-owner's request to exchange one of its periods for another owner's."""

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="rotationplan.id", index=True)
    offered_id: int = Field(foreign_key="custody.id")  # the requester's period
    wanted_id: int = Field(foreign_key="custody.id")  # the other owner's period
    requested_by_id: int = Field(foreign_key="user.id")
    status: str = Field(default=SwapStatus.PENDING.value, max_length=10)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))


class CalendarFeed(SQLModel, table=True):
    """The secret that makes a member's .ics URL unguessable; replaced to revoke it."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    token: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
