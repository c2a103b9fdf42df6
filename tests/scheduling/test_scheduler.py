"""The real APScheduler closes due bid windows by itself, exactly once."""

from __future__ import annotations

import time
from datetime import timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.jobs import bidding, service
from marketplace.jobs.models import JobMode, JobStatus, OverflowJob
from marketplace.realtime.models import Notification
from marketplace.scheduling.runner import add_tasks
from tests.conftest import World
from tests.jobs.conftest import give_profile, job_draft


def _window_due_now(session: Session, world: World) -> int:
    """A bid window posted 20 minutes ago that closed 5 minutes ago (while we were down)."""
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    posted_at = utcnow() - timedelta(minutes=20)
    job = service.post_job(session, world.owner_a, job_draft(
        mode=JobMode.BID_WINDOW.value, closes_at=posted_at + timedelta(minutes=15),
        starts_on=posted_at.date(), ends_on=posted_at.date()), posted_at)
    bidding.place_bid(session, world.owner_b, job.id, bidding.BidTerms(
        900_00, 3, posted_at.date()), posted_at + timedelta(minutes=1))
    session.commit()
    assert job.id is not None
    return job.id


def _wait_closed(session: Session, job_id: int, seconds: float = 10) -> OverflowJob:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.expire_all()
        job = session.get(OverflowJob, job_id)
        session.commit()
        if job is not None and job.status == JobStatus.WINDOW_CLOSED:
            return job
        time.sleep(0.1)
    raise AssertionError("the scheduler did not close the window")


def test_overdue_window_closes_on_start_exactly_once(app: Flask, session: Session,
                                                     world: World) -> None:
    job_id = _window_due_now(session, world)
    schedulers = [BackgroundScheduler(timezone="UTC") for _ in range(2)]
    started = time.monotonic()
    leaderships = []
    for scheduler in schedulers:  # two sweeps racing: the database lets one win
        leaderships.append(add_tasks(scheduler, app))
        scheduler.start()
    try:
        job = _wait_closed(session, job_id)
        assert time.monotonic() - started < 5
        time.sleep(2.5)  # let further sweeps run: they must change nothing
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        # step down: on PostgreSQL the advisory lock lives on the leader's own
        # connection, which otherwise lingers until the garbage collector frees it and
        # keeps the next test's schedulers from leading
        for leadership in leaderships:
            leadership.release()
    closed_notes = session.exec(select(Notification).where(
        Notification.kind == "window.closed")).all()
    session.commit()
    # the poster's people (owner and crew) and the bidder, each told exactly once
    assert sorted(n.user_id for n in closed_notes) == sorted(
        [world.owner_a.id, world.crew_a.id, world.owner_b.id])
    assert job.window_closed_at is not None


def test_rotation_handovers_are_announced_by_the_scheduler_once(app: Flask, session: Session,
                                                                 world: World) -> None:
    from zoneinfo import ZoneInfo

    from marketplace.equipment import listings, rotation
    from tests.equipment.conftest import anytime_draft as draft

    yesterday = utcnow() - timedelta(days=1)
    machine = listings.record_co_owned(session, world.coordinator, draft(),
                                       {world.member_a_id: 5000, world.member_b_id: 5000},
                                       yesterday)
    local_day = yesterday.astimezone(ZoneInfo("America/Toronto")).date()
    rotation.create_plan(session, world.coordinator, machine.id, "day",  # type: ignore[arg-type]
                         local_day, yesterday)
    schedulers = [BackgroundScheduler(timezone="UTC") for _ in range(2)]
    leaderships = []
    for scheduler in schedulers:
        leaderships.append(add_tasks(scheduler, app))
        scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            notes = session.exec(select(Notification).where(
                Notification.kind == "custody.handover")).all()
            session.commit()
            if len(notes) >= 6:
                break
            time.sleep(0.1)
        time.sleep(1)  # a second sweep must add nothing
    finally:
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        # step down: on PostgreSQL the advisory lock lives on the leader's own
        # connection, which otherwise lingers until the garbage collector frees it and
        # keeps the next test's schedulers from leading
        for leadership in leaderships:
            leadership.release()
    notes = session.exec(select(Notification).where(
        Notification.kind == "custody.handover")).all()
    # today's hand-over (A to B) at its start and tomorrow's (B to A) the day before:
    # each person of both businesses is told of each exactly once
    people = [world.owner_a.id, world.crew_a.id, world.owner_b.id]
    assert sorted(n.user_id for n in notes) == sorted(people * 2)
    assert {(n.params["from"], n.params["to"]) for n in notes} == {
        ("Alpha Lawns", "Beta Stone"), ("Beta Stone", "Alpha Lawns")}
