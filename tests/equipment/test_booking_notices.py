"""A booking's owners are told after its commit, once, whoever does the telling.

On a busy week every booking that looks free waits for the machine's lock (and
on SQLite for the one writer); a booking that wrote its owners' notification,
push and mail rows under that lock made everyone behind it wait for them too.
The booking now commits its slot, its money and one owed fan-out; the runner
(or the sweep, after a crash) tells the owners, exactly once.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from marketplace import fanout
from marketplace.equipment import booking
from marketplace.equipment.models import BookingStatus, Equipment
from marketplace.realtime.models import PendingFanout
from marketplace.scope import AppScope, bind, scope_of
from tests.conftest import NOW
from tests.equipment.conftest import Equip, entries, notifications, recipients
from tests.equipment.test_equipment_lifecycle import END, START


@pytest.fixture
def owed(session: Session) -> list[int]:
    """The session acts with a runner that only records what it is handed (as if the
    process committed the booking and stopped before telling anyone)."""
    handed: list[int] = []
    bind(session, (scope_of(session) or AppScope()).with_(fanout.RUNNER, handed.append))
    return handed


def test_a_booking_commits_its_money_and_one_owed_notice_then_owners_hear_once(
        session: Session, eq: Equip, machine: Equipment, owed: list[int]) -> None:
    world = eq.world
    assert machine.id is not None
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)
    assert made.status == BookingStatus.CONFIRMED
    assert entries(session) == [("booking", world.member_b_id, world.member_a_id, 8_000)]
    assert recipients(session, "booking.confirmed") == [] and len(owed) == 1
    assert session.exec(select(func.count()).select_from(PendingFanout)).one() == 1

    assert fanout.run_pending(session, owed[0]) == 2  # A's owner and crew lead
    assert fanout.run_pending(session, owed[0]) == 0  # done: a second run tells nobody
    assert recipients(session, "booking.confirmed") == sorted([world.owner_a.id,
                                                               world.crew_a.id])
    assert notifications(session, "booking.confirmed")[0].params == {
        "machine": machine.name, "member": "Beta Stone"}


def test_a_request_for_approval_reaches_the_owners_the_same_way(
        session: Session, eq: Equip, approval_machine: Equipment, owed: list[int]) -> None:
    world = eq.world
    assert approval_machine.id is not None
    made = booking.book(session, world.owner_b, approval_machine.id, START, END, NOW)
    assert made.status == BookingStatus.REQUESTED and len(owed) == 1
    assert recipients(session, "booking.requested") == []
    assert fanout.sweep(session, NOW + fanout.SWEEP_AFTER * 2) >= 1  # a stopped process
    assert recipients(session, "booking.requested") == sorted([world.owner_a.id,
                                                               world.crew_a.id])
