"""Who may take an overflow job, and if not, why not: one rule, used everywhere.

The board, the claim, the bid, the joint-bid invitation and the `job.posted`
fan-out all ask the same predicate, `_reasons`, so a member is never shown a
job it would then be refused, and never refused without being told why.
`ineligibility_reasons` feeds it one member's facts; `eligible_members` loads
the facts of a whole cluster in a fixed handful of queries (the job's trades,
the members, which of those trades each offers, the agreement and who accepted
it), however many members there are, and asks the same predicate for each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from marketplace.clusters.agreements import (
    Activity,
    agreement_in_force,
    minimum_coverage,
    participation_refusal,
    participation_refusals,
)
from marketplace.clusters.models import MEMBER_FACTS, Agreement, Member, MemberFacts, MemberTrade
from marketplace.errors import N_, DomainError, Forbidden
from marketplace.geo import APPROX_MAX_KM, coarse_km, distance_km
from marketplace.jobs.models import JobFacts, JobTrade, OverflowJob
from marketplace.money import plain_decimal
from marketplace.persisted import id_of


@dataclass(frozen=True)
class Reason:
    """One reason a member cannot take a job; `message` is a msgid with `params`."""

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def job_trades(session: Session, job_id: int) -> list[str]:
    """The trade codes a job requires, sorted."""
    return sorted(session.exec(select(JobTrade.trade).where(JobTrade.job_id == job_id)))


def trades_of_jobs(session: Session, job_ids: Sequence[int | None]) -> dict[int, list[str]]:
    """`job_trades` of many jobs in one query (a page of cards), by job id."""
    needed: dict[int, list[str]] = {}
    if not job_ids:
        return needed
    for job_id, trade in session.exec(
        select(JobTrade.job_id, JobTrade.trade)
        .where(col(JobTrade.job_id).in_(job_ids))
        .order_by(col(JobTrade.job_id), col(JobTrade.trade))
    ):
        needed.setdefault(job_id, []).append(trade)
    return needed


def _member_trades(session: Session, member_id: int) -> set[str]:
    return set(session.exec(select(MemberTrade.trade).where(MemberTrade.member_id == member_id)))


def site_distance_km(member: Member | MemberFacts, job: OverflowJob) -> float | None:
    """How far the exact site is from the member's base, if the member set one: only for
    the poster and the winners, who know the site anyway."""
    if member.base_lat is None or member.base_lng is None:
        return None
    return distance_km(member.base_lat, member.base_lng, job.site_lat, job.site_lng)


def service_distance_km(member: Member | MemberFacts, job: OverflowJob | JobFacts
                        ) -> float | None:
    """How far the job is from the member's base for the service-area rule: from the
    job's approximate point, which is public, never from the site.  A rule on the
    exact site would answer "inside or outside" about the site itself, and a rival
    moving its base and radius between looks at the board would trilaterate it.
    The rule allows APPROX_MAX_KM more than the radius, so every member whose area
    covers the site is still offered the job (and some up to 2 x APPROX_MAX_KM
    beyond it, told "about n km")."""
    if member.base_lat is None or member.base_lng is None:
        return None
    return distance_km(member.base_lat, member.base_lng, job.approx_lat, job.approx_lng)


def partner_distance_km(member: Member | MemberFacts, job: OverflowJob | JobFacts
                        ) -> tuple[int, str] | None:
    """How far a partner is told the job is, with how to read it ("under" 2 km, "about"
    n km): from the job's approximate point, in whole kilometres.  Never from the exact
    site: a rival moving its own base would otherwise trilaterate the site (geo.py)."""
    distance = service_distance_km(member, job)
    return coarse_km(distance) if distance is not None else None


def _reasons(
    member: Member | MemberFacts,
    job: OverflowJob | JobFacts,
    needed: Sequence[str],
    offered: set[str],
    refusal: DomainError | None,
    agreement: Agreement | None = None,
    distance: float | None | Literal[False] = False,
) -> list[Reason]:
    """The rule itself, on facts already loaded: every reason `member` cannot take `job`.

    `needed` is the job's trades, `offered` the member's, `refusal` what the
    agreement's participation gate says about the member now, `agreement` the
    version in force (its minimum insurance coverage per trade), `distance` the
    job's `service_distance_km` from the member when the caller has it already (the
    board shows it too), False to have it measured here.  Insurance counts
    only as the coordinator verified it (clusters/insurance/): its expiry must
    cover the whole job, its coverage the largest minimum of the job's trades.
    """
    if member.cluster_id != job.cluster_id:
        return [Reason("other_cluster", N_("This job belongs to another cluster."))]
    if member.id == job.poster_member_id:
        return [Reason("own_job", N_("This is your own job."))]
    reasons: list[Reason] = []
    if refusal is not None:
        reasons.append(Reason(refusal.code, refusal.message, refusal.params))
    missing = [t for t in needed if t not in offered]
    if missing:
        reasons.append(
            Reason(
                "missing_trades",
                N_("Your business does not list these trades: %(trades)s."),
                {"trades": missing},
            )
        )
    if distance is False:
        distance = service_distance_km(member, job)
    if distance is None or member.service_radius_km is None:
        reasons.append(
            Reason(
                "no_service_area", N_("Set your base location and service radius in your profile.")
            )
        )
    elif distance > member.service_radius_km + APPROX_MAX_KM:
        reasons.append(
            Reason(
                "outside_service_area",
                # The radius, which the member can change, and no distance: the rule's
                # is to the approximate point plus grace, which would read as a mistake.
                N_("The site is beyond your %(radius)s km service area."),
                {"radius": round(member.service_radius_km, 1)},
            )
        )
    if member.insurance_expires_on is None:
        reasons.append(
            Reason(
                "no_insurance",
                N_("Your business has no verified insurance. Upload your certificate of "
                   "insurance on your business page; the coordinator verifies it."),
            )
        )
    elif member.insurance_expires_on < job.ends_on:
        reasons.append(
            Reason(
                "insurance_expires",
                N_("Your insurance expires before the job ends."),
                {"expires": member.insurance_expires_on.isoformat()},
            )
        )
    minimum, demanding = minimum_coverage(agreement, needed)
    if minimum and (member.insurance_coverage_minor or 0) < minimum:
        reasons.append(
            Reason(
                "insurance_coverage_low",
                N_("Jobs in %(trades)s need verified insurance coverage of at least "
                   "%(minimum)s; your business's verified coverage is less. Upload a "
                   "certificate with enough coverage for the coordinator to verify."),
                {"trades": demanding,
                 "minimum": f"{plain_decimal(minimum, job.currency)} {job.currency}"},
            )
        )
    return reasons


def ineligibility_reasons(
    session: Session,
    member: Member | MemberFacts,
    job: OverflowJob,
    now: datetime,
    required_trades: list[str] | None = None,
) -> list[Reason]:
    """Every reason `member` cannot take `job` now; empty means eligible."""
    if member.cluster_id != job.cluster_id or member.id == job.poster_member_id:
        return _reasons(member, job, (), set(), None)
    in_force: dict[int, Agreement | None] = {}
    refusal = participation_refusal(session, member, Activity.OVERFLOW_JOBS, now, in_force)
    needed = required_trades if required_trades is not None else job_trades(session, id_of(job))
    return _reasons(member, job, needed, _member_trades(session, id_of(member)), refusal,
                    in_force[member.cluster_id])


def reasons_per_job(
    session: Session, member: Member | MemberFacts, jobs: Sequence[OverflowJob | JobFacts],
    now: datetime,
    needed: Mapping[int, list[str]] | None = None,
    distances: Sequence[float | None] | None = None,
) -> list[list[Reason]]:
    """`ineligibility_reasons` of one member for many jobs (the board), in three queries
    (two when the caller already read the jobs' trades, `needed`); `distances`, the
    jobs' `service_distance_km` in their order, when the caller measured them."""
    if not jobs:
        return []
    in_force: dict[int, Agreement | None] = {}
    refusal = participation_refusal(session, member, Activity.OVERFLOW_JOBS, now, in_force)
    offered = _member_trades(session, id_of(member))
    if needed is None:
        needed = trades_of_jobs(session, [j.id for j in jobs])
    agreement = in_force[member.cluster_id]
    measured: Sequence[float | None | Literal[False]] = \
        distances if distances is not None else [False] * len(jobs)
    return [_reasons(member, job, needed.get(job.id or 0, []), offered, refusal, agreement,
                     distance)
            for job, distance in zip(jobs, measured, strict=True)]


def eligible_members(session: Session, job: OverflowJob, now: datetime) -> list[MemberFacts]:
    """Every member of the job's cluster that may take it now (a fixed number of queries)."""
    return [m for m, reasons in cluster_reasons(session, job, now) if not reasons]


def cluster_reasons(
    session: Session, job: OverflowJob, now: datetime
) -> list[tuple[MemberFacts, list[Reason]]]:
    """Each member of the job's cluster other than the poster, with its reasons (by id)."""
    needed = job_trades(session, id_of(job))
    members = [MemberFacts(*row) for row in session.execute(
        sa_select(*MEMBER_FACTS)
        .where(col(Member.cluster_id) == job.cluster_id, col(Member.id) != job.poster_member_id)
        .order_by(col(Member.id)))]
    offered = _trades_of(session, job.cluster_id, needed)
    in_force = {job.cluster_id: agreement_in_force(session, job.cluster_id)}
    refusals = participation_refusals(session, members, Activity.OVERFLOW_JOBS, now, in_force)
    agreement = in_force[job.cluster_id]
    return [
        (m, _reasons(m, job, needed, offered.get(m.id or 0, set()), refusals[m.id], agreement))
        for m in members
    ]


def _trades_of(session: Session, cluster_id: int, among: Sequence[str]) -> dict[int, set[str]]:
    """Which of the trades `among` each member of one cluster offers, in one query.
    Only the job's trades decide (a trade it does not need is never a reason), and a
    post to a thousand members reads one row per member and needed trade, not one per
    trade each member lists (2 of 15 ms of CPU for 1 000 members listing two trades)."""
    offered: dict[int, set[str]] = {}
    if not among:
        return offered
    for member_id, trade in session.exec(
        select(MemberTrade.member_id, MemberTrade.trade)
        .join(Member, col(Member.id) == MemberTrade.member_id)
        .where(Member.cluster_id == cluster_id, col(MemberTrade.trade).in_(among))
    ):
        offered.setdefault(member_id, set()).add(trade)
    return offered


def require_eligible(session: Session, member: Member, job: OverflowJob, now: datetime) -> None:
    """Raise the first reason as a refusal the member can act on."""
    reasons = ineligibility_reasons(session, member, job, now)
    if reasons:
        first = reasons[0]
        raise reason_as_error(first)


def reason_as_error(reason: Reason) -> DomainError:
    """A reason in the shape the web layer translates (trade codes stay codes)."""
    return Forbidden(reason.code, reason.message, params=reason.params)
