"""Disputes under concurrency (real threads, own connections; on PostgreSQL row locks and
the unique key decide, on SQLite the one writer): two resolvers decide once, a double tap
and the other party opening at the same instant open one dispute, and a month approved
while a dispute is being opened is never written into afterwards."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlmodel import Session, select

from marketplace.disputes import service as disputes
from marketplace.disputes.models import MemberDispute
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, LedgerEntry, SettlementTransfer
from tests.disputes.conftest import DONE_AT, JULY_2, closed_at, damaged_booking
from tests.ledger.conftest import Ledger, joint_job
from tests.races import at_once

RACERS = 6


def test_simultaneous_decisions_decide_once(app: Flask, session: Session, lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    when = closed_at() + timedelta(days=1)
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id,  # type: ignore[arg-type]
                                    "damage_fee", "Not mine", when)
    dispute_id = dispute.id
    coordinator = lw.coordinator
    outcomes = ["uphold", "cancel", "split", "uphold", "cancel", "split"]
    counter = iter(range(RACERS))

    def decide(own: Session) -> object:
        outcome = outcomes[next(counter)]
        return disputes.decide(own, coordinator, dispute_id, outcome, None,  # type: ignore[arg-type]
                               5_000 if outcome == "split" else None, "Decided",
                               when + timedelta(hours=1)).outcome

    results = at_once(app.extensions["engine"], RACERS, decide)
    winners = [r for r in results if r in ("uphold", "cancel", "split")]
    assert len(winners) == 1, results
    assert all("already_decided" in str(r) or "Conflict" in str(r)
               for r in results if r not in winners), results
    session.expire_all()
    settled = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    expected = {"uphold": 10_001, "cancel": 0, "split": 5_001}[str(winners[0])]
    assert sum(e.amount_minor for e in settled) == expected


def test_both_parties_and_a_double_tap_open_one_dispute(app: Flask, session: Session,
                                                        lw: Ledger) -> None:
    """C disputes the whole damage fee (twice, a double tap) while A disputes its part of
    it: the entries overlap, so exactly one of the three opens, and holds its entries once.
    (B's part does not overlap A's: A and B may each dispute their own.)"""
    made = damaged_booking(session, lw)
    when = closed_at() + timedelta(days=1)
    openers = [lw.owner_c, lw.owner_c, lw.world.owner_a]
    counter = iter(range(len(openers)))

    def open_it(own: Session) -> object:
        return disputes.open_dispute(own, openers[next(counter)], "booking", made.id,  # type: ignore[arg-type]
                                     "damage_fee", "Disputed", when).id

    results = at_once(app.extensions["engine"], len(openers), open_it)
    assert sum(isinstance(r, int) for r in results) == 1, results
    assert all("already_disputed" in str(r) for r in results if not isinstance(r, int))
    session.expire_all()
    [dispute] = session.exec(select(MemberDispute)).all()
    holds = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_HOLD.value)).all()
    assert sum(h.amount_minor for h in holds) == dispute.disputed_minor
    assert sorted(h.amount_minor for h in holds) in ([4_000, 6_001], [6_001])


def test_a_month_approved_while_a_dispute_opens_is_never_written_into(
        app: Flask, session: Session, lw: Ledger) -> None:
    job = joint_job(session, lw)  # confirmed on 21 June: D's share, June's entry
    settlement.draft_for(session, lw.coordinator, "2026-06", JULY_2)
    partner, coordinator, job_id = lw.owner_d, lw.coordinator, job.id
    assert DONE_AT < JULY_2
    counter = iter(range(2))

    def race(own: Session) -> object:
        if next(counter) == 0:
            return disputes.open_dispute(own, partner, "job", job_id,  # type: ignore[arg-type]
                                         "job_share", "More hours", JULY_2).id
        return settlement.approve(own, coordinator, "2026-06", {}, JULY_2).status

    results = at_once(app.extensions["engine"], 2, race)
    assert "approved" in results and any(isinstance(r, int) for r in results), results
    session.expire_all()
    june = settlement.settlement_for(session, lw.world.cluster.id, "2026-06")  # type: ignore[arg-type]
    assert june is not None
    transfers = {t.member_id: (t.amount_minor if t.direction == "to_member" else -t.amount_minor)
                 for t in session.exec(select(SettlementTransfer).where(
                     SettlementTransfer.settlement_id == june.id))}
    nets = {m: n.net for m, n in settlement.month_nets(
        session, lw.world.cluster.id, "2026-06").items() if m is not None and n.net}  # type: ignore[arg-type]
    assert transfers == nets  # June holds exactly what its approval settled
    [hold] = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_HOLD.value)).all()
    # Either the hold waited for the approval and went to July, or the approval waited
    # for the hold and settled June without the disputed share.
    d_net = nets.get(lw.d, 0)
    assert (hold.month == "2026-07") == (d_net != 0)


def test_two_panellists_carrying_the_panel_at_once_decide_once(
        app: Flask, session: Session, lw: Ledger) -> None:
    from marketplace.clusters.models import Agreement
    from marketplace.disputes.models import DisputePanelist
    from tests.jobs.conftest import add_partner

    others = {u.member_id: u for u in (
        lw.owner_d, *(add_partner(session, lw.world, name, f"{name.lower()}@panel.test")
                      for name in ("Epsilon", "Zeta", "Eta")))}
    for agreement in session.exec(select(Agreement)).all():
        agreement.dispute_resolver = "panel"
        session.add(agreement)
    session.commit()
    made = damaged_booking(session, lw)
    when = closed_at() + timedelta(days=1)
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id,  # type: ignore[arg-type]
                                    "damage_fee", "Not mine", when)
    dispute_id = dispute.id
    first, second, third = (others[m] for m in sorted(session.exec(
        select(DisputePanelist.member_id).where(DisputePanelist.dispute_id == dispute_id))))
    disputes.decide(session, first, dispute_id, "split", None, 2_500, "A quarter", when)  # type: ignore[arg-type]
    racers = iter([second, third])

    def vote(own: Session) -> object:
        return disputes.decide(own, next(racers), dispute_id, "split", None, 2_500,  # type: ignore[arg-type]
                               "A quarter", when + timedelta(hours=1)).status

    results = at_once(app.extensions["engine"], 2, vote)
    assert sorted(map(str, results)) == ["Conflict('already_decided')", "decided"], results
    session.expire_all()
    settled = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    assert sum(e.amount_minor for e in settled) == 2_500  # 10 001 * 25 %, rounded to even
