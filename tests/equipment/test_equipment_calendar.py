"""A machine's week at a glance, and each member's iCalendar feed."""

from __future__ import annotations

import re
from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from marketplace.barrier import Audience
from marketplace.clusters.models import Member
from marketplace.equipment import booking, calendar, listings, rotation
from marketplace.equipment.calendar import FeedEvent, Segment
from marketplace.equipment.models import Equipment
from tests.conftest import NOW
from tests.equipment.conftest import NEXT_MONDAY, TORONTO, Equip, at, draft

TUESDAY = NEXT_MONDAY + timedelta(days=1)
WEDNESDAY = NEXT_MONDAY + timedelta(days=2)
LABELS = {"booking": "Booking: %(machine)s", "lent": "Lent out: %(machine)s",
          "custody": "Custody: %(machine)s"}


def plain(segments: tuple[Segment, ...]) -> list[tuple[str, str, str, int | None, int | None]]:
    """(local start, local end, kind, booking id, member id) per segment."""
    return [(s.starts_at.strftime("%H:%M"), "24:00" if s.ends_at.hour == 0 and
             s.ends_at > s.starts_at and s.ends_at.date() > s.starts_at.date()
             else s.ends_at.strftime("%H:%M"), s.kind, s.booking_id, s.member_id)
            for s in segments]


def _member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    assert member is not None
    return member


def test_week_labels_each_piece_of_the_day(session: Session, eq: Equip,
                                           machine: Equipment) -> None:
    world = eq.world
    made = booking.book(session, world.owner_b, machine.id, at(TUESDAY, 9), at(TUESDAY, 11),  # type: ignore[arg-type]
                        NOW)
    listings.add_blackout(session, world.owner_a, machine.id, at(WEDNESDAY, 12),  # type: ignore[arg-type]
                          at(WEDNESDAY, 14), "Oil change", NOW)
    b = world.member_b_id
    as_b = calendar.week(session, machine, NEXT_MONDAY, b, Audience.OTHER_MEMBER)
    assert [d.day for d in as_b] == [NEXT_MONDAY + timedelta(days=i) for i in range(7)]
    assert plain(as_b[0].segments) == [("00:00", "07:00", "closed", None, None),
                                       ("07:00", "18:00", "free", None, None),
                                       ("18:00", "24:00", "closed", None, None)]
    assert plain(as_b[1].segments) == [("00:00", "07:00", "closed", None, None),
                                       ("07:00", "09:00", "free", None, None),
                                       ("09:00", "11:00", "mine", made.id, b),
                                       ("11:00", "11:30", "buffer", made.id, b),
                                       ("11:30", "18:00", "free", None, None),
                                       ("18:00", "24:00", "closed", None, None)]
    blackout = [s for s in as_b[2].segments if s.kind == "blackout"]
    assert [(s.starts_at, s.ends_at, s.note) for s in blackout] == [
        (at(WEDNESDAY, 12), at(WEDNESDAY, 14), "Oil change")]
    assert all(s.starts_at.tzinfo == ZoneInfo(TORONTO) for s in as_b[1].segments)
    assert plain(as_b[5].segments) == [("00:00", "24:00", "closed", None, None)]

    # The owner sees who booked; a third member only that the time is taken.
    as_owner = calendar.week(session, machine, NEXT_MONDAY, world.member_a_id,
                             Audience.POSTER)
    assert ("09:00", "11:00", "booked", made.id, b) in plain(as_owner[1].segments)
    as_c = calendar.week(session, machine, NEXT_MONDAY, eq.member_c_id,
                         Audience.OTHER_MEMBER)
    tuesday_c = plain(as_c[1].segments)
    assert ("09:00", "11:00", "booked", None, None) in tuesday_c
    assert ("11:00", "11:30", "buffer", None, None) in tuesday_c
    assert all(s.booking_id is None and s.member_id is None
               for day in as_c for s in day.segments)


def test_cancelled_bookings_leave_the_week(session: Session, eq: Equip,
                                           machine: Equipment) -> None:
    made = booking.book(session, eq.world.owner_b, machine.id, at(TUESDAY, 9),  # type: ignore[arg-type]
                        at(TUESDAY, 11), NOW)
    booking.cancel(session, eq.world.owner_b, made.id, "No longer needed", NOW)  # type: ignore[arg-type]
    [day] = calendar.week(session, machine, TUESDAY, eq.member_c_id, Audience.OTHER_MEMBER,
                          days=1)
    assert [s.kind for s in day.segments] == ["closed", "free", "closed"]


def test_days_have_their_real_length_across_daylight_saving(session: Session, eq: Equip,
                                                            machine: Equipment) -> None:
    days = calendar.week(session, machine, date(2026, 10, 26), None, Audience.COORDINATOR)
    # Same-zone aware datetimes subtract as wall clocks in Python: compare in UTC.
    lengths = {d.day: d.segments[-1].ends_at.astimezone(UTC)
               - d.segments[0].starts_at.astimezone(UTC) for d in days}
    assert lengths[date(2026, 11, 1)] == timedelta(hours=25)
    assert all(v == timedelta(hours=24) for k, v in lengths.items() if k != date(2026, 11, 1))
    for day in days:  # pieces tile the day without gaps
        for a, b in zip(day.segments, day.segments[1:], strict=False):
            assert a.ends_at == b.starts_at
    monday_after = calendar.week(session, machine, date(2026, 11, 2), None,
                                 Audience.COORDINATOR, days=1)[0]
    assert plain(monday_after.segments)[1] == ("07:00", "18:00", "free", None, None)


def test_custody_shows_in_the_week_until_released(session: Session, eq: Equip,
                                                  co_owned: Equipment) -> None:
    world = eq.world
    plan = rotation.create_plan(session, world.coordinator, co_owned.id, "week",  # type: ignore[arg-type]
                                NEXT_MONDAY, NOW)
    mine = booking.book(session, world.owner_a, co_owned.id, at(TUESDAY, 9),  # type: ignore[arg-type]
                        at(TUESDAY, 12), NOW)
    days = calendar.week(session, co_owned, NEXT_MONDAY, eq.member_c_id,
                         Audience.OTHER_MEMBER)
    assert plain(days[0].segments) == [("00:00", "24:00", "custody", None, world.member_a_id)]
    assert plain(days[1].segments) == [
        ("00:00", "09:00", "custody", None, world.member_a_id),
        ("09:00", "12:00", "booked", None, None),
        ("12:00", "24:00", "custody", None, world.member_a_id)]
    as_a = calendar.week(session, co_owned, TUESDAY, world.member_a_id, Audience.POSTER,
                         days=1)
    assert ("09:00", "12:00", "mine", mine.id, world.member_a_id) in plain(as_a[0].segments)
    week0 = rotation.schedule(session, plan, NOW)[0]
    rotation.release(session, world.owner_a, week0.id, NOW)  # type: ignore[arg-type]
    days = calendar.week(session, co_owned, NEXT_MONDAY, eq.member_c_id,
                         Audience.OTHER_MEMBER)
    assert plain(days[0].segments) == [("00:00", "24:00", "free", None, world.member_a_id)]
    # The next week is B's and is shown as such.
    next_week = calendar.week(session, co_owned, NEXT_MONDAY + timedelta(days=7),
                              eq.member_c_id, Audience.OTHER_MEMBER, days=1)
    assert plain(next_week[0].segments) == [("00:00", "24:00", "custody", None,
                                             world.member_b_id)]


# --- the iCalendar feed --------------------------------------------------------------


def test_feed_token_is_stable_and_renewing_revokes_the_old_one(session: Session,
                                                               eq: Equip) -> None:
    member_c = _member(session, eq.member_c_id)
    token = calendar.feed_token(session, member_c, NOW)
    assert len(token) >= 40
    assert calendar.feed_token(session, member_c, NOW + timedelta(days=3)) == token
    assert calendar.member_for_token(session, token, NOW).id == member_c.id  # type: ignore[union-attr]
    other = calendar.feed_token(session, _member(session, eq.world.member_b_id), NOW)
    assert other != token
    renewed = calendar.feed_token(session, member_c, NOW, renew=True)
    assert renewed != token
    assert calendar.member_for_token(session, token, NOW) is None
    assert calendar.member_for_token(session, renewed, NOW).id == member_c.id  # type: ignore[union-attr]
    assert calendar.feed_token(session, member_c, NOW) == renewed
    for nonsense in ("", "x" * 65, "not-a-token"):
        assert calendar.member_for_token(session, nonsense, NOW) is None
    # A business that left keeps no feed of the cluster's bookings (it needs no login).
    member_c.exit_effective_at = NOW - timedelta(minutes=1)
    session.commit()
    assert calendar.member_for_token(session, renewed, NOW) is None
    assert calendar.member_for_token(session, renewed, NOW - timedelta(minutes=2)) is not None


def _unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def test_render_ics_is_crlf_folded_at_75_octets_and_escaped() -> None:
    summary = "Réservation: Pelle « Kubota », lame; godet \\ chenilles " + "é" * 40
    event = FeedEvent("booking-7", at(TUESDAY, 9), at(TUESDAY, 11), summary,
                      "Cour d'Etobicoke, 12 rue Principale", description="Line one\nLine two")
    text = calendar.render_ics([event], "Alpha, Lawns; bookings", "example.test", NOW)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")  # every line break is CRLF
    physical = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in physical)
    assert any(line.startswith(" ") for line in physical)  # the summary needed folding
    for line in physical:  # no multi-byte character is split across lines
        line.encode("utf-8").decode("utf-8")
    lines = _unfold(text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert "X-WR-CALNAME:Alpha\\, Lawns\\; bookings" in lines
    assert ("SUMMARY:Réservation: Pelle « Kubota »\\, lame\\; godet \\\\ chenilles "
            + "é" * 40) in lines
    assert "LOCATION:Cour d'Etobicoke\\, 12 rue Principale" in lines
    assert "DESCRIPTION:Line one\\nLine two" in lines
    assert "UID:booking-7@example.test" in lines
    assert "DTSTART:20260609T130000Z" in lines and "DTEND:20260609T150000Z" in lines
    assert "DTSTAMP:20260601T150000Z" in lines


def test_member_feed_holds_its_bookings_and_custody_but_not_others(
        session: Session, eq: Equip, machine: Equipment, co_owned: Equipment) -> None:
    world = eq.world
    b_books = booking.book(session, world.owner_b, machine.id, at(TUESDAY, 9),  # type: ignore[arg-type]
                           at(TUESDAY, 11), NOW)
    c_books = booking.book(session, eq.owner_c, co_owned.id, at(TUESDAY, 9),  # type: ignore[arg-type]
                           at(TUESDAY, 11), NOW)
    dropped = booking.book(session, eq.owner_c, machine.id, at(WEDNESDAY, 9),  # type: ignore[arg-type]
                           at(WEDNESDAY, 11), NOW)
    booking.cancel(session, eq.owner_c, dropped.id, "Not needed", NOW)  # type: ignore[arg-type]
    rotation.create_plan(session, world.coordinator, co_owned.id, "week",  # type: ignore[arg-type]
                         NEXT_MONDAY + timedelta(days=7), NOW)

    def feed(member_id: int) -> tuple[list[FeedEvent], str]:
        events = calendar.member_events(session, _member(session, member_id), NOW, LABELS)
        return events, calendar.render_ics(events, "Feed", "example.test", NOW)

    c_events, c_text = feed(eq.member_c_id)
    assert [e.uid for e in c_events] == [f"booking-{c_books.id}"]
    assert c_events[0].summary == "Booking: Shared dump trailer"
    assert f"booking-{b_books.id}" not in c_text and "Kubota" not in c_text
    assert f"booking-{dropped.id}" not in c_text

    b_events, b_text = feed(world.member_b_id)
    uids = [e.uid for e in b_events]
    assert f"booking-{b_books.id}" in uids  # its own booking
    assert f"booking-{c_books.id}" in uids  # a booking of a machine it co-owns
    lent = next(e for e in b_events if e.uid == f"booking-{c_books.id}")
    assert lent.summary == "Lent out: Shared dump trailer"
    custody = [e for e in b_events if e.uid.startswith("custody-")]
    assert custody and all(e.summary == "Custody: Shared dump trailer" for e in custody)
    assert all(e.ends_at - e.starts_at == timedelta(days=7) for e in custody)
    a_events, _ = feed(world.member_a_id)
    a_custody = {e.uid for e in a_events if e.uid.startswith("custody-")}
    assert a_custody and not a_custody & {e.uid for e in custody}
    assert len(re.findall(r"BEGIN:VEVENT", b_text)) == len(b_events)
    assert f"booking-{dropped.id}" not in b_text

    # A owns the excavator: B's booking of it is in A's feed as a loan; C's trailer too.
    a_uids = {e.uid for e in a_events}
    assert {f"booking-{b_books.id}", f"booking-{c_books.id}"} <= a_uids


def test_listing_name_with_special_characters_survives_the_feed(session: Session,
                                                                eq: Equip) -> None:
    world = eq.world
    machine = listings.list_machine(session, world.owner_a, draft(
        name="Stihl; chipper, 6\" \\ Étang", locality="Yard; back, left"), NOW)
    booking.book(session, world.owner_b, machine.id, at(TUESDAY, 9), at(TUESDAY, 11), NOW)  # type: ignore[arg-type]
    events = calendar.member_events(session, _member(session, world.member_b_id), NOW, LABELS)
    text = calendar.render_ics(events, "B", "example.test", NOW)
    lines = _unfold(text)
    assert 'SUMMARY:Booking: Stihl\\; chipper\\, 6" \\\\ Étang' in lines
    assert "LOCATION:Yard\\; back\\, left" in lines
