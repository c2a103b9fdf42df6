"""Two schedulers making the same exit take effect at the same instant: one does it,
the other finds it done (the unique row per member), on SQLite and PostgreSQL."""

from __future__ import annotations

from flask import Flask
from sqlmodel import Session, func, select

from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.models import MemberExit
from marketplace.ledger.models import LedgerEntry
from marketplace.realtime.models import Notification
from tests.exit.conftest import AFTER, LATER_MONDAY, ExitWorld, book, leave, ledger_rows
from tests.races import at_once

RACERS = 4


def test_racing_schedulers_make_an_exit_take_effect_once(
        app: Flask, session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    book(session, w.owner_b, exit_world.excavator, LATER_MONDAY, 9)
    book(session, w.owner_a, exit_world.trailer, LATER_MONDAY, 9)
    leave(session, w)
    results = at_once(app.extensions["engine"], RACERS,
                      lambda own: exits.take_due_exits(own, AFTER))
    assert sorted(results, key=repr) == [0] * (RACERS - 1) + [1], results
    session.expire_all()
    assert session.exec(select(func.count()).select_from(MemberExit)).one() == 1
    assert ledger_rows(session, "buyout") == [(w.member_b_id, w.member_a_id, 600_001)]
    assert len(ledger_rows(session, "booking_refund")) == 2
    told = session.exec(select(func.count()).select_from(Notification).where(
        Notification.kind == "exit.effective")).one()
    assert told == 3  # A's owner and crew, the coordinator: once each
    assert session.exec(select(func.count()).select_from(LedgerEntry).where(
        LedgerEntry.source == "buyout")).one() == 1
