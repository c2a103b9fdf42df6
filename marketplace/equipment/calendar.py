"""A machine's week at a glance, and each member's bookings as an iCalendar feed.

The week view cuts each local day at every boundary (opening hours,
bookings and their buffers, blackouts, custody periods) and labels each piece
with what matters most there: a blackout beats a booking beats a buffer beats
closed hours.  Who booked a slot and which booking it is reach only those
`barrier.TABLE` lists for the slot (the booking's parties and the coordinator); other
members just see that it is taken.  Which co-owner holds a rotation period is known
cluster-wide (`barrier.CUSTODY`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace.barrier import CUSTODY, SLOT, Audience, booking_audience, fields
from marketplace.clusters.models import Member
from marketplace.equipment.availability import Interval, open_intervals, overlaps
from marketplace.equipment.booking import bookings_between
from marketplace.equipment.listings import blackouts_of, hours_of
from marketplace.equipment.models import (
    Blackout,
    Booking,
    BookingStatus,
    CalendarFeed,
    Custody,
    Equipment,
    EquipmentOwner,
)
from marketplace.equipment.rotation import custody_overlapping
from marketplace.persisted import id_of


@dataclass(frozen=True)
class Segment:
    starts_at: datetime  # in the machine's time zone
    ends_at: datetime
    kind: str  # free | past | booked | mine | buffer | blackout | closed | custody
    booking_id: int | None = None
    member_id: int | None = None  # the booker or custodian, when the viewer may know
    note: str = ""
    #: who the viewer is to this piece (barrier.SLOT): its holder, an owner, others
    audience: Audience = Audience.OTHER_MEMBER

    def fields(self) -> dict[str, Any]:
        """The piece as a resource for `barrier.cut` (withheld holder fields left out)."""
        data: dict[str, Any] = {"starts_at": self.starts_at, "ends_at": self.ends_at,
                                "kind": self.kind, "note": self.note}
        if self.booking_id is not None:
            data["booking_id"] = self.booking_id
        if self.member_id is not None:
            data["member_id"] = self.member_id
        return data


@dataclass(frozen=True)
class Day:
    day: date
    segments: tuple[Segment, ...]


#: Weeks a calendar can show: far enough for any booking, never near date.min/max.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 24)


def week_start(chosen: date | None, timezone: str, first_weekday: int, now: datetime
               ) -> date:
    """The first day (in the viewer's convention, 0 = Monday) of the week holding
    `chosen`, or of this week in the machine's time zone; kept within FIRST_DAY..LAST_DAY
    so a week from any typed date can be computed."""
    day = chosen or now.astimezone(ZoneInfo(timezone)).date()
    day = min(max(day, FIRST_DAY), LAST_DAY)
    return day - timedelta(days=(day.weekday() - first_weekday) % 7)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _classify(moment: datetime, opened: list[Interval], bookings: list[Booking],
              blackouts: list[Blackout], viewer_member_id: int | None
              ) -> tuple[str, Booking | Blackout | None]:
    for blackout in blackouts:
        if blackout.starts_at <= moment < blackout.ends_at:
            return "blackout", blackout
    for booking in bookings:
        if booking.starts_at <= moment < booking.ends_at:
            mine = booking.member_id == viewer_member_id
            return ("mine" if mine else "booked"), booking
        if booking.ends_at <= moment < booking.blocked_until:
            return "buffer", booking
    if not any(opens <= moment < closes for opens, closes in opened):
        return "closed", None
    return "free", None


def week(session: Session, equipment: Equipment, first_day: date,
         viewer_member_id: int | None, audience: Audience, days: int = 7,
         now: datetime | None = None) -> list[Day]:
    """`days` local days from `first_day`, each cut into labelled segments; `audience` is
    who the viewer is to the machine (`barrier.machine_audience`).  Given `now`, open
    time before it reads "past", not "free": nobody can book it."""
    zone = ZoneInfo(equipment.timezone)
    start, end = _midnight(first_day, zone), _midnight(first_day + timedelta(days=days), zone)
    opened = open_intervals(hours_of(session, id_of(equipment)), equipment.timezone, start, end)
    bookings = bookings_between(session, id_of(equipment), start, end)
    blackouts = [b for b in blackouts_of(session, id_of(equipment), start)
                 if overlaps(b.starts_at, b.ends_at, start, end)]
    custody = custody_overlapping(session, id_of(equipment), start, end)
    cuts = {start, end}
    cuts.update(t for interval in opened for t in interval)
    cuts.update(t for b in bookings for t in (b.starts_at, b.ends_at, b.blocked_until))
    cuts.update(t for b in blackouts for t in (b.starts_at, b.ends_at))
    cuts.update(t for c in custody for t in (c.starts_at, c.ends_at))
    if now is not None and start < now < end:
        cuts.add(now)
    result = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        day_start, day_end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        points = sorted({day_start, day_end} | {t for t in cuts if day_start < t < day_end})
        segments: list[Segment] = []
        for piece_start, piece_end in zip(points, points[1:], strict=False):
            kind, source = _classify(piece_start, opened, bookings, blackouts,
                                     viewer_member_id)
            if kind == "free" and now is not None and piece_end <= now:
                kind = "past"
            holder = next((c for c in custody if c.starts_at <= piece_start < c.ends_at), None)
            segment = _segment(piece_start, piece_end, kind, source, holder, zone,
                               viewer_member_id, audience)
            if segments and _same(segments[-1], segment):
                segment = Segment(segments[-1].starts_at, segment.ends_at, segment.kind,
                                  segment.booking_id, segment.member_id, segment.note,
                                  segment.audience)
                segments[-1] = segment
            else:
                segments.append(segment)
        result.append(Day(day, tuple(segments)))
    return result


def _segment(start: datetime, end: datetime, kind: str, source: Booking | Blackout | None,
             holder: Custody | None, zone: ZoneInfo, viewer_member_id: int | None,
             on_machine: Audience) -> Segment:
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if isinstance(source, Blackout):
        return Segment(local_start, local_end, kind, note=source.reason, audience=on_machine)
    held_by = source if isinstance(source, Booking) else (
        holder if holder is not None and kind == "free" else None)
    if held_by is None:
        return Segment(local_start, local_end, kind, audience=on_machine)
    audience = booking_audience(on_machine, viewer_member_id=viewer_member_id,
                                booker_member_id=held_by.member_id)
    shown = fields(SLOT, audience)
    if isinstance(held_by, Custody):
        kind = "free" if held_by.released else "custody"
        shown = shown | (fields(CUSTODY, audience) & {"member_id"})
    return Segment(local_start, local_end, kind,
                   booking_id=held_by.id if isinstance(held_by, Booking)
                   and "booking_id" in shown else None,
                   member_id=held_by.member_id if "member_id" in shown else None,
                   audience=audience)


def _same(a: Segment, b: Segment) -> bool:
    return (a.kind, a.booking_id, a.member_id, a.note) == (b.kind, b.booking_id,
                                                           b.member_id, b.note)


# --- iCalendar feed ---------------------------------------------------------------------


def feed_token(session: Session, member: Member, now: datetime, *, renew: bool = False) -> str:
    """The member's secret feed token, created on first use; `renew` revokes the old URL."""
    feed = session.get(CalendarFeed, member.id)
    if feed is not None and not renew:
        return feed.token
    if feed is None:
        feed = CalendarFeed(member_id=id_of(member), token="", created_at=now)
    feed.token = secrets.token_urlsafe(32)
    feed.created_at = now
    session.add(feed)
    try:
        session.commit()
    except IntegrityError:  # two first visits at once: the other one's token stands
        session.rollback()
        existing = session.get(CalendarFeed, member.id)
        assert existing is not None
        return existing.token
    return feed.token


def member_for_token(session: Session, token: str, now: datetime) -> Member | None:
    """The member whose feed this token opens (None for an unknown or revoked token, or
    for a business whose exit took effect: the feed needs no login, so no
    page gate stands before it, and a former member keeps none of the cluster's
    bookings)."""
    if not token or len(token) > 64:
        return None
    feed = session.exec(select(CalendarFeed).where(CalendarFeed.token == token)).first()
    member = session.get(Member, feed.member_id) if feed else None
    if member is not None and member.exit_effective_at is not None \
            and member.exit_effective_at <= now:
        return None
    return member


@dataclass(frozen=True)
class FeedEvent:
    uid: str
    starts_at: datetime
    ends_at: datetime
    summary: str
    location: str
    description: str = ""


def member_events(session: Session, member: Member, now: datetime,
                  labels: dict[str, str]) -> list[FeedEvent]:
    """The member's bookings, bookings of its machines, and its custody periods.

    `labels` holds the already translated titles ("Booking: %(machine)s" ...),
    so this module stays free of the web layer.
    """
    since = now - timedelta(days=30)
    live = (BookingStatus.REQUESTED.value, BookingStatus.CONFIRMED.value,
            BookingStatus.CHECKED_OUT.value, BookingStatus.RETURNED.value,
            BookingStatus.CLOSED.value)
    owned = set(session.exec(select(EquipmentOwner.equipment_id).where(
        EquipmentOwner.member_id == member.id)))
    rows = session.exec(select(Booking, Equipment).join(
        Equipment, col(Equipment.id) == Booking.equipment_id).where(
        col(Booking.status).in_(live), col(Booking.ends_at) > since,
        (col(Booking.member_id) == member.id) | col(Booking.equipment_id).in_(owned or {-1}))
        .order_by(col(Booking.starts_at))).all()
    events = []
    for booking, equipment in rows:
        label = labels["booking"] if booking.member_id == member.id else labels["lent"]
        events.append(FeedEvent(f"booking-{booking.id}", booking.starts_at, booking.ends_at,
                                label % {"machine": equipment.name}, equipment.locality))
    periods = session.exec(select(Custody, Equipment).join(
        Equipment, col(Equipment.id) == Custody.equipment_id).where(
        Custody.member_id == member.id, col(Custody.ends_at) > since)
        .order_by(col(Custody.starts_at))).all()
    for custody, equipment in periods:
        events.append(FeedEvent(f"custody-{custody.id}", custody.starts_at, custody.ends_at,
                                labels["custody"] % {"machine": equipment.name},
                                equipment.locality))
    return events


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> list[str]:
    """RFC 5545: lines longer than 75 octets continue on lines starting with a space."""
    out: list[str] = []
    current = ""
    for char in line:
        limit = 75 if not out else 74
        if len((current + char).encode()) > limit:
            out.append(current)
            current = char
        else:
            current += char
    out.append(current)
    return [out[0]] + [" " + rest for rest in out[1:]]


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def render_ics(events: list[FeedEvent], calendar_name: str, domain: str, now: datetime) -> str:
    """The feed as text/calendar (UTC times, so every phone shows its own local time)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Coopetition marketplace//EN",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", f"X-WR-CALNAME:{_escape(calendar_name)}"]
    for event in events:
        lines += ["BEGIN:VEVENT", f"UID:{event.uid}@{domain}", f"DTSTAMP:{_stamp(now)}",
                  f"DTSTART:{_stamp(event.starts_at)}", f"DTEND:{_stamp(event.ends_at)}",
                  f"SUMMARY:{_escape(event.summary)}", f"LOCATION:{_escape(event.location)}"]
        if event.description:
            lines.append(f"DESCRIPTION:{_escape(event.description)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(folded + "\r\n" for line in lines for folded in _fold(line))
