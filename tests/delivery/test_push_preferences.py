"""A person's push choices, made on the account page, decide what their phones get.

A category switched off writes no delivery row at all (the open page still gets
the notification).  Quiet hours hold pushes until the person's own morning, in
their own time zone across daylight-saving changes, and "skip new jobs" drops
the new-job pushes of the night while everything else still comes in the
morning.  `quiet_until` itself is checked as a property over instants, zones
and windows.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import DeliveryStatus, QuietHours
from marketplace.delivery.preferences import QuietTime, quiet_until
from marketplace.equipment import booking, listings
from tests.conftest import NOW, World, login
from tests.delivery.push_world import (
    deliveries,
    devices,
    fresh,
    notification_of,
    post_job,
    run_worker,
)
from tests.equipment.conftest import NEXT_MONDAY, at, draft
from tests.jobs.conftest import add_partner
from tests.push_service import FakePushService

TORONTO = ZoneInfo("America/Toronto")
ALL_ON = {"new_jobs": "y", "job_updates": "y", "bookings": "y", "money": "y"}


def choose(app: Flask, user: User, **fields: str) -> None:
    """Save push choices with the account page's form, as the person does."""
    client = app.test_client()
    login(client, user)
    response = client.post("/account/notifications", data=fields)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]


def toronto(day: int, month: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TORONTO).astimezone(UTC)


def _book_bs_machine(session: Session, world: World, now: datetime) -> None:
    """A books B's excavator: B (an owner) is told -- a bookings event, not a new job."""
    fresh(session)
    machine = listings.list_machine(session, world.owner_b, draft(), NOW)
    booking.book(session, world.owner_a, machine.id, at(NEXT_MONDAY, 9),  # type: ignore[arg-type]
                 at(NEXT_MONDAY, 11), now)


def test_a_category_switched_off_writes_no_push_for_it(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    world = jobs_world
    gamma = add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    session.commit()
    devices(app, push, world.owner_b, 2)
    [gammas_phone] = devices(app, push, gamma, 1)
    choose(app, world.owner_b, **{**ALL_ON, "new_jobs": ""})

    job = post_job(session, world.owner_a, NOW)
    muted = notification_of(session, world.owner_b, "job.posted")  # the page still gets it
    assert muted.payload["id"] == job.id
    assert deliveries(session, muted) == []
    [gammas] = deliveries(session, notification_of(session, gamma, "job.posted"))

    _book_bs_machine(session, world, NOW)  # bookings are still on for B
    told = notification_of(session, world.owner_b, "booking.confirmed")
    assert [r.status for r in deliveries(session, told)] == [DeliveryStatus.PENDING] * 2

    assert run_worker(app, NOW).sent == 3
    received = push.wait_for(3)
    assert sorted(m.payload["kind"] for m in received) == [
        "booking.confirmed", "booking.confirmed", "job.posted"]
    assert [m.payload["id"] for m in push.for_token(gammas_phone.token)] == [
        gammas.notification_id]
    assert {m.urgency for m in received if m.payload["kind"] == "booking.confirmed"} == {
        "normal"}


def test_quiet_hours_hold_pushes_until_morning_and_skip_new_jobs_if_asked(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    """B: quiet 22:00-07:00 in Toronto, new jobs skipped.  At 23:30 there a job is
    posted and B's machine booked: the booking comes at 07:00 sharp, the job never."""
    world = jobs_world
    world.owner_b.timezone = "America/Toronto"
    cluster = session.get(Cluster, world.cluster.id)
    assert cluster is not None
    cluster.timezone = "Europe/Paris"  # the person's own zone wins over the cluster's
    session.add_all([world.owner_b, cluster])
    session.commit()
    [phone] = devices(app, push, world.owner_b, 1)
    choose(app, world.owner_b, **ALL_ON, quiet="y", quiet_start="22:00", quiet_end="07:00",
           quiet_new_jobs="skip")

    night = toronto(1, 6, 23, 30)
    morning = toronto(2, 6, 7)
    assert morning == datetime(2026, 6, 2, 11, 0, tzinfo=UTC)  # EDT: UTC-4
    job = post_job(session, world.owner_a, night)
    _book_bs_machine(session, world, night)
    announced = notification_of(session, world.owner_b, "job.posted")
    assert announced.payload["id"] == job.id  # the open page is told at once all the same
    [new_job] = deliveries(session, announced)
    [booked] = deliveries(session, notification_of(session, world.owner_b, "booking.confirmed"))
    assert (new_job.status, new_job.due_at) == (DeliveryStatus.SKIPPED, morning)
    assert (booked.status, booked.due_at) == (DeliveryStatus.PENDING, morning)

    for still_night in (night, toronto(2, 6, 3), morning - timedelta(seconds=1)):
        assert not run_worker(app, still_night)
    assert push.received == [] and push.rejected == []
    assert run_worker(app, morning).sent == 1
    [message] = push.wait_for(1)
    assert message.token == phone.token and message.payload["kind"] == "booking.confirmed"
    assert not run_worker(app, morning + timedelta(hours=3))
    assert [r.status for r in deliveries(session)] == [DeliveryStatus.SKIPPED,
                                                        DeliveryStatus.SENT]
    assert [m.payload["kind"] for m in push.received] == ["booking.confirmed"]


def test_quiet_hours_follow_the_clock_change_and_wait_if_asked(
    app: Flask, session: Session, jobs_world: World, push: FakePushService
) -> None:
    """Saturday 2026-10-31, 23:30 in Toronto; clocks fall back at 02:00.  07:00 is then
    12:00 UTC (not 11:00), and a new job waits for it when B chose "wait"."""
    world = jobs_world
    [phone] = devices(app, push, world.owner_b, 1)
    choose(app, world.owner_b, **ALL_ON, quiet="y", quiet_start="22:00", quiet_end="07:00",
           quiet_new_jobs="wait")
    night, morning = toronto(31, 10, 23, 30), toronto(1, 11, 7)
    assert (night, morning) == (datetime(2026, 11, 1, 3, 30, tzinfo=UTC),
                                datetime(2026, 11, 1, 12, 0, tzinfo=UTC))
    job = post_job(session, world.owner_a, night)
    [row] = deliveries(session)
    assert (row.status, row.due_at) == (DeliveryStatus.PENDING, morning)
    assert not run_worker(app, morning - timedelta(hours=1))  # 07:00 by summer time
    assert push.received == []
    assert run_worker(app, morning).sent == 1
    [message] = push.wait_for(1)
    assert message.token == phone.token and message.payload["data"]["id"] == job.id


def test_quiet_hours_need_two_different_times(
    app: Flask, session: Session, jobs_world: World
) -> None:
    client = app.test_client()
    login(client, jobs_world.owner_b)
    response = client.post("/account/notifications", data={
        **ALL_ON, "quiet": "y", "quiet_start": "22:00", "quiet_end": "22:00"})
    assert response.status_code == 422
    assert "different times" in response.get_data(as_text=True)
    response = client.post("/account/notifications", data={**ALL_ON, "quiet": "y"})
    assert response.status_code == 422
    assert fresh(session).get(QuietHours, jobs_world.owner_b.id) is None


# -- quiet_until, as a property ----------------------------------------------------------

ZONES = ["America/Toronto", "Europe/Paris", "Pacific/Kiritimati", "Australia/Lord_Howe",
         "America/St_Johns", "UTC"]
MINUTE = st.integers(min_value=0, max_value=24 * 60 - 1)


def _inside(instant: datetime, zone: ZoneInfo, quiet: QuietTime) -> bool:
    """Whether the person's wall clock at `instant` shows a quiet minute."""
    local = instant.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = quiet.start_minute, quiet.end_minute
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


@cache
def _transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The instants (UTC, to the hour) a zone changed its offset in `year`."""
    zone, found = ZoneInfo(zone_name), []

    def offset(instant: datetime) -> timedelta | None:
        return instant.astimezone(zone).utcoffset()

    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        if offset(day) != offset(day + timedelta(days=1)):
            hour = day
            while offset(hour) == offset(day):
                hour += timedelta(hours=1)
            found.append(hour)
        day += timedelta(days=1)
    return tuple(found)


@st.composite
def _instants(draw: st.DrawFn, zone_name: str) -> datetime:
    """Any instant, or -- half the time -- one within a day of a clock change."""
    if draw(st.booleans()):
        naive = draw(st.datetimes(min_value=datetime(1990, 1, 1),
                                  max_value=datetime(2060, 1, 1)))
        return naive.replace(tzinfo=UTC)
    changes = _transitions(zone_name, draw(st.integers(1990, 2059)))
    if not changes:
        return datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=draw(MINUTE))
    near = draw(st.sampled_from(changes))
    return near + timedelta(minutes=draw(st.integers(-26 * 60, 26 * 60)))


@st.composite
def _cases(draw: st.DrawFn) -> tuple[datetime, str]:
    zone_name = draw(st.sampled_from(ZONES))
    return draw(_instants(zone_name)), zone_name


@settings(max_examples=400, deadline=None)
@given(
    case=_cases(),
    start=MINUTE,
    end=MINUTE,
    skip=st.booleans(),
)
# Toronto falls back at 02:00 EDT -> 01:00 EST: at 01:15 EST (the second 01:15) the
# window 22:00-01:30 still has a quarter of an hour to go.
@example(case=(datetime(2026, 11, 1, 6, 15, tzinfo=UTC), "America/Toronto"),
         start=22 * 60, end=90, skip=False)
# Toronto springs forward at 02:00 EST -> 03:00 EDT: 02:30 never shows that night.
@example(case=(datetime(2026, 3, 8, 6, 50, tzinfo=UTC), "America/Toronto"),
         start=22 * 60, end=150, skip=False)
# Almost all day quiet, and the 02:00 end is skipped when the clocks spring forward.
@example(case=(datetime(1990, 4, 1, 6, 30, tzinfo=UTC), "America/Toronto"),
         start=121, end=120, skip=False)
# Lord Howe falls back half an hour, 02:00 -> 01:30.
@example(case=(datetime(2026, 4, 4, 15, 10, tzinfo=UTC), "Australia/Lord_Howe"),
         start=60, end=105, skip=True)
def test_quiet_until_ends_the_window_the_wall_clock_is_in(
    case: tuple[datetime, str], start: int, end: int, skip: bool
) -> None:
    now, zone_name = case
    zone, quiet = ZoneInfo(zone_name), QuietTime(start, end, skip)
    until = quiet_until(now, zone, quiet)
    assert (until is None) == (not _inside(now, zone, quiet))
    if until is None:
        return
    assert until.tzinfo is not None
    assert now < until <= now + timedelta(hours=25)
    if _inside(until, zone, quiet):
        # Only when the end's wall time never shows that day (clocks sprang forward over
        # it) and the window starts again within the hour skipped: then the quiet time
        # ends as the clock passes the end, read with the offset before the change.
        local = until.astimezone(zone)
        end_wall = datetime.combine(local.date(), time(end // 60, end % 60))
        shown = end_wall.replace(tzinfo=zone).astimezone(UTC)
        assert shown.astimezone(zone).replace(tzinfo=None) != end_wall, (
            f"{local} is still inside {quiet} in {zone_name}")
        assert until == shown and local.replace(tzinfo=None) > end_wall


@pytest.mark.parametrize(("local", "expected"), [
    (datetime(2026, 6, 1, 23, 30), datetime(2026, 6, 2, 11, 0, tzinfo=UTC)),
    (datetime(2026, 6, 2, 6, 59), datetime(2026, 6, 2, 11, 0, tzinfo=UTC)),
    (datetime(2026, 6, 2, 7, 0), None),
    (datetime(2026, 6, 1, 21, 59), None),
    (datetime(2026, 6, 1, 22, 0), datetime(2026, 6, 2, 11, 0, tzinfo=UTC)),
    (datetime(2026, 10, 31, 23, 30), datetime(2026, 11, 1, 12, 0, tzinfo=UTC)),
])
def test_quiet_until_in_toronto(local: datetime, expected: datetime | None) -> None:
    now = local.replace(tzinfo=TORONTO).astimezone(UTC)
    assert quiet_until(now, TORONTO, QuietTime(22 * 60, 7 * 60, False)) == expected

