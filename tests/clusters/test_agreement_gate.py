"""The agreement: versions, acceptance, and the participation gate every domain calls."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.agreements import Activity
from marketplace.clusters.models import AgreementAcceptance, Member
from marketplace.errors import Conflict, Forbidden, ValidationError
from tests.conftest import NOW, World, terms


def _member(session: Session, world: World) -> Member:
    member = session.get(Member, world.member_a_id)
    assert member is not None
    return member


def _refusal_code(session: Session, world: World, activity: Activity = Activity.OVERFLOW_JOBS,
                  when=NOW) -> str | None:
    refusal = agreements.participation_refusal(session, _member(session, world), activity, when)
    return refusal.code if refusal else None


def test_accepted_member_may_take_part(session: Session, world: World) -> None:
    for activity in Activity:
        assert _refusal_code(session, world, activity) is None


def test_new_version_requires_acceptance_again(session: Session, world: World) -> None:
    v2 = agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700), NOW)
    assert v2.version == 2
    assert _refusal_code(session, world) == "agreement_not_accepted"
    with pytest.raises(Forbidden) as refused:
        agreements.require_participation(session, _member(session, world),
                                         Activity.EQUIPMENT, NOW)
    assert refused.value.params == {"version": 2}
    agreements.accept_agreement(session, world.owner_a, 2, NOW)
    assert _refusal_code(session, world) is None


def test_accepting_an_old_version_is_refused(session: Session, world: World) -> None:
    agreements.publish_agreement(session, world.coordinator, terms(exit_notice_days=10), NOW)
    with pytest.raises(Conflict):
        agreements.accept_agreement(session, world.owner_a, 1, NOW)


def test_crew_cannot_accept_for_the_business(session: Session, world: World) -> None:
    with pytest.raises(Forbidden):
        agreements.accept_agreement(session, world.crew_a, 1, NOW)


def test_sunset_closes_the_gate(session: Session, world: World) -> None:
    # Sunset 2028-01-01 in America/Toronto: still open on the last evening there.
    from datetime import UTC, datetime

    last_evening = datetime(2028, 1, 1, 4, 59, tzinfo=UTC)  # 23:59 on Dec 31 in Toronto
    assert _refusal_code(session, world, when=last_evening) is None
    assert _refusal_code(session, world, when=last_evening + timedelta(minutes=1)) \
        == "agreement_sunset"


def test_exit_takes_effect_after_notice(session: Session, world: World) -> None:
    member = agreements.give_exit_notice(session, world.owner_a, world.member_a_id, NOW)
    assert member.exit_effective_at == NOW + timedelta(days=30)
    assert _refusal_code(session, world, when=NOW + timedelta(days=29)) is None
    assert _refusal_code(session, world, when=NOW + timedelta(days=30)) == "member_exited"
    with pytest.raises(Conflict):
        agreements.give_exit_notice(session, world.owner_a, world.member_a_id, NOW)


def test_scope_outside_agreement_is_refused(session: Session, world: World) -> None:
    agreements.publish_agreement(session, world.coordinator, terms(scope_equipment=False), NOW)
    agreements.accept_agreement(session, world.owner_a, 2, NOW)
    assert _refusal_code(session, world, Activity.EQUIPMENT) == "outside_agreement_scope"
    assert _refusal_code(session, world, Activity.OVERFLOW_JOBS) is None


def test_suspended_member_is_refused(session: Session, world: World) -> None:
    member = _member(session, world)
    member.suspended = True
    session.add(member)
    session.commit()
    assert _refusal_code(session, world) == "member_suspended"


@pytest.mark.parametrize("changes, field", [
    ({"purpose": "  "}, "purpose"),
    ({"sunset_on": date(2026, 6, 1)}, "sunset_on"),
    ({"referral_fee_bp": 10_001}, "referral_fee_bp"),
    ({"referral_fee_bp": 9_000, "platform_fee_bp": 1_001}, "platform_fee_bp"),
    ({"exit_notice_days": -1}, "exit_notice_days"),
    ({"scope_overflow_jobs": False, "scope_equipment": False, "scope_joint_bids": False},
     "scope"),
    ({"information_rules": ""}, "information_rules"),
])
def test_bad_terms_publish_nothing(session: Session, world: World, changes: dict,
                                   field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        agreements.publish_agreement(session, world.coordinator, terms(**changes), NOW)
    assert field in refused.value.fields
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.version == 1


def test_unchanged_terms_are_not_a_new_version(session: Session, world: World) -> None:
    with pytest.raises(ValidationError) as refused:
        agreements.publish_agreement(session, world.coordinator, terms(), NOW)
    assert refused.value.code == "agreement_unchanged"


def test_only_coordinator_publishes(session: Session, world: World) -> None:
    with pytest.raises(Forbidden):
        agreements.publish_agreement(session, world.owner_a, terms(referral_fee_bp=1), NOW)


def test_gate_page_tells_member_what_to_do(client, session: Session, world: World) -> None:
    from tests.conftest import login

    agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=600), NOW)
    login(client, world.owner_a)
    home = client.get("/").get_data(as_text=True)
    assert "has not accepted agreement version 2" in home
    page = client.get("/agreement").get_data(as_text=True)
    assert "Share overflow work fairly." in page and "Accept version 2" in page
    assert page.index("Purpose") < page.index("Scope")
    accepted = client.post("/agreement/accept", data={"version": "2", "confirm": "y"})
    assert accepted.status_code == 302
    assert "has not accepted" not in client.get("/").get_data(as_text=True)


# --- the facts a request's read of its person brings along (`remember_participation`)


def _remember_what_is_stored(session: Session, member: Member) -> None:
    """What the login read would bring along for `member`, read now."""
    current = agreements.agreement_in_force(session, member.cluster_id)
    acceptance = session.exec(select(AgreementAcceptance).where(
        AgreementAcceptance.agreement_id == current.id,
        AgreementAcceptance.member_id == member.id)).first() if current else None
    agreements.remember_participation(session, member.cluster_id, member, current,
                                      acceptance.id if acceptance else None)


def test_remembered_facts_answer_the_gate_without_asking_again(
        session: Session, world: World) -> None:
    from tests.statements import recorded

    member = _member(session, world)
    _remember_what_is_stored(session, member)
    with recorded(session.get_bind()) as seen:
        assert _refusal_code(session, world, Activity.EQUIPMENT) is None
    assert not [s for s in seen if "agreement" in s], seen


def test_a_new_version_published_after_the_read_is_not_missed(
        session: Session, world: World) -> None:
    member = _member(session, world)
    _remember_what_is_stored(session, member)  # version 1, accepted
    agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700), NOW)
    assert _refusal_code(session, world) == "agreement_not_accepted"


def test_an_acceptance_written_in_the_same_transaction_opens_the_gate(
        session: Session, world: World) -> None:
    v2 = agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700),
                                      NOW)
    member = _member(session, world)
    _remember_what_is_stored(session, member)  # version 2, not accepted
    assert _refusal_code(session, world) == "agreement_not_accepted"
    session.add(AgreementAcceptance(agreement_id=v2.id, member_id=member.id,
                                    user_id=world.owner_a.id, accepted_at=NOW))
    session.flush()  # not committed: the same transaction now holds the acceptance
    assert _refusal_code(session, world) is None
    session.rollback()
    assert _refusal_code(session, world) == "agreement_not_accepted"


def test_one_members_remembered_facts_are_not_anothers(session: Session, world: World) -> None:
    agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700), NOW)
    agreements.accept_agreement(session, world.owner_a, 2, NOW)
    _remember_what_is_stored(session, _member(session, world))  # A accepted version 2
    member_b = session.get(Member, world.member_b_id)
    assert member_b is not None
    refusal = agreements.participation_refusal(session, member_b, Activity.EQUIPMENT, NOW)
    assert refusal is not None and refusal.code == "agreement_not_accepted"
    assert _refusal_code(session, world, Activity.EQUIPMENT) is None


def test_an_acceptance_added_but_not_yet_flushed_opens_the_gate(
        session: Session, world: World) -> None:
    """The gate's own query would flush a pending change first; the remembered facts
    must not answer for a transaction that has one."""
    v2 = agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700),
                                      NOW)
    member = _member(session, world)
    _remember_what_is_stored(session, member)  # version 2, not accepted
    session.add(AgreementAcceptance(agreement_id=v2.id, member_id=member.id,
                                    user_id=world.owner_a.id, accepted_at=NOW))
    assert _refusal_code(session, world) is None


def test_facts_read_for_another_cluster_are_not_used(session: Session, world: World) -> None:
    member = _member(session, world)
    agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700), NOW)
    rival = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    agreements.remember_participation(session, world.other_owner.cluster_id, member, rival, 1)
    assert _refusal_code(session, world) == "agreement_not_accepted"
