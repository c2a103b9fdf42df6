"""Decisions by the charter's rule: proposals to change the agreement, votes, outcomes.

A change is proposed as the whole new terms (`AgreementTerms`) with a reason and a
deadline.  Each participating member business (it accepted the version in force, has
not left, is not suspended) has one vote, cast by one of its owners; the first vote
stands (a second is refused by the unique key on proposal and member, not by a check
in Python).  At the deadline the scheduler closes the proposal exactly once (a
conditional UPDATE ... WHERE status = 'open'), counts by the rule of the version that
was in force when it was proposed, and, if carried, publishes the terms as a new
version through the same code the coordinator's editor uses, so every member must
accept it again.  Members whose owners voted against may then leave without the
notice period (`agreements.give_exit_notice`).

Counting is of *participating members at closing*, not of votes cast: a member that
did not vote has not agreed, so abstaining weighs like voting against.  Majority is
more than half of them, two-thirds at least two thirds, unanimity all of them (and a
cluster with no participating member carries nothing).

Secret votes: `proposal_view` is the one place that decides who may read how each
member voted.  With secret votes nobody (the coordinator included) reads another
member's vote, only the counts, and those only when each side with votes has at
least the agreement's k (`counts_may_be_shown`); a member's owners still see their own
business's vote.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.agreements import (
    COUNTED_MEMBERS_KEY,
    AgreementTerms,
    add_version,
    aggregate_min_group,
    agreement_in_force,
    check_terms,
)
from marketplace.clusters.models import (
    Agreement,
    AgreementAcceptance,
    AgreementProposal,
    Cluster,
    Member,
    ProposalStatus,
    ProposalVote,
    Role,
    User,
)
from marketplace.clusters.service import not_left
from marketplace.errors import (
    N_,
    Conflict,
    DomainError,
    Forbidden,
    ValidationError,
    not_found,
)
from marketplace.persisted import id_of
from marketplace.rows import in_cluster

MIN_VOTING_DAYS, MAX_VOTING_DAYS = 3, 30
MAX_REASON = 2000


# -- the rule ---------------------------------------------------------------------------


def carried(rule: str, votes_for: int, participants: int) -> bool:
    """Whether `votes_for` of `participants` participating members carry a change."""
    if participants <= 0 or votes_for <= 0:
        return False
    if rule == "unanimity":
        return votes_for >= participants
    if rule == "two_thirds":
        return 3 * votes_for >= 2 * participants
    return 2 * votes_for > participants  # majority: more than half


def participating_member_ids(
    session: Session, cluster_id: int, now: datetime, based_on_version: int | None = None
) -> set[int]:
    """The member businesses that take part now: accepted the version in force (or,
    for a proposal, the version it was proposed on), not exited, not suspended (the
    electorate of a vote).

    A proposal's electorate is those who accepted the version it amends: a newer
    version published while it is open must not drop the members that have not
    re-accepted yet (they never stopped being members of the vote)."""
    current = agreement_in_force(session, cluster_id)
    if current is None:
        return set()
    accepted_ids = [current.id]
    if based_on_version is not None and based_on_version != current.version:
        accepted_ids += list(
            session.exec(
                select(col(Agreement.id)).where(
                    Agreement.cluster_id == cluster_id, Agreement.version == based_on_version
                )
            )
        )
    rows = session.exec(
        select(col(Member.id))
        .join(AgreementAcceptance, col(AgreementAcceptance.member_id) == Member.id)
        .where(
            Member.cluster_id == cluster_id,
            col(AgreementAcceptance.agreement_id).in_(accepted_ids),
            col(Member.suspended).is_(False),
            or_(col(Member.exit_effective_at).is_(None), col(Member.exit_effective_at) > now),
        )
        .distinct()
    )
    return {member_id for member_id in rows if member_id is not None}


def counts_may_be_shown(
    secret_votes: bool, votes_for: int | None, votes_against: int | None, k: int
) -> bool:
    """With secret votes, the for/against counts only when each side that has votes has
    at least k of them (the agreement's information rules): otherwise a count of one or
    two tells the others how a business they can name voted.  Open votes: always."""
    if not secret_votes:
        return True
    return all(count == 0 or count >= k for count in (votes_for or 0, votes_against or 0))


# -- terms as stored ----------------------------------------------------------------------


def terms_to_json(terms: AgreementTerms) -> dict[str, Any]:
    data = asdict(terms)
    data["sunset_on"] = terms.sunset_on.isoformat()
    return data


def terms_from_json(data: dict[str, Any]) -> AgreementTerms:
    known = {f.name for f in fields(AgreementTerms)}
    values = {k: v for k, v in data.items() if k in known}
    values["sunset_on"] = date.fromisoformat(str(values["sunset_on"]))
    return AgreementTerms(**values)


# -- proposing ----------------------------------------------------------------------------


def may_propose(session: Session, actor: User, now: datetime) -> bool:
    """The coordinator always; an owner of a participating member where the charter says
    members may propose."""
    return proposal_refusal(session, actor, now) is None


def proposal_refusal(session: Session, actor: User, now: datetime) -> DomainError | None:
    """Why the actor may not propose a change now (the true reason, with what to do),
    or None if it may."""
    current = agreement_in_force(session, actor.cluster_id)
    if current is None:
        return Conflict(
            "no_agreement",
            N_(
                "The coordinator has not published the cluster "
                "agreement yet; nothing can be shared before it."
            ),
        )
    if actor.role == Role.COORDINATOR:
        return None
    if not current.members_may_propose:
        return Forbidden(
            "may_not_propose",
            N_("The agreement lets only the coordinator propose changes. Ask the coordinator."),
        )
    if actor.role != Role.OWNER or actor.member_id is None:
        return Forbidden(
            "owner_only",
            N_(
                "Only an owner of a member business (or the coordinator) can propose a "
                "change. Ask an owner of your business."
            ),
        )
    return _not_participating(session, actor.member_id, actor.cluster_id, now, None)


def _not_participating(
    session: Session, member_id: int, cluster_id: int, now: datetime, based_on: int | None
) -> DomainError | None:
    """Why this business is not in the electorate (suspended, left, or has not accepted
    the version), or None if it is."""
    if member_id in participating_member_ids(session, cluster_id, now, based_on):
        return None
    member = session.get(Member, member_id)
    if (
        member is not None
        and member.exit_effective_at is not None
        and member.exit_effective_at <= now
    ):
        return Forbidden(
            "member_exited",
            N_(
                "Your business has left the cluster: it can no longer propose or vote. "
                "Its history stays visible."
            ),
        )
    if member is not None and member.suspended:
        return Forbidden(
            "member_suspended",
            N_(
                "Your business is suspended: it cannot propose or vote until the "
                "coordinator lifts the suspension. Contact the cluster coordinator."
            ),
        )
    current = agreement_in_force(session, cluster_id)
    return Forbidden(
        "not_participating",
        N_(
            "Your business has not accepted agreement version %(version)d, the version "
            "in force. An owner must read and accept it first; then the business can "
            "propose and vote."
        ),
        params={"version": current.version if current is not None else 0},
    )


def propose_change(
    session: Session,
    actor: User,
    terms: AgreementTerms,
    reason: str,
    voting_days: int,
    now: datetime,
) -> AgreementProposal:
    """Put a change to the vote; every member's owners (and the coordinator) are told."""
    refusal = proposal_refusal(session, actor, now)
    if refusal is not None:
        raise refusal
    current = agreement_in_force(session, actor.cluster_id)
    assert current is not None  # proposal_refusal refuses a cluster without one
    errors: dict[str, str] = {}
    if not reason.strip() or len(reason) > MAX_REASON:
        errors["reason"] = N_("Say why the agreement should change (up to 2000 characters).")
    if not MIN_VOTING_DAYS <= voting_days <= MAX_VOTING_DAYS:
        errors["voting_days"] = N_("Members vote for between 3 and 30 days.")
    if errors:
        raise ValidationError(
            "invalid_proposal", N_("Some fields need your attention."), fields=errors
        )
    check_terms(session, actor.cluster_id, terms, now)
    proposal = AgreementProposal(
        cluster_id=actor.cluster_id,
        proposed_by_id=id_of(actor),
        proposed_by_member_id=actor.member_id if actor.role == Role.OWNER else None,
        based_on_version=current.version,
        reason=reason.strip(),
        terms=terms_to_json(terms),
        decision_rule=current.decision_rule,
        secret_votes=current.secret_votes,
        created_at=now,
        deadline=now + timedelta(days=voting_days),
    )
    session.add(proposal)
    session.flush()
    events.notify(
        session,
        _told(session, actor.cluster_id),
        "governance.proposed",
        N_(
            "A change to the cluster agreement was proposed: %(reason)s Vote for or against "
            "before %(deadline)s."
        ),
        now=now,
        params={"reason": proposal.reason[:200], "deadline": local_deadline(session, proposal)},
        link=f"/agreement/proposals/{proposal.id}",
    )
    session.commit()
    return proposal


def local_deadline(session: Session, proposal: AgreementProposal) -> str:
    """The deadline as the cluster's clock reads it, for messages (pages format it
    in each viewer's own zone)."""
    cluster = session.get(Cluster, proposal.cluster_id)
    zone = ZoneInfo(cluster.timezone if cluster else "UTC")
    return proposal.deadline.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _told(session: Session, cluster_id: int) -> list[User]:
    """Whom a proposal and its outcome reach: the coordinator and every member's owners
    (the people who vote and accept for their businesses); not a business that left."""
    return list(
        session.exec(
            select(User)
            .where(
                User.cluster_id == cluster_id,
                col(User.active).is_(True),
                col(User.role).in_([Role.OWNER.value, Role.COORDINATOR.value]),
                not_left(),
            )
            .order_by(col(User.id))
        )
    )


# -- voting -------------------------------------------------------------------------------


def get_proposal(session: Session, viewer: User, proposal_id: int) -> AgreementProposal:
    """A proposal of the viewer's cluster, or NotFound."""
    return in_cluster(session, AgreementProposal, proposal_id, viewer.cluster_id)


def cast_vote(
    session: Session, actor: User, proposal_id: int, in_favour: bool, now: datetime
) -> ProposalVote:
    """One vote for the actor's business.  The first vote stands: a second one, by the
    same owner or a co-owner, is refused (the unique key decides, not a prior read)."""
    proposal = in_cluster(
        session, AgreementProposal, proposal_id, actor.cluster_id, for_update=True
    )  # the closer waits for this vote, or refuses it
    if actor.role != Role.OWNER or actor.member_id is None:
        raise Forbidden("owner_only", N_("Only an owner of a member business can vote for it."))
    if proposal.status != ProposalStatus.OPEN.value or proposal.deadline <= now:
        raise Conflict(
            "voting_closed",
            N_(
                "Voting on this change closed on %(deadline)s. The outcome is on "
                "the agreement's decisions page; to change the agreement again, "
                "propose a new change."
            ),
            params={"deadline": local_deadline(session, proposal)},
        )
    refusal = _not_participating(
        session, actor.member_id, actor.cluster_id, now, proposal.based_on_version
    )
    if refusal is not None:
        raise refusal
    vote = ProposalVote(
        proposal_id=id_of(proposal),
        member_id=actor.member_id,
        user_id=id_of(actor),
        in_favour=in_favour,
        cast_at=now,
    )
    session.add(vote)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            "already_voted",
            N_("Your business has already voted on this change; its first vote stands."),
        ) from None
    return vote


# -- closing ------------------------------------------------------------------------------


def close_due_proposals(session: Session, now: datetime) -> int:
    """Scheduler sweep: close every proposal whose deadline passed; how many it closed
    (a proposal another scheduler or a rerun closed first is not counted again)."""
    due = list(
        session.exec(
            select(col(AgreementProposal.id))
            .where(
                AgreementProposal.status == ProposalStatus.OPEN.value,
                col(AgreementProposal.deadline) <= now,
            )
            .order_by(col(AgreementProposal.id))
        )
    )
    session.commit()
    return sum(
        1
        for proposal_id in due
        if proposal_id is not None and close_proposal(session, proposal_id, now)
    )


def close_proposal(session: Session, proposal_id: int, now: datetime) -> bool:
    """Close one due proposal, exactly once: count, publish if carried, tell everyone.
    False if it was not open and due (closed already, by this or another process).

    The claim comes first, so on PostgreSQL a concurrent closer waits for this
    transaction and then finds nothing open, and a vote still being cast (it locks the
    proposal) is counted; the count is read after the claim, in the same transaction."""
    claimed = session.execute(
        update(AgreementProposal)
        .where(
            col(AgreementProposal.id) == proposal_id,
            col(AgreementProposal.status) == ProposalStatus.OPEN.value,
            col(AgreementProposal.deadline) <= now,
        )
        .values(status=ProposalStatus.REJECTED.value, closed_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # a DML result has rowcount
        session.rollback()
        return False
    proposal = session.get(AgreementProposal, proposal_id, populate_existing=True)
    assert proposal is not None
    electorate = participating_member_ids(
        session, proposal.cluster_id, now, proposal.based_on_version
    )
    votes = [
        v
        for v in session.exec(select(ProposalVote).where(ProposalVote.proposal_id == proposal_id))
        if v.member_id in electorate
    ]
    proposal.votes_for = sum(1 for v in votes if v.in_favour)
    proposal.votes_against = sum(1 for v in votes if not v.in_favour)
    proposal.participants = len(electorate)
    # Which businesses' votes counted, kept with the record (beside the terms, which
    # read only their own keys): only a counted vote against a carried change lets a
    # business leave without notice (`agreements.voted_against_carried_change`).
    proposal.terms = {
        **proposal.terms,
        COUNTED_MEMBERS_KEY: sorted(v.member_id for v in votes),
    }
    current = agreement_in_force(session, proposal.cluster_id)
    superseded = current is not None and current.version != proposal.based_on_version
    if superseded:
        # Its terms were written on an older version: publishing them now would
        # silently undo whatever the newer version changed.
        proposal.status = ProposalStatus.STALE.value
    elif carried(proposal.decision_rule, proposal.votes_for, proposal.participants):
        try:
            published = add_version(
                session,
                proposal.cluster_id,
                proposal.proposed_by_id,
                terms_from_json(proposal.terms),
                now,
            )
        except ValidationError:  # e.g. its sunset date passed while members voted
            proposal.status = ProposalStatus.STALE.value
        else:
            proposal.status = ProposalStatus.CARRIED.value
            proposal.published_version = published.version
    session.add(proposal)
    shown = counts_may_be_shown(
        proposal.secret_votes,
        proposal.votes_for,
        proposal.votes_against,
        aggregate_min_group(session, proposal.cluster_id),
    )
    params: dict[str, Any] = {
        "turnout": proposal.votes_for + proposal.votes_against,
        "participants": proposal.participants,
        "version": proposal.published_version or 0,
        "based_on": proposal.based_on_version,
        "current": current.version if current is not None else 0,
    }
    if shown:
        params |= {"yes": proposal.votes_for, "no": proposal.votes_against}
    if superseded:
        message = SUPERSEDED_MESSAGE
    elif shown:
        message = OUTCOME_MESSAGES[proposal.status]
    else:
        message = SECRET_OUTCOME_MESSAGES.get(proposal.status, OUTCOME_MESSAGES[proposal.status])
    events.notify(
        session,
        _told(session, proposal.cluster_id),
        "governance.closed",
        message,
        now=now,
        params=params,
        link=f"/agreement/proposals/{proposal_id}",
    )
    try:
        session.commit()
    except IntegrityError:  # a version was published at the same instant
        session.rollback()
        return False  # still open: the next sweep closes it as stale
    return True


SUPERSEDED_MESSAGE = N_(
    "The proposed change to the agreement was closed without effect: it was proposed on "
    "version %(based_on)d, and version %(current)d was published while members voted, so "
    "its terms would undo the newer version. Propose it again on top of version "
    "%(current)d."
)

OUTCOME_MESSAGES = {
    ProposalStatus.CARRIED.value: N_(
        "The proposed change to the agreement was carried (%(yes)d for, %(no)d "
        "against, of %(participants)d members). Version %(version)d is published: accept it "
        "to keep taking part. A business that voted against may leave without the notice "
        "period for 30 days."
    ),
    ProposalStatus.REJECTED.value: N_(
        "The proposed change to the agreement was not carried (%(yes)d for, %(no)d "
        "against, of %(participants)d members). The agreement stays as it is."
    ),
    ProposalStatus.STALE.value: N_(
        "The proposed change to the agreement was carried, but its terms can no longer be "
        "published (for example its sunset date has passed). Propose it again with new "
        "terms."
    ),
}


#: The outcome where secret votes are too few to count aloud (`counts_may_be_shown`).
SECRET_OUTCOME_MESSAGES = {
    ProposalStatus.CARRIED.value: N_(
        "The proposed change to the agreement was carried (%(turnout)d of "
        "%(participants)d members voted; the votes are secret). Version %(version)d is "
        "published: accept it to keep taking part. A business that voted against may "
        "leave without the notice period for 30 days."
    ),
    ProposalStatus.REJECTED.value: N_(
        "The proposed change to the agreement was not carried (%(turnout)d of "
        "%(participants)d members voted; the votes are secret). The agreement stays as "
        "it is."
    ),
}


# -- what a viewer sees --------------------------------------------------------------------


@dataclass(frozen=True)
class Ballot:
    member_name: str
    in_favour: bool
    cast_at: datetime


@dataclass(frozen=True)
class ProposalView:
    """A proposal as one viewer may read it: counts for all; who voted how only when the
    votes are open (or, with secret votes, only the viewer's own business's vote)."""

    proposal: AgreementProposal
    terms: AgreementTerms
    proposer: str
    votes_cast: int
    #: Votes that count: all cast while open, those counted once closed.
    turnout: int
    votes_for: int | None  # while open with secret votes: None (no running tally)
    votes_against: int | None
    ballots: tuple[Ballot, ...]
    my_vote: bool | None  # the viewer's business's vote, None if none
    may_vote: bool


def list_proposals(session: Session, viewer: User) -> list[AgreementProposal]:
    """Every proposal of the viewer's cluster, newest first: the record of decisions."""
    return list(
        session.exec(
            select(AgreementProposal)
            .where(AgreementProposal.cluster_id == viewer.cluster_id)
            .order_by(col(AgreementProposal.id).desc())
        )
    )


def proposal_view(
    session: Session, viewer: User, proposal: AgreementProposal, now: datetime
) -> ProposalView:
    """The barrier for votes: this builds every page's and notice's view of a proposal."""
    if proposal.cluster_id != viewer.cluster_id:
        raise not_found()
    rows = list(
        session.exec(
            select(ProposalVote, Member.name)
            .join(Member, col(Member.id) == ProposalVote.member_id)
            .where(ProposalVote.proposal_id == proposal.id)
            .order_by(Member.name)
        )
    )
    mine = next(
        (
            v.in_favour
            for v, _n in rows
            if v.member_id == viewer.member_id and viewer.member_id is not None
        ),
        None,
    )
    is_open = proposal.status == ProposalStatus.OPEN.value
    if is_open:
        shown_for = None if proposal.secret_votes else sum(1 for v, _n in rows if v.in_favour)
        shown_against = None if proposal.secret_votes else len(rows) - (shown_for or 0)
    elif counts_may_be_shown(
        proposal.secret_votes,
        proposal.votes_for,
        proposal.votes_against,
        aggregate_min_group(session, proposal.cluster_id),
    ):
        shown_for, shown_against = proposal.votes_for, proposal.votes_against
    else:
        shown_for = shown_against = None
    ballots = (
        ()
        if proposal.secret_votes
        else tuple(Ballot(name, vote.in_favour, vote.cast_at) for vote, name in rows)
    )
    proposer = session.get(User, proposal.proposed_by_id)
    business = (
        session.get(Member, proposal.proposed_by_member_id)
        if proposal.proposed_by_member_id
        else None
    )
    may_vote = (
        is_open
        and proposal.deadline > now
        and mine is None
        and viewer.role == Role.OWNER
        and viewer.member_id is not None
        and viewer.member_id
        in participating_member_ids(session, viewer.cluster_id, now, proposal.based_on_version)
    )
    return ProposalView(
        proposal=proposal,
        terms=terms_from_json(proposal.terms),
        proposer=business.name if business else (proposer.name if proposer else ""),
        votes_cast=len(rows),
        turnout=len(rows) if is_open else (proposal.votes_for or 0) + (proposal.votes_against or 0),
        votes_for=shown_for,
        votes_against=shown_against,
        ballots=ballots,
        my_vote=mine,
        may_vote=may_vote,
    )
