"""Decisions through the API: a script proposes only the terms it changes, owners vote
once for their business, and a caller reads a vote exactly as the decisions page shows
it (open ballots by name, secret ones as counts only, a rival nothing)."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, func, select

from marketplace.clusters import agreements
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import AgreementProposal, ProposalVote
from marketplace.db import utcnow
from tests.api.conftest import bearer
from tests.conftest import NOW, World, terms


def _proposals(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(AgreementProposal)).one()


def test_a_script_proposes_only_what_changes_and_the_rest_stays_as_in_force(
    client: FlaskClient, session: Session, world: World
) -> None:
    current = agreements.agreement_in_force(session, world.cluster.id)  # type: ignore[arg-type]
    assert current is not None
    made = client.post("/api/v1/agreement/proposals", headers=bearer(session, world.coordinator),
                       json={"reason": "Reward hand-offs.", "voting_days": 5,
                             "changes": {"referral_fee_bp": 700,
                                         "targets": {"jobs_handed_over": 8}}})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["status"] == "open" and body["based_on_version"] == current.version
    assert body["terms"]["referral_fee_bp"] == 700
    assert body["terms"]["targets"] == {"jobs_handed_over": 8}
    assert body["terms"]["purpose"] == current.purpose
    assert body["terms"]["information_rules"] == current.information_rules
    assert body["may_vote"] is False  # the coordinator has no business to vote for


def test_a_refused_proposal_names_its_field_and_stores_nothing(
    client: FlaskClient, session: Session, world: World
) -> None:
    before = _proposals(session)
    for change, field in (({"exit_notice_days": 400}, "exit_notice_days"),
                          ({"targets": {"customers_poached": 3}}, "targets"),
                          ({"dispute_window_days": 0}, "dispute_window_days")):
        refused = client.post("/api/v1/agreement/proposals",
                              headers=bearer(session, world.coordinator),
                              json={"reason": "Why not.", "voting_days": 5, "changes": change})
        assert refused.status_code == 422, refused.get_json()
        assert field in refused.get_json()["error"]["fields"]
    short = client.post("/api/v1/agreement/proposals", headers=bearer(session, world.coordinator),
                        json={"reason": "Why not.", "voting_days": 1,
                              "changes": {"referral_fee_bp": 700}})
    assert short.status_code == 422 and "voting_days" in short.get_json()["error"]["fields"]
    assert _proposals(session) == before


def test_an_owner_votes_once_and_open_ballots_name_the_business(
    client: FlaskClient, session: Session, world: World
) -> None:
    proposal = governance.propose_change(session, world.coordinator, terms(referral_fee_bp=700),
                                         "Reward hand-offs.", 7, utcnow())
    owner_a = bearer(session, world.owner_a)
    voted = client.post(f"/api/v1/agreement/proposals/{proposal.id}/vote", headers=owner_a,
                        json={"in_favour": False})
    assert voted.status_code == 200, voted.get_json()
    assert voted.get_json()["my_vote"] is False and voted.get_json()["may_vote"] is False
    again = client.post(f"/api/v1/agreement/proposals/{proposal.id}/vote", headers=owner_a,
                        json={"in_favour": True})
    assert again.status_code == 409 and again.get_json()["error"]["message"]
    crew = client.post(f"/api/v1/agreement/proposals/{proposal.id}/vote",
                       headers=bearer(session, world.crew_a), json={"in_favour": True})
    assert crew.status_code == 403
    session.expire_all()
    votes = session.exec(select(ProposalVote).where(ProposalVote.proposal_id == proposal.id)).all()
    assert [v.in_favour for v in votes] == [False]
    read = client.get(f"/api/v1/agreement/proposals/{proposal.id}",
                      headers=bearer(session, world.owner_b)).get_json()
    assert [b["member_name"] for b in read["ballots"]] == ["Alpha Lawns"]
    assert (read["votes_for"], read["votes_against"], read["may_vote"]) == (0, 1, True)


def test_secret_votes_read_as_the_page_shows_them_and_a_rival_reads_nothing(
    client: FlaskClient, session: Session, world: World
) -> None:
    version = agreements.publish_agreement(session, world.coordinator, terms(secret_votes=True),
                                           NOW)
    for owner in (world.owner_a, world.owner_b):
        agreements.accept_agreement(session, owner, version.version, NOW)
    proposal = governance.propose_change(session, world.coordinator, terms(referral_fee_bp=700),
                                         "Reward hand-offs.", 7, utcnow())
    governance.cast_vote(session, world.owner_a, proposal.id, False, utcnow())
    for user in (world.owner_b, world.coordinator):
        read = client.get(f"/api/v1/agreement/proposals/{proposal.id}",
                          headers=bearer(session, user)).get_json()
        assert read["ballots"] == [] and read["votes_cast"] == 1
        assert (read["votes_for"], read["votes_against"]) == (None, None)
        assert "Alpha Lawns" not in str(read)
    governance.close_proposal(session, proposal.id, proposal.deadline + timedelta(minutes=1))
    closed = client.get(f"/api/v1/agreement/proposals/{proposal.id}",
                        headers=bearer(session, world.owner_b)).get_json()
    assert closed["status"] == "rejected"
    assert (closed["votes_for"], closed["votes_against"]) == (None, None)  # one side under k
    rival = bearer(session, world.other_owner)
    assert client.get(f"/api/v1/agreement/proposals/{proposal.id}",
                      headers=rival).status_code == 404
    assert client.get("/api/v1/agreement/proposals", headers=rival).get_json() == {
        "proposals": []}
