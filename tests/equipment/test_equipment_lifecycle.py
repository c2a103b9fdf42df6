"""A booking's life: request, approval, check-out, return, close, cancellation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking, BookingStatus, Equipment
from marketplace.errors import Conflict, DomainError, Forbidden, ValidationError
from marketplace.ledger import service as ledger
from marketplace.ledger.models import EntrySource
from tests.conftest import NOW
from tests.equipment.conftest import (
    NEXT_MONDAY,
    Equip,
    at,
    entries,
    notifications,
    recipients,
    written,
)

TUESDAY = NEXT_MONDAY + timedelta(days=1)
START, END = at(TUESDAY, 9), at(TUESDAY, 11)  # two hours at 40.00


def fresh(session: Session, made: Booking) -> Booking:
    session.expire_all()
    stored = session.get(Booking, made.id)
    assert stored is not None
    return stored


def test_instant_booking_tells_the_owners(session: Session, eq: Equip,
                                          machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    assert fresh(session, made).status == BookingStatus.CONFIRMED
    assert recipients(session, "booking.confirmed") == sorted([world.owner_a.id,
                                                               world.crew_a.id])
    note = notifications(session, "booking.confirmed")[0]
    assert note.params == {"machine": machine.name, "member": "Beta Stone"}
    assert note.payload["id"] == made.id and "price_minor" not in note.payload
    assert entries(session) == [("booking", world.member_b_id, world.member_a_id, 8_000)]


def test_request_then_approval(session: Session, eq: Equip,
                               approval_machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    assert fresh(session, made).status == BookingStatus.REQUESTED
    assert fresh(session, made).decided_at is None
    assert entries(session) == []  # nothing owed until the owner says yes
    assert recipients(session, "booking.requested") == sorted([world.owner_a.id,
                                                               world.crew_a.id])
    # The request holds the slot meanwhile.
    with pytest.raises(Conflict) as taken:
        booking.book(session, eq.owner_c, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    assert taken.value.code == "slot_taken"
    session.rollback()

    later = NOW + timedelta(hours=2)
    booking.approve(session, world.owner_a, made.id, later)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.CONFIRMED and stored.decided_at == later
    assert entries(session) == [("booking", world.member_b_id, world.member_a_id, 8_000)]
    assert recipients(session, "booking.approved") == sorted([world.owner_b.id,
                                                              eq.crew_b.id])

    before = written(session)
    with pytest.raises(Conflict) as twice:
        booking.approve(session, world.owner_a, made.id, later)  # type: ignore[arg-type]
    assert twice.value.code == "booking_changed"
    session.rollback()
    assert written(session) == before  # charged once, told once


def test_decline_says_why_charges_nothing_and_frees_the_slot(session: Session, eq: Equip,
                                                             approval_machine: Equipment
                                                             ) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as no_reason:
        booking.decline(session, world.owner_a, made.id, "   ", NOW)  # type: ignore[arg-type]
    assert no_reason.value.code == "reason_required"
    session.rollback()
    assert fresh(session, made).status == BookingStatus.REQUESTED
    booking.decline(session, world.owner_a, made.id, "We need it ourselves", NOW)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.DECLINED
    assert stored.cancel_reason == "We need it ourselves"
    assert entries(session) == []
    [note] = [n for n in notifications(session, "booking.declined")
              if n.user_id == world.owner_b.id]
    assert note.params["reason"] == "We need it ourselves"
    with pytest.raises(Conflict):
        booking.approve(session, world.owner_a, made.id, NOW)  # type: ignore[arg-type]
    session.rollback()
    again = booking.book(session, eq.owner_c, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    assert again.status == BookingStatus.REQUESTED


def test_only_an_owner_of_the_machine_approves(session: Session, eq: Equip,
                                               approval_machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    for outsider in (world.owner_b, world.crew_a):  # the booker; A's crew (not an owner role)
        before = written(session)
        with pytest.raises(Forbidden) as refused:
            booking.approve(session, outsider, made.id, NOW)  # type: ignore[arg-type]
        assert refused.value.code == "owner_only"
        session.rollback()
        assert written(session) == before
    assert fresh(session, made).status == BookingStatus.REQUESTED


def test_a_request_of_a_business_that_left_cannot_be_approved(
        session: Session, eq: Equip, approval_machine: Equipment) -> None:
    """Its exit cancels its requests; an approval landing at the same moment must not
    leave a confirmed, charged booking of a business that is gone."""
    from marketplace.clusters.models import Member

    world = eq.world
    made = booking.book(session, world.owner_b, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    leaver = session.get(Member, world.member_b_id)
    assert leaver is not None
    leaver.exit_effective_at = NOW - timedelta(minutes=1)
    session.commit()
    before = written(session)
    with pytest.raises(Conflict) as refused:
        booking.approve(session, world.owner_a, made.id, NOW)  # type: ignore[arg-type]
    assert refused.value.code == "booker_left"
    session.rollback()
    assert written(session) == before
    assert fresh(session, made).status == BookingStatus.REQUESTED
    booking.decline(session, world.owner_a, made.id, "You left the cluster.", NOW)  # type: ignore[arg-type]


def test_owner_booking_its_own_machine_needs_no_approval(session: Session, eq: Equip,
                                                         approval_machine: Equipment) -> None:
    made = booking.book(session, eq.world.crew_a, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    assert made.status == BookingStatus.CONFIRMED
    assert entries(session) == []  # nobody owes itself


def test_check_out_return_close_with_damage(session: Session, eq: Equip,
                                            machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    # Closing before the machine is back is refused.
    with pytest.raises(Conflict):
        booking.close(session, world.owner_a, made.id, 0, "", START)  # type: ignore[arg-type]
    session.rollback()

    booking.check_out(session, eq.crew_b, made.id, 1_250.5, " Scratched bucket ",  # type: ignore[arg-type]
                      None, START)
    stored = fresh(session, made)
    assert stored.status == BookingStatus.CHECKED_OUT
    assert (stored.checkout_meter, stored.checkout_note) == (1_250.5, "Scratched bucket")
    with pytest.raises(Conflict):  # a second tap does not check it out twice
        booking.check_out(session, eq.crew_b, made.id, 1_300, "", None, START)  # type: ignore[arg-type]
    session.rollback()

    before = written(session)
    with pytest.raises(ValidationError) as back:
        booking.return_machine(session, eq.crew_b, made.id, 1_249.0, "", END)  # type: ignore[arg-type]
    assert back.value.code == "meter_went_back" and "meter" in back.value.fields
    session.rollback()
    assert written(session) == before
    assert fresh(session, made).status == BookingStatus.CHECKED_OUT
    with pytest.raises(ValidationError) as absurd:
        booking.return_machine(session, eq.crew_b, made.id, -1, "", END)  # type: ignore[arg-type]
    assert absurd.value.code == "invalid_meter"
    session.rollback()

    booking.return_machine(session, eq.crew_b, made.id, 1_252.0, "Track a bit loose", END)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.RETURNED and stored.return_meter == 1_252.0
    assert recipients(session, "booking.returned") == sorted([world.owner_a.id,
                                                              world.crew_a.id])

    for amount, note, code in [(-1, "x", "invalid_damage"), (5_000, " ", "damage_note_required")]:
        with pytest.raises(ValidationError) as bad:
            booking.close(session, world.owner_a, made.id, amount, note, END)  # type: ignore[arg-type]
        assert bad.value.code == code
        session.rollback()
    assert fresh(session, made).status == BookingStatus.RETURNED
    with pytest.raises(Forbidden):  # the booker cannot close its own booking
        booking.close(session, world.owner_b, made.id, 0, "", END)  # type: ignore[arg-type]
    session.rollback()

    booking.close(session, world.owner_a, made.id, 15_000, "Bent track guard", END)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.CLOSED
    assert (stored.damage_minor, stored.damage_note) == (15_000, "Bent track guard")
    assert entries(session) == [
        ("booking", world.member_b_id, world.member_a_id, 8_000),
        ("damage_fee", world.member_b_id, world.member_a_id, 15_000)]
    assert recipients(session, "booking.damage") == sorted([world.owner_b.id, eq.crew_b.id])
    with pytest.raises(Conflict):
        booking.close(session, world.owner_a, made.id, 15_000, "Again", END)  # type: ignore[arg-type]
    session.rollback()
    assert len(entries(session, "damage_fee")) == 1


def test_close_without_damage_writes_no_fee(session: Session, eq: Equip,
                                            machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    booking.check_out(session, world.owner_b, made.id, None, "", None, START)  # type: ignore[arg-type]
    booking.return_machine(session, world.owner_b, made.id, None, "", END)  # type: ignore[arg-type]
    booking.close(session, world.owner_a, made.id, 0, "", END)  # type: ignore[arg-type]
    assert fresh(session, made).status == BookingStatus.CLOSED
    assert entries(session, "damage_fee") == []
    assert notifications(session, "booking.damage") == []


def _mirrors(session: Session, booking_id: int) -> None:
    originals = ledger.entries_for(session, EntrySource.BOOKING, booking_id)
    refunds = ledger.entries_for(session, EntrySource.BOOKING_REFUND, booking_id)
    assert originals
    assert sorted((r.payer_member_id, r.payee_member_id, r.amount_minor) for r in refunds) == \
        sorted((o.payee_member_id, o.payer_member_id, o.amount_minor) for o in originals)


def test_cancelling_before_the_cutoff_is_free_and_refunds(session: Session, eq: Equip,
                                                          machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    just_before = START - timedelta(hours=24, seconds=1)
    assert booking.late_cancellation_fee(machine, fresh(session, made), just_before) == 0
    booking.cancel(session, eq.crew_b, made.id, "Rain all week", just_before)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.CANCELLED and stored.cancel_fee_minor == 0
    _mirrors(session, made.id)  # type: ignore[arg-type]
    assert entries(session, "cancellation_fee") == []
    assert ledger.balance(session, world.member_a_id) == 0
    assert ledger.balance(session, world.member_b_id) == 0
    assert recipients(session, "booking.cancelled") == sorted([world.owner_a.id,
                                                               world.crew_a.id])


def test_cancelling_after_the_cutoff_costs_the_fee(session: Session, eq: Equip,
                                                   machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    late = START - timedelta(hours=2)
    booking.cancel(session, world.owner_b, made.id, "Crew sick", late)  # type: ignore[arg-type]
    stored = fresh(session, made)
    assert stored.status == BookingStatus.CANCELLED
    assert stored.cancel_fee_minor == 4_000  # half of 80.00
    _mirrors(session, made.id)  # type: ignore[arg-type]
    assert entries(session, "cancellation_fee") == [
        ("cancellation_fee", world.member_b_id, world.member_a_id, 4_000)]
    assert ledger.balance(session, world.member_a_id) == 4_000
    assert ledger.balance(session, world.member_b_id) == -4_000


def test_cancelling_a_request_is_free_even_late(session: Session, eq: Equip,
                                                approval_machine: Equipment) -> None:
    made = booking.book(session, eq.world.owner_b, approval_machine.id, START, END, NOW)  # type: ignore[arg-type]
    booking.cancel(session, eq.world.owner_b, made.id, "Found another", START - timedelta(hours=1))  # type: ignore[arg-type]
    assert fresh(session, made).cancel_fee_minor == 0
    assert entries(session) == []


def test_only_the_booker_cancels_and_only_once(session: Session, eq: Equip,
                                               machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    before = written(session)
    with pytest.raises(Forbidden) as owner:
        booking.cancel(session, world.owner_a, made.id, "Mine now", NOW)  # type: ignore[arg-type]
    assert owner.value.code == "booker_only"
    session.rollback()
    assert written(session) == before
    booking.cancel(session, world.owner_b, made.id, "Done", NOW)  # type: ignore[arg-type]
    after_first = written(session)
    with pytest.raises(Conflict) as again:
        booking.cancel(session, world.owner_b, made.id, "Done", NOW)  # type: ignore[arg-type]
    assert again.value.code == "booking_changed"
    session.rollback()
    assert written(session) == after_first
    assert len(entries(session, "booking_refund")) == 1


def test_co_owned_refund_mirrors_every_part(session: Session, eq: Equip,
                                            co_owned: Equipment) -> None:
    made = booking.book(session, eq.owner_c, co_owned.id, START, START + timedelta(hours=2), NOW)  # type: ignore[arg-type]
    booking.cancel(session, eq.owner_c, made.id, "Changed plans", NOW)  # type: ignore[arg-type]
    _mirrors(session, made.id)  # type: ignore[arg-type]
    assert len(entries(session, "booking_refund")) == 2
    for member in (eq.world.member_a_id, eq.world.member_b_id, eq.member_c_id):
        assert ledger.balance(session, member) == 0


@pytest.mark.parametrize("status", ["paused", "retired"])
def test_pause_or_retire_cancels_future_bookings_only(session: Session, eq: Equip,
                                                      machine: Equipment, status: str) -> None:
    world = eq.world
    monday = NEXT_MONDAY
    running = booking.book(session, world.owner_b, machine.id, at(monday, 8), at(monday, 12), NOW)  # type: ignore[arg-type]
    started = booking.book(session, eq.owner_c, machine.id, at(monday, 13), at(monday, 15), NOW)  # type: ignore[arg-type]
    future_b = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    future_c = booking.book(session, eq.owner_c, machine.id, at(TUESDAY, 14),  # type: ignore[arg-type]
                            at(TUESDAY, 16), NOW)
    booking.check_out(session, world.owner_b, running.id, 10, "", None, at(monday, 8))  # type: ignore[arg-type]
    when = at(monday, 13, 30)
    listings.set_status(session, world.owner_a, machine.id, status, " Hydraulic leak ", when)  # type: ignore[arg-type]

    assert fresh(session, running).status == BookingStatus.CHECKED_OUT
    assert fresh(session, started).status == BookingStatus.CONFIRMED  # already under way
    for made in (future_b, future_c):
        stored = fresh(session, made)
        assert stored.status == BookingStatus.CANCELLED
        assert stored.cancel_reason == "Hydraulic leak" and stored.cancel_fee_minor == 0
        _mirrors(session, made.id)  # type: ignore[arg-type]
    refunded = {e[2] for e in entries(session, "booking_refund")}
    assert refunded == {world.member_b_id, eq.member_c_id}
    assert len(entries(session, "booking_refund")) == 2
    told = notifications(session, "booking.cancelled_by_owner")
    assert sorted(n.user_id for n in told) == sorted([world.owner_b.id, eq.crew_b.id,
                                                      eq.owner_c.id])
    assert {n.params["reason"] for n in told} == {"Hydraulic leak"}
    assert {n.payload["id"] for n in told} == {future_b.id, future_c.id}


def test_retired_stays_retired(session: Session, eq: Equip, machine: Equipment) -> None:
    world = eq.world
    with pytest.raises(ValidationError) as no_reason:
        listings.set_status(session, world.owner_a, machine.id, "retired", "", NOW)  # type: ignore[arg-type]
    assert no_reason.value.code == "reason_required"
    session.rollback()
    listings.set_status(session, world.owner_a, machine.id, "retired", "Sold", NOW)  # type: ignore[arg-type]
    for status in ("active", "paused", "retired"):
        with pytest.raises(Conflict) as refused:
            listings.set_status(session, world.owner_a, machine.id, status, "Back", NOW)  # type: ignore[arg-type]
        assert refused.value.code == "status_unchanged"
        session.rollback()


def test_resume_makes_a_paused_machine_bookable(session: Session, eq: Equip,
                                                machine: Equipment) -> None:
    world = eq.world
    listings.set_status(session, world.owner_a, machine.id, "paused", "Winter", NOW)  # type: ignore[arg-type]
    listings.set_status(session, world.owner_a, machine.id, "active", "", NOW)  # type: ignore[arg-type]
    assert booking.book(session, world.owner_b, machine.id, START, END, NOW).status == "confirmed"  # type: ignore[arg-type]


def test_blackout_cancels_overlapping_future_bookings_only(session: Session, eq: Equip,
                                                           machine: Equipment) -> None:
    world = eq.world
    inside = booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    outside = booking.book(session, world.owner_b, machine.id, at(TUESDAY, 14),  # type: ignore[arg-type]
                           at(TUESDAY, 16), NOW)
    c_inside = booking.book(session, eq.owner_c, machine.id,  # type: ignore[arg-type]
                                       at(TUESDAY, 12), at(TUESDAY, 13), NOW)
    blackout = listings.add_blackout(session, world.owner_a, machine.id, at(TUESDAY, 10),  # type: ignore[arg-type]
                                     at(TUESDAY, 13), "Annual inspection", NOW)
    assert fresh(session, inside).status == BookingStatus.CANCELLED
    assert fresh(session, c_inside).status == BookingStatus.CANCELLED
    assert fresh(session, outside).status == BookingStatus.CONFIRMED
    _mirrors(session, inside.id)  # type: ignore[arg-type]
    _mirrors(session, c_inside.id)  # type: ignore[arg-type]
    assert sorted(n.user_id for n in notifications(session, "booking.cancelled_by_owner")) == \
        sorted([world.owner_b.id, eq.crew_b.id, eq.owner_c.id])
    assert blackout.reason == "Annual inspection"
    # Once removed, the time can be booked again.
    listings.remove_blackout(session, world.owner_a, blackout.id)  # type: ignore[arg-type]
    assert booking.book(session, eq.owner_c, machine.id, START, END, NOW).status == "confirmed"  # type: ignore[arg-type]


def test_bad_blackout_writes_nothing(session: Session, eq: Equip, machine: Equipment) -> None:
    world = eq.world
    booking.book(session, world.owner_b, machine.id, START, END, NOW)  # type: ignore[arg-type]
    cases = [(END, START, "Service"), (START, END, " "),
             (NOW - timedelta(days=2), NOW - timedelta(days=1), "Past")]
    for starts_at, ends_at, reason in cases:
        before = written(session)
        with pytest.raises(DomainError) as bad:
            listings.add_blackout(session, world.owner_a, machine.id, starts_at, ends_at,  # type: ignore[arg-type]
                                  reason, NOW)
        assert bad.value.code == "invalid_blackout"
        session.rollback()
        assert written(session) == before
    with pytest.raises(Forbidden):  # only the owners block their machine
        listings.add_blackout(session, world.owner_b, machine.id, START, END, "Mine", NOW)  # type: ignore[arg-type]
    session.rollback()
    assert listings.blackouts_of(session, machine.id, NOW) == []  # type: ignore[arg-type]
