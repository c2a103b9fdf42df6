"""Rotation of co-owned machines: fair apportionment, custody, swaps and hand-overs."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, select

from marketplace.equipment import booking, rotation
from marketplace.equipment.models import (
    Booking,
    Custody,
    CustodySwap,
    Equipment,
    RotationPlan,
    SwapStatus,
)
from marketplace.errors import Conflict, DomainError, Forbidden, ValidationError
from marketplace.realtime.models import Notification
from tests.conftest import NOW
from tests.equipment.conftest import (
    CO_HOUR_RATE,
    NEXT_MONDAY,
    TORONTO,
    Equip,
    at,
    count,
    entries,
    notifications,
    recipients,
    written,
)

# --- apportionment, as pure functions ------------------------------------------------


@st.composite
def share_maps(draw: Any) -> dict[int, int]:
    """2 to 6 co-owners (arbitrary member ids) with positive shares summing to 10 000."""
    n = draw(st.integers(2, 6))
    cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=n - 1, max_size=n - 1,
                                unique=True)))
    bounds = [0, *cuts, 10_000]
    ids = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    return {member: b - a for member, a, b in zip(ids, bounds, bounds[1:], strict=False)}


@given(shares=share_maps(), periods=st.integers(1, 300))
def test_every_count_stays_within_two_periods_of_its_share(shares: dict[int, int],
                                                           periods: int) -> None:
    holders = rotation.apportion(shares, periods)
    assert len(holders) == periods and set(holders) <= set(shares)
    held: Counter[int] = Counter()
    for k, member in enumerate(holders, start=1):  # every horizon, not just the last
        held[member] += 1
        for owner, share in shares.items():
            assert abs(held[owner] - Fraction(k * share, 10_000)) <= 2, (k, owner)


@given(shares=share_maps(), periods=st.integers(2, 300))
def test_nobody_holds_twice_in_a_row_when_avoidable(shares: dict[int, int],
                                                    periods: int) -> None:
    if max(shares.values()) > 5_000:
        return  # someone owns more than half: back-to-back periods are unavoidable
    holders = rotation.apportion(shares, periods)
    assert all(a != b for a, b in zip(holders, holders[1:], strict=False))


@given(shares=share_maps(), first=st.integers(0, 150), more=st.integers(0, 150),
       data=st.data())
def test_apportionment_is_deterministic_and_extends_itself(
        shares: dict[int, int], first: int, more: int, data: st.DataObject) -> None:
    whole = rotation.apportion(shares, first + more)
    shuffled = dict(data.draw(st.permutations(list(shares.items()))))
    assert rotation.apportion(shuffled, first + more) == whole  # dict order is irrelevant
    head = rotation.apportion(shares, first)
    # Extending an assigned schedule later gives the same plan as computing it at once.
    assert head + rotation.apportion(shares, more, head) == whole


def test_sixty_forty_alternates_with_an_extra_period_for_the_larger_share() -> None:
    holders = rotation.apportion({7: 6_000, 3: 4_000}, 10)
    assert Counter(holders) == {7: 6, 3: 4}
    assert holders[:2] == [7, 3]


# --- plans and custody in the database -----------------------------------------------


def plan(session: Session, eq: Equip, co_owned: Equipment, period: str = "week",
         starts_on: date = NEXT_MONDAY, now: datetime = NOW) -> RotationPlan:
    return rotation.create_plan(session, eq.world.coordinator, co_owned.id, period,  # type: ignore[arg-type]
                                starts_on, now)


def periods(session: Session, plan_id: int) -> list[tuple[int, int, datetime, datetime]]:
    session.expire_all()
    return [(c.index, c.member_id, c.starts_at, c.ends_at) for c in session.exec(
        select(Custody).where(Custody.plan_id == plan_id).order_by(Custody.index))]  # type: ignore[arg-type]


def test_new_plan_assigns_the_current_and_next_eight_periods(session: Session, eq: Equip,
                                                             co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    rows = periods(session, made.id)  # type: ignore[arg-type]
    shares = {world.member_a_id: 6_000, world.member_b_id: 4_000}
    assert [r[0] for r in rows] == list(range(rotation.HORIZON + 1))
    assert [r[1] for r in rows] == rotation.apportion(shares, rotation.HORIZON + 1)
    # Whole weeks from local midnight on Monday, back to back.
    assert rows[0][2] == at(NEXT_MONDAY, 0)
    for (_, _, _, ends), (_, _, starts, _) in zip(rows, rows[1:], strict=False):
        assert ends == starts
    assert all(r[3] - r[2] == timedelta(days=7) for r in rows)  # no clock change in summer


def test_ensure_periods_is_idempotent_and_keeps_eight_ahead(session: Session, eq: Equip,
                                                            co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    first = periods(session, made.id)  # type: ignore[arg-type]
    ids = session.exec(select(Custody.id).order_by(Custody.id)).all()  # type: ignore[arg-type]
    assert rotation.ensure_periods(session, made, co_owned, NOW) == 0
    assert rotation.ensure_periods(session, made, co_owned, NOW + timedelta(days=6)) == 0
    assert periods(session, made.id) == first  # type: ignore[arg-type]
    assert session.exec(select(Custody.id).order_by(Custody.id)).all() == ids  # type: ignore[arg-type]
    # Three weeks into the plan the current period is 2: periods up to 10 are assigned.
    later = at(NEXT_MONDAY + timedelta(days=15), 9)
    assert rotation.ensure_periods(session, made, co_owned, later) == 2
    assert rotation.ensure_periods(session, made, co_owned, later) == 0
    rows = periods(session, made.id)  # type: ignore[arg-type]
    assert rows[:len(first)] == first  # assigned periods never move
    assert [r[0] for r in rows] == list(range(11))
    shares = {world.member_a_id: 6_000, world.member_b_id: 4_000}
    assert [r[1] for r in rows] == rotation.apportion(shares, 11)


def test_two_sweeps_at_once_assign_each_period_once(app: Flask, session: Session, eq: Equip,
                                                    co_owned: Equipment) -> None:
    made = plan(session, eq, co_owned)
    plan_id = made.id
    session.commit()
    engine = app.extensions["engine"]
    later = at(NEXT_MONDAY + timedelta(days=28), 9)  # period 4: 4 more to assign
    barrier = threading.Barrier(2, timeout=30)
    added: list[int | str] = []

    def run() -> None:
        with Session(engine, expire_on_commit=False) as own:
            own_plan = own.get(RotationPlan, plan_id)
            own_machine = own.get(Equipment, co_owned.id)
            assert own_plan is not None and own_machine is not None
            own.commit()
            barrier.wait()
            try:
                added.append(rotation.ensure_periods(own, own_plan, own_machine, later))
            except Exception as error:  # noqa: BLE001 - reported below
                added.append(repr(error))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(added, key=str) == [0, 4]
    indexes = [r[0] for r in periods(session, plan_id)]  # type: ignore[arg-type]
    assert indexes == list(range(13))


def test_daily_periods_follow_local_midnight_across_daylight_saving(session: Session,
                                                                   eq: Equip,
                                                                   co_owned: Equipment) -> None:
    made = plan(session, eq, co_owned, "day", date(2026, 10, 29))
    rows = periods(session, made.id)  # type: ignore[arg-type]
    lengths = {r[2].date(): r[3] - r[2] for r in rows}
    fall_back = at(date(2026, 11, 1), 0)
    assert [r[3] - r[2] for r in rows if r[2] == fall_back] == [timedelta(hours=25)]
    assert sum(1 for v in lengths.values() if v == timedelta(hours=24)) == len(rows) - 1


def test_plan_input_is_checked(session: Session, eq: Equip, co_owned: Equipment,
                               machine: Equipment) -> None:
    world = eq.world
    cases: list[tuple[Any, str]] = [
        (lambda: rotation.create_plan(session, world.coordinator, co_owned.id, "month",
                                      NEXT_MONDAY, NOW), "invalid_plan"),
        (lambda: rotation.create_plan(session, world.coordinator, co_owned.id, "week",
                                      date(2026, 5, 31), NOW), "invalid_plan"),
        (lambda: rotation.create_plan(session, world.owner_a, machine.id, "week",
                                      NEXT_MONDAY, NOW), "not_co_owned"),
        (lambda: rotation.create_plan(session, world.crew_a, co_owned.id, "week",
                                      NEXT_MONDAY, NOW), "not_equipment_manager"),
        (lambda: rotation.create_plan(session, eq.owner_c, co_owned.id, "week",
                                      NEXT_MONDAY, NOW), "not_equipment_manager"),
    ]
    for call, code in cases:
        with pytest.raises(DomainError) as refused:
            call()
        assert refused.value.code == code
        session.rollback()
        assert count(session, RotationPlan) == 0 and count(session, Custody) == 0
    # A co-owner may start it too; a second plan is refused.
    rotation.create_plan(session, world.owner_b, co_owned.id, "week", NEXT_MONDAY, NOW)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as twice:
        plan(session, eq, co_owned)
    assert twice.value.code == "plan_exists"


# --- custody and booking -------------------------------------------------------------


def _week(session: Session, plan_id: int, index: int) -> Custody:
    session.expire_all()
    return session.exec(select(Custody).where(Custody.plan_id == plan_id,
                                              Custody.index == index)).one()


def test_custodian_books_its_period_free(session: Session, eq: Equip,
                                         co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    assert _week(session, made.id, 0).member_id == world.member_a_id  # type: ignore[arg-type]
    tuesday = NEXT_MONDAY + timedelta(days=1)
    free = booking.book(session, world.crew_a, co_owned.id, at(tuesday, 9), at(tuesday, 17),  # type: ignore[arg-type]
                        NOW)
    assert free.in_custody and free.price_minor == 0 and free.status == "confirmed"
    assert entries(session) == []
    # Before the rotation starts nobody holds it, so the same booking costs money.
    before_plan = booking.book(session, world.crew_a, co_owned.id,  # type: ignore[arg-type]
                               at(date(2026, 6, 2), 9), at(date(2026, 6, 2), 11), NOW)
    assert not before_plan.in_custody and before_plan.price_minor == 2 * CO_HOUR_RATE


def test_others_cannot_book_into_someone_elses_custody(session: Session, eq: Equip,
                                                       co_owned: Equipment) -> None:
    world = eq.world
    plan(session, eq, co_owned)
    tuesday = NEXT_MONDAY + timedelta(days=1)
    slots = [(world.owner_b, at(tuesday, 9), at(tuesday, 11)),  # A's week, B co-owner
             (eq.owner_c, at(tuesday, 9), at(tuesday, 11)),  # A's week, outsider
             # A's custodian booking running into B's week (starts Monday the 15th)
             (world.owner_a, at(NEXT_MONDAY + timedelta(days=6), 20),
              at(NEXT_MONDAY + timedelta(days=7), 2))]
    for actor, starts_at, ends_at in slots:
        before = written(session)
        with pytest.raises(Conflict) as refused:
            booking.book(session, actor, co_owned.id, starts_at, ends_at, NOW)  # type: ignore[arg-type]
        assert refused.value.code == "held_in_rotation"
        session.rollback()
        assert written(session) == before


def test_released_period_can_be_booked_by_others_for_the_fee(session: Session, eq: Equip,
                                                             co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    week0 = _week(session, made.id, 0)  # type: ignore[arg-type]
    with pytest.raises(Forbidden) as not_holder:
        rotation.release(session, world.owner_b, week0.id, NOW)  # type: ignore[arg-type]
    assert not_holder.value.code == "not_holder"
    session.rollback()
    assert not _week(session, made.id, 0).released  # type: ignore[arg-type]
    rotation.release(session, world.crew_a, week0.id, NOW)  # type: ignore[arg-type]
    assert _week(session, made.id, 0).released  # type: ignore[arg-type]
    tuesday = NEXT_MONDAY + timedelta(days=1)
    c_booking = booking.book(session, eq.owner_c, co_owned.id, at(tuesday, 9),  # type: ignore[arg-type]
                             at(tuesday, 11), NOW)
    assert not c_booking.in_custody and c_booking.price_minor == 2 * CO_HOUR_RATE
    b_booking = booking.book(session, world.owner_b, co_owned.id, at(tuesday, 12),  # type: ignore[arg-type]
                             at(tuesday, 13), NOW)
    assert not b_booking.in_custody
    assert entries(session) == [("booking", eq.member_c_id, world.member_a_id, 5_480),
                                ("booking", eq.member_c_id, world.member_b_id, 3_654),
                                ("booking", world.member_b_id, world.member_a_id, 2_740)]
    over = week0.ends_at + timedelta(minutes=1)
    with pytest.raises(Conflict) as passed:
        rotation.release(session, world.owner_a, week0.id, over)  # type: ignore[arg-type]
    assert passed.value.code == "period_passed"


def test_swap_exchanges_two_future_periods_when_the_other_accepts(session: Session, eq: Equip,
                                                                  co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    rows_before = periods(session, made.id)  # type: ignore[arg-type]
    a_week, b_week = _week(session, made.id, 2), _week(session, made.id, 1)  # type: ignore[arg-type]
    assert (a_week.member_id, b_week.member_id) == (world.member_a_id, world.member_b_id)
    swap = rotation.request_swap(session, world.owner_a, a_week.id, b_week.id, NOW)  # type: ignore[arg-type]
    assert swap.status == SwapStatus.PENDING
    assert recipients(session, "custody.swap_requested") == sorted([world.owner_b.id,
                                                                    eq.crew_b.id])
    # Only the co-owner that was asked answers.
    for outsider in (world.owner_a, world.crew_a, eq.owner_c):
        with pytest.raises(Forbidden) as refused:
            rotation.answer_swap(session, outsider, swap.id, True, NOW)  # type: ignore[arg-type]
        assert refused.value.code == "not_swap_partner"
        session.rollback()
    assert periods(session, made.id) == rows_before  # type: ignore[arg-type]

    rotation.answer_swap(session, eq.crew_b, swap.id, True, NOW)  # type: ignore[arg-type]
    after = periods(session, made.id)  # type: ignore[arg-type]
    assert _week(session, made.id, 1).member_id == world.member_a_id  # type: ignore[arg-type]
    assert _week(session, made.id, 2).member_id == world.member_b_id  # type: ignore[arg-type]
    assert Counter(r[1] for r in after) == Counter(r[1] for r in rows_before)
    assert [r for r in after if r[0] not in (1, 2)] == \
        [r for r in rows_before if r[0] not in (1, 2)]
    assert session.get(CustodySwap, swap.id).status == SwapStatus.ACCEPTED  # type: ignore[union-attr]
    [told] = notifications(session, "custody.swap_answered")
    assert told.user_id == world.owner_a.id and told.payload["status"] == "accepted"

    for answer in (True, False):  # a double tap on either button
        with pytest.raises(Conflict) as twice:
            rotation.answer_swap(session, world.owner_b, swap.id, answer, NOW)  # type: ignore[arg-type]
        assert twice.value.code == "swap_answered"
        session.rollback()
        assert periods(session, made.id) == after  # type: ignore[arg-type]
    assert len(notifications(session, "custody.swap_answered")) == 1


def test_declined_swap_changes_nothing(session: Session, eq: Equip,
                                       co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    before = periods(session, made.id)  # type: ignore[arg-type]
    swap = rotation.request_swap(session, world.owner_b, _week(session, made.id, 3).id,  # type: ignore[arg-type]
                                 _week(session, made.id, 4).id, NOW)  # type: ignore[arg-type]
    rotation.answer_swap(session, world.owner_a, swap.id, False, NOW)  # type: ignore[arg-type]
    assert periods(session, made.id) == before  # type: ignore[arg-type]
    [told] = notifications(session, "custody.swap_answered")
    assert told.user_id == world.owner_b.id and told.payload["status"] == "declined"


def test_swaps_only_of_future_periods_and_own_ones(session: Session, eq: Equip,
                                                   co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    week = {i: _week(session, made.id, i) for i in range(4)}  # type: ignore[arg-type]
    during_week0 = at(NEXT_MONDAY + timedelta(days=2), 9)
    cases: list[tuple[Any, type[DomainError], str]] = [
        (lambda: rotation.request_swap(session, world.owner_a, week[0].id, week[1].id,
                                       during_week0), Conflict, "period_passed"),
        (lambda: rotation.request_swap(session, world.owner_b, week[1].id, week[0].id,
                                       during_week0), Conflict, "period_passed"),
        (lambda: rotation.request_swap(session, world.owner_a, week[1].id, week[2].id,
                                       NOW), Forbidden, "not_holder"),
        (lambda: rotation.request_swap(session, world.owner_a, week[0].id, week[2].id,
                                       NOW), ValidationError, "same_holder"),
    ]
    for call, kind, code in cases:
        with pytest.raises(kind) as refused:
            call()
        assert refused.value.code == code
        session.rollback()
        assert count(session, CustodySwap) == 0 and count(session, Notification) == 0
    # A swap asked in time but accepted once a period has begun is refused, and stays open.
    swap = rotation.request_swap(session, world.owner_a, week[2].id, week[1].id, NOW)  # type: ignore[arg-type]
    too_late = week[1].starts_at + timedelta(hours=1)
    with pytest.raises(Conflict) as late:
        rotation.answer_swap(session, world.owner_b, swap.id, True, too_late)  # type: ignore[arg-type]
    assert late.value.code == "period_passed"
    session.rollback()
    assert _week(session, made.id, 1).member_id == world.member_b_id  # type: ignore[arg-type]
    assert session.get(CustodySwap, swap.id).status == SwapStatus.PENDING  # type: ignore[union-attr]


# --- hand-over notices ---------------------------------------------------------------


def test_sweep_sends_each_handover_notice_once(session: Session, eq: Equip,
                                              co_owned: Equipment) -> None:
    world = eq.world
    made = plan(session, eq, co_owned)
    week1 = _week(session, made.id, 1)  # type: ignore[arg-type]
    everyone = sorted([world.owner_a.id, world.crew_a.id, world.owner_b.id, eq.crew_b.id])

    def handovers() -> list[Notification]:
        session.expire_all()
        return [n for n in notifications(session, "custody.handover")
                if n.payload["custody_id"] == week1.id]

    eve = week1.starts_at - timedelta(hours=10)
    rotation.rotation_sweep(session, eve)
    rotation.rotation_sweep(session, eve + timedelta(minutes=5))
    sent = handovers()
    assert sorted(n.user_id for n in sent) == everyone
    assert {n.message for n in sent} == {
        "Tomorrow %(machine)s passes from %(from)s to %(to)s at %(place)s."}
    assert all(n.params == {"machine": "Shared dump trailer", "from": "Alpha Lawns",
                            "to": "Beta Stone", "place": "Mimico depot"} for n in sent)
    assert all(n.payload["from_member_id"] == world.member_a_id
               and n.payload["to_member_id"] == world.member_b_id for n in sent)
    assert _week(session, made.id, 1).eve_notice_at == eve  # type: ignore[arg-type]

    start = week1.starts_at + timedelta(hours=1)
    rotation.rotation_sweep(session, start)
    rotation.rotation_sweep(session, start + timedelta(hours=1))
    sent = handovers()
    assert len(sent) == 2 * len(everyone)
    assert sorted(n.user_id for n in sent if n.message.startswith("Hand-over today")) == everyone
    # Nobody hands the machine to itself at the start of the rotation; C hears nothing.
    assert all(n.payload["custody_id"] != _week(session, made.id, 0).id  # type: ignore[arg-type]
               for n in notifications(session, "custody.handover"))
    assert eq.owner_c.id not in recipients(session, "custody.handover")


def test_sweep_keeps_plans_assigned_ahead(session: Session, eq: Equip,
                                          co_owned: Equipment) -> None:
    made = plan(session, eq, co_owned)
    later = at(NEXT_MONDAY + timedelta(days=21), 12)  # period 3
    rotation.rotation_sweep(session, later)
    rotation.rotation_sweep(session, later)
    assert [r[0] for r in periods(session, made.id)] == list(range(12))  # type: ignore[arg-type]
    upcoming = rotation.schedule(session, made, later)
    assert [c.index for c in upcoming] == list(range(3, 12))
    assert {c.equipment_id for c in upcoming} == {co_owned.id}


def test_custody_booking_rows_are_separate_from_the_rotation(session: Session, eq: Equip,
                                                             co_owned: Equipment) -> None:
    """A custodian's booking is a booking like any other: it holds the slot."""
    world = eq.world
    plan(session, eq, co_owned)
    tuesday = NEXT_MONDAY + timedelta(days=1)
    booking.book(session, world.owner_a, co_owned.id, at(tuesday, 9), at(tuesday, 11), NOW)  # type: ignore[arg-type]
    row = session.exec(select(Booking)).one()
    assert row.in_custody and row.member_id == world.member_a_id
    assert TORONTO == co_owned.timezone


def test_a_second_copy_of_an_accepted_swap_cannot_undo_it(session: Session, eq: Equip,
                                                          co_owned: Equipment) -> None:
    """A double-submitted request leaves two pending swaps; accepting one makes the other
    stale: nobody (least of all the requester, who now holds the wanted period) can
    accept it and hand the periods back."""
    world = eq.world
    made = plan(session, eq, co_owned)
    a_week, b_week = _week(session, made.id, 2), _week(session, made.id, 1)  # type: ignore[arg-type]
    first = rotation.request_swap(session, world.owner_a, a_week.id, b_week.id, NOW)  # type: ignore[arg-type]
    second = rotation.request_swap(session, world.owner_a, a_week.id, b_week.id, NOW)  # type: ignore[arg-type]
    rotation.answer_swap(session, world.owner_b, first.id, True, NOW)  # type: ignore[arg-type]
    swapped = periods(session, made.id)  # type: ignore[arg-type]
    for actor in (world.owner_a, world.owner_b):
        with pytest.raises(DomainError):
            rotation.answer_swap(session, actor, second.id, True, NOW)  # type: ignore[arg-type]
        session.rollback()
        assert periods(session, made.id) == swapped  # type: ignore[arg-type]
    assert _week(session, made.id, 1).member_id == world.member_a_id  # type: ignore[arg-type]
    assert _week(session, made.id, 2).member_id == world.member_b_id  # type: ignore[arg-type]
