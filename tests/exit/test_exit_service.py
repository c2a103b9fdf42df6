"""A member's exit taking effect: bookings refunded, machines withdrawn or bought out to
the cent, jobs cancelled or handed back, once however often the scheduler runs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, func, select

from marketplace.clusters import agreements
from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.models import ExitBuyout, MemberExit
from marketplace.clusters.models import Member
from marketplace.equipment import rotation
from marketplace.equipment.access import owner_shares
from marketplace.equipment.models import Booking, Custody, Equipment
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.jobs import service as jobs
from marketplace.jobs.models import JobStatus, OverflowJob
from marketplace.ledger.models import LedgerEntry
from marketplace.realtime.models import Notification
from marketplace.scheduling.tasks import TASKS
from tests.conftest import NOW, terms
from tests.equipment.conftest import join
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


def kinds_for(session: Session, user_id: int | None) -> list[str]:
    return sorted(n.kind for n in session.exec(
        select(Notification).where(Notification.user_id == user_id)))


def test_nothing_happens_before_the_exit_date(session: Session, exit_world: ExitWorld) -> None:
    leave(session, exit_world.world)
    assert exits.take_due_exits(session, EXIT_AT - timedelta(minutes=1)) == 0
    assert session.exec(select(func.count()).select_from(MemberExit)).one() == 0


def test_the_exit_refunds_bookings_withdraws_and_buys_out(session: Session,
                                                          exit_world: ExitWorld) -> None:
    w = exit_world.world
    a, b = w.member_a_id, w.member_b_id
    own = book(session, w.owner_a, exit_world.trailer, LATER_MONDAY, 9)  # A on the trailer
    others = book(session, w.owner_b, exit_world.excavator, LATER_MONDAY, 9)  # B on A's
    past = book(session, w.owner_b, exit_world.excavator, date(2026, 6, 8), 9)  # before exit
    leave(session, w)

    assert exits.take_due_exits(session, AFTER) == 1

    session.expire_all()
    # A's own booking: cancelled, its fee back from the owners, no cancellation fee.
    own_row = session.get(Booking, own.id)
    assert own_row is not None and own_row.status == "cancelled"
    assert own_row.cancel_fee_minor == 0
    booked = ledger_rows(session, "booking")
    refunded = ledger_rows(session, "booking_refund")
    own_fee = [(e.payee_member_id, e.payer_member_id, e.amount_minor) for e in session.exec(
        select(LedgerEntry).where(LedgerEntry.source == "booking",
                                  LedgerEntry.source_id == own.id))]
    assert own_fee == [(b, a, own_fee[0][2])] and own_fee[0] in refunded  # B's part back
    # B's booking of A's excavator: cancelled with its fee refunded; the machine retired.
    assert session.get(Booking, others.id).status == "cancelled"  # type: ignore[union-attr]
    assert (a, b, others.price_minor) in refunded
    assert session.get(Booking, past.id).status == "confirmed"  # type: ignore[union-attr]
    assert session.get(Equipment, exit_world.excavator.id).status == "retired"  # type: ignore[union-attr]
    assert sorted(refunded) == sorted([own_fee[0], (a, b, others.price_minor)])
    assert len(booked) == 3  # the fees stay written; the refunds net them
    # The trailer: B owns it all and paid A 60 % of the agreed value, to the cent.
    assert owner_shares(session, exit_world.trailer.id) == {b: 10_000}
    assert ledger_rows(session, "buyout") == [(b, a, 600_001)]
    buyout = session.exec(select(ExitBuyout)).one()
    assert (buyout.price_minor, buyout.agreed_value_minor) == (600_001, AGREED_VALUE)
    record = session.exec(select(MemberExit)).one()
    assert record.final_month == "2026-07"
    assert record.summary["buyouts"][0]["parts"] == [
        {"member_id": b, "member": "Beta Stone", "amount_minor": 600_001,
         "new_share_bp": 10_000}]
    # Everyone concerned is told; A's people and the coordinator see the outcome.
    assert "exit.buyout" in kinds_for(session, w.owner_b.id)
    assert "booking.cancelled_by_owner" in kinds_for(session, w.owner_b.id)
    assert "exit.effective" in kinds_for(session, w.owner_a.id)
    assert "exit.effective" in kinds_for(session, w.crew_a.id)
    assert "exit.effective" in kinds_for(session, w.coordinator.id)
    member = session.get(Member, a)
    assert member is not None and member.exit_effective_at == EXIT_AT


def test_a_second_run_changes_nothing(session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    book(session, w.owner_b, exit_world.excavator, LATER_MONDAY, 9)
    leave(session, w)
    assert exits.take_due_exits(session, AFTER) == 1
    before = (session.exec(select(func.count()).select_from(LedgerEntry)).one(),
              session.exec(select(func.count()).select_from(Notification)).one())
    assert exits.take_due_exits(session, AFTER + timedelta(hours=1)) == 0
    member_id = w.member_a_id
    assert not exits.take_effect(session, member_id, exits.ExitReason.NOTICE, EXIT_AT, AFTER)
    after = (session.exec(select(func.count()).select_from(LedgerEntry)).one(),
             session.exec(select(func.count()).select_from(Notification)).one())
    assert before == after
    assert session.exec(select(func.count()).select_from(MemberExit)).one() == 1


def test_the_registered_task_makes_exits_take_effect(session: Session,
                                                     exit_world: ExitWorld) -> None:
    leave(session, exit_world.world)
    task = next(t for t in TASKS if t.id == "clusters.take_due_exits")
    assert task.run(session, AFTER) == 1
    assert task.run(session, AFTER) == 0


def test_three_co_owners_split_the_price_to_the_cent(session: Session,
                                                     exit_world: ExitWorld) -> None:
    """A 50 %, B 30 %, Gamma 20 % of a machine worth 3 333.33: A's half is 1 666.665,
    rounded half to even to 1 666.66; B and Gamma pay 3 : 2 of it (999.996 and 666.664:
    the odd cent goes to the larger remainder) and take A's share 3 : 2."""
    w = exit_world.world
    c = exit_world.eq.member_c_id
    from marketplace.equipment import listings
    from tests.equipment.conftest import co_draft
    mixer = listings.record_co_owned(session, w.coordinator, co_draft(name="Mixer"),
                                     {w.member_a_id: 5_000, w.member_b_id: 3_000, c: 2_000},
                                     NOW)
    exits.set_agreed_value(session, w.coordinator, mixer.id, 333_333)
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    row = session.exec(select(ExitBuyout).where(ExitBuyout.equipment_id == mixer.id)).one()
    assert row.price_minor == 166_666
    assert row.parts == {str(w.member_b_id): 100_000, str(c): 66_666}
    assert owner_shares(session, mixer.id) == {w.member_b_id: 6_000, c: 4_000}


def test_no_agreed_value_means_a_free_buyout_said_so(session: Session,
                                                     exit_world: ExitWorld) -> None:
    w = exit_world.world
    exits.set_agreed_value(session, w.owner_b, exit_world.trailer.id, None)
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    assert ledger_rows(session, "buyout") == []
    assert owner_shares(session, exit_world.trailer.id) == {w.member_b_id: 10_000}
    told = session.exec(select(Notification).where(Notification.kind == "exit.buyout")).all()
    assert told and all("no agreed value" in n.message for n in told)


def test_the_agreements_buyout_fraction_is_used(session: Session,
                                                exit_world: ExitWorld) -> None:
    w = exit_world.world
    version = agreements.publish_agreement(session, w.coordinator,
                                           terms(buyout_value_bp=5_000), NOW)
    for owner in (w.owner_a, w.owner_b, exit_world.eq.owner_c):
        agreements.accept_agreement(session, owner, version.version, NOW)
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    # 1 000 001 x 60 % x 50 % = 300 000.3 -> 300 000
    assert ledger_rows(session, "buyout") == [(w.member_b_id, w.member_a_id, 300_000)]


def test_rotation_periods_pass_to_the_remaining_owners(session: Session,
                                                       exit_world: ExitWorld) -> None:
    w = exit_world.world
    rotation.create_plan(session, w.owner_a, exit_world.trailer.id, "week", date(2026, 6, 1),
                         NOW)
    rotation.ensure_periods(session, rotation.plan_for(session, exit_world.trailer.id),
                            exit_world.trailer, AFTER)  # type: ignore[arg-type]
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    coming = session.exec(select(Custody).where(Custody.ends_at > AFTER)).all()
    assert coming and {p.member_id for p in coming} == {w.member_b_id}
    past = session.exec(select(Custody).where(Custody.ends_at <= NOW + timedelta(days=7))).all()
    assert past  # history stays as it was


def test_open_jobs_cancelled_and_awarded_ones_handed_back(session: Session,
                                                          exit_world: ExitWorld) -> None:
    w = exit_world.world
    later = date(2026, 8, 3)
    posted = jobs.post_job(session, w.owner_a, job_draft(starts_on=later,
                                                        ends_on=later + timedelta(days=5)),
                           NOW)
    by_b = jobs.post_job(session, w.owner_b, job_draft(title="Hedges", starts_on=later,
                                                      ends_on=later + timedelta(days=5)), NOW)
    jobs.claim_job(session, w.owner_a, by_b.id, NOW)  # A holds B's job
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    session.expire_all()
    assert session.get(OverflowJob, posted.id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    assert session.get(OverflowJob, by_b.id).status == JobStatus.CANCELLED  # type: ignore[union-attr]
    assert "job.cancelled" in kinds_for(session, w.owner_b.id)
    assert "exit.job_handed_back" in kinds_for(session, w.owner_b.id)
    record = session.exec(select(MemberExit)).one()
    assert [j["title"] for j in record.summary["jobs_handed_back"]] == ["Hedges"]


def test_the_cluster_winds_down_at_its_sunset(session: Session, exit_world: ExitWorld) -> None:
    """No renewal before the sunset: every member leaves on the date, and co-owned machines
    are withdrawn rather than bought by members who are leaving too."""
    w = exit_world.world
    sunset = date(2028, 1, 1)  # the world's agreement
    before = agreements.cluster_today(w.cluster, NOW)
    assert before < sunset
    moment = exits.sunset_moment(w.cluster, sunset)
    assert exits.take_due_exits(session, moment - timedelta(seconds=1)) == 0
    # Our three members, and the rival cluster's one (its agreement has the same sunset).
    assert exits.take_due_exits(session, moment + timedelta(minutes=1)) == 4
    members = session.exec(select(Member).where(Member.cluster_id == w.cluster.id)).all()
    assert all(m.exit_effective_at == moment for m in members)
    assert ledger_rows(session, "buyout") == []
    assert session.get(Equipment, exit_world.trailer.id).status == "retired"  # type: ignore[union-attr]
    reasons = {r.reason for r in session.exec(select(MemberExit))}
    assert reasons == {"wind_down"}
    assert session.exec(select(func.count()).select_from(MemberExit).where(
        MemberExit.cluster_id != w.cluster.id)).one() == 1


def test_a_renewal_before_the_sunset_keeps_the_cluster(session: Session,
                                                       exit_world: ExitWorld) -> None:
    w = exit_world.world
    agreements.publish_agreement(session, w.coordinator, terms(sunset_on=date(2030, 1, 1)),
                                 NOW)
    moment = exits.sunset_moment(w.cluster, date(2028, 1, 1))
    exits.take_due_exits(session, moment + timedelta(days=1))
    assert session.exec(select(func.count()).select_from(MemberExit).where(
        MemberExit.cluster_id == w.cluster.id)).one() == 0


def test_agreed_value_only_by_owners_of_a_co_owned_machine(session: Session,
                                                           exit_world: ExitWorld) -> None:
    w = exit_world.world
    with pytest.raises(Forbidden):
        exits.set_agreed_value(session, exit_world.eq.owner_c, exit_world.trailer.id, 5)
    with pytest.raises(Forbidden):
        exits.set_agreed_value(session, w.crew_a, exit_world.trailer.id, 5)
    with pytest.raises(Conflict):
        exits.set_agreed_value(session, w.owner_a, exit_world.excavator.id, 5)
    for bad in (0, -1, 10**12):
        with pytest.raises(ValidationError):
            exits.set_agreed_value(session, w.owner_a, exit_world.trailer.id, bad)
    session.rollback()
    assert session.get(Equipment, exit_world.trailer.id).agreed_value_minor == AGREED_VALUE  # type: ignore[union-attr]
    assert join  # the helper the conftest shares


def test_its_last_month_is_drafted_and_its_people_told(session: Session,
                                                       exit_world: ExitWorld) -> None:
    """The exit's buy-out and refunds are on its last statement: the scheduler drafts that
    month on the 1st like any other and tells the leaver's people, whose statements
    stay open to them."""
    from datetime import UTC, datetime

    from marketplace.ledger import settlement

    w = exit_world.world
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    record = session.exec(select(MemberExit)).one()
    first_of_next = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
    settlement.draft_due(session, first_of_next)
    drafted = settlement.settlement_for(session, w.cluster.id, record.final_month)  # type: ignore[arg-type]
    assert drafted is not None
    told = session.exec(select(Notification).where(
        Notification.kind == "settlement.drafted",
        Notification.user_id == w.owner_a.id)).all()
    assert [n.link for n in told] == [f"/ledger/{record.final_month}"]
    nets = settlement.month_nets(session, w.cluster.id, record.final_month)  # type: ignore[arg-type]
    assert nets[w.member_a_id].credits >= 600_001


def test_its_people_hear_of_no_new_job(session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    later = date(2026, 9, 7)
    jobs.post_job(session, w.owner_b, job_draft(title="Fall cleanup", starts_on=later,
                                                ends_on=later + timedelta(days=3)),
                  AFTER + timedelta(hours=1))
    posted_to = {n.user_id for n in session.exec(select(Notification).where(
        Notification.kind == "job.posted"))}
    assert posted_to  # Gamma heard of it
    assert not posted_to & {w.owner_a.id, w.crew_a.id}


def test_its_bids_lapse_and_the_poster_is_told(session: Session, exit_world: ExitWorld) -> None:
    from marketplace.jobs import bidding
    from tests.jobs.conftest import bid_window_draft

    w = exit_world.world
    later = date(2026, 8, 3)
    window = jobs.post_job(session, w.owner_b, bid_window_draft(
        title="Patio", starts_on=later, ends_on=later + timedelta(days=5)), NOW)
    bidding.place_bid(session, w.owner_a, window.id, bidding.BidTerms(
        price_minor=500_000, crew_size=2, earliest_start=later), NOW)
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    assert "exit.bid_lapsed" in kinds_for(session, w.owner_b.id)
    record = session.exec(select(MemberExit)).one()
    assert [j["title"] for j in record.summary["bids_lapsed"]] == ["Patio"]


def test_a_renewal_between_the_sweep_and_the_effect_keeps_the_member(
        session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    moment = exits.sunset_moment(w.cluster, date(2028, 1, 1))
    due = exits.due_exits(session, moment + timedelta(minutes=1))
    assert {m for m, _reason, _at in due} >= {w.member_a_id, w.member_b_id}
    session.commit()
    agreements.publish_agreement(session, w.coordinator, terms(sunset_on=date(2030, 1, 1)),
                                 moment - timedelta(days=1))
    member_id, reason, effective = next(d for d in due if d[0] == w.member_a_id)
    assert not exits.take_effect(session, member_id, reason, effective,
                                 moment + timedelta(minutes=1))
    assert session.exec(select(func.count()).select_from(MemberExit)).one() == 0


def test_a_member_whose_date_came_before_the_sunset_left_by_notice(
        session: Session, exit_world: ExitWorld) -> None:
    """The sweep runs only after both dates: A, whose own date came first, is bought out
    as a leaver; the others wind down with the cluster (the trailer, B's alone by then,
    is withdrawn)."""
    w = exit_world.world
    version = agreements.publish_agreement(session, w.coordinator,
                                           terms(sunset_on=date(2026, 7, 15)), NOW)
    for owner in (w.owner_a, w.owner_b, exit_world.eq.owner_c):
        agreements.accept_agreement(session, owner, version.version, NOW)
    leave(session, w)  # A leaves on 1 July
    moment = exits.sunset_moment(w.cluster, date(2026, 7, 15))
    exits.take_due_exits(session, moment + timedelta(minutes=1))
    reasons = {e.member_id: e.reason for e in session.exec(select(MemberExit))}
    assert reasons[w.member_a_id] == "notice"
    assert reasons[w.member_b_id] == reasons[exit_world.eq.member_c_id] == "wind_down"
    assert ledger_rows(session, "buyout") == [(w.member_b_id, w.member_a_id, 600_001)]
    assert session.get(Equipment, exit_world.trailer.id).status == "retired"  # type: ignore[union-attr]
