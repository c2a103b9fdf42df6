"""After award: done by the winner, confirmed by the poster, rated once, reliability."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlmodel import Session

from marketplace.clusters.models import User
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.models import JobRating, JobStatus, OverflowJob
from tests.conftest import NOW, World, invite_user
from tests.jobs.conftest import CLOSES_AT, ENDS_ON, STARTS_ON, add_partner, count, recipients

Post = Callable[..., OverflowJob]
LATER = NOW + timedelta(days=20)


@pytest.fixture
def gamma(session: Session, jobs_world: World) -> User:
    return add_partner(session, jobs_world, "Gamma Trees", "g@gamma.test")


@pytest.fixture
def claimed(session: Session, jobs_world: World, post: Post) -> OverflowJob:
    job = post()
    service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    return job


def _status(session: Session, job: OverflowJob) -> str:
    session.expire_all()
    fresh = session.get(OverflowJob, job.id)
    assert fresh is not None
    return fresh.status


def test_only_the_winner_reports_done(session: Session, jobs_world: World, gamma: User,
                                      claimed: OverflowJob) -> None:
    for outsider in (jobs_world.owner_a, jobs_world.crew_a, gamma):
        with pytest.raises(Forbidden) as refused:
            completion.report_done(session, outsider, claimed.id, LATER)
        assert refused.value.code == "winner_only"
        session.rollback()
    assert _status(session, claimed) == JobStatus.AWARDED
    completion.report_done(session, jobs_world.owner_b, claimed.id, LATER)
    assert _status(session, claimed) == JobStatus.DONE
    assert recipients(session, "job.done") == [jobs_world.owner_a.id, jobs_world.crew_a.id]
    with pytest.raises(Conflict) as twice:
        completion.report_done(session, jobs_world.owner_b, claimed.id, LATER)
    assert twice.value.code == "wrong_state"


def test_open_job_cannot_be_reported_done(session: Session, jobs_world: World,
                                          post: Post) -> None:
    job = post()
    with pytest.raises(Forbidden):
        completion.report_done(session, jobs_world.owner_b, job.id, LATER)


def test_only_the_poster_confirms_after_done(session: Session, jobs_world: World,
                                             claimed: OverflowJob) -> None:
    with pytest.raises(Conflict) as early:
        completion.confirm_completion(session, jobs_world.owner_a, claimed.id, LATER)
    assert early.value.code == "wrong_state"
    session.rollback()
    completion.report_done(session, jobs_world.owner_b, claimed.id, LATER)
    with pytest.raises(Forbidden) as winner:
        completion.confirm_completion(session, jobs_world.owner_b, claimed.id, LATER)
    assert winner.value.code == "poster_only"
    session.rollback()
    assert _status(session, claimed) == JobStatus.DONE
    completion.confirm_completion(session, jobs_world.owner_a, claimed.id, LATER)
    assert _status(session, claimed) == JobStatus.CONFIRMED
    assert recipients(session, "job.confirmed") == [jobs_world.owner_b.id]


def _finish(session: Session, world: World, job: OverflowJob, winner: User) -> None:
    completion.report_done(session, winner, job.id, LATER)
    completion.confirm_completion(session, world.owner_a, job.id, LATER)


def test_rating_opens_after_confirmation_and_happens_once(
        session: Session, jobs_world: World, gamma: User, claimed: OverflowJob) -> None:
    w = jobs_world
    with pytest.raises(Conflict) as early:
        completion.rate(session, w.owner_a, claimed.id, w.member_b_id, 5, True, "", LATER)
    assert early.value.code == "not_confirmed"
    _finish(session, w, claimed, w.owner_b)
    with pytest.raises(ValidationError):
        completion.rate(session, w.owner_a, claimed.id, w.member_b_id, 6, True, "", LATER)
    with pytest.raises(Forbidden) as outsider:
        completion.rate(session, gamma, claimed.id, w.member_b_id, 1, False, "", LATER)
    assert outsider.value.code == "cannot_rate"
    with pytest.raises(Forbidden):  # the winner rates the poster, not itself
        completion.rate(session, w.owner_b, claimed.id, w.member_b_id, 5, True, "", LATER)
    session.rollback()
    assert count(session, JobRating) == 0

    rating = completion.rate(session, w.owner_a, claimed.id, w.member_b_id, 5, True,
                             " Tidy work ", LATER)
    assert (rating.rater_member_id, rating.ratee_member_id, rating.score) == (
        w.member_a_id, w.member_b_id, 5)
    assert rating.comment == "Tidy work"
    for rater in (w.owner_a, w.crew_a):  # once per business, whoever clicks
        with pytest.raises(Conflict) as again:
            completion.rate(session, rater, claimed.id, w.member_b_id, 1, False, "", LATER)
        assert again.value.code == "already_rated"
        session.rollback()
    completion.rate(session, w.owner_b, claimed.id, w.member_a_id, 4, True, "", LATER)
    assert count(session, JobRating) == 2


def test_reliability_numbers(session: Session, jobs_world: World, gamma: User,
                             post: Post) -> None:
    w = jobs_world
    empty = completion.reliability(session, w.member_b_id, STARTS_ON)
    assert empty == completion.Reliability(0, 0, None, None, None, 0)

    on_time, late, reported, open_ = (post(title=f"Job {i}") for i in range(4))
    for job in (on_time, late, reported, open_):
        service.claim_job(session, w.owner_b, job.id, NOW)
    _finish(session, w, on_time, w.owner_b)
    _finish(session, w, late, w.owner_b)
    completion.report_done(session, w.owner_b, reported.id, LATER)
    completion.rate(session, w.owner_a, on_time.id, w.member_b_id, 5, True, "", LATER)
    completion.rate(session, w.owner_a, late.id, w.member_b_id, 2, False, "", LATER)
    # B's own rating of the poster counts for A, not for B.
    completion.rate(session, w.owner_b, late.id, w.member_a_id, 3, True, "", LATER)

    b = completion.reliability(session, w.member_b_id, STARTS_ON)
    assert b.jobs_won == 4
    assert b.jobs_completed == 2
    assert b.completion_rate == 1.0  # the open job is still within its dates
    overdue = completion.reliability(session, w.member_b_id, ENDS_ON + timedelta(days=1))
    assert overdue.completion_rate == 0.75  # past its end date, never reported done
    assert b.on_time_rate == 0.5
    assert b.average_rating == 3.5
    assert b.ratings == 2

    a = completion.reliability(session, w.member_a_id, STARTS_ON)
    assert (a.jobs_won, a.ratings, a.average_rating, a.on_time_rate) == (0, 1, 3.0, 1.0)
    assert completion.reliability(session, gamma.member_id, STARTS_ON) == empty  # type: ignore[arg-type]


def test_joint_winners_each_report_rate_and_count(session: Session, jobs_world: World,
                                                  gamma: User, post: Post) -> None:
    w = jobs_world
    job = post(bid_window=True)
    joint = bidding.propose_joint_bid(
        session, gamma, job.id, bidding.BidTerms(900_000, 5, STARTS_ON),
        {gamma.member_id: 5_000, w.member_b_id: 5_000}, NOW)  # type: ignore[dict-item]
    bidding.confirm_joint_share(session, w.owner_b, joint.id, NOW)
    bidding.submit_joint_bid(session, gamma, joint.id, NOW)
    bidding.close_window(session, job.id, CLOSES_AT)
    bidding.award_bid(session, w.owner_a, job.id, joint.id, CLOSES_AT)
    completion.report_done(session, w.owner_b, job.id, LATER)  # the partner may report too
    completion.confirm_completion(session, w.owner_a, job.id, LATER)
    completion.rate(session, w.owner_a, job.id, gamma.member_id, 4, True, "", LATER)
    completion.rate(session, w.owner_a, job.id, w.member_b_id, 5, True, "", LATER)
    completion.rate(session, gamma, job.id, w.member_a_id, 5, True, "", LATER)
    for member_id in (gamma.member_id, w.member_b_id):
        numbers = completion.reliability(session, member_id, STARTS_ON)  # type: ignore[arg-type]
        assert (numbers.jobs_won, numbers.jobs_completed, numbers.ratings) == (1, 1, 1)


RATERS = 6


def test_simultaneous_ratings_store_one(app: Flask, session: Session, jobs_world: World,
                                        claimed: OverflowJob) -> None:
    w = jobs_world
    _finish(session, w, claimed, w.owner_b)
    raters = [w.owner_a, w.crew_a] + [invite_user(session, w.owner_a, f"r{i}@alpha.test")
                                      for i in range(RATERS - 2)]
    session.commit()
    engine = app.extensions["engine"]
    barrier = threading.Barrier(RATERS, timeout=30)
    outcomes: list[str] = []
    lock = threading.Lock()

    def rate(user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()
            barrier.wait()
            try:
                completion.rate(own, actor, claimed.id, w.member_b_id, 4, True, "", LATER)
                outcome = "rated"
            except Conflict as refused:
                outcome = refused.code
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=rate, args=(u.id,)) for u in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["already_rated"] * (RATERS - 1) + ["rated"]
    assert count(session, JobRating) == 1
