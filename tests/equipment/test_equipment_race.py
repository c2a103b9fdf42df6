"""No double booking, ever: twenty real threads, and the database's own constraint."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.db import is_sqlite
from marketplace.equipment import booking
from marketplace.equipment.models import Booking, BookingStatus, Equipment
from marketplace.errors import Conflict
from tests.conftest import NOW, invite_user
from tests.equipment.conftest import NEXT_MONDAY, Equip, at, entries, join, recipients

BOOKERS = 20
TUESDAY = NEXT_MONDAY + timedelta(days=1)


def test_twenty_simultaneous_overlapping_bookings_have_one_winner(
        app: Flask, session: Session, eq: Equip, machine: Equipment) -> None:
    world = eq.world
    owner_d = join(session, world, "Delta Decks", "d@delta.test")
    owners = [world.owner_b, eq.owner_c, owner_d]
    bookers: list[User] = list(owners) + [eq.crew_b]
    while len(bookers) < BOOKERS:
        owner = owners[len(bookers) % 3]
        bookers.append(invite_user(session, owner, f"crew{len(bookers)}@race.test"))
    # Every slot differs but all contain 10:30-13:00, so any two of them overlap.
    slots = [(at(TUESDAY, 9) + timedelta(minutes=30 * (i % 4)),
              at(TUESDAY, 13) + timedelta(minutes=30 * (i % 3))) for i in range(BOOKERS)]
    machine_id = machine.id
    session.commit()  # hold no lock or snapshot while the threads run
    engine = app.extensions["engine"]
    barrier = threading.Barrier(BOOKERS, timeout=30)
    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def book(index: int, user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()  # release SQLite's write lock before everyone starts together
            barrier.wait()
            starts_at, ends_at = slots[index]
            try:
                made = booking.book(own, actor, machine_id, starts_at, ends_at, NOW)  # type: ignore[arg-type]
                result = ("won", index, str(made.id))
            except Conflict as refused:
                result = ("conflict", index, refused.code)
            except Exception as error:  # noqa: BLE001 - reported below, not swallowed
                result = ("error", index, repr(error))
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=book, args=(i, u.id)) for i, u in enumerate(bookers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == BOOKERS
    assert [o for o in outcomes if o[0] == "error"] == []
    winners = [o for o in outcomes if o[0] == "won"]
    losers = [o for o in outcomes if o[0] == "conflict"]
    assert len(winners) == 1
    assert [o[2] for o in losers] == ["slot_taken"] * (BOOKERS - 1)

    session.expire_all()
    rows = session.exec(select(Booking)).all()
    assert len(rows) == 1
    [held] = rows
    index = winners[0][1]
    assert str(held.id) == winners[0][2]
    assert held.status == BookingStatus.CONFIRMED
    assert (held.starts_at, held.ends_at) == slots[index]
    assert held.booked_by_id == bookers[index].id
    # One fee, one notice per owner-side person: the losers left no trace.
    assert entries(session) == [("booking", bookers[index].member_id, world.member_a_id,
                                 held.price_minor)]
    assert recipients(session, "booking.confirmed") == sorted([world.owner_a.id,
                                                               world.crew_a.id])


def _row(machine: Equipment, member_id: int, user_id: int, start_hour: int, end_hour: int,
         status: str = BookingStatus.CONFIRMED.value) -> Booking:
    starts_at, ends_at = at(TUESDAY, start_hour), at(TUESDAY, end_hour)
    return Booking(equipment_id=machine.id, cluster_id=machine.cluster_id, member_id=member_id,
                   booked_by_id=user_id, starts_at=starts_at, ends_at=ends_at,
                   blocked_until=ends_at + timedelta(minutes=30), status=status,
                   price_minor=0, currency="CAD", created_at=NOW)


def test_postgresql_exclusion_constraint_refuses_an_overlapping_row(
        session: Session, eq: Equip, machine: Equipment) -> None:
    """Even code that skipped the service could not store a double booking."""
    if is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        pytest.skip("the exclusion constraint exists on PostgreSQL only")
    world = eq.world
    booking.book(session, world.owner_b, machine.id, at(TUESDAY, 9), at(TUESDAY, 11), NOW)  # type: ignore[arg-type]
    # Starts inside the first booking's buffer (11:00-11:30).
    session.add(_row(machine, eq.member_c_id, eq.owner_c.id, 11, 13))
    with pytest.raises(IntegrityError) as refused:
        session.flush()
    assert "booking_no_overlap" in str(refused.value.orig)
    session.rollback()
    # Bookings that no longer hold the slot do not count, and touching ranges are fine.
    session.add(_row(machine, eq.member_c_id, eq.owner_c.id, 10, 12,
                     BookingStatus.CANCELLED.value))
    session.add(_row(machine, eq.member_c_id, eq.owner_c.id, 10, 12,
                     BookingStatus.DECLINED.value))
    after_buffer = _row(machine, eq.member_c_id, eq.owner_c.id, 12, 13)
    after_buffer.starts_at = at(TUESDAY, 11, 30)
    session.add(after_buffer)
    session.commit()
    assert len(session.exec(select(Booking)).all()) == 4
    # A request holds its slot as firmly as a confirmation.
    session.add(_row(machine, eq.member_c_id, eq.owner_c.id, 12, 14,
                     BookingStatus.REQUESTED.value))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
