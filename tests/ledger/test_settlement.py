"""Monthly settlement: drafted on the 1st where the cluster is, approved exactly once
(even by two clicks at the same instant), locked afterwards, coordinator only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func
from sqlmodel import Session, select

from marketplace.clusters import service as clusters
from marketplace.clusters.models import Cluster, User
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.ledger import service as ledger
from marketplace.ledger import settlement
from marketplace.ledger.models import (
    PLATFORM,
    EntrySource,
    LedgerEntry,
    Settlement,
    SettlementStatus,
    SettlementTransfer,
)
from tests.conftest import NOW, PASSWORD, World, invite_member
from tests.jobs.conftest import recipients
from tests.ledger.conftest import DONE_AT, JULY, JULY_2, JUNE, Ledger, handoff_job

MID_JUNE = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(model)).one()


def _cluster(session: Session, cluster_id: int) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    assert cluster is not None
    return cluster


def _adjust(session: Session, world: World, amounts: dict[int, list[int]]) -> None:
    """June adjustments made on 2 July, before the month is approved."""
    for member_id, values in amounts.items():
        for amount in values:
            settlement.add_adjustment(session, world.coordinator, JUNE, member_id, amount,
                                      f"Correction of {amount}", JULY_2)


def _drafted(session: Session) -> list[tuple[int, str, str]]:
    session.expire_all()
    return [(s.cluster_id, s.month, s.status) for s in session.exec(
        select(Settlement).order_by(Settlement.id))]  # type: ignore[arg-type]


# --- drafting on the 1st -------------------------------------------------------------


def test_draft_due_drafts_the_previous_month_on_the_first_in_the_clusters_time_zone(
        session: Session, world: World) -> None:
    toronto = _cluster(session, world.cluster.id)
    london, _coordinator = clusters.create_cluster(
        session, clusters.ClusterSettings(name="Thames", currency="EUR", default_locale="en",
                                          timezone="UTC"),
        "Thames coordinator", "coord@thames.test", PASSWORD, NOW)
    thames_member = invite_member(session, _coordinator, "Thames Turf", "t@thames.test")
    ledger.record(session, toronto, EntrySource.PLATFORM_FEE, 1, world.member_a_id, PLATFORM,
                  500, MID_JUNE, currency=toronto.currency)
    ledger.record(session, london, EntrySource.PLATFORM_FEE, 2, thames_member.member_id,
                  PLATFORM, 700, MID_JUNE, currency=london.currency)
    session.commit()

    # 23:30 UTC on 30 June: June is still running everywhere; May had no entries.
    assert settlement.draft_due(session, datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == 0
    # 00:30 UTC on 1 July: the 1st in London, still 30 June (20:30) in Toronto.
    first_utc = datetime(2026, 7, 1, 0, 30, tzinfo=UTC)
    assert settlement.draft_due(session, first_utc) == 1
    assert _drafted(session) == [(london.id, JUNE, "draft")]
    # 04:30 UTC is 00:30 on the 1st in Toronto: now its June is drafted too.
    first_toronto = datetime(2026, 7, 1, 4, 30, tzinfo=UTC)
    assert settlement.draft_due(session, first_toronto) == 1
    # Running the sweep again (a restart, a second scheduler) drafts nothing more;
    # the rival cluster, which has no entries, never gets a settlement.
    assert settlement.draft_due(session, first_toronto) == 0
    assert settlement.draft_due(session, JULY_2) == 0
    assert _drafted(session) == [(london.id, JUNE, "draft"), (toronto.id, JUNE, "draft")]
    drafted = settlement.settlement_for(session, toronto.id, JUNE)  # type: ignore[arg-type]
    assert drafted is not None and drafted.drafted_at == first_toronto
    # In August only July would be due, and July has no entries.
    assert settlement.draft_due(session, datetime(2026, 8, 1, 12, tzinfo=UTC)) == 0
    assert _count(session, Settlement) == 2


def test_draft_is_idempotent_and_only_for_a_finished_month(session: Session,
                                                           world: World) -> None:
    one = settlement.draft_for(session, world.coordinator, JUNE, JULY_2)
    two = settlement.draft_for(session, world.coordinator, JUNE, JULY_2)
    assert one.id == two.id and _count(session, Settlement) == 1
    with pytest.raises(Conflict) as current:
        settlement.draft_for(session, world.coordinator, JULY, JULY_2)
    assert current.value.code == "month_not_over"
    with pytest.raises(Forbidden):
        settlement.draft_for(session, world.owner_a, "2026-05", JULY_2)
    assert _count(session, Settlement) == 1


# --- approval -------------------------------------------------------------------------


def test_approval_refusals(session: Session, world: World) -> None:
    _adjust(session, world, {world.member_a_id: [5_000]})
    coordinator = world.coordinator
    with pytest.raises(Conflict) as not_over:  # 21 June: June is not over
        settlement.approve(session, coordinator, JUNE, {}, DONE_AT)
    assert not_over.value.code == "month_not_over"
    with pytest.raises(Conflict) as current:  # 1 July 03:00 UTC is still June in Toronto
        settlement.approve(session, coordinator, JUNE, {},
                           datetime(2026, 7, 1, 3, 0, tzinfo=UTC))
    assert current.value.code == "month_not_over"
    with pytest.raises(Conflict) as undrafted:
        settlement.approve(session, coordinator, JUNE, {}, JULY_2)
    assert undrafted.value.code == "not_drafted"
    with pytest.raises(ValidationError):
        settlement.approve(session, coordinator, "June", {}, JULY_2)
    settlement.draft_for(session, coordinator, JUNE, JULY_2)
    for member_user in (world.owner_a, world.crew_a, world.owner_b):
        with pytest.raises(Forbidden) as member:
            settlement.approve(session, member_user, JUNE, {}, JULY_2)
        assert member.value.code == "coordinator_only"
    # The rival coordinator approves its own cluster's June, which was never drafted.
    with pytest.raises(Conflict) as rival:
        settlement.approve(session, world.other_coordinator, JUNE, {}, JULY_2)
    assert rival.value.code == "not_drafted"
    assert _count(session, SettlementTransfer) == 0

    approved = settlement.approve(session, coordinator, JUNE, {}, JULY_2)
    assert (approved.status, approved.approved_at, approved.approved_by_id) == (
        SettlementStatus.APPROVED, JULY_2, coordinator.id)
    with pytest.raises(Conflict) as again:
        settlement.approve(session, coordinator, JUNE, {}, JULY_2 + timedelta(hours=1))
    assert again.value.code == "already_approved"
    assert _count(session, SettlementTransfer) == 1


def test_approval_records_one_transfer_per_member_and_tells_them(session: Session,
                                                                  lw: Ledger) -> None:
    world = lw.world
    # A is owed 50.00, B owes 30.00, C's two adjustments cancel out, D has nothing.
    _adjust(session, world, {lw.a: [5_000], lw.b: [-3_000], lw.c: [200, -200]})
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    settlement.approve(session, lw.coordinator, JUNE, {lw.a: " BANK-0042 "}, JULY_2)
    session.expire_all()
    transfers = session.exec(select(SettlementTransfer).order_by(
        SettlementTransfer.member_id)).all()  # type: ignore[arg-type]
    assert [(t.member_id, t.direction, t.amount_minor, t.currency, t.method)
            for t in transfers] == [(lw.a, "to_member", 5_000, "CAD", "manual"),
                                    (lw.b, "from_member", 3_000, "CAD", "manual")]
    drafted = settlement.settlement_for(session, world.cluster.id, JUNE)  # type: ignore[arg-type]
    assert drafted is not None
    assert [t.reference for t in transfers] == ["BANK-0042", f"{JUNE}-{drafted.id}-{lw.b}"]
    # Only the people of members with a transfer hear of it (their crews too).
    assert recipients(session, "settlement.approved") == sorted(
        [world.owner_a.id, world.crew_a.id, world.owner_b.id, lw.eq.crew_b.id])
    from tests.jobs.conftest import notifications
    [note] = [n for n in notifications(session, "settlement.approved")
              if n.user_id == world.owner_b.id]
    assert (note.params, note.payload, note.link) == ({"month": JUNE}, {"month": JUNE},
                                                      "/ledger/2026-06")


def test_a_locked_month_takes_no_adjustment_and_late_entries_go_to_the_next_month(
        session: Session, lw: Ledger) -> None:
    handoff_job(session, lw)  # confirmed 21 June
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    settlement.approve(session, lw.coordinator, JUNE, {}, JULY_2)
    june = [e.id for e in settlement.statement(session, lw.world.cluster.id, lw.b, JUNE)]
    entries, notes = _count(session, LedgerEntry), _count(session, SettlementTransfer)

    with pytest.raises(Conflict) as locked:
        settlement.add_adjustment(session, lw.coordinator, JUNE, lw.a, 1_000, "Forgot fuel",
                                  JULY_2)
    assert locked.value.code == "month_locked"
    session.rollback()
    assert (_count(session, LedgerEntry), _count(session, SettlementTransfer)) == (entries,
                                                                                   notes)
    # The correction goes into the current month instead ...
    moved = settlement.add_adjustment(session, lw.coordinator, JULY, lw.a, 1_000,
                                      "Forgot fuel", JULY_2)
    assert moved.month == JULY
    # ... and a job for June work confirmed in July is July's money.
    handoff_job(session, lw, title="Late June job", confirm_at=JULY_2 + timedelta(days=1))
    late = [e for e in settlement.statement(session, lw.world.cluster.id, lw.b, JULY)]
    assert [(e.source, e.month) for e in late] == [("referral_fee", JULY),
                                                    ("platform_fee", JULY)]
    assert [e.id for e in settlement.statement(session, lw.world.cluster.id, lw.b,
                                               JUNE)] == june


# --- two approvals at the same instant -------------------------------------------------


def test_two_simultaneous_approvals_record_the_transfers_once(
        app: Flask, session: Session, lw: Ledger) -> None:
    world = lw.world
    _adjust(session, world, {lw.a: [5_000], lw.b: [-3_000], lw.c: [1_234]})
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    second_coordinator = User(cluster_id=world.cluster.id, email="co2@valley.test",
                              name="Second coordinator", password_hash="x",
                              role=world.coordinator.role, created_at=NOW)
    session.add(second_coordinator)
    session.commit()
    actors = [lw.coordinator.id, second_coordinator.id]
    engine = app.extensions["engine"]
    barrier = threading.Barrier(len(actors), timeout=30)
    outcomes: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def approve(user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()  # release SQLite's write lock before both start together
            barrier.wait()
            try:
                settlement.approve(own, actor, JUNE, {}, JULY_2)
                result = ("approved", user_id, "")
            except Conflict as refused:
                result = ("conflict", user_id, refused.code)
            except Exception as error:  # noqa: BLE001 - reported below, not swallowed
                result = ("error", user_id, repr(error))
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(u,)) for u in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(o[0] for o in outcomes) == ["approved", "conflict"], outcomes
    [winner] = [o[1] for o in outcomes if o[0] == "approved"]
    assert [o[2] for o in outcomes if o[0] == "conflict"] == ["already_approved"]

    session.expire_all()
    [approved] = session.exec(select(Settlement)).all()
    assert (approved.status, approved.approved_by_id) == ("approved", winner)
    transfers = session.exec(select(SettlementTransfer)).all()
    assert sorted((t.member_id, t.direction, t.amount_minor) for t in transfers) == sorted([
        (lw.a, "to_member", 5_000), (lw.b, "from_member", 3_000),
        (lw.c, "to_member", 1_234)])
    assert {t.settlement_id for t in transfers} == {approved.id}
    owners = [world.owner_a.id, world.crew_a.id, world.owner_b.id, lw.eq.crew_b.id,
              lw.owner_c.id]
    assert recipients(session, "settlement.approved") == sorted(owners)


def test_an_adjustment_racing_the_approval_is_either_refused_or_settled(
        app: Flask, session: Session, lw: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adjustment has checked that June is open when the approval runs: it must not
    land in the locked month without being in its transfers."""
    _adjust(session, lw.world, {lw.a: [5_000]})
    settlement.draft_for(session, lw.coordinator, JUNE, JULY_2)
    session.commit()
    engine = app.extensions["engine"]
    checked, approved = threading.Event(), threading.Event()
    real_record = settlement.record
    outcomes: dict[str, str] = {}

    def record_after_the_approval(*args: object, **kwargs: object) -> object:
        checked.set()  # June was open when checked; let the approval run now
        approved.wait(1)  # where the database lets it, it finishes first
        return real_record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(settlement, "record", record_after_the_approval)

    def adjust() -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, lw.coordinator.id)
            try:
                settlement.add_adjustment(own, actor, JUNE, lw.b, 700, "Racing", JULY_2)  # type: ignore[arg-type]
                outcomes["adjust"] = "ok"
            except Conflict as refused:
                outcomes["adjust"] = refused.code

    def approve() -> None:
        checked.wait(10)
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, lw.coordinator.id)
            settlement.approve(own, actor, JUNE, {}, JULY_2)  # type: ignore[arg-type]
            outcomes["approve"] = "ok"
        approved.set()

    threads = [threading.Thread(target=adjust), threading.Thread(target=approve)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes.get("approve") == "ok", outcomes
    session.commit()
    session.expire_all()
    nets = settlement.month_nets(session, lw.world.cluster.id, JUNE)  # type: ignore[arg-type]
    transfers = {t.member_id: t.amount_minor for t in session.exec(select(SettlementTransfer))}
    # Whatever June holds is exactly what was settled.
    assert transfers == {m: abs(n.net) for m, n in nets.items() if m is not None and n.net}
    if outcomes["adjust"] == "ok":
        assert transfers[lw.b] == 700
    else:
        assert outcomes["adjust"] == "month_locked" and lw.b not in transfers
