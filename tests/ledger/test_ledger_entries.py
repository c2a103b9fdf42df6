"""Ledger entries: once per fact, never edited, the platform account, balances,
nobody paying itself, the cluster's month, and coordinator adjustments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from marketplace.clusters.models import Cluster
from marketplace.equipment import booking
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.jobs import completion
from marketplace.ledger import service as ledger
from marketplace.ledger import settlement
from marketplace.ledger.models import PLATFORM, EntrySource, LedgerEntry, entry_key
from marketplace.money import InvalidShares
from tests.conftest import NOW, World
from tests.ledger.conftest import (
    DONE_AT,
    JULY,
    JULY_2,
    JUNE,
    NEXT_MONDAY,
    TUESDAY,
    Ledger,
    all_entries,
    at,
    handoff_job,
    lettered,
)


def _count(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(LedgerEntry)).one()


def _cluster(session: Session, world: World) -> Cluster:
    cluster = session.get(Cluster, world.cluster.id)
    assert cluster is not None
    return cluster


# --- once per fact -------------------------------------------------------------------


@pytest.mark.parametrize("payee", ["member", "platform"])
def test_recording_the_same_fact_twice_is_refused_by_the_database(
        session: Session, world: World, payee: str) -> None:
    cluster = _cluster(session, world)
    to = world.member_b_id if payee == "member" else PLATFORM
    first = ledger.record(session, cluster, EntrySource.PLATFORM_FEE, 41, world.member_a_id,
                          to, 1_250, NOW, currency=cluster.currency)
    session.commit()
    assert first is not None and first.entry_key == entry_key("platform_fee", 41,
                                                              world.member_a_id, to)
    # The same fact again -- even with another amount -- is refused, NULL payee or not.
    ledger.record(session, cluster, EntrySource.PLATFORM_FEE, 41, world.member_a_id, to,
                  999, NOW, currency=cluster.currency)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert [(e.payee_member_id, e.amount_minor) for e in all_entries(session)] == [(to, 1_250)]
    # A different fact (another source id, or the other direction) is a new entry.
    ledger.record(session, cluster, EntrySource.PLATFORM_FEE, 42, world.member_a_id, to,
                  999, NOW, currency=cluster.currency)
    session.commit()
    assert _count(session) == 2


def test_confirming_a_job_twice_writes_its_entries_once(session: Session, lw: Ledger) -> None:
    job = handoff_job(session, lw)
    before = lettered(session, lw)
    with pytest.raises(Conflict) as twice:
        completion.confirm_completion(session, lw.world.owner_a, job.id, DONE_AT)  # type: ignore[arg-type]
    assert twice.value.code == "wrong_state"
    session.rollback()
    assert lettered(session, lw) == before == [
        ("referral_fee", "B", "A", 61_728), ("platform_fee", "B", "P", 12_346)]


def test_cancelling_twice_refunds_once(session: Session, lw: Ledger) -> None:
    made = booking.book(session, lw.owner_c, lw.trailer.id, at(TUESDAY, 9), at(TUESDAY, 11),  # type: ignore[arg-type]
                        NOW)
    booking.cancel(session, lw.owner_c, made.id, "Rain", NOW)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as twice:
        booking.cancel(session, lw.owner_c, made.id, "Rain", NOW)  # type: ignore[arg-type]
    assert twice.value.code == "booking_changed"
    session.rollback()
    assert sorted(lettered(session, lw)) == sorted([
        ("booking", "C", "A", 5_480), ("booking", "C", "B", 3_654),
        ("booking_refund", "A", "C", 5_480), ("booking_refund", "B", "C", 3_654)])


# --- the table refuses nonsense even if a caller tried -------------------------------


@pytest.mark.parametrize("payer, payee, amount", [
    ("a", "a", 100),  # a member paying itself
    (None, None, 100),  # the platform paying itself
    ("a", "b", 0),  # nothing moves
    ("a", "b", -100),  # a negative amount (a reversal is an entry the other way)
])
def test_database_refuses_entries_that_move_nothing(session: Session, world: World,
                                                    payer: str | None, payee: str | None,
                                                    amount: int) -> None:
    ids = {"a": world.member_a_id, "b": world.member_b_id, None: None}
    session.add(LedgerEntry(
        cluster_id=world.cluster.id, source="adjustment", source_id=1,  # type: ignore[arg-type]
        entry_key=f"raw:{payer}:{payee}:{amount}", payer_member_id=ids[payer],
        payee_member_id=ids[payee], amount_minor=amount, currency="CAD", month=JUNE,
        created_at=NOW))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert _count(session) == 0


def test_record_writes_nothing_for_self_payment_or_no_money(session: Session,
                                                            world: World) -> None:
    cluster = _cluster(session, world)
    a, b = world.member_a_id, world.member_b_id
    assert ledger.record(session, cluster, EntrySource.BOOKING, 1, a, a, 500, NOW,
                         currency=cluster.currency) is None
    assert ledger.record(session, cluster, EntrySource.BOOKING, 2, a, b, 0, NOW,
                         currency=cluster.currency) is None
    assert ledger.record(session, cluster, EntrySource.BOOKING, 3, a, b, -5, NOW,
                         currency=cluster.currency) is None
    # A co-owner paying a fee keeps its own part: only the others' parts are written.
    written = ledger.record_split(session, cluster, EntrySource.BOOKING, 4, a, 1_001,
                                  {a: 5_000, b: 5_000}, NOW, currency=cluster.currency)
    assert [(e.payer_member_id, e.payee_member_id, e.amount_minor) for e in written] == [
        (a, b, 500)]  # 500.5 each: the odd cent goes to the lower member id, A keeps it
    session.commit()
    assert _count(session) == 1


@pytest.mark.parametrize("shares", [[5_000, 4_999], [10_001, -1], [], [3_000.0, 7_000]])
def test_shares_not_summing_to_the_whole_are_refused(session: Session, world: World,
                                                     shares: list[int]) -> None:
    cluster = _cluster(session, world)
    payees = {world.member_b_id + 100 * i: s for i, s in enumerate(shares)}
    with pytest.raises(InvalidShares):
        ledger.record_split(session, cluster, EntrySource.BOOKING, 9, world.member_a_id,
                            1_000, payees, NOW, currency=cluster.currency)
    session.rollback()
    assert _count(session) == 0


# --- corrections are new entries ------------------------------------------------------


def test_a_refund_is_a_mirror_entry_and_the_original_stays(session: Session,
                                                           lw: Ledger) -> None:
    made = booking.book(session, lw.owner_c, lw.trailer.id, at(TUESDAY, 9), at(TUESDAY, 11),  # type: ignore[arg-type]
                        NOW)
    originals = [(e.id, e.payer_member_id, e.payee_member_id, e.amount_minor, e.created_at)
                 for e in all_entries(session)]
    assert ledger.balance(session, lw.c) == -9_134
    later = at(NEXT_MONDAY, 8)  # 25 hours before: no late fee
    booking.cancel(session, lw.owner_c, made.id, "Job moved", later)  # type: ignore[arg-type]
    rows = all_entries(session)
    # The original rows are untouched ...
    assert [(e.id, e.payer_member_id, e.payee_member_id, e.amount_minor, e.created_at)
            for e in rows if e.source == "booking"] == originals
    # ... and the refund moves the same cents back, dated when it happened.
    refunds = [e for e in rows if e.source == "booking_refund"]
    assert sorted((e.payer_member_id, e.payee_member_id, e.amount_minor) for e in refunds) == \
        sorted((payee, payer, amount) for _id, payer, payee, amount, _at in originals)
    assert {e.created_at for e in refunds} == {later}
    for member in (lw.a, lw.b, lw.c):
        assert ledger.balance(session, member) == 0


def test_reverse_mirrors_platform_entries_too(session: Session, world: World) -> None:
    cluster = _cluster(session, world)
    a = world.member_a_id
    ledger.record(session, cluster, EntrySource.ADJUSTMENT, 7, PLATFORM, a, 300, NOW,
                  memo="Fuel", currency=cluster.currency)
    session.commit()
    mirrored = ledger.reverse(session, cluster, EntrySource.ADJUSTMENT, 7,
                              EntrySource.BOOKING_REFUND, NOW)
    session.commit()
    assert [(e.payer_member_id, e.payee_member_id, e.amount_minor, e.memo)
            for e in mirrored] == [(a, None, 300, "Fuel")]
    assert ledger.balance(session, a) == 0
    assert _count(session) == 2


# --- balances and the platform account ---------------------------------------------


def test_balance_is_the_sum_of_a_members_entries(session: Session, lw: Ledger) -> None:
    handoff_job(session, lw)
    booking.book(session, lw.world.owner_b, lw.trailer.id, at(TUESDAY, 13), at(TUESDAY, 14),  # type: ignore[arg-type]
                 NOW)
    rows = all_entries(session)
    platform = [e for e in rows if e.payee_member_id is None]
    assert [(e.source, e.payer_member_id, e.amount_minor) for e in platform] == [
        ("platform_fee", lw.b, 12_346)]
    assert ledger.balance(session, lw.a) == 61_728 + 2_740
    assert ledger.balance(session, lw.b) == -61_728 - 12_346 - 2_740
    assert ledger.balance(session, lw.c) == 0
    members = sum(ledger.balance(session, m) for m in (lw.a, lw.b, lw.c, lw.d))
    platform_net = sum(e.amount_minor for e in rows if e.payee_member_id is None) - \
        sum(e.amount_minor for e in rows if e.payer_member_id is None)
    assert members + platform_net == 0
    assert {(e.currency, e.cluster_id) for e in rows} == {("CAD", lw.world.cluster.id)}


@pytest.mark.parametrize("when, month", [
    (datetime(2026, 7, 1, 3, 59, tzinfo=UTC), JUNE),  # 23:59 on 30 June in Toronto
    (datetime(2026, 7, 1, 4, 0, tzinfo=UTC), JULY),  # midnight in Toronto
    (datetime(2026, 1, 1, 4, 59, tzinfo=UTC), "2025-12"),  # winter: UTC-5
    (datetime(2026, 1, 1, 5, 0, tzinfo=UTC), "2026-01"),
])
def test_an_entry_belongs_to_its_month_in_the_cluster_time_zone(
        session: Session, world: World, when: datetime, month: str) -> None:
    entry = ledger.record(session, _cluster(session, world), EntrySource.PLATFORM_FEE, 1,
                          world.member_a_id, PLATFORM, 100, when, currency="CAD")
    assert entry is not None and entry.month == month


# --- adjustments ---------------------------------------------------------------------


def test_coordinator_adjustment_is_audited_and_moves_money_with_the_platform(
        session: Session, world: World) -> None:
    coordinator = world.coordinator
    credit = settlement.add_adjustment(session, coordinator, JUNE, world.member_a_id, 2_500,
                                       "  Fuel reimbursement ", JULY_2)
    charge = settlement.add_adjustment(session, coordinator, JUNE, world.member_b_id, -1_000,
                                       "Late paperwork", JULY_2)
    assert (credit.source, credit.payer_member_id, credit.payee_member_id,
            credit.amount_minor) == ("adjustment", None, world.member_a_id, 2_500)
    assert (charge.payer_member_id, charge.payee_member_id, charge.amount_minor) == (
        world.member_b_id, None, 1_000)
    assert (credit.memo, credit.created_by_id, credit.created_at, credit.month) == (
        "Fuel reimbursement", coordinator.id, JULY_2, JUNE)
    assert charge.source_id == credit.source_id + 1
    assert ledger.balance(session, world.member_a_id) == 2_500
    assert ledger.balance(session, world.member_b_id) == -1_000


@pytest.mark.parametrize("amount, reason, fields", [
    (0, "Fuel", {"amount"}),
    (500, "   ", {"reason"}),
    (0, "", {"amount", "reason"}),
    (500, "x" * 301, {"reason"}),
    (10_000_000_01, "Too much", {"amount"}),
])
def test_adjustment_needs_a_reason_and_an_amount(session: Session, world: World, amount: int,
                                                 reason: str, fields: set[str]) -> None:
    with pytest.raises(ValidationError) as refused:
        settlement.add_adjustment(session, world.coordinator, JUNE, world.member_a_id, amount,
                                  reason, JULY_2)
    assert refused.value.status == 422
    assert set(refused.value.fields) == fields
    session.rollback()
    assert _count(session) == 0


def test_only_the_coordinator_adjusts_and_only_its_own_members(session: Session,
                                                               world: World) -> None:
    for member_user in (world.owner_a, world.crew_a):
        with pytest.raises(Forbidden):
            settlement.add_adjustment(session, member_user, JUNE, world.member_a_id, 500,
                                      "Bonus", JULY_2)
    rival_member = world.other_owner.member_id
    assert rival_member is not None
    with pytest.raises(NotFound):
        settlement.add_adjustment(session, world.coordinator, JUNE, rival_member, 500,
                                  "Bonus", JULY_2)
    with pytest.raises(Conflict) as future:
        settlement.add_adjustment(session, world.coordinator, "2026-08", world.member_a_id,
                                  500, "Bonus", JULY_2)
    assert future.value.code == "month_in_future"
    with pytest.raises(ValidationError) as month:
        settlement.add_adjustment(session, world.coordinator, "2026-13", world.member_a_id,
                                  500, "Bonus", JULY_2)
    assert month.value.code == "invalid_month"
    session.rollback()
    assert _count(session) == 0
