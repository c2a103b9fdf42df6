"""Decisions by the charter's rule through the API: proposals to change the agreement
and the member businesses' votes on them.

A script proposes only what it changes: every term it leaves out is the version in
force's, so a client never has to read and echo back the whole charter (and cannot
drop a term it did not know about).  What a caller reads of a vote is the same
`proposal_view` the decisions page shows: who voted how only when the charter's votes
are open, counts of secret votes only once each side hides its voters.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from marketplace.api.clusters import TermsOut
from marketplace.api.fields import BasisPoints, Count, Day, Minor, Moment, Trade
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters import agreements
from marketplace.clusters.agreements import AgreementTerms
from marketplace.clusters.governance import service as governance
from marketplace.db import utcnow
from marketplace.errors import N_, NotFound
from marketplace.persisted import id_of
from marketplace.web import db, viewer

TAG = "decisions"


class BallotOut(ResponseModel):
    member_name: str
    in_favour: bool
    cast_at: Moment


class ProposalOut(ResponseModel):
    id: int
    status: Literal["open", "carried", "rejected", "stale"]
    reason: str
    proposer: str = Field(description="The proposing business, or the coordinator's name.")
    based_on_version: int
    decision_rule: Literal["majority", "two_thirds", "unanimity"]
    secret_votes: bool
    created_at: Moment
    deadline: Moment
    closed_at: Moment | None
    votes_cast: int
    turnout: int = Field(description="Votes that count: all cast while open, the counted "
                         "ones once closed.")
    votes_for: int | None = Field(description="None while secret votes are open, or when "
                                  "a side has too few votes to hide who cast them.")
    votes_against: int | None
    ballots: list[BallotOut] = Field(description="Who voted how: open votes only.")
    my_vote: bool | None = Field(description="Your business's vote, if it voted.")
    may_vote: bool
    published_version: int | None
    terms: TermsOut


class ProposalList(ResponseModel):
    proposals: list[ProposalOut]


class TermsChangeIn(RequestModel):
    """The terms to change; each one left out stays as in the version in force."""

    purpose: str | None = Field(default=None, max_length=2000)
    scope_overflow_jobs: bool | None = None
    scope_equipment: bool | None = None
    scope_joint_bids: bool | None = None
    referral_fee_bp: BasisPoints | None = None
    platform_fee_bp: BasisPoints | None = None
    sunset_on: Day | None = None
    exit_notice_days: Count | None = None
    information_rules: str | None = Field(default=None, max_length=5000)
    aggregate_min_group: Count | None = None
    min_coverage: dict[Trade, Minor] | None = None
    decision_rule: Literal["majority", "two_thirds", "unanimity"] | None = None
    members_may_propose: bool | None = None
    secret_votes: bool | None = None
    dispute_window_days: Count | None = None
    dispute_resolver: Literal["coordinator", "panel"] | None = None
    dispute_decide_days: Count | None = None
    targets: dict[str, Minor] | None = Field(default=None, description="Metric -> goal per "
                                             "quarter; replaces all targets.")
    buyout_value_bp: BasisPoints | None = None


class ProposalIn(RequestModel):
    reason: str = Field(max_length=2000, description="Why the agreement should change.")
    voting_days: int = Field(ge=0, le=365, description="How long members vote (3 to 30).")
    changes: TermsChangeIn


class VoteIn(RequestModel):
    in_favour: bool


def _proposal_out(view: governance.ProposalView) -> dict[str, Any]:
    proposal = view.proposal
    return {
        "id": proposal.id, "status": proposal.status, "reason": proposal.reason,
        "proposer": view.proposer, "based_on_version": proposal.based_on_version,
        "decision_rule": proposal.decision_rule, "secret_votes": proposal.secret_votes,
        "created_at": proposal.created_at, "deadline": proposal.deadline,
        "closed_at": proposal.closed_at, "votes_cast": view.votes_cast,
        "turnout": view.turnout, "votes_for": view.votes_for,
        "votes_against": view.votes_against,
        "ballots": [asdict(ballot) for ballot in view.ballots],
        "my_vote": view.my_vote, "may_vote": view.may_vote,
        "published_version": proposal.published_version, "terms": asdict(view.terms),
    }


def _shown(proposal_id: int, now: datetime) -> dict[str, Any]:
    session, user = db(), viewer()
    found = governance.get_proposal(session, user, proposal_id)
    return _proposal_out(governance.proposal_view(session, user, found, now))


@operation("GET", "/agreement/proposals", summary="Every proposed change to the agreement "
           "and its outcome, newest first", tag=TAG, response=ProposalList)
def list_proposals() -> dict[str, Any]:
    session, user, now = db(), viewer(), utcnow()
    return {"proposals": [_proposal_out(governance.proposal_view(session, user, p, now))
                          for p in governance.list_proposals(session, user)]}


@operation("GET", "/agreement/proposals/{proposal_id}", summary="One proposed change and "
           "its votes, as the charter lets the caller see them", tag=TAG,
           response=ProposalOut)
def get_proposal(proposal_id: int) -> dict[str, Any]:
    return _shown(proposal_id, utcnow())


@operation("POST", "/agreement/proposals", summary="Propose a change to the agreement "
           "(the coordinator, or an owner where the charter allows); every member is told",
           tag=TAG, body=ProposalIn, response=ProposalOut, status=201)
def propose(body: ProposalIn) -> dict[str, Any]:
    session, user, now = db(), viewer(), utcnow()
    current = agreements.agreement_in_force(session, user.cluster_id)
    if current is None:
        raise NotFound("no_agreement", N_("The coordinator has not published an agreement "
                                          "yet."))
    changes = body.changes.model_dump(exclude_none=True)
    if "min_coverage" in changes:
        changes["min_coverage"] = {str(trade): minor
                                   for trade, minor in changes["min_coverage"].items()}
    terms = replace(AgreementTerms.of(current), **changes)
    proposal = governance.propose_change(session, user, terms, body.reason,
                                         body.voting_days, now)
    return _shown(id_of(proposal), now)


@operation("POST", "/agreement/proposals/{proposal_id}/vote", summary="Vote for or against "
           "a proposed change for the caller's business (its owners; the first vote stands)",
           tag=TAG, body=VoteIn, response=ProposalOut)
def vote(proposal_id: int, body: VoteIn) -> dict[str, Any]:
    session, user, now = db(), viewer(), utcnow()
    governance.get_proposal(session, user, proposal_id)  # another cluster's: 404 first
    governance.cast_vote(session, user, proposal_id, body.in_favour, now)
    return _shown(proposal_id, now)


