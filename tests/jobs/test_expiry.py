"""Dates a crew trips over: a job nobody took before its start date expires (the
scheduler closes it and tells the poster) and can no longer be claimed or bid on;
work is reported done only from the start date; a bid cannot start in the past.

The cluster is in Toronto: its day turns at local midnight (05:00 UTC in winter,
04:00 in summer), so "the start date has passed" is judged on the cluster's day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from marketplace.errors import Conflict, ValidationError
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.models import Bid, JobContract, JobStatus, OverflowJob
from marketplace.realtime.models import Notification
from marketplace.scheduling.tasks import TASKS
from tests.conftest import NOW, World
from tests.jobs.conftest import STARTS_ON, count, recipients

Post = Callable[..., OverflowJob]
#: 23:30 in Toronto on the start date (03:30 UTC the next day): still the start date.
LATE_ON_START = datetime(2026, 6, 11, 3, 30, tzinfo=UTC)
#: 00:30 in Toronto the day after the start date: the start date has passed.
DAY_AFTER = datetime(2026, 6, 11, 4, 30, tzinfo=UTC)


def _status(session: Session, job: OverflowJob) -> str:
    session.expire_all()
    fresh = session.get(OverflowJob, job.id)
    assert fresh is not None
    return fresh.status


def test_a_hand_off_can_be_claimed_until_its_start_date_ends_where_the_cluster_is(
        session: Session, jobs_world: World, post: Post) -> None:
    late = post()
    service.claim_job(session, jobs_world.owner_b, late.id, LATE_ON_START)
    assert _status(session, late) == JobStatus.AWARDED
    too_late = post(title="Edge the boulevard")
    with pytest.raises(Conflict) as refused:
        service.claim_job(session, jobs_world.owner_b, too_late.id, DAY_AFTER)
    assert refused.value.code == "job_expired"
    assert "can no longer be claimed" in refused.value.message
    session.rollback()
    assert _status(session, too_late) == JobStatus.OPEN
    assert count(session, JobContract) == 1


def test_the_sweep_expires_untaken_jobs_once_and_tells_the_poster(
        session: Session, jobs_world: World, post: Post) -> None:
    untaken = post(title="Nobody wants this")
    starts_tomorrow = post(title="Starts later", starts_on=STARTS_ON + timedelta(days=1),
                           ends_on=STARTS_ON + timedelta(days=2))
    claimed = post(title="Claimed in time")
    service.claim_job(session, jobs_world.owner_b, claimed.id, NOW)
    assert service.expire_due_jobs(session, LATE_ON_START) == []  # still the start date
    assert service.expire_due_jobs(session, DAY_AFTER) == [untaken.id]
    assert service.expire_due_jobs(session, DAY_AFTER) == []  # a second sweep: nothing
    assert _status(session, untaken) == JobStatus.EXPIRED
    assert _status(session, starts_tomorrow) == JobStatus.OPEN
    assert _status(session, claimed) == JobStatus.AWARDED
    assert recipients(session, "job.expired") == sorted(
        [jobs_world.owner_a.id, jobs_world.crew_a.id])
    with pytest.raises(Conflict) as refused:
        service.claim_job(session, jobs_world.owner_b, untaken.id, DAY_AFTER)
    assert refused.value.code == "job_expired"
    session.rollback()
    reasons = service.explain(session, jobs_world.owner_b, untaken, DAY_AFTER)
    assert [r.code for r in reasons][:1] == ["job_expired"]


def test_the_board_drops_a_job_as_soon_as_its_start_date_has_passed(
        session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    assert [j.id for j, _d in service.board(session, jobs_world.owner_b, LATE_ON_START)] == [
        job.id]
    assert service.board(session, jobs_world.owner_b, DAY_AFTER) == []  # before any sweep


def test_a_closed_bid_window_waits_for_the_poster_even_after_the_start_date(
        session: Session, jobs_world: World, post: Post) -> None:
    window = post(bid_window=True)
    bidding.place_bid(session, jobs_world.owner_b, window.id,
                      bidding.BidTerms(900_00, 3, STARTS_ON), NOW)
    assert service.expire_due_jobs(session, DAY_AFTER) == []
    assert _status(session, window) == JobStatus.OPEN  # the window sweep closes it
    assert bidding.close_window(session, window.id, DAY_AFTER)  # type: ignore[arg-type]
    assert service.expire_due_jobs(session, DAY_AFTER) == []
    assert _status(session, window) == JobStatus.WINDOW_CLOSED


def test_a_bid_window_must_close_before_the_start_date_is_over(
        session: Session, jobs_world: World, post: Post) -> None:
    with pytest.raises(ValidationError) as refused:
        post(bid_window=True, closes_at=LATE_ON_START + timedelta(hours=1))
    assert "closes_at" in refused.value.fields
    session.rollback()
    assert count(session, OverflowJob) == 0
    job = post(bid_window=True, closes_at=LATE_ON_START)  # 23:30 on the start date
    assert job.status == JobStatus.OPEN


def test_bidding_after_the_start_date_is_refused_with_the_reason(
        session: Session, jobs_world: World, post: Post) -> None:
    """A window left open past its start (posted before the rule): no more bids."""
    window = post(bid_window=True)
    window.closes_at = DAY_AFTER + timedelta(days=1)
    session.add(window)
    session.commit()
    with pytest.raises(Conflict) as refused:
        bidding.place_bid(session, jobs_world.owner_b, window.id,
                          bidding.BidTerms(900_00, 3, DAY_AFTER.date()), DAY_AFTER)
    assert refused.value.code == "job_expired"
    session.rollback()
    assert count(session, Bid) == 0


def test_an_earliest_start_in_the_past_is_refused(session: Session, jobs_world: World,
                                                  post: Post) -> None:
    window = post(bid_window=True)
    yesterday = NOW.date() - timedelta(days=1)
    with pytest.raises(ValidationError) as refused:
        bidding.place_bid(session, jobs_world.owner_b, window.id,
                          bidding.BidTerms(900_00, 3, yesterday), NOW)
    assert "earliest_start" in refused.value.fields
    session.rollback()
    assert count(session, Bid) == 0
    bidding.place_bid(session, jobs_world.owner_b, window.id,
                      bidding.BidTerms(900_00, 3, NOW.date()), NOW)  # today is fine
    assert count(session, Bid) == 1


def test_work_is_reported_done_only_from_the_start_date(
        session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    notes = count(session, Notification)
    the_evening_before = datetime(2026, 6, 10, 3, 30, tzinfo=UTC)  # 23:30 on 9 June
    with pytest.raises(Conflict) as refused:
        completion.report_done(session, jobs_world.owner_b, job.id, the_evening_before)
    assert refused.value.code == "not_started"
    session.rollback()
    assert _status(session, job) == JobStatus.AWARDED
    assert count(session, Notification) == notes
    completion.report_done(session, jobs_world.owner_b, job.id, the_evening_before
                           + timedelta(hours=1))  # 00:30 on the start date
    assert _status(session, job) == JobStatus.DONE


def test_the_scheduler_runs_the_expiry_sweep() -> None:
    task = next(t for t in TASKS if t.id == "jobs.expire_unclaimed")
    assert task.run is service.expire_due_jobs and task.every_seconds <= 60
