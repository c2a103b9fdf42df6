"""The exit world: A leaves.  A owns an excavator alone; A (60 %) and B (40 %) co-own a
trailer worth an odd amount; A, B and Gamma book; A has jobs on the board."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.exit import service as exits
from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking, Equipment
from marketplace.ledger.models import LedgerEntry
from tests.conftest import NOW, World
from tests.equipment.conftest import Equip, at, co_draft, draft, join
from tests.jobs.conftest import give_profile

#: A gives notice at NOW; the agreement's 30 days make it leave on EXIT_AT.
EXIT_AT = NOW + timedelta(days=30)
AFTER = EXIT_AT + timedelta(minutes=5)
LATER_MONDAY = date(2026, 7, 6)  # after the exit date
AGREED_VALUE = 1_000_001  # 60 % of it is 600 000.6: the price rounds to 600 001


@dataclass
class ExitWorld:
    eq: Equip
    excavator: Equipment  # A's alone
    trailer: Equipment  # A 60 %, B 40 %

    @property
    def world(self) -> World:
        return self.eq.world


@pytest.fixture
def exit_world(session: Session, world: World) -> ExitWorld:
    owner_c = join(session, world, "Gamma Trees", "c@gamma.test")
    eq = Equip(world, owner_c, world.owner_b)
    excavator = listings.list_machine(session, world.owner_a, draft(), NOW)
    trailer = listings.record_co_owned(session, world.coordinator, co_draft(),
                                       {world.member_a_id: 6_000, world.member_b_id: 4_000},
                                       NOW)
    exits.set_agreed_value(session, world.owner_b, trailer.id, AGREED_VALUE)
    for owner in (world.owner_a, world.owner_b, owner_c):
        give_profile(session, owner)
    return ExitWorld(eq, excavator, trailer)


def book(session: Session, user: object, machine: Equipment, day: date, hour: int,
         hours: int = 2, now: datetime = NOW) -> Booking:
    return booking.book(session, user, machine.id, at(day, hour),  # type: ignore[arg-type]
                        at(day, hour + hours), now)


def leave(session: Session, world: World) -> None:
    """A gives notice (30 days, the world's agreement)."""
    agreements.give_exit_notice(session, world.owner_a, world.member_a_id, NOW)


def ledger_rows(session: Session, source: str) -> list[tuple[int | None, int | None, int]]:
    return [(e.payer_member_id, e.payee_member_id, e.amount_minor) for e in session.exec(
        select(LedgerEntry).where(LedgerEntry.source == source)
        .order_by(LedgerEntry.id))]  # type: ignore[arg-type]
