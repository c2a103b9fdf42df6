"""A co-owner's exit against a booking's money at the same moment, on PostgreSQL.

An exit takes the leaver's machines' rows first; approving, cancelling and closing a
booking share the machine's row before they lock the booking.  So each waits for the
other one way only, and whichever comes second sees what the first did: an approval
made during an exit splits the fee by the owners the exit leaves, and a cancellation
made during it gives back everything the exit passed on.  To catch each in the act, a
third transaction holds a booking the exit must lock late (another member's, for a
slot after the exit): the exit then stands mid-way, holding the machine, while the
action is tried.  SQLite runs one writer at a time, so there is nothing to interleave.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from marketplace.clusters.exit import service as exits
from marketplace.equipment import booking
from marketplace.equipment.access import owner_shares
from marketplace.ledger.models import LedgerEntry
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind
from tests.conftest import own_session
from tests.exit.conftest import AFTER, LATER_MONDAY, ExitWorld, book, leave
from tests.exit.test_exit_fees_passed_on import net_of_booking
from tests.races import in_background

WAIT_S = 1.5


def _postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks interleave on PostgreSQL; SQLite has one writer")


@contextmanager
def _exit_held_mid_way(app: Flask, database_url: str, held_booking_id: int
                       ) -> Iterator[threading.Thread]:
    """The exit running in a thread of its own, stopped where it locks the bookings it
    passes fees on from (another transaction holds one of them) until the block ends."""
    locker = create_engine(database_url)
    try:
        with locker.connect() as conn:
            conn.execute(text("SELECT id FROM booking WHERE id = :id FOR UPDATE"),
                         {"id": held_booking_id})

            def run_exit() -> None:
                with own_session(database_url) as own:
                    bind(own, app.extensions[SCOPE])
                    assert exits.take_due_exits(own, AFTER) == 1

            exiting = threading.Thread(target=run_exit)
            exiting.start()
            exiting.join(WAIT_S)
            assert exiting.is_alive(), "the exit did not wait for the held booking"
            yield exiting
            conn.rollback()
        exiting.join(30)
        assert not exiting.is_alive()
    finally:
        locker.dispose()


def test_an_approval_during_the_exit_pays_the_owners_it_leaves(
        app: Flask, database_url: str, session: Session, exit_world: ExitWorld) -> None:
    _postgresql_only(database_url)
    w, c = exit_world.world, exit_world.eq.member_c_id
    b = w.member_b_id
    exit_world.trailer.needs_approval = True
    session.add(exit_world.trailer)
    session.commit()
    held = book(session, w.owner_b, exit_world.trailer, LATER_MONDAY, 14, 2)  # an owner's
    request = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 9, 3)
    assert request.status == "requested"
    other = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 18, 2)
    booking.approve(session, w.owner_b, other.id, AFTER - timedelta(days=1))
    leave(session, w)
    request_id = request.id
    assert request_id is not None and held.id is not None

    with _exit_held_mid_way(app, database_url, other.id or 0):
        approving, outcome = in_background(app, database_url, lambda own: booking.approve(
            own, w.owner_b, request_id, AFTER + timedelta(seconds=1)))
        approving.join(WAIT_S)
        assert approving.is_alive(), "the approval did not wait for the exit"
    approving.join(30)

    assert "error" not in outcome, outcome
    session.expire_all()
    assert owner_shares(session, exit_world.trailer.id) == {b: 10_000}
    fee = session.exec(select(LedgerEntry.amount_minor).where(
        LedgerEntry.source == "booking", LedgerEntry.source_id == request_id)).all()
    assert net_of_booking(session, request_id) == {b: sum(fee), c: -sum(fee)}


def test_a_cancellation_during_the_exit_gives_back_what_it_passed_on(
        app: Flask, database_url: str, session: Session, exit_world: ExitWorld) -> None:
    _postgresql_only(database_url)
    w = exit_world.world
    mine = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 9, 3)
    other = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 18, 2)
    leave(session, w)
    mine_id = mine.id
    assert mine_id is not None

    with _exit_held_mid_way(app, database_url, other.id or 0):
        cancelling, outcome = in_background(app, database_url, lambda own: booking.cancel(
            own, exit_world.eq.owner_c, mine_id, "Rain", AFTER))
        cancelling.join(WAIT_S)
        assert cancelling.is_alive(), "the cancellation did not wait for the exit"
    cancelling.join(30)

    assert "error" not in outcome, outcome
    session.expire_all()
    assert net_of_booking(session, mine_id) == {}  # nobody owed anything, to the cent
    assert net_of_booking(session, other.id or 0) == {
        w.member_b_id: other.price_minor, exit_world.eq.member_c_id: -other.price_minor}
