"""Booking rules: each refusal says which rule and writes nothing; valid slots book."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking, BookingStatus, Equipment
from marketplace.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from tests.conftest import NOW, World, invite_member, terms
from tests.equipment.conftest import (
    DAY_RATE,
    HOUR_RATE,
    NEXT_MONDAY,
    ROUND_THE_CLOCK,
    Equip,
    at,
    draft,
    entries,
    written,
)

TUESDAY = NEXT_MONDAY + timedelta(days=1)


def refused(session: Session, call: Callable[[], object]) -> DomainError:
    """Run a call that must be refused; prove that it wrote nothing."""
    session.rollback()
    before = written(session)
    with pytest.raises(DomainError) as error:
        call()
    session.rollback()
    assert written(session) == before
    return error.value


def book_b(session: Session, eq: Equip, machine: Equipment, starts_at: datetime,
           ends_at: datetime, now: datetime = NOW) -> Booking:
    return booking.book(session, eq.world.owner_b, machine.id, starts_at, ends_at, now)  # type: ignore[arg-type]


def test_valid_slot_is_confirmed_priced_and_charged(session: Session, eq: Equip,
                                                    machine: Equipment) -> None:
    made = book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 10, 30))
    session.expire_all()
    stored = session.exec(select(Booking)).one()
    assert stored.id == made.id
    assert stored.status == BookingStatus.CONFIRMED
    assert stored.member_id == eq.world.member_b_id
    assert stored.booked_by_id == eq.world.owner_b.id
    assert (stored.starts_at, stored.ends_at) == (at(TUESDAY, 9), at(TUESDAY, 10, 30))
    assert stored.blocked_until == at(TUESDAY, 11)  # 30-minute buffer
    assert stored.price_minor == HOUR_RATE * 3 // 2 == 6_000
    assert stored.currency == "CAD" and stored.decided_at == NOW
    assert entries(session) == [("booking", eq.world.member_b_id, eq.world.member_a_id,
                                 6_000)]


def test_end_not_after_start(session: Session, eq: Equip, machine: Equipment) -> None:
    for end in (at(TUESDAY, 9), at(TUESDAY, 8)):
        error = refused(session, lambda end=end: book_b(session, eq, machine,
                                                        at(TUESDAY, 9), end))
        assert isinstance(error, ValidationError) and error.code == "end_before_start"
        assert "ends_at" in error.fields


def test_slot_in_the_past(session: Session, eq: Equip, machine: Equipment) -> None:
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 11), now=at(TUESDAY, 9, 1)))
    assert isinstance(error, ValidationError) and error.code == "slot_in_past"


@pytest.mark.parametrize("start, end", [
    ((9, 15), (11, 0)),  # start between steps
    ((9, 0), (10, 45)),  # end between steps
])
def test_off_granularity(session: Session, eq: Equip, machine: Equipment,
                         start: tuple[int, int], end: tuple[int, int]) -> None:
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, *start),
                                            at(TUESDAY, *end)))
    assert isinstance(error, ValidationError) and error.code == "off_granularity"
    assert error.params == {"minutes": 30}


def test_granularity_is_checked_in_the_machines_local_time(session: Session, eq: Equip
                                                           ) -> None:
    """St. John's is UTC-2:30 in summer: its whole hours are half hours in UTC."""
    newfoundland = listings.list_machine(session, eq.world.owner_a, draft(
        name="Island aerator", kind="aerator", granularity_minutes=60, timezone="America/St_Johns"),
        NOW)
    utc_whole_hour = at(TUESDAY, 12, tz="UTC")  # 09:30 in St. John's
    error = refused(session, lambda: book_b(session, eq, newfoundland, utc_whole_hour,
                                            utc_whole_hour + timedelta(hours=2)))
    assert error.code == "off_granularity"
    local_nine = at(TUESDAY, 9, tz="America/St_Johns")
    assert local_nine.minute == 30  # 11:30 UTC
    made = book_b(session, eq, newfoundland, local_nine, local_nine + timedelta(hours=2))
    assert made.status == BookingStatus.CONFIRMED


def test_too_short_and_too_long(session: Session, eq: Equip, machine: Equipment) -> None:
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 9, 30)))
    assert error.code == "too_short" and error.params == {"minutes": 60}
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 9) + timedelta(days=3, minutes=30)))
    assert error.code == "too_long" and error.params == {"minutes": 3 * 24 * 60}
    # The limits themselves are allowed.
    assert book_b(session, eq, machine, at(TUESDAY, 7), at(TUESDAY, 8)).price_minor == 4_000


@pytest.mark.parametrize("start, end", [
    ((6, 30), (8, 0)),  # opens at 07:00
    ((17, 0), (18, 30)),  # closes at 18:00
    ((17, 0), (31, 0)),  # across the night
])
def test_outside_weekly_hours(session: Session, eq: Equip, machine: Equipment,
                              start: tuple[int, int], end: tuple[int, int]) -> None:
    def slot(hm: tuple[int, int]) -> datetime:
        return at(TUESDAY, 0) + timedelta(hours=hm[0], minutes=hm[1])

    error = refused(session, lambda: book_b(session, eq, machine, slot(start), slot(end)))
    assert isinstance(error, ValidationError) and error.code == "outside_availability"


def test_weekend_is_closed(session: Session, eq: Equip, machine: Equipment) -> None:
    saturday = NEXT_MONDAY + timedelta(days=5)
    error = refused(session, lambda: book_b(session, eq, machine, at(saturday, 9),
                                            at(saturday, 11)))
    assert error.code == "outside_availability"


def test_weekly_hours_follow_the_clock_across_daylight_saving(session: Session, eq: Equip,
                                                              machine: Equipment) -> None:
    """Toronto falls back on Sunday 2026-11-01: 07:00 opening moves from 11:00 to 12:00 UTC."""
    before, after = date(2026, 10, 26), date(2026, 11, 2)  # Mondays either side
    assert at(before, 7) == at(before, 11, tz="UTC")
    assert at(after, 7) == at(after, 12, tz="UTC")
    # 11:00 UTC is 06:00 in Toronto after the change: not open yet.
    error = refused(session, lambda: book_b(session, eq, machine, at(after, 11, tz="UTC"),
                                            at(after, 13, tz="UTC")))
    assert error.code == "outside_availability"
    # The same wall clock works both weeks, and each costs the same two hours.
    first = book_b(session, eq, machine, at(before, 7), at(before, 9))
    second = book_b(session, eq, machine, at(after, 7), at(after, 9))
    assert first.starts_at == at(before, 11, tz="UTC")
    assert second.starts_at == at(after, 12, tz="UTC")
    assert first.price_minor == second.price_minor == 2 * HOUR_RATE
    # Closing time: 18:00 EST is 23:00 UTC, so 22:00-23:00 UTC is still open after the change.
    third = book_b(session, eq, machine, at(after, 22, tz="UTC"), at(after, 23, tz="UTC"))
    assert third.status == BookingStatus.CONFIRMED


def test_a_twenty_five_hour_night_is_priced_by_its_real_length(session: Session, eq: Equip
                                                               ) -> None:
    """Round-the-clock machine booked over the fall-back night: 25 real hours."""
    machine = listings.list_machine(session, eq.world.owner_a, draft(
        name="Night trencher", kind="trencher", day_rate_minor=0, hours=ROUND_THE_CLOCK), NOW)
    saturday, sunday = date(2026, 10, 31), date(2026, 11, 1)
    made = book_b(session, eq, machine, at(saturday, 12), at(sunday, 12))
    assert made.ends_at - made.starts_at == timedelta(hours=25)
    assert made.price_minor == 25 * HOUR_RATE


def test_blackout_refuses_overlapping_slots(session: Session, eq: Equip,
                                            machine: Equipment) -> None:
    listings.add_blackout(session, eq.world.owner_a, machine.id, at(TUESDAY, 12),  # type: ignore[arg-type]
                          at(TUESDAY, 14), "Track tension service", NOW)
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 13),
                                            at(TUESDAY, 15)))
    assert isinstance(error, ValidationError) and error.code == "in_blackout"
    assert error.params == {"reason": "Track tension service"}
    # Right up to the blackout (the buffer may run into it) and right after are fine.
    assert book_b(session, eq, machine, at(TUESDAY, 10), at(TUESDAY, 12)).status == "confirmed"
    assert book_b(session, eq, machine, at(TUESDAY, 14), at(TUESDAY, 16)).status == "confirmed"


def test_overlap_including_the_buffer(session: Session, eq: Equip, machine: Equipment) -> None:
    book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 11))  # blocks until 11:30
    c = eq.owner_c
    for start, end in [((10, 0), (12, 0)), ((8, 0), (10, 0)), ((11, 0), (13, 0)),
                       ((11, 0), (12, 0)), ((7, 0), (12, 0))]:
        error = refused(session, lambda s=start, e=end: booking.book(
            session, c, machine.id, at(TUESDAY, *s), at(TUESDAY, *e), NOW))  # type: ignore[arg-type]
        assert isinstance(error, Conflict) and error.code == "slot_taken", (start, end)
        assert error.params == {"buffer": 30}
    # A new booking's own buffer may not run into the next booking either.
    error = refused(session, lambda: booking.book(session, c, machine.id, at(TUESDAY, 7),  # type: ignore[arg-type]
                                                  at(TUESDAY, 9), NOW))
    assert error.code == "slot_taken"
    # Once the buffer is over the machine is free again; before it, with room to clean, too.
    after = booking.book(session, c, machine.id, at(TUESDAY, 11, 30), at(TUESDAY, 13), NOW)  # type: ignore[arg-type]
    earlier = booking.book(session, c, machine.id, at(TUESDAY, 7), at(TUESDAY, 8, 30), NOW)  # type: ignore[arg-type]
    assert after.status == earlier.status == BookingStatus.CONFIRMED


def test_cancelled_booking_frees_its_slot(session: Session, eq: Equip,
                                          machine: Equipment) -> None:
    first = book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 11))
    booking.cancel(session, eq.world.owner_b, first.id, "Job moved", NOW)  # type: ignore[arg-type]
    again = booking.book(session, eq.owner_c, machine.id, at(TUESDAY, 9), at(TUESDAY, 11), NOW)  # type: ignore[arg-type]
    assert again.status == BookingStatus.CONFIRMED


@pytest.mark.parametrize("status", ["paused", "retired"])
def test_paused_or_retired_machine_cannot_be_booked(session: Session, eq: Equip,
                                                    machine: Equipment, status: str) -> None:
    listings.set_status(session, eq.world.owner_a, machine.id, status, "Engine rebuild", NOW)  # type: ignore[arg-type]
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 11)))
    assert isinstance(error, Conflict) and error.code == "not_bookable"


def test_member_that_has_not_accepted_the_agreement_is_gated(session: Session, eq: Equip,
                                                             machine: Equipment) -> None:
    newcomer = invite_member(session, eq.world.coordinator, "Delta Decks", "d@delta.test")
    error = refused(session, lambda: booking.book(session, newcomer, machine.id,  # type: ignore[arg-type]
                                                  at(TUESDAY, 9), at(TUESDAY, 11), NOW))
    assert isinstance(error, Forbidden) and error.code == "agreement_not_accepted"
    # A new version gates everyone until they accept it again.
    agreements.publish_agreement(session, eq.world.coordinator,
                                 terms(referral_fee_bp=600), NOW)
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 11)))
    assert error.code == "agreement_not_accepted" and error.params == {"version": 2}
    agreements.accept_agreement(session, eq.world.owner_b, 2, NOW)
    assert book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 11)).id is not None


def test_agreement_without_equipment_scope_gates_booking(session: Session, eq: Equip,
                                                         machine: Equipment) -> None:
    agreements.publish_agreement(session, eq.world.coordinator,
                                 terms(scope_equipment=False), NOW)
    agreements.accept_agreement(session, eq.world.owner_b, 2, NOW)
    error = refused(session, lambda: book_b(session, eq, machine, at(TUESDAY, 9),
                                            at(TUESDAY, 11)))
    assert error.code == "outside_agreement_scope"


def test_coordinator_books_for_no_business(session: Session, eq: Equip,
                                           machine: Equipment) -> None:
    error = refused(session, lambda: booking.book(session, eq.world.coordinator, machine.id,  # type: ignore[arg-type]
                                                  at(TUESDAY, 9), at(TUESDAY, 11), NOW))
    assert isinstance(error, Forbidden) and error.code == "member_only"


def test_rival_cluster_sees_not_found(session: Session, eq: Equip, machine: Equipment) -> None:
    world: World = eq.world
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    agreements.accept_agreement(session, world.other_owner, current.version, NOW)
    error = refused(session, lambda: booking.book(session, world.other_owner, machine.id,  # type: ignore[arg-type]
                                                  at(TUESDAY, 9), at(TUESDAY, 11), NOW))
    assert isinstance(error, NotFound) and error.code == "not_found"
    # ...and a booking of ours looks exactly like a machine that does not exist.
    made = book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 11))
    with pytest.raises(NotFound):
        booking.get_booking(session, world.other_owner, made.id)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        booking.book(session, world.other_owner, 999_999, at(TUESDAY, 9), at(TUESDAY, 11), NOW)


def test_third_member_cannot_open_someone_elses_booking(session: Session, eq: Equip,
                                                        machine: Equipment) -> None:
    made = book_b(session, eq, machine, at(TUESDAY, 9), at(TUESDAY, 11))
    with pytest.raises(NotFound):
        booking.get_booking(session, eq.owner_c, made.id)  # type: ignore[arg-type]
    for party in (eq.world.owner_a, eq.world.crew_a, eq.crew_b, eq.world.coordinator):
        assert booking.get_booking(session, party, made.id).id == made.id  # type: ignore[arg-type]


def test_day_rate_applies_when_cheaper(session: Session, eq: Equip) -> None:
    machine = listings.list_machine(session, eq.world.owner_a, draft(
        name="Compactor", kind="compactor", hours=ROUND_THE_CLOCK), NOW)
    # 07:00 Tuesday to 17:00 Thursday: 58 h at 40.00 = 2320.00 vs 3 days at 250.00 = 750.00.
    made = book_b(session, eq, machine, at(TUESDAY, 7), at(TUESDAY + timedelta(days=2), 17))
    assert made.price_minor == 3 * DAY_RATE
    # Five hours: 200.00 by the hour beats a day.
    short = book_b(session, eq, machine, at(TUESDAY, 7) + timedelta(days=4),
                   at(TUESDAY, 12) + timedelta(days=4))
    assert short.price_minor == 5 * HOUR_RATE
