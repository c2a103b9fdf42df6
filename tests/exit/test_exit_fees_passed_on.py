"""A co-owner's exit and the fees of others' bookings it was already paid for slots
after it: the fee belongs to whoever owns the machine when the slot is used.

Before the fix the leaver kept its share of such a fee for good: it sold its share of
the machine at the buy-out and went on earning from it.  Each test states the money
per member as the sum of everything the booking wrote, so a missing, doubled or
stranded cent shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.exit import service as exits
from marketplace.dashboard import disclosure, metrics
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.periods import month_range
from marketplace.disputes import service as disputes
from marketplace.equipment import booking, listings
from marketplace.equipment.access import owner_shares
from marketplace.equipment.models import Booking, Equipment
from marketplace.errors import Conflict
from marketplace.ledger import settlement
from marketplace.ledger.models import LedgerEntry
from tests.conftest import NOW, World
from tests.equipment.conftest import at, co_draft, draft, join
from tests.exit.conftest import AFTER, EXIT_AT, LATER_MONDAY, ExitWorld, book, leave
from tests.jobs.conftest import give_profile


def net_of_booking(session: Session, booking_id: int) -> dict[int, int]:
    """Each member's net (received minus paid) over every entry of the booking."""
    nets: dict[int, int] = {}
    for entry in session.exec(select(LedgerEntry).where(
            LedgerEntry.source_id == booking_id,
            LedgerEntry.source.in_(("booking", "booking_refund",  # type: ignore[attr-defined]
                                    "booking_handover", "booking_handover_refund",
                                    "cancellation_fee")))):
        if entry.payee_member_id is not None:
            nets[entry.payee_member_id] = nets.get(entry.payee_member_id, 0) + \
                entry.amount_minor
        if entry.payer_member_id is not None:
            nets[entry.payer_member_id] = nets.get(entry.payer_member_id, 0) - \
                entry.amount_minor
    return {m: n for m, n in nets.items() if n}


def _booked_then_a_left(session: Session, exit_world: ExitWorld) -> Booking:
    """C's booking of the trailer for a slot after A's exit, made before it; then A's
    exit takes effect."""
    later = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 9, 3)
    leave(session, exit_world.world)
    assert exits.take_due_exits(session, AFTER) == 1
    return later


def test_a_leavers_share_of_a_later_slots_fee_passes_to_the_remaining_owners(
        session: Session, exit_world: ExitWorld) -> None:
    w, c = exit_world.world, exit_world.eq.member_c_id
    a, b = w.member_a_id, w.member_b_id
    later = book(session, exit_world.eq.owner_c, exit_world.trailer, LATER_MONDAY, 9, 3)
    earlier = book(session, exit_world.eq.owner_c, exit_world.trailer, date(2026, 6, 8), 9, 3)
    fee = later.price_minor
    assert fee > 0
    before = net_of_booking(session, later.id)
    assert before[a] > 0 and before[b] > 0 and before[c] == -fee
    leave(session, w)

    assert exits.take_due_exits(session, AFTER) == 1

    session.expire_all()
    # The slot after the exit: all of the fee to B, who owns the whole trailer then.
    assert net_of_booking(session, later.id) == {b: fee, c: -fee}
    # The slot used before the exit stays A's and B's as it was.
    assert net_of_booking(session, earlier.id) == \
        {a: before[a], b: before[b], c: -earlier.price_minor}
    record = session.exec(select(exits.MemberExit)).one()
    assert record.summary["fees_passed_on"] == [
        {"booking_id": later.id, "machine": exit_world.trailer.name,
         "starts_at": later.starts_at.isoformat(), "amount_minor": before[a]}]


def test_cancelling_such_a_booking_later_leaves_nobody_owed_anything(
        session: Session, exit_world: ExitWorld) -> None:
    c = exit_world.eq.member_c_id
    later = _booked_then_a_left(session, exit_world)

    booking.cancel(session, exit_world.eq.owner_c, later.id, "Rain", AFTER)

    session.expire_all()
    assert net_of_booking(session, later.id) == {}  # early: no fee, and every cent back
    assert c not in net_of_booking(session, later.id)


def test_a_late_cancellation_fee_goes_to_the_owners_of_the_day(
        session: Session, exit_world: ExitWorld) -> None:
    w, c = exit_world.world, exit_world.eq.member_c_id
    b = w.member_b_id
    later = _booked_then_a_left(session, exit_world)
    late = later.starts_at - timedelta(hours=1)  # past the cutoff: a fee is due

    cancelled = booking.cancel(session, exit_world.eq.owner_c, later.id, "Rain", late)

    session.expire_all()
    assert cancelled.cancel_fee_minor > 0
    assert net_of_booking(session, later.id) == \
        {b: cancelled.cancel_fee_minor, c: -cancelled.cancel_fee_minor}


def test_the_owners_pausing_the_machine_refunds_it_whole(
        session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    later = _booked_then_a_left(session, exit_world)

    listings.set_status(session, w.owner_b, exit_world.trailer.id, "paused", "Hitch repair",
                        AFTER)

    session.expire_all()
    assert net_of_booking(session, later.id) == {}


def test_two_exits_in_turn_pass_the_fee_on_twice_to_the_cent(
        session: Session, world: World, exit_world: ExitWorld) -> None:
    """A (3 333), B (3 334) and C (3 333) co-own a machine and D books it; A leaves,
    then B: the whole fee ends with C, every cent accounted for."""
    c = exit_world.eq.member_c_id
    a, b = world.member_a_id, world.member_b_id
    shares = {a: 3_333, b: 3_334, c: 3_333}
    machine = listings.record_co_owned(session, world.coordinator,
                                       co_draft(name="Shared chipper"), shares, NOW)
    owner_d = join(session, world, "Delta Yards", "d@delta.test")
    give_profile(session, owner_d)
    d = owner_d.member_id
    assert d is not None
    slot = book(session, owner_d, machine, LATER_MONDAY + timedelta(days=35), 9, 5)
    fee = slot.price_minor
    leave(session, world)
    exits.take_due_exits(session, AFTER)
    # B gives notice after A has gone; it leaves 30 days later, before D's slot.
    agreements.give_exit_notice(session, world.owner_b, b, AFTER)
    exits.take_due_exits(session, AFTER + timedelta(days=30, minutes=5))

    session.expire_all()
    assert owner_shares(session, machine.id) == {c: 10_000}
    assert net_of_booking(session, slot.id) == {c: fee, d: -fee}
    assert slot.starts_at > EXIT_AT + timedelta(days=30)


def test_a_dispute_of_a_fee_passed_on_says_to_ask_the_coordinator(
        session: Session, exit_world: ExitWorld) -> None:
    """Holding the booker's fee to a member that passed it on would make the leaver pay
    it back twice; the coordinator corrects such a fee by an adjustment instead."""
    w = exit_world.world
    later = _booked_then_a_left(session, exit_world)
    booking.check_out(session, w.owner_b, later.id, None, "", None, later.starts_at)
    booking.return_machine(session, exit_world.eq.owner_c, later.id, None, "",
                           later.ends_at)

    with pytest.raises(Conflict) as refused:
        disputes.open_dispute(session, exit_world.eq.owner_c, "booking", later.id, "booking",
                              "Too dear", later.ends_at + timedelta(hours=1))
    assert refused.value.code == "fee_passed_on"
    assert session.get(Equipment, exit_world.trailer.id) is not None


def test_the_dashboard_counts_a_fee_passed_on_as_the_new_owners_earnings(
        session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    later = _booked_then_a_left(session, exit_world)

    def earned(scope_member: str) -> int:
        scope = scope_for(session, w.coordinator, scope_member)
        months = month_range(w.cluster, AFTER, "2026-06", "2026-07")
        return sum(row.fees_minor for row in metrics.equipment_by_month(
            session, scope, months, AFTER))

    assert earned(str(w.member_a_id)) == 0
    assert earned(str(w.member_b_id)) == later.price_minor
    assert earned("") == later.price_minor  # the cluster's total: the fee, once


def test_a_machine_picked_up_early_for_a_slot_after_the_exit_passes_its_fee_on(
        session: Session, exit_world: ExitWorld) -> None:
    w, c = exit_world.world, exit_world.eq.member_c_id
    b = w.member_b_id
    day = (EXIT_AT + timedelta(days=1)).date()  # the morning after the exit
    later = book(session, exit_world.eq.owner_c, exit_world.trailer, day, 9, 3)
    leave(session, w)
    booking.check_out(session, exit_world.eq.owner_c, later.id, None, "", None,
                      EXIT_AT - timedelta(hours=1))  # picked up the evening before

    assert exits.take_due_exits(session, AFTER) == 1

    session.expire_all()
    assert net_of_booking(session, later.id) == {b: later.price_minor, c: -later.price_minor}


def test_a_fee_passed_on_is_the_bookers_own_fact_on_the_cluster_revenue(
        session: Session, world: World) -> None:
    """The booker knows what it paid the leaver, so the handover of its fee is no figure
    it "cannot know": counted as one, it let the booker subtract its way to a single
    rival's booking fee in the cluster's revenue (found by review)."""
    a, b = world.member_a_id, world.member_b_id
    owner_c = join(session, world, "Gamma", "c@g.test")
    owner_d = join(session, world, "Delta", "d@d.test")
    owner_e = join(session, world, "Echo", "e@e.test")
    owner_g = join(session, world, "Golf", "g@g.test")
    c, e = owner_c.member_id, owner_e.member_id
    assert c is not None and e is not None
    shared = listings.record_co_owned(session, world.coordinator, co_draft(name="Chipper"),
                                      {a: 3_334, b: 3_333, e: 3_333}, NOW)
    rollers = listings.list_machine(session, owner_g, draft(name="Roller"), NOW)
    for day in (date(2026, 7, 6), date(2026, 7, 7)):  # C's, paid in June, slots in July
        booking.book(session, owner_c, shared.id, at(day, 9), at(day, 12), NOW)
    agreements.give_exit_notice(session, world.owner_a, a, NOW)
    after = NOW + timedelta(days=30, minutes=5)
    assert exits.take_due_exits(session, after) == 1
    booking.book(session, owner_d, rollers.id, at(date(2026, 7, 20), 9),  # D's, in July
                 at(date(2026, 7, 20), 15), after + timedelta(days=1))
    for month, when in (("2026-06", datetime(2026, 7, 2, 12, tzinfo=UTC)),
                        ("2026-07", datetime(2026, 8, 2, 12, tzinfo=UTC))):
        settlement.draft_for(session, world.coordinator, month, when)
        settlement.approve(session, world.coordinator, month, {}, when)
    now = datetime(2026, 8, 3, 12, tzinfo=UTC)
    scope = scope_for(session, owner_c, CLUSTER)
    months = month_range(world.cluster, now, "2026-07", "2026-07")
    rule = disclosure.Rule.of(scope, now)
    received, _paid = disclosure.revenue_pools(session, scope, months, rule,
                                               {"2026-07"})["2026-07"]
    # Only D's fee to G is a July figure C cannot know: one rival's, so it is withheld.
    assert rule.withheld(months, "2026-07", received, disclosure.FACTS) is not None
