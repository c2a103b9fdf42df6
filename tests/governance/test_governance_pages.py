"""The decision pages: propose a change, vote with one tap, the record, secret votes."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import AgreementProposal, Member, ProposalVote
from marketplace.db import utcnow
from tests.conftest import NOW, World, login, terms

PROPOSAL_FORM = {
    "reason": "Hand-offs deserve a bigger referral fee.",
    "voting_days": "5",
    "purpose": "Share overflow work fairly.",
    "scope_overflow_jobs": "y",
    "scope_equipment": "y",
    "scope_joint_bids": "y",
    "referral_fee_percent": "7",
    "platform_fee_percent": "1",
    "sunset_on": "2028-01-01",
    "exit_notice_days": "30",
    "information_rules": "No bid prices across the barrier.",
    "aggregate_min_group": "3",
    "decision_rule": "two_thirds",
}


def proposed(session: Session, world: World, secret: bool = False) -> AgreementProposal:
    if secret:
        version = agreements.publish_agreement(
            session, world.coordinator, terms(secret_votes=True), NOW
        )
        for owner in (world.owner_a, world.owner_b):
            agreements.accept_agreement(session, owner, version.version, NOW)
    return governance.propose_change(
        session, world.coordinator, terms(referral_fee_bp=700), "Reward hand-offs.", 7, utcnow()
    )


def test_the_coordinator_proposes_a_change_from_the_form(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.coordinator)
    page = client.get("/agreement/proposals/new")
    assert page.status_code == 200
    assert 'name="decision_rule"' in page.get_data(as_text=True)
    bad = client.post("/agreement/proposals/new", data={**PROPOSAL_FORM, "voting_days": "40"})
    assert bad.status_code == 422
    assert "between 3 and 30 days" in bad.get_data(as_text=True)
    assert session.exec(select(AgreementProposal)).first() is None
    done = client.post("/agreement/proposals/new", data=PROPOSAL_FORM)
    assert done.status_code == 302, done.get_data(as_text=True)
    session.rollback()  # a fresh read, after the app's commit
    proposal = session.exec(select(AgreementProposal)).one()
    assert proposal.terms["referral_fee_bp"] == 700
    assert proposal.terms["decision_rule"] == "two_thirds"
    assert done.headers["Location"].endswith(f"/agreement/proposals/{proposal.id}")
    listing = client.get("/agreement/proposals").get_data(as_text=True)
    assert "Hand-offs deserve a bigger referral fee." in listing


def test_an_owner_cannot_propose_under_a_coordinator_only_charter(
    client: FlaskClient, world: World
) -> None:
    login(client, world.owner_a)
    assert client.get("/agreement/proposals/new").status_code == 403
    assert client.post("/agreement/proposals/new", data=PROPOSAL_FORM).status_code == 403
    page = client.get("/agreement/proposals").get_data(as_text=True)
    assert "/agreement/proposals/new" not in page


def test_an_owner_votes_once_with_one_tap(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = proposed(session, world)
    login(client, world.owner_a)
    page = client.get(f"/agreement/proposals/{proposal.id}").get_data(as_text=True)
    assert 'value="for"' in page and 'value="against"' in page
    assert (
        client.post(f"/agreement/proposals/{proposal.id}/vote", data={"choice": "for"}).status_code
        == 302
    )
    again = client.post(f"/agreement/proposals/{proposal.id}/vote", data={"choice": "against"})
    assert again.status_code == 409
    assert "first vote stands" in again.get_data(as_text=True)
    assert [v.in_favour for v in session.exec(select(ProposalVote))] == [True]
    page = client.get(f"/agreement/proposals/{proposal.id}").get_data(as_text=True)
    assert "Your business voted for this change." in page and 'value="against"' not in page


def test_a_vote_after_the_deadline_is_refused(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = proposed(session, world)
    proposal.deadline = utcnow() - timedelta(minutes=1)
    session.add(proposal)
    session.commit()
    login(client, world.owner_a)
    late = client.post(f"/agreement/proposals/{proposal.id}/vote", data={"choice": "for"})
    assert late.status_code == 409
    assert "propose a new change" in late.get_data(as_text=True)
    assert session.exec(select(ProposalVote)).first() is None


def test_open_votes_name_voters_and_secret_ones_do_not(
    client: FlaskClient, session: Session, world: World
) -> None:
    shown = proposed(session, world)
    governance.cast_vote(session, world.owner_a, shown.id, False, utcnow())
    login(client, world.owner_b)
    assert "Alpha Lawns" in client.get(f"/agreement/proposals/{shown.id}").get_data(as_text=True)
    # The charter changes only once no proposal is open.
    assert governance.close_proposal(session, shown.id, shown.deadline + timedelta(minutes=1))
    hidden = proposed(session, world, secret=True)
    governance.cast_vote(session, world.owner_a, hidden.id, False, utcnow())
    for viewer in (world.owner_b, world.coordinator):
        login(client, viewer)
        page = client.get(f"/agreement/proposals/{hidden.id}").get_data(as_text=True)
        assert "Alpha Lawns" not in page
        assert "Votes are secret" in page and "1 member has voted" in page


def test_a_rival_cannot_see_our_proposals(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = proposed(session, world)
    login(client, world.other_owner)
    assert client.get(f"/agreement/proposals/{proposal.id}").status_code == 404
    assert (
        client.post(f"/agreement/proposals/{proposal.id}/vote", data={"choice": "for"}).status_code
        == 404
    )
    assert "Reward hand-offs." not in client.get("/agreement/proposals").get_data(as_text=True)


def test_the_editor_sets_the_decision_rule(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.other_coordinator)  # a charter no member has signed yet
    response = client.post(
        "/agreement/edit",
        data={
            "purpose": "Share overflow work fairly.",
            "scope_overflow_jobs": "y",
            "referral_fee_percent": "5",
            "platform_fee_percent": "1",
            "sunset_on": "2028-01-01",
            "exit_notice_days": "30",
            "information_rules": "No bid prices across the barrier.",
            "decision_rule": "unanimity",
            "members_may_propose": "y",
            "secret_votes": "y",
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    session.rollback()
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    assert (current.decision_rule, current.members_may_propose, current.secret_votes) == (
        "unanimity",
        True,
        True,
    )
    page = client.get("/agreement").get_data(as_text=True)
    assert "only if all participating members vote for it" in page
    assert "Member owners may propose changes." in page


def test_the_agreement_editor_answers_409_while_members_vote(
    client: FlaskClient, session: Session, world: World
) -> None:
    # A charter no member has signed yet, with a change put to the vote all the same.
    proposal = governance.propose_change(session, world.other_coordinator,
                                         terms(referral_fee_bp=700), "Reward hand-offs.", 7,
                                         utcnow())
    login(client, world.other_coordinator)
    response = client.post(
        "/agreement/edit",
        data={
            "purpose": "Share overflow work fairly, again.",
            "scope_overflow_jobs": "y",
            "referral_fee_percent": "2.5",
            "platform_fee_percent": "1",
            "sunset_on": "2030-01-01",
            "exit_notice_days": "60",
            "information_rules": "No prices across the barrier.",
        },
    )
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert f"proposal {proposal.id}" in text and "must wait for its outcome" in text
    session.rollback()
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None and current.version == 1


def test_leaving_now_under_the_vote_is_its_own_button(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = proposed(session, world)
    now = utcnow()
    governance.cast_vote(session, world.owner_a, proposal.id, True, now)
    governance.cast_vote(session, world.owner_b, proposal.id, False, now)
    governance.close_proposal(session, proposal.id, proposal.deadline + timedelta(minutes=1))
    # One of two for is not a majority: make it carried by A's vote alone (a test shortcut).
    session.rollback()
    proposal.status = "carried"
    proposal.closed_at = now - timedelta(minutes=1)
    session.add(proposal)
    session.commit()
    login(client, world.owner_a)
    assert "Leave now under the vote" not in client.get(f"/members/{world.member_a_id}").get_data(
        as_text=True
    )
    login(client, world.owner_b)
    page = client.get(f"/members/{world.member_b_id}").get_data(as_text=True)
    assert "Leave now under the vote" in page and "Give notice of exit" in page
    ordinary = client.post(f"/members/{world.member_b_id}/exit", data={"confirm": "y"})
    assert ordinary.status_code == 302
    session.rollback()
    member_b = session.get(Member, world.member_b_id)
    assert member_b is not None and member_b.exit_effective_at is not None
    assert member_b.exit_effective_at > utcnow() + timedelta(days=29)  # the notice applies
    page = client.get(f"/members/{world.member_b_id}").get_data(as_text=True)
    assert "Leave now under the vote" in page and "Give notice of exit" not in page
    now_ = client.post(
        f"/members/{world.member_b_id}/exit", data={"confirm": "y", "under_vote": "1"}
    )
    assert now_.status_code == 302
    session.rollback()
    member_b = session.get(Member, world.member_b_id)
    assert member_b is not None and member_b.exit_effective_at is not None
    assert member_b.exit_effective_at <= utcnow()


def test_two_secret_votes_show_no_counts_on_the_page(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = proposed(session, world, secret=True)
    now = utcnow()
    governance.cast_vote(session, world.owner_a, proposal.id, True, now)
    governance.cast_vote(session, world.owner_b, proposal.id, False, now)
    assert governance.close_proposal(session, proposal.id, proposal.deadline + timedelta(minutes=1))
    for viewer in (world.owner_a, world.coordinator):
        login(client, viewer)
        for path in (f"/agreement/proposals/{proposal.id}", "/agreement/proposals"):
            page = client.get(path).get_data(as_text=True)
            assert (
                "1 for, 1 against" not in page
                and " against" not in page.split("Not carried")[1][:80]
            )
            assert "2 members have voted" in page, path


def test_a_stale_proposal_is_not_shown_as_carried(
    client: FlaskClient, session: Session, world: World
) -> None:
    first = proposed(session, world)
    second = governance.propose_change(
        session, world.coordinator, terms(platform_fee_bp=300), "Another idea.", 7, utcnow()
    )
    now = utcnow()
    for owner in (world.owner_a, world.owner_b):
        governance.cast_vote(session, owner, first.id, True, now)
    after = first.deadline + timedelta(minutes=1)
    assert governance.close_proposal(session, first.id, after)
    assert governance.close_proposal(session, second.id, after)
    login(client, world.owner_a)
    page = client.get(f"/agreement/proposals/{second.id}").get_data(as_text=True)
    assert "Closed without effect" in page and "Carried, but" not in page
