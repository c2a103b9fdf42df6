"""Disputes between members: opening within the window, holding the money out of
settlement, the barrier, and deciding exactly once with exact entries."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from marketplace.disputes import service as disputes
from marketplace.disputes.models import DisputePanelist, MemberDispute
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, LedgerEntry
from tests.conftest import invite_user
from tests.disputes.conftest import DAMAGE, DONE_AT, JULY_2, TUESDAY, closed_at, damaged_booking
from tests.ledger.conftest import Ledger, joint_job

DAMAGE_FEE = EntrySource.DAMAGE_FEE.value


def net_by_member(session: Session, month: str | None = None) -> dict[int | None, int]:
    """Every account's net over the whole ledger (or one month)."""
    nets: dict[int | None, int] = defaultdict(int)
    session.expire_all()
    query = select(LedgerEntry)
    if month:
        query = query.where(LedgerEntry.month == month)
    for entry in session.exec(query):
        nets[entry.payee_member_id] += entry.amount_minor
        nets[entry.payer_member_id] -= entry.amount_minor
    return nets


def open_damage(session: Session, lw: Ledger, days_after: float = 1) -> MemberDispute:
    made = damaged_booking(session, lw)
    assert made.id is not None
    return disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,
                                 "The tail light was cracked before", closed_at()
                                 + timedelta(days=days_after))


def test_opening_holds_the_disputed_money_in_its_own_open_month(session: Session,
                                                                lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    assert made.id is not None
    before = net_by_member(session, "2026-06")
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,
                                    "Cracked before", closed_at() + timedelta(days=1))
    assert dispute.disputed_minor == DAMAGE
    assert {p for p in disputes._member_ids(session, disputes.DisputeParty, dispute.id)} \
        == {lw.a, lw.b, lw.c}
    june = net_by_member(session, "2026-06")
    # The damage fee (C -> A 6 001, C -> B 4 000) is out of June: it nets as if never charged.
    assert june[lw.c] == before[lw.c] + DAMAGE
    assert june[lw.a] == before[lw.a] - 6_001 and june[lw.b] == before[lw.b] - 4_000
    holds = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_HOLD.value)).all()
    assert sorted((h.payer_member_id, h.payee_member_id, h.amount_minor, h.month)
                  for h in holds) == sorted([(lw.a, lw.c, 6_001, "2026-06"),
                                             (lw.b, lw.c, 4_000, "2026-06")])


def test_the_month_is_approved_without_it_and_it_settles_in_the_month_it_closes(
        session: Session, lw: Ledger) -> None:
    dispute = open_damage(session, lw)
    settlement.draft_for(session, lw.coordinator, "2026-06", JULY_2)
    settlement.approve(session, lw.coordinator, "2026-06", {}, JULY_2)
    june_transfer_c = settlement.month_nets(session, lw.world.cluster.id, "2026-06")[lw.c].net
    disputes.decide(session, lw.coordinator, dispute.id, "uphold", None, None,  # type: ignore[arg-type]
                    "Photos show it was fine at check-out", JULY_2 + timedelta(hours=1))
    settled = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    assert {(s.payer_member_id, s.payee_member_id, s.amount_minor, s.month)
            for s in settled} == {(lw.c, lw.a, 6_001, "2026-07"), (lw.c, lw.b, 4_000, "2026-07")}
    # June's approved net never changed.
    assert settlement.month_nets(session, lw.world.cluster.id, "2026-06")[lw.c].net \
        == june_transfer_c


def test_a_dispute_opened_after_its_month_was_approved_takes_the_money_back_in_an_open_one(
        session: Session, lw: Ledger) -> None:
    job = joint_job(session, lw)  # confirmed on 21 June
    settlement.draft_for(session, lw.coordinator, "2026-06", JULY_2)
    settlement.approve(session, lw.coordinator, "2026-06", {}, JULY_2)
    disputes.open_dispute(session, lw.owner_d, "job", job.id, "job_share",  # type: ignore[arg-type]
                          "My share was for more hours", JULY_2)
    holds = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_HOLD.value)).all()
    assert {(h.payer_member_id, h.payee_member_id, h.amount_minor, h.month)
            for h in holds} == {(lw.d, lw.c, 313_302, "2026-07")}


def test_the_window_closes_after_the_agreements_days(session: Session, lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    with pytest.raises(Conflict) as refused:
        disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,  # type: ignore[arg-type]
                              "Too late", closed_at() + timedelta(days=14, seconds=1))
    assert refused.value.code == "window_closed"
    # On the last instant it still opens.
    disputes.open_dispute(session, lw.owner_c, "booking", made.id, DAMAGE_FEE,  # type: ignore[arg-type]
                          "Just in time", closed_at() + timedelta(days=14))


def test_the_same_money_is_disputed_once_by_either_side(session: Session, lw: Ledger) -> None:
    dispute = open_damage(session, lw)
    for owner in (lw.owner_c, lw.world.owner_a):
        with pytest.raises(Conflict) as refused:
            disputes.open_dispute(session, owner, "booking", dispute.subject_id, DAMAGE_FEE,
                                  "Again", closed_at() + timedelta(days=2))
        assert refused.value.code == "already_disputed"
    assert len(session.exec(select(MemberDispute)).all()) == 1
    assert len(session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_HOLD.value)).all()) == 2


def test_only_a_party_owner_opens_and_bad_input_changes_nothing(session: Session,
                                                                 lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    assert made.id is not None
    when = closed_at() + timedelta(days=1)
    with pytest.raises(NotFound):  # D has no part in this booking
        disputes.open_dispute(session, lw.owner_d, "booking", made.id, DAMAGE_FEE, "x", when)
    with pytest.raises(NotFound):  # another cluster's owner
        disputes.open_dispute(session, lw.world.other_owner, "booking", made.id, DAMAGE_FEE, "x",
                              when)
    for source, reason in ((DAMAGE_FEE, ""), ("platform_fee", "x"), (DAMAGE_FEE, "x" * 2001)):
        with pytest.raises(ValidationError):
            disputes.open_dispute(session, lw.owner_c, "booking", made.id, source, reason,
                                  when)
    assert session.exec(select(MemberDispute)).all() == []


def test_the_barrier_parties_panel_and_coordinator_only(session: Session, lw: Ledger,
                                                        tmp_path) -> None:  # type: ignore[no-untyped-def]
    dispute = open_damage(session, lw)
    assert dispute.id is not None
    crew_c = invite_user(session, lw.owner_c, "crew@gamma.test")
    disputes.post_message(session, crew_c, dispute.id, "Here is the check-out photo", None,
                          tmp_path, None, closed_at() + timedelta(days=2))
    for reader in (lw.owner_c, crew_c, lw.world.owner_a, lw.world.owner_b, lw.coordinator):
        view = disputes.dispute_view(session, reader, disputes.get_dispute(
            session, reader, dispute.id), closed_at())
        assert [m.body for m in view.messages] == ["Here is the check-out photo"]
    for outsider in (lw.owner_d, lw.world.other_owner):
        with pytest.raises(NotFound):
            disputes.get_dispute(session, outsider, dispute.id)
        with pytest.raises(NotFound):
            disputes.post_message(session, outsider, dispute.id, "peek", None, tmp_path,
                                  None, closed_at())
        assert disputes.list_disputes(session, outsider) == []
    with pytest.raises(NotFound):  # a missing id answers the same
        disputes.get_dispute(session, lw.owner_d, 999_999)


def test_decided_exactly_once_by_the_resolver_only(session: Session, lw: Ledger) -> None:
    dispute = open_damage(session, lw)
    assert dispute.id is not None
    when = closed_at() + timedelta(days=3)
    with pytest.raises(Forbidden):
        disputes.decide(session, lw.world.owner_a, dispute.id, "uphold", None, None, "mine",
                        when)
    with pytest.raises(ValidationError):
        disputes.decide(session, lw.coordinator, dispute.id, "adjust", DAMAGE + 1, None,
                        "too much", when)
    disputes.decide(session, lw.coordinator, dispute.id, "split", None, 5_000, "Half each",
                    when)
    with pytest.raises(Conflict):
        disputes.decide(session, lw.coordinator, dispute.id, "cancel", None, None, "again",
                        when)
    settled = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    assert sum(s.amount_minor for s in settled) == 5_001  # 10 001 split half: payer's half
    assert sorted(s.amount_minor for s in settled) == [2_000, 3_001]


def test_a_panel_of_uninvolved_members_decides(session: Session, lw: Ledger) -> None:
    from marketplace.clusters.models import Agreement
    agreement = session.exec(select(Agreement)).first()
    assert agreement is not None
    agreement.dispute_resolver = "panel"
    session.add(agreement)
    session.commit()
    dispute = open_damage(session, lw)
    assert dispute.id is not None
    panel = set(session.exec(select(DisputePanelist.member_id).where(
        DisputePanelist.dispute_id == dispute.id)))
    # A, B own the trailer and C booked it: only D has no part in it.
    assert panel == {lw.d} and dispute.resolver == "panel"
    when = closed_at() + timedelta(days=2)
    with pytest.raises(Forbidden):  # the coordinator only after the panel's deadline
        disputes.decide(session, lw.coordinator, dispute.id, "cancel", None, None, "x", when)
    disputes.decide(session, lw.owner_d, dispute.id, "adjust", 5_000, None, "Fair wear",
                    when)
    assert dispute.decided_minor == 5_000


def test_the_scheduler_marks_a_late_dispute_once(session: Session, lw: Ledger) -> None:
    dispute = open_damage(session, lw)
    late = dispute.deadline + timedelta(seconds=1)
    assert disputes.mark_overdue(session, dispute.deadline - timedelta(seconds=1)) == 0
    assert disputes.mark_overdue(session, late) == 1
    assert disputes.mark_overdue(session, late) == 0


def test_a_job_share_dispute_between_lead_and_partner(session: Session, lw: Ledger) -> None:
    job = joint_job(session, lw)
    assert job.id is not None
    dispute = disputes.open_dispute(session, lw.owner_d, "job", job.id, "job_share",
                                    "My share was for more hours", DONE_AT + timedelta(days=1))
    assert dispute.disputed_minor == 313_302
    with pytest.raises(Conflict):  # a job not confirmed cannot be disputed yet: window check
        disputes.open_dispute(session, lw.owner_d, "job", job.id, "job_share", "x",
                              DONE_AT + timedelta(days=15))
    _ = TUESDAY


def test_the_registered_task_tells_every_reader_once(session: Session, lw: Ledger) -> None:
    from marketplace.realtime.models import Notification
    from marketplace.scheduling.tasks import TASKS

    [task] = [t for t in TASKS if t.id == "disputes.mark_overdue"]
    dispute = open_damage(session, lw)
    late = dispute.deadline + timedelta(minutes=1)
    assert task.run(session, late) == 1 and task.run(session, late) == 0
    session.expire_all()
    told = session.exec(select(Notification.user_id).where(
        Notification.kind == "payment.member_dispute",
        Notification.message.contains("not decided by its deadline"))).all()  # type: ignore[attr-defined]
    # A's, B's and C's people (parties) and the coordinator, once each.
    assert len(told) == len(set(told)) and lw.coordinator.id in told and lw.owner_c.id in told
    assert lw.owner_d.id not in told


def _panel_agreement(session: Session) -> None:
    from marketplace.clusters.models import Agreement
    for agreement in session.exec(select(Agreement)).all():
        agreement.dispute_resolver = "panel"
        session.add(agreement)
    session.commit()


def test_a_job_panel_never_seats_a_party_the_poster_or_a_losing_bidder(
        session: Session, lw: Ledger) -> None:
    """D disputes its share with C (the joint bid's lead) on A's job; B bid against them
    and lost.  Nobody with a part in the job is left to sit: the coordinator decides."""
    from marketplace.jobs import bidding, completion, service
    from marketplace.jobs.models import JobMode
    from tests.conftest import NOW
    from tests.jobs.conftest import CLOSES_AT, STARTS_ON, job_draft

    _panel_agreement(session)
    job = service.post_job(session, lw.world.owner_a, job_draft(
        mode=JobMode.BID_WINDOW.value, closes_at=CLOSES_AT, title="Plant the boulevard"), NOW)
    assert job.id is not None
    terms = bidding.BidTerms(price_minor=999_999, crew_size=4, earliest_start=STARTS_ON)
    bidding.place_bid(session, lw.world.owner_b, job.id, terms, NOW)  # the competitor
    bid = bidding.propose_joint_bid(session, lw.owner_c, job.id, terms,
                                    {lw.c: 6_667, lw.d: 3_333}, NOW)
    assert bid.id is not None
    bidding.confirm_joint_share(session, lw.owner_d, bid.id, NOW)
    bidding.submit_joint_bid(session, lw.owner_c, bid.id, NOW)
    assert bidding.close_window(session, job.id, CLOSES_AT)
    bidding.award_bid(session, lw.world.owner_a, job.id, bid.id, CLOSES_AT)
    completion.report_done(session, lw.owner_c, job.id, DONE_AT)
    completion.confirm_completion(session, lw.world.owner_a, job.id, DONE_AT)
    dispute = disputes.open_dispute(session, lw.owner_d, "job", job.id, "job_share",
                                    "More hours", DONE_AT + timedelta(days=1))
    assert dispute.id is not None
    panel = set(session.exec(select(DisputePanelist.member_id).where(
        DisputePanelist.dispute_id == dispute.id)))
    assert panel == set() and dispute.resolver == "coordinator"
    with pytest.raises(NotFound):  # B, the losing bidder, may not decide
        disputes.decide(session, lw.world.owner_b, dispute.id, "cancel", None, None, "x",
                        DONE_AT + timedelta(days=2))
    with pytest.raises(NotFound):  # nor even read it
        disputes.get_dispute(session, lw.world.owner_b, dispute.id)
    disputes.decide(session, lw.coordinator, dispute.id, "uphold", None, None, "It stands",
                    DONE_AT + timedelta(days=2))


def test_a_cancelled_bookings_refunded_fee_is_not_disputable_but_its_late_fee_is(
        session: Session, lw: Ledger) -> None:
    """D cancelled an hour before: its fee came back (a refund) and the late fee stands.
    Holding the refunded fee would pay it back twice; only the late fee can be disputed."""
    from marketplace.equipment import booking
    from tests.ledger.conftest import WEDNESDAY, at

    made = booking.book(session, lw.owner_d, lw.trailer.id, at(WEDNESDAY, 9),  # type: ignore[arg-type]
                        at(WEDNESDAY, 11), at(WEDNESDAY, 9) - timedelta(days=2))
    booking.cancel(session, lw.owner_d, made.id, "Rained out", at(WEDNESDAY, 8))  # type: ignore[arg-type]
    subject = disputes.subject_of(session, lw.owner_d, "booking", made.id)  # type: ignore[arg-type]
    assert [m.source for m in disputes.disputable_money(session, lw.owner_d, subject)] == [
        "cancellation_fee"]
    with pytest.raises(ValidationError):
        disputes.open_dispute(session, lw.owner_d, "booking", made.id, "booking",  # type: ignore[arg-type]
                              "Refund me", at(WEDNESDAY, 12))
    opened = disputes.open_dispute(session, lw.owner_d, "booking", made.id,  # type: ignore[arg-type]
                                   "cancellation_fee", "It rained", at(WEDNESDAY, 12))
    assert opened.disputed_minor == 2_740 + 1_827


def test_a_panel_of_three_decides_when_two_cast_the_same_decision(session: Session,
                                                                  lw: Ledger) -> None:
    from tests.jobs.conftest import add_partner

    others = {u.member_id: u for u in (
        lw.owner_d, *(add_partner(session, lw.world, name, f"{name.lower()}@panel.test")
                      for name in ("Epsilon", "Zeta", "Eta")))}
    _panel_agreement(session)
    dispute = open_damage(session, lw)
    assert dispute.id is not None
    panel = sorted(session.exec(select(DisputePanelist.member_id).where(
        DisputePanelist.dispute_id == dispute.id)))
    assert len(panel) == 3 and set(panel) <= set(others)  # never A, B (owners) or C
    [left_out] = set(others) - set(panel)
    first, second, third = (others[m] for m in panel)
    when = closed_at() + timedelta(days=2)
    with pytest.raises(NotFound):  # a business not on the panel does not even read it
        disputes.decide(session, others[left_out], dispute.id, "cancel", None, None, "x",
                        when)
    assert disputes.decide(session, first, dispute.id, "cancel", None, None, "Old damage",
                           when).status == "open"
    with pytest.raises(Conflict) as twice:
        disputes.decide(session, first, dispute.id, "uphold", None, None, "Changed my mind",
                        when)
    assert twice.value.code == "already_voted"
    # The same outcome with another amount is another decision.
    assert disputes.decide(session, second, dispute.id, "adjust", 1, None, "A cent",
                           when).status == "open"
    decided = disputes.decide(session, third, dispute.id, "cancel", None, None,
                              "Worn, not broken", when)
    assert decided.status == "decided" and decided.decided_minor == 0
    session.expire_all()
    assert session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all() == []


def test_the_statement_names_the_hold_and_the_decision(app, session: Session,  # type: ignore[no-untyped-def]
                                                       lw: Ledger) -> None:
    from marketplace.clusters.models import Member
    from marketplace.ledger.statements import statement_rows

    dispute = open_damage(session, lw)
    disputes.decide(session, lw.coordinator, dispute.id, "uphold", None, None,  # type: ignore[arg-type]
                    "It stands", closed_at() + timedelta(days=2))
    member = session.get(Member, lw.c)
    assert member is not None
    with app.test_request_context():
        rows = statement_rows(session, lw.owner_c, member, "2026-06")
    whats = [row[1] for row in rows if len(row) > 1]
    assert "Held while a dispute is open" in whats
    assert "Settled by a dispute's decision" in whats


def test_a_card_paid_jobs_money_is_refused_with_what_to_do_instead(
        session: Session, lw: Ledger) -> None:
    """Paid by card, a job's parts move from the platform to each party (Stripe
    transfers), not between the members: nothing a dispute could hold.  The partner is
    told so, and where to go, instead of "no such money"."""
    job = joint_job(session, lw, paid_by_card=True)
    assert job.id is not None
    with pytest.raises(Conflict) as refused:
        disputes.open_dispute(session, lw.owner_d, "job", job.id, "job_share",
                              "My share was for more hours", DONE_AT + timedelta(days=1))
    assert refused.value.code == "paid_by_card"
    assert session.exec(select(MemberDispute)).all() == []
