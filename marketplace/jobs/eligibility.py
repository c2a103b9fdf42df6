"""Who may take an overflow job, and if not, why not: one function, used everywhere.

The board, the claim, the bid, the joint-bid invitation and the `job.posted`
fan-out all ask `ineligibility_reasons`, so a member is never shown a job it
would then be refused, and never refused without being told why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from marketplace.clusters.agreements import Activity, participation_refusal
from marketplace.clusters.models import Member, MemberTrade
from marketplace.errors import N_, DomainError, Forbidden
from marketplace.geo import distance_km
from marketplace.jobs.models import JobTrade, OverflowJob


@dataclass(frozen=True)
class Reason:
    """One reason a member cannot take a job; `message` is a msgid with `params`."""

    code: str
    message: str
    params: dict[str, Any] = field(default_factory=dict)


def job_trades(session: Session, job_id: int) -> list[str]:
    """The trade codes a job requires, sorted."""
    return sorted(session.exec(select(JobTrade.trade).where(JobTrade.job_id == job_id)))


def _member_trades(session: Session, member_id: int) -> set[str]:
    return set(session.exec(select(MemberTrade.trade).where(MemberTrade.member_id == member_id)))


def site_distance_km(member: Member, job: OverflowJob) -> float | None:
    """How far the site is from the member's base, if the member set one."""
    if member.base_lat is None or member.base_lng is None:
        return None
    return distance_km(member.base_lat, member.base_lng, job.site_lat, job.site_lng)


def ineligibility_reasons(
    session: Session, member: Member, job: OverflowJob, now: datetime,
    required_trades: list[str] | None = None,
) -> list[Reason]:
    """Every reason `member` cannot take `job` now; empty means eligible."""
    if member.cluster_id != job.cluster_id:
        return [Reason("other_cluster", N_("This job belongs to another cluster."))]
    if member.id == job.poster_member_id:
        return [Reason("own_job", N_("This is your own job."))]
    reasons: list[Reason] = []
    refusal = participation_refusal(session, member, Activity.OVERFLOW_JOBS, now)
    if refusal is not None:
        reasons.append(Reason(refusal.code, refusal.message, refusal.params))
    needed = required_trades if required_trades is not None else job_trades(session, job.id)
    missing = [t for t in needed if t not in _member_trades(session, member.id)]
    if missing:
        reasons.append(Reason("missing_trades",
                              N_("Your business does not list these trades: %(trades)s."),
                              {"trades": missing}))
    distance = site_distance_km(member, job)
    if distance is None or member.service_radius_km is None:
        reasons.append(Reason("no_service_area",
                              N_("Set your base location and service radius in your profile.")))
    elif distance > member.service_radius_km:
        reasons.append(Reason("outside_service_area",
                              N_("The site is %(distance)s km from your base, beyond your "
                                 "%(radius)s km service area."),
                              {"distance": round(distance, 1),
                               "radius": round(member.service_radius_km, 1)}))
    if member.insurance_expires_on is None:
        reasons.append(Reason("no_insurance", N_("Add your insurance expiry date to your "
                                                 "profile.")))
    elif member.insurance_expires_on < job.ends_on:
        reasons.append(Reason("insurance_expires",
                              N_("Your insurance expires before the job ends."),
                              {"expires": member.insurance_expires_on.isoformat()}))
    return reasons


def eligible_members(session: Session, job: OverflowJob, now: datetime) -> list[Member]:
    """Every member of the job's cluster that may take it now."""
    trades = job_trades(session, job.id)
    candidates = session.exec(select(Member).where(
        Member.cluster_id == job.cluster_id, col(Member.id) != job.poster_member_id))
    return [m for m in candidates if not ineligibility_reasons(session, m, job, now, trades)]


def require_eligible(session: Session, member: Member, job: OverflowJob, now: datetime) -> None:
    """Raise the first reason as a refusal the member can act on."""
    reasons = ineligibility_reasons(session, member, job, now)
    if reasons:
        first = reasons[0]
        raise reason_as_error(first)


def reason_as_error(reason: Reason) -> DomainError:
    """A reason in the shape the web layer translates (trade codes stay codes)."""
    return Forbidden(reason.code, reason.message, params=reason.params)
