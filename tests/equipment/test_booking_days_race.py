"""Slots around midnight, booked all at once: the per-day locks of PostgreSQL.

A booking there holds the machine's row shared and one lock per UTC day its blocked
range touches (marketplace/equipment/booking.py).  A slot across midnight takes two
day locks, its neighbours one each: if two overlapping slots could ever be inserted
side by side, PostgreSQL's exclusion constraint would make each wait for the other
and break the deadlock after a second, as an error.  So: many members, slots on both
sides of and across UTC midnight, all at the same moment; every answer is a booking
or "slot taken", the bookings never overlap (buffer included), and every refusal
overlaps a booking that won.  The same on SQLite, where the writer lock does it."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking
from marketplace.errors import Conflict
from tests.conftest import NOW, invite_user
from tests.equipment.conftest import Equip, anytime_draft, join

BOOKERS = 24
#: UTC midnight between two days a week after NOW (evening in Toronto, inside its hours).
MIDNIGHT = datetime(2026, 6, 9, tzinfo=UTC)
BUFFER = timedelta(minutes=30)


def _slots(seed: int) -> list[tuple[datetime, datetime]]:
    """Slots of 1-4 h on the 30-minute grid starting from 3 h before to 2 h after UTC
    midnight: many overlap, some cross midnight, some are apart."""
    rng = random.Random(seed)
    slots = []
    for _ in range(BOOKERS):
        starts_at = MIDNIGHT + timedelta(minutes=30 * rng.randrange(-6, 5))
        slots.append((starts_at, starts_at + timedelta(minutes=30 * rng.randrange(2, 9))))
    return slots


def _overlap(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] + BUFFER and b[0] < a[1] + BUFFER


@pytest.mark.parametrize("seed", [20261207, 14])
def test_slots_around_midnight_booked_at_once_never_overlap_nor_fail(
        app: Flask, session: Session, eq: Equip, seed: int) -> None:
    world = eq.world
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), NOW)
    owner_d = join(session, world, "Delta Decks", "d@delta.test")
    owners = [world.owner_b, eq.owner_c, owner_d]
    bookers: list[User] = list(owners)
    while len(bookers) < BOOKERS:
        bookers.append(invite_user(session, owners[len(bookers) % 3],
                                   f"crew{len(bookers)}@days.test"))
    slots = _slots(seed)
    assert any(s < MIDNIGHT < e for s, e in slots)  # some cross midnight
    machine_id = machine.id
    session.commit()
    engine = app.extensions["engine"]
    barrier = threading.Barrier(BOOKERS, timeout=30)
    outcomes: dict[int, str] = {}
    lock = threading.Lock()

    def book(index: int, user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()
            barrier.wait()
            try:
                booking.book(own, actor, machine_id, *slots[index], NOW)  # type: ignore[arg-type]
                result = "won"
            except Conflict as refused:
                result = refused.code
            except Exception as error:  # noqa: BLE001 - asserted below, not swallowed
                result = repr(error)
        with lock:
            outcomes[index] = result

    threads = [threading.Thread(target=book, args=(i, u.id)) for i, u in enumerate(bookers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(set(outcomes.values())) == ["slot_taken", "won"], outcomes
    won = [slots[i] for i, result in outcomes.items() if result == "won"]
    assert len(won) >= 2
    for i, a in enumerate(won):
        assert not any(_overlap(a, b) for b in won[i + 1:])
    for index, result in outcomes.items():
        if result == "slot_taken":
            assert any(_overlap(slots[index], w) for w in won)
    session.expire_all()
    held = sorted((b.starts_at, b.ends_at) for b in session.exec(
        select(Booking).where(Booking.equipment_id == machine_id)))
    assert held == sorted(won)


def test_a_slots_days_are_every_utc_day_its_blocked_range_touches() -> None:
    day = int(MIDNIGHT.timestamp()) // 86_400
    assert booking.slot_days(MIDNIGHT - timedelta(hours=2), MIDNIGHT) == range(day - 1, day)
    assert booking.slot_days(MIDNIGHT - timedelta(hours=2),
                             MIDNIGHT + timedelta(minutes=30)) == range(day - 1, day + 1)
    assert booking.slot_days(MIDNIGHT, MIDNIGHT + timedelta(days=2, hours=1)) == \
        range(day, day + 3)
