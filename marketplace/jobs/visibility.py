"""The information barrier for jobs: one place decides what each viewer may see.

Pages, JSON, Socket.IO payloads and exports all build their job data here.
Rivals never get another member's bid amounts, and customer name, contact and
exact address reach only the poster and, after award, the winning parties.
Before award, partners see the locality and a location rounded to about a
kilometre, plus how far it is from their own base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from marketplace.clusters.models import Member, User
from marketplace.jobs.eligibility import job_trades, site_distance_km
from marketplace.jobs.models import (
    Bid,
    BidShare,
    BidStatus,
    ContractParty,
    JobContract,
    OverflowJob,
)

_ROUNDING_DECIMALS = 2  # about 1.1 km of latitude


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a member business (or a coordinator, member_id None)."""

    member_id: int | None
    cluster_id: int
    is_coordinator: bool = False


def viewer_of(user: User) -> Viewer:
    """The barrier's view of a logged-in person: its business, or the coordinator."""
    return Viewer(member_id=user.member_id, cluster_id=user.cluster_id,
                  is_coordinator=user.is_coordinator)


def contract_member_ids(session: Session, job_id: int) -> set[int]:
    """The members who are parties to the job's contract (empty before award)."""
    contract = session.exec(select(JobContract).where(JobContract.job_id == job_id)).first()
    if contract is None:
        return set()
    return set(session.exec(select(ContractParty.member_id)
                            .where(ContractParty.contract_id == contract.id)))


def sees_customer(session: Session, viewer: Viewer, job: OverflowJob) -> bool:
    """Poster always; winning parties once the contract exists; nobody else."""
    if viewer.member_id is None:
        return False
    if viewer.member_id == job.poster_member_id:
        return True
    return viewer.member_id in contract_member_ids(session, job.id)


def job_public(job: OverflowJob, trades: list[str]) -> dict[str, Any]:
    """What any eligible partner may know about a job (also the `job.posted` payload)."""
    return {
        "id": job.id, "title": job.title, "description": job.description, "mode": job.mode,
        "status": job.status, "trades": trades, "locality": job.locality,
        "approx_lat": round(job.site_lat, _ROUNDING_DECIMALS),
        "approx_lng": round(job.site_lng, _ROUNDING_DECIMALS),
        "crew_days": job.crew_days, "starts_on": job.starts_on.isoformat(),
        "ends_on": job.ends_on.isoformat(), "value_minor": job.value_minor,
        "currency": job.currency,
        "closes_at": job.closes_at.isoformat() if job.closes_at else None,
        "poster_member_id": job.poster_member_id,
    }


def job_for(session: Session, viewer: Viewer, job: OverflowJob,
            viewer_member: Member | None = None) -> dict[str, Any]:
    """The job as this viewer may see it."""
    data = job_public(job, job_trades(session, job.id))
    data["distance_km"] = None
    if viewer_member is not None:
        distance = site_distance_km(viewer_member, job)
        data["distance_km"] = round(distance, 1) if distance is not None else None
    if sees_customer(session, viewer, job):
        data.update(site_lat=job.site_lat, site_lng=job.site_lng, address=job.address,
                    customer_name=job.customer_name, customer_contact=job.customer_contact)
    data["awarded_member_id"] = job.awarded_member_id
    data["cancel_reason"] = job.cancel_reason
    return data


def bid_parties(session: Session, bid: Bid) -> dict[int, BidShare]:
    """The members in a bid with their shares (a single bid: its lead at 100 %)."""
    return {s.member_id: s for s in session.exec(select(BidShare).where(BidShare.bid_id == bid.id))}


def bid_dict(session: Session, bid: Bid) -> dict[str, Any]:
    """A whole bid, for the poster and for the bid's own parties only."""
    shares = bid_parties(session, bid)
    return {
        "id": bid.id, "member_id": bid.member_id, "price_minor": bid.price_minor,
        "crew_size": bid.crew_size, "earliest_start": bid.earliest_start.isoformat(),
        "note": bid.note, "is_joint": bid.is_joint, "status": bid.status,
        "shares": [{"member_id": m, "share_bp": s.share_bp,
                    "confirmed": s.confirmed_at is not None} for m, s in sorted(shares.items())],
    }


def bids_for(session: Session, viewer: Viewer, job: OverflowJob) -> dict[str, Any]:
    """Poster: every submitted bid.  A bidder: its own bids.  Others: only the count."""
    bids = list(session.exec(select(Bid).where(Bid.job_id == job.id)))
    submitted = [b for b in bids if b.status == BidStatus.SUBMITTED]
    if viewer.member_id is not None and viewer.member_id == job.poster_member_id:
        return {"count": len(submitted), "bids": [bid_dict(session, b) for b in submitted]}
    own = [b for b in bids if viewer.member_id is not None
           and (b.member_id == viewer.member_id
                or viewer.member_id in bid_parties(session, b))]
    return {"count": len(submitted), "bids": [bid_dict(session, b) for b in own]}
