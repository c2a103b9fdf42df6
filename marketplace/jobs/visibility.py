"""The information barrier for jobs: one place decides what each viewer may see.

Pages, JSON, Socket.IO payloads and exports all build their job data here.
Rivals never get another member's bid amounts, and customer name, contact and
exact address reach only the poster and, after award, the winning parties.
Before award, partners see the locality and the job's approximate point (at
least a kilometre from the site, drawn once: geo.py), and how far that point is
from their own base in whole kilometres.

Which fields each audience may receive is not decided here but in the table of
`marketplace.barrier`: every builder below assembles the whole resource and
passes it through `barrier.cut` for the viewer's audience, so a field added to
a builder and not to the table never leaves the process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from marketplace.barrier import (
    BID,
    BID_SHARE,
    BIDS,
    JOB,
    Audience,
    ReadModel,
    bid_audience,
    cut,
    job_audience,
    may_receive,
)
from marketplace.clusters.models import Member, User
from marketplace.geo import APPROX_DECIMALS
from marketplace.jobs.eligibility import partner_distance_km, site_distance_km, trades_of_jobs
from marketplace.jobs.models import (
    Bid,
    BidShare,
    BidStatus,
    ContractParty,
    JobContract,
    JobStatus,
    OverflowJob,
)

#: A job is on offer to the cluster's members until it is awarded or cancelled.
ON_OFFER = frozenset({JobStatus.OPEN, JobStatus.WINDOW_CLOSED})


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


def parties_of_jobs(session: Session, job_ids: Sequence[int | None]) -> dict[int, set[int]]:
    """The members who are parties to each job's contract, by job id, in one query
    (jobs without a contract are absent)."""
    parties: dict[int, set[int]] = {}
    if not job_ids:
        return parties
    for job_id, member_id in session.exec(
            select(JobContract.job_id, ContractParty.member_id)
            .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
            .where(col(JobContract.job_id).in_(job_ids))):
        parties.setdefault(job_id, set()).add(member_id)
    return parties


def contract_member_ids(session: Session, job_id: int) -> set[int]:
    """The members who are parties to the job's contract (empty before award)."""
    return parties_of_jobs(session, [job_id]).get(job_id, set())


def audience_of(viewer: Viewer, job: OverflowJob, parties: set[int]) -> Audience:
    """Who the viewer is to the job (barrier.job_audience), on facts already loaded."""
    return job_audience(viewer_member_id=viewer.member_id, viewer_cluster_id=viewer.cluster_id,
                        job_cluster_id=job.cluster_id, poster_member_id=job.poster_member_id,
                        parties=parties, on_offer=job.status in ON_OFFER)


def _sees_customer(viewer: Viewer, job: OverflowJob, parties: set[int]) -> bool:
    """Poster always; winning parties once the contract exists; nobody else."""
    return audience_of(viewer, job, parties) in (Audience.POSTER, Audience.PARTY)


def sees_customer(session: Session, viewer: Viewer, job: OverflowJob) -> bool:
    """Poster always; winning parties once the contract exists; nobody else."""
    if viewer.member_id is not None and viewer.member_id == job.poster_member_id:
        return True
    return _sees_customer(viewer, job, contract_member_ids(session, job.id or 0))


def _job_card(job: OverflowJob, trades: list[str]) -> dict[str, Any]:
    """The job's card, uncut."""
    return {
        "id": job.id, "title": job.title, "description": job.description, "mode": job.mode,
        "status": job.status, "trades": trades, "locality": job.locality,
        "approx_lat": round(job.approx_lat, APPROX_DECIMALS),
        "approx_lng": round(job.approx_lng, APPROX_DECIMALS),
        "crew_days": job.crew_days, "starts_on": job.starts_on.isoformat(),
        "ends_on": job.ends_on.isoformat(), "value_minor": job.value_minor,
        "currency": job.currency,
        "closes_at": job.closes_at.isoformat() if job.closes_at else None,
        "poster_member_id": job.poster_member_id,
    }


def job_public(job: OverflowJob, trades: list[str]) -> ReadModel:
    """What any eligible partner may know about a job (also the `job.posted` payload)."""
    return cut(JOB, Audience.PARTNER, _job_card(job, trades))


def jobs_for(session: Session, viewer: Viewer, jobs: Sequence[OverflowJob],
             viewer_member: Member | None = None,
             trades: Mapping[int, list[str]] | None = None) -> list[ReadModel]:
    """Each job as this viewer may see it, for a page of cards in at most two queries
    (trades, unless the caller already has them, and contract parties), however many
    jobs the page shows.

    A job on offer has no contract yet (the contract is written in the transaction
    that takes it off the market), so its parties are not asked for: the open board
    needs no contract query.  Were that ever untrue, the viewer would be read as a
    partner, who receives less than a party, never more."""
    ids = [job.id for job in jobs]
    if trades is None:
        trades = trades_of_jobs(session, ids)
    others = [job.id for job in jobs
              if job.poster_member_id != viewer.member_id and job.status not in ON_OFFER]
    parties = (parties_of_jobs(session, others)
               if viewer.member_id is not None and others else {})
    return [_job_view(viewer, job, trades.get(job.id or 0, []), parties.get(job.id or 0, set()),
                      viewer_member) for job in jobs]


def job_for(session: Session, viewer: Viewer, job: OverflowJob,
            viewer_member: Member | None = None) -> ReadModel:
    """The job as this viewer may see it."""
    return jobs_for(session, viewer, [job], viewer_member)[0]


def _job_view(viewer: Viewer, job: OverflowJob, trades: list[str], parties: set[int],
              viewer_member: Member | None) -> ReadModel:
    """The whole job, cut to the viewer's audience; only the distance depends on who
    asks (to the site for those who know it, coarse to the approximate point else)."""
    audience = audience_of(viewer, job, parties)
    data = _job_card(job, trades)
    data["distance_km"] = data["distance_precision"] = None
    if viewer_member is not None and audience in (Audience.POSTER, Audience.PARTY):
        exact = site_distance_km(viewer_member, job)
        if exact is not None:
            data.update(distance_km=round(exact, 1), distance_precision="exact")
    elif viewer_member is not None:
        coarse = partner_distance_km(viewer_member, job)
        if coarse is not None:
            data.update(distance_km=coarse[0], distance_precision=coarse[1])
    data.update(site_lat=job.site_lat, site_lng=job.site_lng, address=job.address,
                customer_name=job.customer_name, customer_contact=job.customer_contact,
                awarded_member_id=job.awarded_member_id, cancel_reason=job.cancel_reason)
    return cut(JOB, audience, data)


def bid_parties(session: Session, bid: Bid) -> dict[int, BidShare]:
    """The members in a bid with their shares (a single bid: its lead at 100 %)."""
    return shares_of_bids(session, [bid.id]).get(bid.id or 0, {})


def shares_of_bids(session: Session, bid_ids: Sequence[int | None]
                   ) -> dict[int, dict[int, BidShare]]:
    """`bid_parties` of many bids in one query, by bid id."""
    shares: dict[int, dict[int, BidShare]] = {}
    if not bid_ids:
        return shares
    for share in session.exec(select(BidShare).where(col(BidShare.bid_id).in_(bid_ids))):
        shares.setdefault(share.bid_id, {})[share.member_id] = share
    return shares


def bid_dict(session: Session, bid: Bid) -> ReadModel:
    """A whole bid (as its own parties see it), for the poster and for the bid's own
    parties only: callers must have checked that the viewer is one of them."""
    return _bid_view(bid, bid_parties(session, bid), Audience.PARTY)


def _bid_view(bid: Bid, shares: dict[int, BidShare], audience: Audience) -> ReadModel:
    """The whole bid and its shares, cut to the audience."""
    return cut(BID, audience, {
        "id": bid.id, "member_id": bid.member_id, "price_minor": bid.price_minor,
        "crew_size": bid.crew_size, "earliest_start": bid.earliest_start.isoformat(),
        "note": bid.note, "is_joint": bid.is_joint, "status": bid.status,
        "shares": [cut(BID_SHARE, audience, {
            "member_id": m, "share_bp": s.share_bp, "confirmed": s.confirmed_at is not None})
            for m, s in sorted(shares.items())],
    })


def bids_for(session: Session, viewer: Viewer, job: OverflowJob) -> ReadModel:
    """Poster: every submitted bid.  A bidder: its own bids.  Others: only the count.
    Two queries however many bids there are.  (Which of those a viewer is, is
    `barrier.bid_audience`; a bid its audience may receive nothing of is left out.)"""
    bids = list(session.exec(select(Bid).where(Bid.job_id == job.id).order_by(col(Bid.id))))
    submitted = [b for b in bids if b.status == BidStatus.SUBMITTED]
    shares = shares_of_bids(session, [b.id for b in bids]) if bids else {}
    # The bid list is the same for a contract party as for a partner, so the
    # contract's parties are not loaded here.
    on_job = audience_of(viewer, job, set())
    seen = []
    for b in bids:
        its_shares = shares.get(b.id or 0, {})
        audience = bid_audience(on_job, viewer_member_id=viewer.member_id,
                                bid_parties={b.member_id, *its_shares},
                                submitted=b.status == BidStatus.SUBMITTED)
        if may_receive(BID, audience):
            seen.append(_bid_view(b, its_shares, audience))
    return cut(BIDS, on_job, {"count": len(submitted), "bids": seen})
