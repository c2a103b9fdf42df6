"""Posting, browsing, claiming and cancelling overflow jobs.

Claims are settled by the database: a conditional UPDATE moves the job from
open to awarded, and only the transaction whose UPDATE changed a row writes
the contract.  Twenty partners tapping "claim" at once get one winner and
nineteen clear "already claimed" answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from marketplace import events, fanout
from marketplace.clusters.agreements import (
    Activity,
    agreement_in_force,
    cluster_today,
    participation_refusal,
    require_participation,
)
from marketplace.clusters.models import Cluster, Member, MemberFacts, Role, User, facts_of
from marketplace.clusters.service import acting_member, active_users_of, lock_cluster_settings
from marketplace.clusters.trades import is_trade
from marketplace.errors import N_, Conflict, Forbidden, ValidationError
from marketplace.geo import coarse_km, site_point
from marketplace.jobs.eligibility import (
    Reason,
    cluster_reasons,
    eligible_members,
    ineligibility_reasons,
    job_trades,
    reasons_per_job,
    require_eligible,
    service_distance_km,
)
from marketplace.jobs.models import (
    JOB_FACTS,
    Bid,
    BidShare,
    ContractParty,
    JobContract,
    JobFacts,
    JobMode,
    JobStatus,
    JobTrade,
    OverflowJob,
)
from marketplace.jobs.visibility import job_public
from marketplace.money import BASIS_POINTS_WHOLE, apply_basis_points
from marketplace.persisted import id_of
from marketplace.rows import in_cluster

# 20 million in major units: beyond is a typo, and every amount stays inside the
# 32-bit integer columns money lives in (2 147 483 647 minor units).
MAX_VALUE_MINOR = 20_000_000_00
MIN_WINDOW = timedelta(minutes=15)
MAX_WINDOW = timedelta(days=14)
#: Why nobody can take a job whose start date has passed (claim, bid, detail page).
START_PASSED = N_("This job was due to start on an earlier day and nobody took it in time, "
                  "so it can no longer be claimed or bid on. The poster can post it again "
                  "with new dates.")


def job_today(session: Session, job: OverflowJob, now: datetime) -> date:
    """Today's date where the job's cluster is: start dates are the cluster's days."""
    cluster = session.get(Cluster, job.cluster_id)
    assert cluster is not None
    return cluster_today(cluster, now)


def start_passed(session: Session, job: OverflowJob, now: datetime) -> bool:
    """True once the job's start date is behind us in the cluster's time zone (a job
    starting today can still be taken today)."""
    return job.starts_on < job_today(session, job, now)


def require_not_started(session: Session, job: OverflowJob, now: datetime) -> None:
    """Refuse taking a job (claim, bid) once its start date has passed, with the reason."""
    if job.status == JobStatus.EXPIRED or (
            job.status == JobStatus.OPEN and start_passed(session, job, now)):
        raise Conflict("job_expired", START_PASSED)


@dataclass(frozen=True)
class JobDraft:
    title: str
    description: str
    trades: tuple[str, ...]
    site_lat: float
    site_lng: float
    locality: str
    address: str
    customer_name: str
    customer_contact: str
    crew_days: int
    starts_on: date
    ends_on: date
    value_minor: int
    mode: str
    closes_at: datetime | None = None


def get_job(
    session: Session, viewer: User, job_id: int, *, for_update: bool = False
) -> OverflowJob:
    """A job of the viewer's cluster, or NotFound (other clusters' look missing)."""
    return in_cluster(session, OverflowJob, job_id, viewer.cluster_id, for_update=for_update)


def _validate(draft: JobDraft, now: datetime, zone: str = "UTC") -> None:
    errors: dict[str, str] = {}
    if not 0 < len(draft.title.strip()) <= 120:
        errors["title"] = N_("Give the job a title of up to 120 characters.")
    if len(draft.description) > 4000:
        errors["description"] = N_("Keep the description under 4000 characters.")
    if not draft.trades:
        errors["trades"] = N_("Choose at least one trade the job needs.")
    elif not all(is_trade(t) for t in draft.trades):
        errors["trades"] = N_("Choose trades from the list.")
    if not (-90 <= draft.site_lat <= 90 and -180 <= draft.site_lng <= 180):
        errors["site_lat"] = N_("Give the site's latitude (-90 to 90) and longitude (-180 to 180).")
    if not 0 < len(draft.locality.strip()) <= 120:
        errors["locality"] = N_("Name the town or neighbourhood partners will see.")
    if not 0 < len(draft.address.strip()) <= 300:
        errors["address"] = N_("Enter the site address (kept private until award).")
    if not 0 < len(draft.customer_name.strip()) <= 120:
        errors["customer_name"] = N_("Enter the customer's name (kept private until award).")
    if len(draft.customer_contact) > 200:
        errors["customer_contact"] = N_("Keep the contact under 200 characters.")
    if not 1 <= draft.crew_days <= 10_000:
        errors["crew_days"] = N_("Estimate the size in crew-days (1 to 10000).")
    if draft.ends_on < draft.starts_on:
        errors["ends_on"] = N_("The end date cannot be before the start date.")
    if not 0 < draft.value_minor <= MAX_VALUE_MINOR:
        errors["value"] = N_("Enter a contract value above zero.")
    if draft.mode not in {m.value for m in JobMode}:
        errors["mode"] = N_("Choose hand-off or bid window.")
    elif draft.mode == JobMode.BID_WINDOW:
        if draft.closes_at is None:
            errors["closes_at"] = N_("Choose when the bid window closes.")
        elif not now + MIN_WINDOW <= draft.closes_at <= now + MAX_WINDOW:
            errors["closes_at"] = N_(
                "The bid window must close between 15 minutes and 14 days from now."
            )
        elif "ends_on" not in errors and draft.closes_at >= _day_after_start(draft, zone):
            # Bids on a job that has already started would come too late: the window ends
            # by the end of the start date, so an open window never outlives its start.
            errors["closes_at"] = N_("The bid window must close before the job's start date "
                                     "is over. Close it earlier or start the job later.")
    if errors:
        raise ValidationError("invalid_job", N_("Some fields need your attention."), fields=errors)


def _day_after_start(draft: JobDraft, zone: str) -> datetime:
    """The local midnight that ends the job's start date, as an aware instant."""
    return datetime.combine(draft.starts_on + timedelta(days=1), time(0),
                            tzinfo=ZoneInfo(zone))


def post_job(session: Session, actor: User, draft: JobDraft, now: datetime) -> OverflowJob:
    """Post an overflow job and notify exactly the members eligible to take it."""
    member = acting_member(session, actor)
    require_participation(session, member, Activity.OVERFLOW_JOBS, now)
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    _validate(draft, now, cluster.timezone)
    approx_lat, approx_lng = site_point(cluster.location_key, draft.site_lat, draft.site_lng)
    job = OverflowJob(
        cluster_id=member.cluster_id,
        poster_member_id=id_of(member),
        posted_by_id=id_of(actor),
        title=draft.title.strip(),
        description=draft.description.strip(),
        mode=draft.mode,
        site_lat=draft.site_lat,
        site_lng=draft.site_lng,
        approx_lat=approx_lat,
        approx_lng=approx_lng,
        locality=draft.locality.strip(),
        address=draft.address.strip(),
        customer_name=draft.customer_name.strip(),
        customer_contact=draft.customer_contact.strip(),
        crew_days=draft.crew_days,
        starts_on=draft.starts_on,
        ends_on=draft.ends_on,
        value_minor=draft.value_minor,
        currency=lock_cluster_settings(session, id_of(cluster))[1],
        closes_at=draft.closes_at if draft.mode == JobMode.BID_WINDOW else None,
        created_at=now,
    )
    session.add(job)
    session.flush()
    for trade in sorted(set(draft.trades)):
        session.add(JobTrade(job_id=id_of(job), trade=trade))
    session.flush()
    fanout.fan_out(session, "job.posted", id_of(job), now)
    session.commit()
    return job


@fanout.handles("job.posted")
def announce_posted(session: Session, job_id: int, posted_at: datetime) -> int:
    """Tell every member eligible when the job was posted that it is on offer; nobody
    if it is no longer open (taken or cancelled before the fan-out ran)."""
    job = session.get(OverflowJob, job_id)
    if job is None or job.status != JobStatus.OPEN:
        return 0
    return events.notify(
        session,
        active_users_of(session, [m.id for m in eligible_members(session, job, posted_at)]),
        "job.posted",
        N_("New overflow job near %(locality)s: %(title)s"),
        now=posted_at,
        params={"title": job.title, "locality": job.locality},
        payload=job_public(job, job_trades(session, job_id)),
        link=f"/jobs/{job.id}",
    )


def write_contract(
    session: Session,
    job: OverflowJob,
    shares: dict[int, int],
    bid_id: int | None,
    value_minor: int,
    now: datetime,
) -> JobContract:
    """Sign the job's contract: parties, frozen shares, value, referral fee.  Immutable.

    For a hand-off the value is the job's; for an awarded bid it is the bid price.
    """
    assert sum(shares.values()) == BASIS_POINTS_WHOLE
    agreement = agreement_in_force(session, job.cluster_id)
    assert agreement is not None
    contract = JobContract(
        job_id=id_of(job),
        cluster_id=job.cluster_id,
        poster_member_id=job.poster_member_id,
        bid_id=bid_id,
        value_minor=value_minor,
        currency=job.currency,
        referral_fee_bp=agreement.referral_fee_bp,
        referral_fee_minor=apply_basis_points(value_minor, agreement.referral_fee_bp),
        platform_fee_bp=agreement.platform_fee_bp,
        agreement_id=id_of(agreement),
        signed_at=now,
    )
    session.add(contract)
    session.flush()
    for member_id, share in sorted(shares.items()):
        session.add(ContractParty(contract_id=id_of(contract), member_id=member_id, share_bp=share))
    return contract


def claim_job(session: Session, actor: User, job_id: int, now: datetime) -> JobContract:
    """First eligible partner to claim a hand-off job gets it (409 for the others)."""
    member = acting_member(session, actor)
    job = get_job(session, actor, job_id)
    if job.mode != JobMode.HANDOFF:
        raise Conflict("not_handoff", N_("This job takes bids; it cannot be claimed."))
    require_eligible(session, member, job, now)
    poster = session.get(Member, job.poster_member_id)
    assert poster is not None
    if participation_refusal(session, poster, Activity.OVERFLOW_JOBS, now) is not None:
        raise Conflict(
            "poster_cannot_hand_over",
            N_(
                "The poster's business cannot hand over jobs right now (it left "
                "the cluster or has not accepted the current agreement)."
            ),
        )
    require_not_started(session, job, now)
    won = session.exec(
        update(OverflowJob)
        .where(col(OverflowJob.id) == job.id, col(OverflowJob.status) == JobStatus.OPEN,
               col(OverflowJob.starts_on) >= job_today(session, job, now))
        .values(status=JobStatus.AWARDED.value, awarded_member_id=member.id)
    )
    if won.rowcount != 1:
        session.rollback()
        session.refresh(job)
        if job.status == JobStatus.CANCELLED:
            raise Conflict("job_cancelled", N_("The poster cancelled this job."))
        require_not_started(session, job, now)
        raise Conflict("already_claimed", N_("Another partner claimed this job first."))
    session.refresh(job)
    contract = write_contract(
        session,
        job,
        {id_of(member): BASIS_POINTS_WHOLE},
        None,
        job.value_minor,
        now,
    )
    _announce_award(
        session,
        job,
        [id_of(member)],
        "job.claimed",
        N_("%(member)s claimed your job: %(title)s"),
        member.name,
        now,
    )
    session.commit()
    return contract


def _announce_award(
    session: Session,
    job: OverflowJob,
    winner_ids: list[int],
    kind: str,
    poster_message: str,
    winner_name: str,
    now: datetime,
) -> None:
    """Tell the poster and winners; tell other eligible partners the job is gone."""
    params = {"title": job.title, "member": winner_name}
    gone = {"id": job.id, "status": job.status}
    events.notify(
        session,
        active_users_of(session, [job.poster_member_id]),
        kind,
        poster_message,
        now=now,
        params=params,
        payload={**gone, "awarded_member_id": job.awarded_member_id},
        link=f"/jobs/{job.id}",
    )
    events.notify(
        session,
        active_users_of(session, list(winner_ids)),
        "job.awarded",
        N_("You won the job: %(title)s. The customer's details are now visible."),
        now=now,
        params=params,
        payload=gone,
        link=f"/jobs/{job.id}",
    )
    others = [m.id for m in eligible_or_bidders(session, job, now) if m.id not in winner_ids]
    events.notify(
        session,
        active_users_of(session, others),
        "job.taken",
        N_("The job %(title)s is no longer available."),
        now=now,
        params={"title": job.title},
        payload=gone,
    )


def eligible_or_bidders(session: Session, job: OverflowJob, now: datetime
                        ) -> list[MemberFacts]:
    """The partners who were shown the job (eligible ones) plus anyone who bid on it."""
    bidders = _bidder_ids(session, id_of(job))
    return [
        m for m, reasons in cluster_reasons(session, job, now) if m.id in bidders or not reasons
    ]


def cancel_job(
    session: Session, actor: User, job_id: int, reason: str, now: datetime
) -> OverflowJob:
    """The poster withdraws an open job; everyone who saw it is told why."""
    member = acting_member(session, actor)
    job = get_job(session, actor, job_id)
    if job.poster_member_id != member.id or actor.role not in (Role.OWNER, Role.CREW):
        raise Forbidden("poster_only", N_("Only the member who posted the job can cancel it."))
    if not 0 < len(reason.strip()) <= 500:
        raise ValidationError(
            "reason_required",
            N_("Say why the job is cancelled."),
            fields={"reason": N_("Say why the job is cancelled.")},
        )
    audience = eligible_or_bidders(session, job, now)
    done = session.exec(
        update(OverflowJob)
        .where(
            col(OverflowJob.id) == job.id,
            col(OverflowJob.status).in_([JobStatus.OPEN, JobStatus.WINDOW_CLOSED]),
        )
        .values(status=JobStatus.CANCELLED.value, cancel_reason=reason.strip())
    )
    if done.rowcount != 1:
        session.rollback()
        raise Conflict(
            "not_cancellable",
            N_("Only an open job can be cancelled; this one is already awarded or closed."),
        )
    session.refresh(job)
    events.notify(
        session,
        active_users_of(session, [m.id for m in audience]),
        "job.cancelled",
        N_("The job %(title)s was cancelled: %(reason)s"),
        now=now,
        params={"title": job.title, "reason": job.cancel_reason},
        payload={"id": job.id, "status": job.status},
        link=f"/jobs/{job.id}",
    )
    session.commit()
    return job


@dataclass(frozen=True)
class BoardFilters:
    """What a crew narrows the board to.  `within_km` compares the coarse distance a
    partner is shown (from the approximate point), never the distance to the site."""

    trade: str | None = None
    mode: str | None = None  # JobMode: hand-offs or bid windows only
    closing_soon: bool = False  # bid windows closing within CLOSING_SOON
    within_km: int | None = None
    order: str = "newest"  # or "nearest"


#: "Closing soon" on the board: bid windows that close within this.
CLOSING_SOON = timedelta(hours=24)


@dataclass(frozen=True)
class BoardSlice:
    """Part of the board: its jobs with the coarse distance each is shown, how many
    jobs the whole board holds, and the trades of every job on it."""

    rows: list[tuple[OverflowJob, int | None]]
    total: int
    trades: dict[int, list[str]]


def board(session: Session, actor: User, now: datetime,
          filters: BoardFilters = BoardFilters()) -> list[tuple[OverflowJob, int | None]]:
    """Open jobs the actor's business could take, with the coarse distance it is shown,
    nearest or newest first."""
    return board_slice(session, actor, now, filters).rows


def board_slice(session: Session, actor: User, now: datetime,
                filters: BoardFilters = BoardFilters(), offset: int = 0,
                limit: int | None = None) -> BoardSlice:
    """`board`, from `offset`, at most `limit` jobs, with the size of the whole board.

    Every open job of the cluster is weighed (eligibility, distance, order) as plain
    values read with their trades in one query; only the jobs of the slice are then
    read whole, in one more.  A busy cluster's board costs the same two queries, and
    about 200 cheap tuples instead of 200 ORM objects per page.
    """
    member = acting_member(session, actor)
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    every = aliased(JobTrade)  # all of a job's trades, whatever the trade filter
    query = sa_select(*JOB_FACTS, col(every.trade)).outerjoin(
        every, col(every.job_id) == OverflowJob.id).where(
        col(OverflowJob.cluster_id) == member.cluster_id,
        col(OverflowJob.status) == JobStatus.OPEN,
        col(OverflowJob.poster_member_id) != member.id,
        # Not yet swept to "expired", but already too late to take.
        col(OverflowJob.starts_on) >= cluster_today(cluster, now),
    )
    if filters.trade:
        query = query.join(JobTrade, col(JobTrade.job_id) == OverflowJob.id).where(
            col(JobTrade.trade) == filters.trade
        )
    if filters.mode:
        query = query.where(col(OverflowJob.mode) == filters.mode)
    if filters.closing_soon:
        query = query.where(col(OverflowJob.mode) == JobMode.BID_WINDOW,
                            col(OverflowJob.closes_at) > now,
                            col(OverflowJob.closes_at) <= now + CLOSING_SOON)
    found: dict[int, JobFacts] = {}
    trades: dict[int, list[str]] = {}
    for *values, trade in session.execute(query.order_by(col(OverflowJob.id),
                                                         col(every.trade))):
        job_id = values[0]
        if job_id not in found:
            found[job_id] = JobFacts(*values)
        if trade is not None:
            trades.setdefault(job_id, []).append(trade)
    jobs = list(found.values())
    facts = facts_of(member)
    # Each job's distance measured once: the rule's service area and the card's "about
    # n km" (coarse, from the same approximate point: eligibility.partner_distance_km).
    distances = [service_distance_km(facts, job) for job in jobs]
    ranked = [
        (job, coarse_km(distance)[0] if distance is not None else None)
        for job, distance, reasons in zip(
            jobs, distances, reasons_per_job(session, facts, jobs, now, trades, distances),
            strict=True)
        if not reasons
    ]
    if filters.within_km is not None:
        ranked = [r for r in ranked if r[1] is not None and r[1] <= filters.within_km]
    if filters.order == "nearest":
        ranked.sort(key=lambda r: (r[1] if r[1] is not None else float("inf"), -r[0].id))
    else:
        ranked.sort(key=lambda r: -r[0].id)
    shown = ranked[offset:None if limit is None else offset + limit]
    whole = {job.id: job for job in session.exec(
        select(OverflowJob).where(col(OverflowJob.id).in_([f.id for f, _d in shown])))}
    return BoardSlice([(whole[f.id], d) for f, d in shown if f.id in whole], len(ranked),
                      trades)


def cluster_jobs(session: Session, actor: User, limit: int = 200) -> list[OverflowJob]:
    """The cluster's latest jobs, for its coordinator's overview (newest first)."""
    return list(session.exec(select(OverflowJob).where(OverflowJob.cluster_id == actor.cluster_id)
                             .order_by(col(OverflowJob.id).desc()).limit(limit)))


def my_jobs(session: Session, actor: User) -> dict[str, list[OverflowJob]]:
    """The actor's business's jobs, grouped: posted, won and in progress, done."""
    member = acting_member(session, actor)
    posted = list(
        session.exec(
            select(OverflowJob)
            .where(OverflowJob.poster_member_id == member.id)
            .order_by(col(OverflowJob.id).desc())
        )
    )
    party_jobs = list(
        session.exec(
            select(OverflowJob)
            .join(JobContract, col(JobContract.job_id) == OverflowJob.id)
            .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
            .where(ContractParty.member_id == member.id)
            .order_by(col(OverflowJob.id).desc())
        )
    )
    bid_job_ids = set(session.exec(select(Bid.job_id).where(Bid.member_id == member.id)))
    bid_job_ids |= set(
        session.exec(
            select(Bid.job_id)
            .join(BidShare, col(BidShare.bid_id) == Bid.id)
            .where(BidShare.member_id == member.id)
        )
    )
    won_ids = {j.id for j in party_jobs}
    bidding = [
        j
        for j in (session.get(OverflowJob, i) for i in sorted(bid_job_ids, reverse=True))
        if j is not None
        and j.id not in won_ids
        and j.status in (JobStatus.OPEN, JobStatus.WINDOW_CLOSED)
    ]
    return {
        "posted": posted,
        "bidding": bidding,
        "won": [j for j in party_jobs if j.status in (JobStatus.AWARDED, JobStatus.DONE)],
        "done": [j for j in party_jobs if j.status == JobStatus.CONFIRMED],
    }


def explain(session: Session, actor: User, job: OverflowJob, now: datetime) -> list[Any]:
    """Why the actor's business cannot take this job (empty when it can)."""
    if actor.member_id is None:
        return []
    member = acting_member(session, actor)
    reasons = ineligibility_reasons(session, member, job, now)
    if job.status == JobStatus.EXPIRED or (
            job.status == JobStatus.OPEN and start_passed(session, job, now)):
        reasons.insert(0, Reason("job_expired", START_PASSED))
    return reasons


def expire_job(session: Session, job_id: int, now: datetime) -> bool:
    """Close one job nobody took before its start date; True only for the one call that
    closed it (a conditional update, so the scheduler and a second sweep cannot both).

    A bid window whose deadline passed is left to `bidding.close_window`: its bids are
    in and the poster still chooses, even after the start date."""
    job = session.get(OverflowJob, job_id)
    if job is None:
        return False
    today = job_today(session, job, now)
    window_due = (col(OverflowJob.mode) == JobMode.BID_WINDOW) & (
        col(OverflowJob.closes_at) <= now)
    expired = session.exec(
        update(OverflowJob)
        .where(col(OverflowJob.id) == job_id, col(OverflowJob.status) == JobStatus.OPEN,
               col(OverflowJob.starts_on) < today, ~window_due)
        .values(status=JobStatus.EXPIRED.value))
    if expired.rowcount != 1:
        session.rollback()
        return False
    session.refresh(job)
    bidders = sorted(_bidder_ids(session, job_id))
    gone = {"id": job.id, "status": job.status}
    events.notify(
        session, active_users_of(session, [job.poster_member_id]), "job.expired",
        N_("Nobody took your job %(title)s before its start date, so it is closed. Post it "
           "again with new dates if the work is still to do."),
        now=now, params={"title": job.title}, payload=gone, link=f"/jobs/{job.id}")
    events.notify(
        session, active_users_of(session, bidders), "job.taken",
        N_("The job %(title)s is no longer available."),
        now=now, params={"title": job.title}, payload=gone)
    session.commit()
    return True


def _bidder_ids(session: Session, job_id: int) -> set[int]:
    """Members with a bid on the job, alone or as a joint bid's partner."""
    ids = set(session.exec(select(Bid.member_id).where(Bid.job_id == job_id)))
    return ids | set(session.exec(select(BidShare.member_id).join(
        Bid, col(Bid.id) == BidShare.bid_id).where(Bid.job_id == job_id)))


def expire_due_jobs(session: Session, now: datetime) -> list[int]:
    """Scheduler sweep: expire every job on offer whose start date has passed where its
    cluster is.  Candidates start before tomorrow in UTC+14 terms (no cluster's today is
    later); `expire_job` decides per cluster day.  Safe to run twice."""
    latest_today = (now + timedelta(hours=14)).date()
    due = list(session.exec(select(OverflowJob.id).where(
        OverflowJob.status == JobStatus.OPEN, col(OverflowJob.starts_on) < latest_today)
        .order_by(col(OverflowJob.id))))
    session.commit()
    return [job_id for job_id in due if job_id is not None and expire_job(session, job_id, now)]
