"""An owner pausing a machine while another approves a request on it, on PostgreSQL.

Pausing cancels the bookings not yet started and refunds their fees, from the
machine's row lock; approving shares that row before it locks the booking
(marketplace/equipment/booking.py `_booking_for_money`).  So an approval made while
the pause runs waits for it, finds the request cancelled and says so, instead of
charging a fee on a booking the pause has just cancelled (found by review: the pause
used to read the bookings unlocked and write "cancelled" over a confirmation).  To
catch the pause mid-way, another transaction holds a second booking it must cancel.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking
from marketplace.errors import Conflict
from marketplace.ledger.models import LedgerEntry
from tests.conftest import NOW, World
from tests.equipment.conftest import NEXT_MONDAY, at, draft, join
from tests.races import in_background

WAIT_S = 1.5


def test_an_approval_while_the_machine_is_paused_finds_the_request_cancelled(
        app: Flask, database_url: str, session: Session, world: World) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks interleave on PostgreSQL; SQLite has one writer")
    owner_c = join(session, world, "Gamma", "c@g.test")
    machine = listings.list_machine(session, world.owner_a,
                                    draft(name="Roller", needs_approval=True), NOW)
    request = booking.book(session, owner_c, machine.id, at(NEXT_MONDAY, 9),
                           at(NEXT_MONDAY, 12), NOW)
    other = booking.book(session, world.owner_b, machine.id, at(NEXT_MONDAY, 14),
                         at(NEXT_MONDAY, 16), NOW)
    request_id, later = request.id, NOW + timedelta(minutes=1)
    locker = create_engine(database_url)
    try:
        with locker.connect() as conn:
            conn.execute(text("SELECT id FROM booking WHERE id = :id FOR UPDATE"),
                         {"id": other.id})
            pause, pausing = in_background(app, database_url, lambda own: listings.set_status(
                own, world.owner_a, machine.id, "paused", "Hydraulic leak", later))
            pause.join(WAIT_S)
            assert pause.is_alive(), "the pause did not wait for the held booking"
            approve, approving = in_background(app, database_url, lambda own: booking.approve(
                own, world.owner_a, request_id or 0, later))
            approve.join(WAIT_S)
            assert approve.is_alive(), "the approval did not wait for the pause"
            conn.rollback()
        pause.join(30)
        approve.join(30)
    finally:
        locker.dispose()

    assert "error" not in pausing, pausing
    assert isinstance(approving.get("error"), Conflict)
    session.expire_all()
    assert session.get(Booking, request_id).status == "cancelled"  # type: ignore[union-attr]
    assert session.exec(select(LedgerEntry).where(
        LedgerEntry.source_id == request_id)).all() == []  # no fee on it, none to refund
