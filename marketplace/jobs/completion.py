"""After award: the winner reports the work done, the poster confirms, both rate.

Reliability (completion rate, on-time rate, average rating, jobs done) is
computed from these rows, never stored, so it can never disagree with them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Integer, cast, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from marketplace import events
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.errors import N_, Conflict, Forbidden, ValidationError
from marketplace.jobs.models import ContractParty, JobContract, JobRating, JobStatus, OverflowJob
from marketplace.jobs.service import get_job, job_today
from marketplace.jobs.visibility import contract_member_ids
from marketplace.persisted import id_of

#: What makes a confirmed contract's money due, inside the confirmation's transaction.
#: Why a port: jobs never import the ledger (the import contracts in pyproject.toml);
#: the ledger knows the jobs' tables and hands its booking in (ledger/confirmation.py,
#: loaded with the ledger package).
MoneyDue = Callable[[Session, JobContract, datetime], None]
_money_due: list[MoneyDue] = []


def book_money_with(handler: MoneyDue) -> MoneyDue:
    """Install what books a confirmed contract (the ledger's, once; a decorator)."""
    _money_due[:] = [handler]
    return handler


def _transition(session: Session, job: OverflowJob, before: JobStatus, after: JobStatus
                ) -> None:
    moved = session.exec(update(OverflowJob).where(
        col(OverflowJob.id) == job.id, col(OverflowJob.status) == before)
        .values(status=after.value))
    if moved.rowcount != 1:
        session.rollback()
        raise Conflict("wrong_state", N_("This step is not possible in the job's current "
                                         "state. Reload the page."))
    session.refresh(job)


def report_done(session: Session, actor: User, job_id: int, now: datetime) -> OverflowJob:
    """A winning party says the work is finished."""
    member = acting_member(session, actor)
    job = get_job(session, actor, job_id)
    if member.id not in contract_member_ids(session, id_of(job)):
        raise Forbidden("winner_only", N_("Only the business that won the job can report it "
                                          "done."))
    if job_today(session, job, now) < job.starts_on:
        raise Conflict("not_started", N_("The job has not started yet: report the work done "
                                         "from its start date on, once it is finished."))
    _transition(session, job, JobStatus.AWARDED, JobStatus.DONE)
    events.notify(session, active_users_of(session, [job.poster_member_id]), "job.done",
                  N_("%(member)s reports the job %(title)s done. Confirm it."), now=now,
                  params={"member": member.name, "title": job.title},
                  payload={"id": job.id, "status": job.status}, link=f"/jobs/{job.id}")
    session.commit()
    return job


def confirm_completion(session: Session, actor: User, job_id: int, now: datetime
                       ) -> OverflowJob:
    """The poster confirms the work; this is when money becomes due (ledger entries).
    When the poster has left the cluster (its people are gated out), the coordinator
    confirms instead, so a contract it left standing can still complete."""
    if actor.is_coordinator:
        job = get_job(session, actor, job_id)
        if not poster_left(session, job, now):
            raise Forbidden("poster_only", N_("Only the member who posted the job can "
                                              "confirm it; the coordinator can only when "
                                              "that member has left the cluster."))
    else:
        member = acting_member(session, actor)
        job = get_job(session, actor, job_id)
        if job.poster_member_id != member.id:
            raise Forbidden("poster_only", N_("Only the member who posted the job can "
                                              "confirm it."))
    _transition(session, job, JobStatus.DONE, JobStatus.CONFIRMED)
    contract = contract_of(session, id_of(job))
    assert contract is not None  # a job is done only under a contract
    if not _money_due:
        raise RuntimeError("no ledger installed to book a confirmed contract "
                           "(import marketplace.ledger)")
    _money_due[0](session, contract, now)
    parties = sorted(contract_member_ids(session, id_of(job)))
    events.notify(session, active_users_of(session, parties),
                  "job.confirmed", N_("The job %(title)s is confirmed complete."), now=now,
                  params={"title": job.title}, payload={"id": job.id, "status": job.status},
                  link=f"/jobs/{job.id}")
    session.commit()
    return job


def poster_left(session: Session, job: OverflowJob, now: datetime) -> bool:
    """Whether the job's poster business has left the cluster (its exit date came)."""
    poster = session.get(Member, job.poster_member_id)
    return poster is not None and poster.exit_effective_at is not None \
        and poster.exit_effective_at <= now


def may_confirm(session: Session, viewer: User, job: OverflowJob, now: datetime) -> bool:
    """Whether `viewer` may confirm the job's completion (the rule of confirm_completion,
    for the page's button)."""
    if viewer.is_coordinator:
        return poster_left(session, job, now)
    return viewer.member_id is not None and viewer.member_id == job.poster_member_id


def rate(session: Session, actor: User, job_id: int, ratee_member_id: int, score: int,
         on_time: bool, comment: str, now: datetime) -> JobRating:
    """Poster rates each winner and winners rate the poster, once, after confirmation."""
    member = acting_member(session, actor)
    job = get_job(session, actor, job_id)
    if ratee_member_id not in _rateable(job, member.id, contract_member_ids(session, id_of(job))):
        raise Forbidden("cannot_rate", N_("You can rate only the other side of a job you "
                                          "took part in."))
    if job.status != JobStatus.CONFIRMED:
        raise Conflict("not_confirmed", N_("Ratings open once the poster confirms the job."))
    if not 1 <= score <= 5 or len(comment) > 1000:
        raise ValidationError("invalid_rating", N_("Give a score from 1 to 5 and a comment "
                                                   "under 1000 characters."),
                              fields={"score": N_("Give a score from 1 to 5.")})
    exists = session.exec(select(JobRating).where(
        JobRating.job_id == job.id, JobRating.rater_member_id == member.id,
        JobRating.ratee_member_id == ratee_member_id)).first()
    already = Conflict("already_rated", N_("You already rated this partner for this job."))
    if exists is not None:
        raise already
    rating = JobRating(job_id=id_of(job), rater_member_id=id_of(member),
                       ratee_member_id=ratee_member_id, score=score, on_time=on_time,
                       comment=comment.strip(), created_at=now)
    session.add(rating)
    try:
        session.commit()
    except IntegrityError:  # a colleague rated in the same instant: the unique key decides
        session.rollback()
        raise already from None
    return rating


def contract_of(session: Session, job_id: int) -> JobContract | None:
    """The job's contract, once it is claimed or awarded."""
    return session.exec(select(JobContract).where(JobContract.job_id == job_id)).first()


def _rateable(job: OverflowJob, member_id: int | None, winners: set[int]) -> set[int]:
    """Whom a member may rate on `job` (won by `winners`): the poster rates each winner,
    a winner the poster, anyone else nobody (ratings open once the job is confirmed:
    `rate` checks that)."""
    if member_id == job.poster_member_id:
        return winners
    return {job.poster_member_id} if member_id in winners else set()


def rate_targets(session: Session, member_id: int | None, job: OverflowJob,
                 winners: set[int]) -> list[int]:
    """The members `member_id`'s business may still rate on `job` (by id): whom it may
    rate and has not rated yet; none for a viewer of no business (a coordinator).
    `winners` are the job's contract parties (`visibility.contract_member_ids`), which
    the job page has read already."""
    if member_id is None:
        return []
    rated = set(session.exec(select(JobRating.ratee_member_id).where(
        JobRating.job_id == job.id, JobRating.rater_member_id == member_id)))
    return sorted(_rateable(job, member_id, winners) - rated)


@dataclass(frozen=True)
class Reliability:
    jobs_won: int
    jobs_completed: int
    completion_rate: float | None
    on_time_rate: float | None
    average_rating: float | None
    ratings: int


def reliability(session: Session, member_id: int, today: date) -> Reliability:
    """A member's track record as partners see it on its profile.

    Completion rate: of the jobs it won that are finished or past their end
    date, the share it reported done.  A job still within its dates does not
    count against anyone.
    """
    won = list(session.exec(
        select(col(OverflowJob.status), col(OverflowJob.ends_on))
        .join(JobContract, col(JobContract.job_id) == OverflowJob.id)
        .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
        .where(ContractParty.member_id == member_id)))
    finished = [s for s, _end in won if s in (JobStatus.CONFIRMED, JobStatus.DONE)]
    completed = [s for s in finished if s == JobStatus.CONFIRMED]
    overdue = [s for s, end in won if s == JobStatus.AWARDED and end < today]
    count, average, on_time = session.exec(
        select(func.count(), func.avg(JobRating.score),
               func.avg(cast(JobRating.on_time, Integer)))
        .where(JobRating.ratee_member_id == member_id)).one()
    due = len(finished) + len(overdue)
    return Reliability(
        jobs_won=len(won), jobs_completed=len(completed),
        completion_rate=(len(finished) / due) if due else None,
        on_time_rate=float(on_time) if count else None,
        average_rating=round(float(average), 2) if count else None, ratings=int(count),
    )
