"""Fixes of the adversarial review of the clean exit (#20 part 5): each test reproduces
one finding and fails without its fix."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.buyout import MAX_AGREED_VALUE_MINOR
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import active_users_of
from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking, Equipment
from marketplace.errors import Conflict, Forbidden
from marketplace.jobs import completion
from marketplace.jobs import service as jobs
from marketplace.jobs.models import JobStatus
from marketplace.ledger import settlement
from marketplace.ledger.models import LedgerEntry
from marketplace.realtime.models import Notification
from tests.conftest import NOW
from tests.equipment.conftest import draft
from tests.exit.conftest import (
    AFTER,
    AGREED_VALUE,
    EXIT_AT,
    LATER_MONDAY,
    ExitWorld,
    book,
    leave,
    ledger_rows,
)
from tests.jobs.conftest import job_draft


def _told(session: Session, kind: str) -> list[int | None]:
    return sorted(n.user_id for n in session.exec(
        select(Notification).where(Notification.kind == kind)))


# -- 1: a leaving co-owner may not set the price the others pay it --------------------


def test_a_leaving_co_owner_cannot_raise_its_own_buyout_price(
        session: Session, exit_world: ExitWorld) -> None:
    """The repro: A (60 %) gives notice, then sets the largest agreed value; the exit
    must still buy A out at the value in force when it gave notice."""
    w = exit_world.world
    leave(session, w)
    with pytest.raises(Conflict) as refused:
        exits.set_agreed_value(session, w.owner_a, exit_world.trailer.id,
                               MAX_AGREED_VALUE_MINOR, now=NOW)
    assert refused.value.code == "exit_pending"
    session.rollback()
    # Nor may the remaining co-owner (who pays) lower it alone once notice is given.
    with pytest.raises(Conflict):
        exits.set_agreed_value(session, w.owner_b, exit_world.trailer.id, 1, now=NOW)
    session.rollback()
    assert session.get(Equipment, exit_world.trailer.id).agreed_value_minor == AGREED_VALUE  # type: ignore[union-attr]
    assert exits.take_due_exits(session, AFTER) == 1
    assert ledger_rows(session, "buyout") == [(w.member_b_id, w.member_a_id, 600_001)]


def test_the_coordinator_may_correct_the_value_after_notice_and_everyone_is_told(
        session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    leave(session, w)
    already = len(_told(session, "equipment.agreed_value"))
    exits.set_agreed_value(session, w.coordinator, exit_world.trailer.id, 500_000, now=NOW)
    told = _told(session, "equipment.agreed_value")
    assert len(told) == already + 3
    # both co-owners' people (A's owner and crew, B's owner), not the coordinator who set it
    assert sorted(n.user_id for n in session.exec(select(Notification).where(
        Notification.kind == "equipment.agreed_value",
        Notification.params["new"].as_string() == "5000.00 CAD"))) == sorted(  # type: ignore[index]
        [w.owner_a.id, w.crew_a.id, w.owner_b.id])
    assert exits.take_due_exits(session, AFTER) == 1
    assert ledger_rows(session, "buyout") == [(w.member_b_id, w.member_a_id, 300_000)]


def test_a_co_owners_change_is_told_to_the_other_co_owners(
        session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    already = set(n.id for n in session.exec(select(Notification)))
    exits.set_agreed_value(session, w.owner_a, exit_world.trailer.id, 2_000_000, now=NOW)
    notes = [n for n in session.exec(select(Notification).where(
        Notification.kind == "equipment.agreed_value")) if n.id not in already]
    assert sorted(n.user_id for n in notes) == sorted(
        [w.owner_b.id, w.crew_a.id, w.coordinator.id])  # not who set it
    assert all(n.params["member"] == "Alpha" or n.params["member"] for n in notes)
    assert {n.params["new"] for n in notes} == {"20000.00 CAD"}
    assert {n.params["old"] for n in notes} == {"10000.01 CAD"}


# -- 2: an approval at the moment the exit reads the leaver's bookings ----------------


def test_a_request_approved_while_the_exit_runs_is_still_cancelled_and_refunded(
        app: Flask, session: Session, exit_world: ExitWorld,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The exit reads A's request; B approves it (a moment before A's exit date, so the
    approval's own guard lets it through) before the exit moves it.  Before the fix the
    exit's conditional update missed, skipped the booking ("changed a moment ago") and
    left A a confirmed, charged booking for ever.  Now the exit locks A's bookings when
    it reads them (PostgreSQL; SQLite's write lock is already held), so the approval
    waits and then finds the request cancelled; and a booking that still changed is
    read again and cancelled with its fee refunded."""
    w = exit_world.world
    engine = app.extensions["engine"]
    skid = listings.list_machine(session, w.owner_b, draft(name="Bobcat S70", kind="skid_steer",
                                                           needs_approval=True), NOW)
    request = book(session, w.owner_a, skid, LATER_MONDAY, 9)
    assert request.status == "requested"
    leave(session, w)
    answers: list[object] = []

    def approve() -> None:
        with Session(engine, expire_on_commit=False) as own:
            try:
                answers.append(booking.approve(own, own.get(User, w.owner_b.id),  # type: ignore[arg-type]
                                               request.id, EXIT_AT - timedelta(minutes=1))
                               .status)
            except Exception as error:  # noqa: BLE001 - checked below
                own.rollback()
                answers.append(getattr(error, "code", repr(error)))

    real_update = exits.update
    racer = threading.Thread(target=approve)

    def update_after_an_approval(*args: Any, **kwargs: Any) -> Any:
        if args and args[0] is Booking and not racer.is_alive() and not answers:
            racer.start()
            racer.join(3)  # it commits (before the fix) or waits for the exit's lock
        return real_update(*args, **kwargs)

    monkeypatch.setattr(exits, "update", update_after_an_approval)
    with Session(engine, expire_on_commit=False) as sweeper:
        assert exits.take_due_exits(sweeper, AFTER) == 1
    racer.join(30)
    assert not racer.is_alive()
    session.expire_all()
    assert session.get(Booking, request.id).status == "cancelled"  # type: ignore[union-attr]
    charged = sum(e.amount_minor for e in session.exec(select(LedgerEntry).where(
        LedgerEntry.source == "booking", LedgerEntry.source_id == request.id)))
    refunded = sum(e.amount_minor for e in session.exec(select(LedgerEntry).where(
        LedgerEntry.source == "booking_refund", LedgerEntry.source_id == request.id)))
    assert charged == refunded  # A owes nothing for a booking it will never use
    assert len(answers) == 1  # the approval ran: confirmed and refunded, or refused


# -- 4: a contract whose poster left can still complete -------------------------------


def test_the_coordinator_confirms_a_contract_whose_poster_left(
        session: Session, exit_world: ExitWorld) -> None:
    """A posts a job, B claims it and reports it done; A leaves before confirming.  A's
    people are gated out, so the coordinator confirms it and B's money becomes due."""
    w = exit_world.world
    job = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    jobs.claim_job(session, w.owner_b, job.id, NOW)
    # While A is a member, only A confirms: the coordinator may not.
    assert not completion.may_confirm(session, w.coordinator, job, NOW)
    completion.report_done(session, w.owner_b, job.id, EXIT_AT - timedelta(days=1))
    with pytest.raises(Forbidden):
        completion.confirm_completion(session, w.coordinator, job.id,
                                      EXIT_AT - timedelta(days=1))
    session.rollback()
    leave(session, w)
    assert exits.take_due_exits(session, AFTER) == 1
    assert completion.may_confirm(session, w.coordinator, job, AFTER)
    done = completion.confirm_completion(session, w.coordinator, job.id, AFTER)
    assert done.status == JobStatus.CONFIRMED
    assert w.owner_b.id in _told(session, "job.confirmed")
    with pytest.raises(Forbidden):  # the rival and other members still may not
        completion.confirm_completion(session, exit_world.eq.owner_c, job.id, AFTER)


# -- 5: once it left, a former member's people hear only of its exit and statements --


def test_former_members_people_get_no_more_cluster_notifications(
        session: Session, exit_world: ExitWorld) -> None:
    """After A's exit took effect, the confirmation of a contract A posted reaches B but
    no longer A's people; A's own exit notice and its last statement's still do."""
    w = exit_world.world
    job = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    jobs.claim_job(session, w.owner_b, job.id, NOW)
    completion.report_done(session, w.owner_b, job.id, EXIT_AT - timedelta(days=1))
    leave(session, w)
    assert exits.take_due_exits(session, AFTER) == 1
    a_people = {w.owner_a.id, w.crew_a.id}
    assert a_people <= set(_told(session, "exit.effective"))
    assert active_users_of(session, [w.member_a_id]) == []
    assert {u.id for u in active_users_of(session, [w.member_a_id], include_former=True)} \
        == a_people
    later = AFTER + timedelta(days=1)
    completion.confirm_completion(session, w.coordinator, job.id, later)
    told = set(_told(session, "job.confirmed"))
    assert w.owner_b.id in told
    assert not told & a_people, "a former member's people were told of cluster activity"
    # Its last statement still reaches it: the month its exit took effect is drafted.
    record = exits.exit_of(session, w.member_a_id)
    assert record is not None
    settlement.draft(session, w.cluster, record.final_month, later)
    assert a_people <= set(_told(session, "settlement.drafted"))


# -- 6: one failing exit does not stop the sweep ---------------------------------------


def test_one_failing_exit_does_not_block_another_clusters(
        session: Session, exit_world: ExitWorld, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Our A and the rival cluster's member both leave; A's exit raises (a bug, a bad
    row): the rival's still takes effect, A's is logged with its ids and retried on the
    next run, when it works."""
    w = exit_world.world
    leave(session, w)
    rival_id = w.other_owner.member_id
    assert rival_id is not None and rival_id > w.member_a_id  # A's exit comes first
    rival = session.get(Member, rival_id)
    assert rival is not None
    rival.exit_noticed_at, rival.exit_effective_at = NOW, EXIT_AT
    session.add(rival)
    session.commit()
    real = exits._cancel_own_bookings

    def broken(work: Any) -> None:
        if work.member.id == w.member_a_id:
            raise RuntimeError("a bad row")
        real(work)

    monkeypatch.setattr(exits, "_cancel_own_bookings", broken)
    with caplog.at_level(logging.ERROR, logger=exits.__name__):
        assert exits.take_due_exits(session, AFTER) == 1
    assert exits.exit_of(session, rival_id) is not None
    assert exits.exit_of(session, w.member_a_id) is None  # rolled back, nothing half-done
    assert f"member {w.member_a_id}" in caplog.text
    monkeypatch.setattr(exits, "_cancel_own_bookings", real)
    assert exits.take_due_exits(session, AFTER + timedelta(minutes=1)) == 1
    assert exits.exit_of(session, w.member_a_id) is not None
