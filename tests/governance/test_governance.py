"""Decisions by the charter's rule (issue #20, part 3): who may propose, one vote per
business, the deadline, closing exactly once, counting by each rule, publishing a
carried change, the opponents' exit, and secret votes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from marketplace.clusters import agreements
from marketplace.clusters.agreements import Activity
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import (
    Agreement,
    AgreementProposal,
    Member,
    ProposalStatus,
    ProposalVote,
    User,
)
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, invite_member, invite_user, terms
from tests.races import at_once

DEADLINE = NOW + timedelta(days=7)
AFTER = DEADLINE + timedelta(minutes=1)


def recipients(session: Session, kind: str) -> list[int]:
    return sorted(
        n.user_id for n in session.exec(select(Notification).where(Notification.kind == kind))
    )


def charter(session: Session, world: World, **changes: object) -> Agreement:
    """Publish a version with these governance terms, accepted by A and B."""
    version = agreements.publish_agreement(
        session, world.coordinator, terms(purpose="Charter.", **changes), NOW
    )
    for owner in (world.owner_a, world.owner_b):
        agreements.accept_agreement(session, owner, version.version, NOW)
    return version


def third_member(session: Session, world: World) -> User:
    owner = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None
    agreements.accept_agreement(session, owner, current.version, NOW)
    return owner


def propose(session: Session, actor: User, **changes: object) -> AgreementProposal:
    new = terms(purpose="Share overflow work, and machines.", referral_fee_bp=700, **changes)
    return governance.propose_change(session, actor, new, "Fees should reward hand-offs.", 7, NOW)


# -- proposing ---------------------------------------------------------------------------


def test_the_coordinator_proposes_and_every_owner_is_told(session: Session, world: World) -> None:
    proposal = propose(session, world.coordinator)
    assert proposal.status == ProposalStatus.OPEN
    assert proposal.deadline == DEADLINE
    assert proposal.decision_rule == "majority" and proposal.secret_votes is False
    assert recipients(session, "governance.proposed") == sorted(
        [world.coordinator.id, world.owner_a.id, world.owner_b.id]
    )  # crew do not vote


def test_members_propose_only_where_the_charter_allows(session: Session, world: World) -> None:
    with pytest.raises(Forbidden):
        propose(session, world.owner_a)
    charter(session, world, members_may_propose=True)
    assert propose(session, world.owner_a).proposed_by_member_id == world.member_a_id
    with pytest.raises(Forbidden):
        propose(session, world.crew_a, exit_notice_days=10)
    with pytest.raises(Forbidden):  # another cluster's owner proposes in its own only
        propose(session, world.other_owner)


@pytest.mark.parametrize("days", [2, 31, -1])
def test_the_deadline_is_three_to_thirty_days(session: Session, world: World, days: int) -> None:
    with pytest.raises(ValidationError) as refused:
        governance.propose_change(
            session, world.coordinator, terms(referral_fee_bp=700), "Why not.", days, NOW
        )
    assert "voting_days" in refused.value.fields
    assert session.exec(select(AgreementProposal)).first() is None


def test_a_proposal_needs_a_reason_and_changed_valid_terms(session: Session, world: World) -> None:
    with pytest.raises(ValidationError) as refused:
        governance.propose_change(
            session, world.coordinator, terms(referral_fee_bp=700), "  ", 7, NOW
        )
    assert "reason" in refused.value.fields
    with pytest.raises(ValidationError):  # the terms in force: nothing to vote on
        governance.propose_change(session, world.coordinator, terms(), "Same.", 7, NOW)
    with pytest.raises(ValidationError):
        governance.propose_change(
            session, world.coordinator, terms(decision_rule="loudest"), "Why not.", 7, NOW
        )


# -- voting ------------------------------------------------------------------------------


def test_one_vote_per_business_and_the_first_stands(session: Session, world: World) -> None:
    proposal = propose(session, world.coordinator)
    co_owner = invite_user(session, world.owner_a, "second@alpha.test", role="owner")
    governance.cast_vote(session, world.owner_a, proposal.id, True, NOW)
    for voter, choice in ((world.owner_a, False), (co_owner, False), (world.owner_a, True)):
        with pytest.raises(Conflict) as refused:
            governance.cast_vote(session, voter, proposal.id, choice, NOW)
        assert refused.value.code == "already_voted"
    votes = list(session.exec(select(ProposalVote)))
    assert [(v.member_id, v.in_favour) for v in votes] == [(world.member_a_id, True)]


def test_crew_coordinators_and_rivals_do_not_vote(session: Session, world: World) -> None:
    proposal = propose(session, world.coordinator)
    for voter in (world.crew_a, world.coordinator):
        with pytest.raises(Forbidden):
            governance.cast_vote(session, voter, proposal.id, True, NOW)
    with pytest.raises(Exception) as refused:
        governance.cast_vote(session, world.other_owner, proposal.id, True, NOW)
    assert getattr(refused.value, "status", None) == 404
    assert session.exec(select(ProposalVote)).first() is None


def test_a_vote_after_the_deadline_is_refused_with_what_to_do(
    session: Session, world: World
) -> None:
    proposal = propose(session, world.coordinator)
    with pytest.raises(Conflict) as refused:
        governance.cast_vote(session, world.owner_a, proposal.id, True, DEADLINE)
    assert refused.value.code == "voting_closed"
    assert "propose a new change" in refused.value.message
    assert refused.value.params["deadline"] == "2026-06-08 11:00"  # Toronto's clock
    assert session.exec(select(ProposalVote)).first() is None


# -- closing -----------------------------------------------------------------------------


def test_a_carried_change_is_published_and_must_be_accepted_again(
    session: Session, world: World
) -> None:
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, True, NOW)
    governance.cast_vote(session, world.owner_b, proposal.id, True, NOW)
    assert governance.close_due_proposals(session, DEADLINE - timedelta(seconds=1)) == 0
    assert governance.close_due_proposals(session, AFTER) == 1
    assert governance.close_due_proposals(session, AFTER) == 0  # a rerun closes nothing
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.CARRIED
    assert (closed.votes_for, closed.votes_against, closed.participants) == (2, 0, 2)
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == closed.published_version == 2
    assert current.referral_fee_bp == 700 and current.created_by_id == world.coordinator.id
    member_a = session.get(Member, world.member_a_id)
    assert member_a is not None
    refusal = agreements.participation_refusal(session, member_a, Activity.OVERFLOW_JOBS, AFTER)
    assert refusal is not None and refusal.code == "agreement_not_accepted"
    assert recipients(session, "governance.closed") == sorted(
        [world.coordinator.id, world.owner_a.id, world.owner_b.id]
    )


def test_a_change_without_enough_votes_is_rejected_and_nothing_is_published(
    session: Session, world: World
) -> None:
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, True, NOW)
    # B does not vote: one of two participating members is not more than half.
    assert governance.close_proposal(session, proposal.id, AFTER) is True
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.REJECTED
    assert (closed.votes_for, closed.votes_against, closed.participants) == (1, 0, 2)
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == 1


def test_the_rule_of_the_version_in_force_when_proposed_counts(
    session: Session, world: World
) -> None:
    charter(session, world, decision_rule="unanimity")
    third_member(session, world)
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, True, NOW)
    governance.cast_vote(session, world.owner_b, proposal.id, True, NOW)
    assert governance.close_proposal(session, proposal.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.REJECTED  # 2 of 3


def test_members_that_left_before_closing_are_not_counted(session: Session, world: World) -> None:
    charter(session, world, exit_notice_days=0)
    gamma = third_member(session, world)
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, True, NOW)
    governance.cast_vote(session, gamma, proposal.id, False, NOW)
    assert gamma.member_id is not None
    agreements.give_exit_notice(session, gamma, gamma.member_id, NOW + timedelta(days=1))
    assert governance.close_proposal(session, proposal.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None
    assert (closed.votes_for, closed.votes_against, closed.participants) == (1, 0, 2)
    assert closed.status == ProposalStatus.REJECTED  # 1 of 2 is not more than half


def test_a_version_published_during_a_vote_does_not_drop_members_from_it(
    session: Session, world: World
) -> None:
    """P1 and P2 open together; P1 carries (version 2) and only A re-accepts: B, which
    voted against P2, still counts at P2's closing (it accepted P2's version)."""
    first = propose(session, world.coordinator)
    second = governance.propose_change(
        session,
        world.coordinator,
        terms(purpose="Machines only.", referral_fee_bp=900),
        "Another idea.",
        7,
        NOW,
    )
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, first.id, True, NOW)
    governance.cast_vote(session, world.owner_a, second.id, True, NOW)
    governance.cast_vote(session, world.owner_b, second.id, False, NOW)
    assert governance.close_proposal(session, first.id, AFTER)
    agreements.accept_agreement(session, world.owner_a, 2, AFTER)
    assert governance.close_proposal(session, second.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, second.id)
    assert closed is not None
    assert (closed.votes_for, closed.votes_against, closed.participants) == (1, 1, 2)
    assert closed.status != ProposalStatus.CARRIED
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == 2


def test_a_proposal_overtaken_by_a_newer_version_closes_stale_and_reverts_nothing(
    session: Session, world: World
) -> None:
    """P2 is carried by its votes, but P1 published version 2 (a higher referral fee)
    after P2 was proposed: P2 must not publish its own whole terms over version 2."""
    first = propose(session, world.coordinator)
    second = governance.propose_change(
        session,
        world.coordinator,
        terms(purpose="Machines only.", platform_fee_bp=200),
        "Another idea.",
        7,
        NOW,
    )
    for proposal in (first, second):
        for owner in (world.owner_a, world.owner_b):
            governance.cast_vote(session, owner, proposal.id, True, NOW)
    assert governance.close_proposal(session, first.id, AFTER)
    assert governance.close_proposal(session, second.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, second.id)
    assert closed is not None and closed.status == ProposalStatus.STALE
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == 2 and current.referral_fee_bp == 700
    told = session.exec(
        select(Notification)
        .where(Notification.kind == "governance.closed", Notification.user_id == world.owner_b.id)
        .order_by(col(Notification.id))
    ).all()
    assert told[-1].params["based_on"] == 1 and told[-1].params["current"] == 2
    assert "was published while members voted" in told[-1].message


def test_the_editor_does_not_publish_while_a_proposal_is_open(
    session: Session, world: World
) -> None:
    proposal = propose(session, world.coordinator)
    with pytest.raises(Conflict) as refused:
        agreements.publish_agreement(
            session, world.coordinator, terms(purpose="Something else."), NOW
        )
    assert refused.value.code == "proposal_open" and refused.value.status == 409
    assert refused.value.params["proposal"] == proposal.id
    assert governance.close_proposal(session, proposal.id, AFTER)
    agreements.publish_agreement(
        session, world.coordinator, terms(purpose="Something else."), AFTER
    )  # after the outcome, the editor publishes again


def test_a_carried_change_whose_terms_expired_is_kept_as_stale(
    session: Session, world: World
) -> None:
    proposal = governance.propose_change(
        session,
        world.coordinator,
        terms(sunset_on=(NOW + timedelta(days=5)).date()),
        "A short season.",
        3,
        NOW,
    )
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, proposal.id, True, NOW)
    assert governance.close_proposal(session, proposal.id, NOW + timedelta(days=10))
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.STALE
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == 1


CLOSERS = 6


def test_simultaneous_closers_close_once(app: Flask, session: Session, world: World) -> None:
    """Several schedulers (threads with their own connections) close the same proposal:
    on PostgreSQL the conditional UPDATE lets one through; on SQLite the one writer."""
    proposal = propose(session, world.coordinator)
    proposal_id = proposal.id
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, proposal_id, True, NOW)
    results = at_once(app.extensions["engine"], CLOSERS,
                      lambda own: governance.close_proposal(own, proposal_id, AFTER))
    assert sorted(results, key=repr) == [False] * (CLOSERS - 1) + [True]
    session.expire_all()
    versions = list(
        session.exec(
            select(Agreement.version)
            .where(Agreement.cluster_id == world.cluster.id)
            .order_by(col(Agreement.version))
        )
    )
    assert versions == [1, 2]
    assert len(recipients(session, "governance.closed")) == 3  # told once each


# -- counting ----------------------------------------------------------------------------


@given(ballots=st.lists(st.booleans(), max_size=60), abstaining=st.integers(0, 20))
def test_counting_follows_each_rule(ballots: list[bool], abstaining: int) -> None:
    """Random vote sets (True: for) among participating members, some not voting."""
    participants = len(ballots) + abstaining
    votes_for = sum(ballots)
    majority = governance.carried("majority", votes_for, participants)
    two_thirds = governance.carried("two_thirds", votes_for, participants)
    unanimity = governance.carried("unanimity", votes_for, participants)
    assert majority == (votes_for > participants / 2 and participants > 0)
    assert two_thirds == (votes_for >= participants * 2 / 3 and votes_for > 0)
    assert unanimity == (votes_for == participants > 0)
    # Each rule asks at least as much as the one before it.
    assert not unanimity or two_thirds
    assert not two_thirds or majority or participants == 0
    # One more vote for never turns carried into not carried.
    if votes_for < participants:
        for rule in agreements.DECISION_RULES:
            assert not governance.carried(rule, votes_for, participants) or governance.carried(
                rule, votes_for + 1, participants
            )


# -- the opponents' exit -----------------------------------------------------------------


def _two_for_gamma_against(session: Session, world: World) -> tuple[User, AgreementProposal]:
    """A third member, Gamma, and a proposal that A and B vote for and Gamma against
    (open still: each test closes it when its story needs)."""
    gamma = third_member(session, world)
    proposal = propose(session, world.coordinator)
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, proposal.id, True, NOW)
    governance.cast_vote(session, gamma, proposal.id, False, NOW)
    return gamma, proposal


def test_opponents_of_a_carried_change_leave_at_once(session: Session, world: World) -> None:
    gamma, proposal = _two_for_gamma_against(session, world)
    assert governance.close_proposal(session, proposal.id, AFTER)
    assert gamma.member_id is not None
    leaving = agreements.give_exit_notice(
        session, gamma, gamma.member_id, AFTER + timedelta(days=2), under_vote=True
    )
    assert leaving.exit_effective_at == AFTER + timedelta(days=2)  # no notice period
    with pytest.raises(Forbidden):  # a supporter has no such right
        agreements.give_exit_notice(
            session, world.owner_a, world.member_a_id, AFTER, under_vote=True
        )
    supporter = agreements.give_exit_notice(
        session, world.owner_a, world.member_a_id, AFTER + timedelta(days=2)
    )
    assert supporter.exit_effective_at == AFTER + timedelta(days=32)  # 30 days' notice


def test_the_opponents_window_closes_after_thirty_days(session: Session, world: World) -> None:
    gamma, proposal = _two_for_gamma_against(session, world)
    assert governance.close_proposal(session, proposal.id, AFTER)
    assert gamma.member_id is not None
    late = AFTER + agreements.OPPONENT_EXIT_WINDOW + timedelta(days=1)
    leaving = agreements.give_exit_notice(session, gamma, gamma.member_id, late)
    assert leaving.exit_effective_at == late + timedelta(days=30)


def test_an_opponent_chooses_to_leave_now_and_may_cut_a_notice_already_given(
    session: Session, world: World
) -> None:
    gamma, proposal = _two_for_gamma_against(session, world)
    assert gamma.member_id is not None
    # Notice given before the outcome: the notice period runs...
    noticed = agreements.give_exit_notice(session, gamma, gamma.member_id, NOW)
    assert noticed.exit_effective_at == NOW + timedelta(days=30)
    assert governance.close_proposal(session, proposal.id, AFTER)
    # ...the ordinary button again says what to do, and keeps the period.
    with pytest.raises(Conflict) as again:
        agreements.give_exit_notice(session, gamma, gamma.member_id, AFTER)
    assert again.value.code == "exit_already_noticed" and "under the vote" in again.value.message
    # Leaving under the vote brings the exit forward to now.
    left = agreements.give_exit_notice(session, gamma, gamma.member_id, AFTER, under_vote=True)
    assert left.exit_effective_at == AFTER


def test_an_opponent_giving_ordinary_notice_keeps_the_notice_period(
    session: Session, world: World
) -> None:
    gamma, proposal = _two_for_gamma_against(session, world)
    assert governance.close_proposal(session, proposal.id, AFTER)
    assert gamma.member_id is not None
    noticed = agreements.give_exit_notice(session, gamma, gamma.member_id, AFTER)
    assert noticed.exit_effective_at == AFTER + timedelta(days=30)


def test_a_vote_that_was_not_counted_gives_no_exit_without_notice(
    session: Session, world: World
) -> None:
    gamma, proposal = _two_for_gamma_against(session, world)
    gamma_member = session.get(Member, gamma.member_id)
    assert gamma_member is not None
    gamma_member.suspended = True  # suspended at the closing: its vote does not count
    session.add(gamma_member)
    session.commit()
    assert governance.close_proposal(session, proposal.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.CARRIED
    assert (closed.votes_for, closed.votes_against) == (2, 0)
    gamma_member = session.get(Member, gamma.member_id)
    assert gamma_member is not None
    gamma_member.suspended = False
    session.add(gamma_member)
    session.commit()
    assert gamma.member_id is not None
    assert not agreements.voted_against_carried_change(session, gamma.member_id, AFTER)
    with pytest.raises(Forbidden):
        agreements.give_exit_notice(session, gamma, gamma.member_id, AFTER, under_vote=True)


# -- secret and open votes ---------------------------------------------------------------


def test_secret_votes_show_members_only_the_counts(session: Session, world: World) -> None:
    charter(session, world, secret_votes=True)
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, False, NOW)
    for viewer in (world.owner_b, world.crew_a, world.coordinator):
        seen = governance.proposal_view(session, viewer, proposal, NOW)
        assert seen.ballots == () and seen.votes_for is None and seen.votes_against is None
        assert seen.votes_cast == 1
    assert governance.proposal_view(session, world.owner_b, proposal, NOW).my_vote is None
    assert governance.proposal_view(session, world.crew_a, proposal, NOW).my_vote is False
    governance.cast_vote(session, world.owner_b, proposal.id, True, NOW)
    assert governance.close_proposal(session, proposal.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None
    seen = governance.proposal_view(session, world.owner_b, closed, AFTER)
    # 1 for and 1 against are fewer than k = 3 each: the counts would name the votes.
    assert (seen.votes_for, seen.votes_against, seen.ballots) == (None, None, ())
    assert seen.turnout == 2
    told = session.exec(select(Notification).where(Notification.kind == "governance.closed")).all()
    assert told and all("yes" not in n.params and "no" not in n.params for n in told)
    assert all("votes are secret" in n.message and "for," not in n.message for n in told)


def test_secret_counts_are_shown_when_each_side_hides_k_members(
    session: Session, world: World
) -> None:
    charter(session, world, secret_votes=True, aggregate_min_group=2)
    proposal = propose(session, world.coordinator, secret_votes=True, aggregate_min_group=2)
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, proposal.id, True, NOW)
    assert governance.close_proposal(session, proposal.id, AFTER)
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None
    seen = governance.proposal_view(session, world.coordinator, closed, AFTER)
    assert (seen.votes_for, seen.votes_against) == (2, 0)


def test_open_votes_name_who_voted_how(session: Session, world: World) -> None:
    proposal = propose(session, world.coordinator)
    governance.cast_vote(session, world.owner_a, proposal.id, False, NOW)
    seen = governance.proposal_view(session, world.owner_b, proposal, NOW)
    assert [(b.member_name, b.in_favour) for b in seen.ballots] == [("Alpha Lawns", False)]
    assert (seen.votes_for, seen.votes_against) == (0, 1)
    assert seen.may_vote is True


# -- the scheduler -------------------------------------------------------------------------


def test_the_scheduler_closes_due_proposals(session: Session, world: World) -> None:
    from marketplace.scheduling.tasks import TASKS

    [task] = [t for t in TASKS if t.id == "clusters.close_due_proposals"]
    proposal = propose(session, world.coordinator)
    assert task.run(session, NOW) == 0
    assert task.run(session, AFTER) == 1
    assert task.run(session, AFTER) == 0
    session.expire_all()
    closed = session.get(AgreementProposal, proposal.id)
    assert closed is not None and closed.status == ProposalStatus.REJECTED
    assert closed.closed_at == AFTER


def test_two_owners_of_one_business_voting_at_once_leave_one_vote(
    app: Flask, session: Session, world: World
) -> None:
    """The unique key on (proposal, member) settles it, whichever commits first."""
    proposal = propose(session, world.coordinator)
    proposal_id = proposal.id
    co_owner = invite_user(session, world.owner_a, "second@alpha.test", role="owner")
    engine = app.extensions["engine"]
    barrier = threading.Barrier(2, timeout=30)
    results: list[str] = []
    lock = threading.Lock()

    def vote(voter_id: int | None, in_favour: bool) -> None:
        with Session(engine, expire_on_commit=False) as own:
            voter = own.get(User, voter_id)
            assert voter is not None
            own.commit()  # SQLite: hold no write lock while waiting for the other voter
            barrier.wait()
            try:
                governance.cast_vote(own, voter, proposal_id, in_favour, NOW)
                outcome = "voted"
            except Conflict as refused:
                outcome = refused.code
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                outcome = repr(error)
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=vote, args=(world.owner_a.id, True)),
        threading.Thread(target=vote, args=(co_owner.id, False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == ["already_voted", "voted"]
    session.expire_all()
    assert len(list(session.exec(select(ProposalVote)))) == 1


# -- refusals say the true reason ---------------------------------------------------------


def test_refusals_to_propose_and_vote_say_the_true_reason(session: Session, world: World) -> None:
    charter(session, world, members_may_propose=True)
    with pytest.raises(Forbidden) as crew:
        propose(session, world.crew_a)
    assert crew.value.code == "owner_only" and "only the coordinator" not in crew.value.message
    proposal = propose(session, world.coordinator)
    member_b = session.get(Member, world.member_b_id)
    assert member_b is not None
    member_b.suspended = True
    session.add(member_b)
    session.commit()
    with pytest.raises(Forbidden) as suspended:
        governance.cast_vote(session, world.owner_b, proposal.id, True, NOW)
    assert suspended.value.code == "member_suspended"
    assert "accept" not in suspended.value.message
    with pytest.raises(Forbidden) as proposing:
        propose(session, world.owner_b, platform_fee_bp=300)
    assert proposing.value.code == "member_suspended"
    gamma = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    with pytest.raises(Forbidden) as unaccepted:
        governance.cast_vote(session, gamma, proposal.id, True, NOW)
    assert unaccepted.value.code == "not_participating"
    assert unaccepted.value.params["version"] == 2


def test_leaving_again_says_when_and_what_to_do(session: Session, world: World) -> None:
    agreements.give_exit_notice(session, world.owner_a, world.member_a_id, NOW)
    with pytest.raises(Conflict) as again:
        agreements.give_exit_notice(session, world.owner_a, world.member_a_id, NOW)
    assert again.value.code == "exit_already_noticed"
    assert again.value.params["date"].startswith((NOW + timedelta(days=30)).date().isoformat()[:8])
