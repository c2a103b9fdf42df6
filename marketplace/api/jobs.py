"""Overflow jobs over the API: the board, posting, claims, bids, joint bids, awards,
completion and ratings — the same service calls as the job pages.

Every job and bid leaves through `jobs.visibility` (the information barrier),
so a rival's JSON carries exactly what its page would show.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from marketplace.api.fields import (
    BasisPoints,
    Count,
    Day,
    Id,
    Latitude,
    Longitude,
    Minor,
    Moment,
    Trade,
)
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.models import Member
from marketplace.db import utcnow
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.eligibility import reason_as_error
from marketplace.jobs.models import Bid, JobMode, OverflowJob
from marketplace.jobs.visibility import bids_for, job_for, jobs_for, viewer_of
from marketplace.persisted import id_of
from marketplace.ratelimits import claim_limit, post_limit
from marketplace.web import db, translate, viewer

TAG = "jobs"


class JobOut(ResponseModel):
    """A job as the caller may see it (the fields `marketplace.barrier.TABLE` lists for
    the caller's audience): customer fields only for poster and winners, no distance for
    a coordinator.  A field the caller may not receive is absent, not null."""

    id: int
    title: str
    description: str
    mode: str
    status: str
    trades: list[str]
    locality: str
    approx_lat: float = Field(description="The job's approximate point, drawn once at "
                              "posting at least 1 km from the site.")
    approx_lng: float
    crew_days: int
    starts_on: date
    ends_on: date
    value_minor: int
    currency: str
    closes_at: Moment | None
    poster_member_id: int
    distance_km: float | None = Field(
        default=None, description="From the caller's base: to the site for the poster and "
        "the winners; else to the approximate point in whole km (see distance_precision). "
        "Absent for a coordinator.")
    distance_precision: Literal["exact", "about", "under"] | None = Field(
        default=None, description="exact: to the site; about: whole km to the approximate "
        "point; under: closer than distance_km to it.")
    awarded_member_id: int | None
    cancel_reason: str | None
    site_lat: float | None = None
    site_lng: float | None = None
    address: str | None = None
    customer_name: str | None = None
    customer_contact: str | None = None


class ShareOut(ResponseModel):
    member_id: int
    share_bp: int
    confirmed: bool


class BidOut(ResponseModel):
    id: int
    member_id: int
    price_minor: int
    crew_size: int
    earliest_start: date
    note: str
    is_joint: bool
    status: str
    shares: list[ShareOut]


class BidsOut(ResponseModel):
    """The poster sees every submitted bid; a bidder its own; others only the count."""

    count: int
    bids: list[BidOut]


class JobDetail(ResponseModel):
    job: JobOut
    bids: BidsOut
    reasons: list[str] = Field(description="Why the caller may not take part, if it may not.")


class JobList(ResponseModel):
    jobs: list[JobOut]


class MyJobs(ResponseModel):
    posted: list[JobOut]
    bidding: list[JobOut]
    won: list[JobOut]
    done: list[JobOut]


class BoardQuery(RequestModel):
    trade: Trade | None = None
    mode: Literal["handoff", "bid_window"] | None = None
    closing_soon: bool = Field(default=False, description="Only bid windows closing within "
                               "24 hours.")
    within_km: int | None = Field(default=None, ge=1, le=20_000, description="Only jobs at "
                                  "most this far, as the caller is shown (whole km from "
                                  "the approximate point).")
    order: Literal["newest", "nearest"] = "newest"


class JobIn(RequestModel):
    title: str = Field(max_length=120)
    description: str = Field(default="", max_length=4000)
    trades: list[Trade] = Field(max_length=20)
    site_lat: Latitude
    site_lng: Longitude
    locality: str = Field(max_length=120)
    address: str = Field(max_length=300)
    customer_name: str = Field(max_length=120)
    customer_contact: str = Field(max_length=200)
    crew_days: Count
    starts_on: Day
    ends_on: Day
    value_minor: Minor
    mode: JobMode
    closes_at: Moment | None = Field(default=None, description="Required for a bid window.")


class BidIn(RequestModel):
    price_minor: Minor
    crew_size: Count
    earliest_start: Day
    note: str = Field(default="", max_length=1000)


class ShareIn(RequestModel):
    member_id: Id
    share_bp: BasisPoints


class JointBidIn(BidIn):
    shares: list[ShareIn] = Field(max_length=50, description="Every party's share, "
                                  "the caller's business included; they add up to 10 000.")


class AwardIn(RequestModel):
    bid_id: Id


class ReasonIn(RequestModel):
    reason: str = Field(default="", max_length=500)


class RatingIn(RequestModel):
    ratee_member_id: Id
    score: int = Field(ge=1, le=5)
    on_time: bool
    comment: str = Field(default="", max_length=1000)


def _card(job: OverflowJob, member: Member | None = None) -> dict[str, Any]:
    return job_for(db(), viewer_of(viewer()), job, member)


def job_state(job_id: int) -> dict[str, Any]:
    """The job, the bids the caller may see, and why it may not take part."""
    user, session = viewer(), db()
    job = service.get_job(session, user, job_id)
    member = session.get(Member, user.member_id) if user.member_id else None
    reasons = service.explain(session, user, job, utcnow()) if member else []
    return {"job": _card(job, member), "bids": bids_for(session, viewer_of(user), job),
            "reasons": [translate(reason_as_error(r)) for r in reasons]}


@operation("GET", "/jobs", summary="The job board: open jobs the caller's business may "
           "take (a coordinator: the cluster's jobs)", tag=TAG, query=BoardQuery,
           response=JobList)
def list_jobs(query: BoardQuery) -> dict[str, Any]:
    user, session = viewer(), db()
    if user.member_id is None:
        return {"jobs": jobs_for(session, viewer_of(user), service.cluster_jobs(session, user))}
    member = session.get(Member, user.member_id)
    rows = service.board(session, user, utcnow(), service.BoardFilters(
        trade=query.trade, mode=query.mode, closing_soon=query.closing_soon,
        within_km=query.within_km, order=query.order))
    return {"jobs": jobs_for(session, viewer_of(user), [job for job, _d in rows], member)}


@operation("GET", "/jobs/mine", summary="The caller's business's jobs: posted, bidding, "
           "won, done", tag=TAG, response=MyJobs)
def my_jobs() -> dict[str, Any]:
    groups = service.my_jobs(db(), viewer())
    return {name: jobs_for(db(), viewer_of(viewer()), jobs) for name, jobs in groups.items()}


@operation("POST", "/jobs", summary="Post an overflow job; eligible partners are notified",
           tag=TAG, body=JobIn, response=JobDetail, status=201, limit=post_limit)
def post_job(body: JobIn) -> dict[str, Any]:
    draft = service.JobDraft(**body.model_dump(exclude={"trades"}), trades=tuple(body.trades))
    job = service.post_job(db(), viewer(), draft, utcnow())
    return job_state(id_of(job))


@operation("GET", "/jobs/{job_id}", summary="One job as the caller may see it", tag=TAG,
           response=JobDetail)
def get_job(job_id: int) -> dict[str, Any]:
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/claim", summary="Claim a hand-off job (first wins)",
           tag=TAG, response=JobDetail, limit=claim_limit)
def claim_job(job_id: int) -> dict[str, Any]:
    service.claim_job(db(), viewer(), job_id, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/bids", summary="Place or change the caller's bid",
           tag=TAG, body=BidIn, response=JobDetail, limit=claim_limit)
def place_bid(job_id: int, body: BidIn) -> dict[str, Any]:
    terms = bidding.BidTerms(**body.model_dump())
    bidding.place_bid(db(), viewer(), job_id, terms, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/joint-bids", summary="Propose a joint bid with agreed "
           "shares; each partner confirms its share", tag=TAG, body=JointBidIn,
           response=JobDetail, limit=claim_limit)
def propose_joint_bid(job_id: int, body: JointBidIn) -> dict[str, Any]:
    terms = bidding.BidTerms(**body.model_dump(exclude={"shares"}))
    shares = {share.member_id: share.share_bp for share in body.shares}
    bidding.propose_joint_bid(db(), viewer(), job_id, terms, shares, utcnow())
    return job_state(job_id)


@operation("POST", "/bids/{bid_id}/confirm", summary="Confirm the caller's share of a "
           "joint bid", tag=TAG, response=JobDetail)
def confirm_share(bid_id: int) -> dict[str, Any]:
    share = bidding.confirm_joint_share(db(), viewer(), bid_id, utcnow())
    bid = db().get(Bid, share.bid_id)
    assert bid is not None  # the share was just confirmed on it
    return job_state(bid.job_id)


@operation("POST", "/bids/{bid_id}/submit", summary="Submit a fully confirmed joint bid "
           "(freezes the shares)", tag=TAG, response=JobDetail)
def submit_joint_bid(bid_id: int) -> dict[str, Any]:
    bid = bidding.submit_joint_bid(db(), viewer(), bid_id, utcnow())
    return job_state(bid.job_id)


@operation("POST", "/jobs/{job_id}/award", summary="Award the job to a bid (poster only)",
           tag=TAG, body=AwardIn, response=JobDetail)
def award(job_id: int, body: AwardIn) -> dict[str, Any]:
    bidding.award_bid(db(), viewer(), job_id, body.bid_id, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/cancel", summary="Cancel the job (poster only)", tag=TAG,
           body=ReasonIn, response=JobDetail)
def cancel_job(job_id: int, body: ReasonIn) -> dict[str, Any]:
    service.cancel_job(db(), viewer(), job_id, body.reason, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/done", summary="Report the work done (a winning party)",
           tag=TAG, response=JobDetail)
def report_done(job_id: int) -> dict[str, Any]:
    completion.report_done(db(), viewer(), job_id, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/confirm", summary="Confirm completion (poster only); "
           "the contract's money is booked", tag=TAG, response=JobDetail)
def confirm_completion(job_id: int) -> dict[str, Any]:
    completion.confirm_completion(db(), viewer(), job_id, utcnow())
    return job_state(job_id)


@operation("POST", "/jobs/{job_id}/ratings", summary="Rate the other side of a completed "
           "job", tag=TAG, body=RatingIn, response=JobDetail)
def rate(job_id: int, body: RatingIn) -> dict[str, Any]:
    completion.rate(db(), viewer(), job_id, body.ratee_member_id, body.score, body.on_time,
                    body.comment, utcnow())
    return job_state(job_id)

