"""Equipment fixtures: machines listed through the real services, and helpers.

`machine` is Alpha Lawns' own excavator (weekdays 07:00-18:00 in Toronto,
30-minute steps, a 30-minute buffer, 40.00/h or 250.00/day, free cancellation
until 24 h before, then half the price).  `co_owned` is a trailer the
coordinator recorded as owned 60 % by A and 40 % by B, bookable around the
clock in whole hours at 45.67/h.  Gamma Trees (member C) has accepted the
agreement and owns nothing: the outsider who books and the third party who
must not see who booked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from marketplace.clusters import agreements
from marketplace.clusters.models import User
from marketplace.equipment import listings
from marketplace.equipment.listings import ListingDraft, WeeklyHours
from marketplace.equipment.models import Booking, Equipment
from marketplace.ledger.models import LedgerEntry
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, invite_member, invite_user

TORONTO = "America/Toronto"
NEXT_MONDAY = date(2026, 6, 8)  # NOW is Monday 2026-06-01 11:00 in Toronto
HOUR_RATE = 4_000
DAY_RATE = 25_000
CO_HOUR_RATE = 4_567
WEEKDAYS_7_TO_18 = tuple(WeeklyHours(d, 7 * 60, 18 * 60) for d in range(5))
ROUND_THE_CLOCK = tuple(WeeklyHours(d, 0, 1440) for d in range(7))


def at(day: date, hour: int, minute: int = 0, tz: str = TORONTO) -> datetime:
    """The UTC instant of a wall-clock time where the machine lives."""
    local = datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def draft(**changes: Any) -> ListingDraft:
    """A valid listing of a single-owner machine; override any field."""
    base = ListingDraft(
        name="Kubota KX040 excavator", kind="mini_excavator",
        description="Four tonnes, rubber tracks.", locality="Etobicoke yard",
        base_lat=43.62, base_lng=-79.51, hour_rate_minor=HOUR_RATE, day_rate_minor=DAY_RATE,
        min_minutes=60, max_minutes=3 * 24 * 60, buffer_minutes=30, granularity_minutes=30,
        timezone=TORONTO, needs_approval=False, cancel_cutoff_hours=24, cancel_fee_bp=5_000,
        hours=WEEKDAYS_7_TO_18)
    return replace(base, **changes)


def anytime_draft(**changes: Any) -> ListingDraft:
    """A stump grinder bookable around the clock, for tests that book "tomorrow"."""
    return draft(**{"name": "Vermeer SC30", "kind": "stump_grinder",
                    "hours": ROUND_THE_CLOCK, **changes})


def co_draft(**changes: Any) -> ListingDraft:
    """A co-owned trailer, bookable any hour of any day, in whole hours."""
    return draft(**{
        "name": "Shared dump trailer", "kind": "trailer", "locality": "Mimico depot",
        "hour_rate_minor": CO_HOUR_RATE, "day_rate_minor": 0, "buffer_minutes": 0,
        "granularity_minutes": 60, "min_minutes": 60, "max_minutes": 7 * 24 * 60,
        "hours": ROUND_THE_CLOCK, **changes})


def count(session: Session, model: type[SQLModel], **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return session.exec(query).one()


def written(session: Session) -> tuple[int, int, int]:
    """(bookings, ledger entries, notifications): what a refusal must leave unchanged."""
    return (count(session, Booking), count(session, LedgerEntry),
            count(session, Notification))


def notifications(session: Session, kind: str) -> list[Notification]:
    return list(session.exec(select(Notification).where(Notification.kind == kind)
                             .order_by(Notification.id)))  # type: ignore[arg-type]


def recipients(session: Session, kind: str) -> list[int]:
    """User ids that got a notification of `kind`, sorted (duplicates kept)."""
    return sorted(n.user_id for n in notifications(session, kind))


def entries(session: Session, source: str | None = None) -> list[tuple[str, int, int, int]]:
    """(source, payer, payee, amount) of every ledger entry, in writing order."""
    query = select(LedgerEntry).order_by(LedgerEntry.id)  # type: ignore[arg-type]
    if source is not None:
        query = query.where(LedgerEntry.source == source)
    return [(e.source, e.payer_member_id, e.payee_member_id, e.amount_minor)
            for e in session.exec(query)]


@dataclass
class Equip:
    """The shared world plus member C (Gamma Trees) and its crew."""

    world: World
    owner_c: User
    crew_b: User

    @property
    def member_c_id(self) -> int:
        assert self.owner_c.member_id is not None
        return self.owner_c.member_id


def join(session: Session, world: World, business: str, email: str) -> User:
    """A new member of the world's cluster that has accepted the agreement in force."""
    owner = invite_member(session, world.coordinator, business, email)
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None
    agreements.accept_agreement(session, owner, current.version, NOW)
    return owner


@pytest.fixture
def eq(session: Session, world: World) -> Equip:
    owner_c = join(session, world, "Gamma Trees", "c@gamma.test")
    crew_b = invite_user(session, world.owner_b, "crew@beta.test")
    return Equip(world, owner_c, crew_b)


@pytest.fixture
def machine(session: Session, eq: Equip) -> Equipment:
    """A's own excavator, instantly confirmed."""
    return listings.list_machine(session, eq.world.owner_a, draft(), NOW)


@pytest.fixture
def approval_machine(session: Session, eq: Equip) -> Equipment:
    """A's own skid steer, each request waiting for A's approval."""
    return listings.list_machine(session, eq.world.owner_a,
                                 draft(name="Bobcat S70", kind="skid_steer",
                                       needs_approval=True), NOW)


@pytest.fixture
def co_owned(session: Session, eq: Equip) -> Equipment:
    """The trailer A (60 %) and B (40 %) co-own, recorded by the coordinator."""
    world = eq.world
    return listings.record_co_owned(session, world.coordinator, co_draft(),
                                    {world.member_a_id: 6_000, world.member_b_id: 4_000}, NOW)
