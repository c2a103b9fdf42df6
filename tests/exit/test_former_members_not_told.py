"""A business that left keeps only its past statements (#20, clean exit): its people are
told nothing more of the cluster's business -- no proposal, no outcome -- and no longer
read a dispute, neither one they sat on the panel of nor one they were a party to; the
dispute's money still settles as decided."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.exit import service as exits
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import Member, User
from marketplace.disputes import service as disputes
from marketplace.disputes.models import DisputePanelist, MemberDispute
from marketplace.errors import NotFound
from marketplace.ledger.models import EntrySource, LedgerEntry
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, terms
from tests.disputes.conftest import DAMAGE
from tests.disputes.test_dispute_review_fixes import WHEN, _leave, _panel_dispute
from tests.governance.test_governance import charter, recipients, third_member
from tests.ledger.conftest import (  # noqa: F401 - fixtures the dispute tests use
    Ledger,
    co_owned,
    eq,
    jobs_world,
    lw,
)

LATER = WHEN + timedelta(hours=2)


def _dispute(session: Session, lw: Ledger) -> MemberDispute:  # noqa: F811
    """C disputes the damage fee it owes A and B; the panel is D (the one uninvolved)."""
    dispute = _panel_dispute(session, lw)
    assert set(session.exec(select(DisputePanelist.member_id))) == {lw.d}
    return dispute


# -- disputes --------------------------------------------------------------------------------


def test_a_panellist_whose_business_left_no_longer_reads_the_dispute(
        session: Session, lw: Ledger) -> None:  # noqa: F811
    dispute = _dispute(session, lw)
    assert dispute.id is not None
    assert disputes.may_read(session, lw.owner_d, dispute, WHEN)
    _leave(session, lw.d, WHEN + timedelta(hours=1))
    assert not disputes.may_read(session, lw.owner_d, dispute, LATER)
    assert disputes.list_disputes(session, lw.owner_d, LATER) == []
    with pytest.raises(NotFound):
        disputes.get_dispute(session, lw.owner_d, dispute.id, LATER)
    with pytest.raises(NotFound):  # nor may it still decide it
        disputes.decide(session, lw.owner_d, dispute.id, "cancel", None, None, "Old", LATER)
    assert disputes.may_read(session, lw.coordinator, dispute, LATER)


def test_a_party_whose_business_left_no_longer_reads_it_and_its_money_still_settles(
        session: Session, lw: Ledger, tmp_path: object) -> None:  # noqa: F811
    dispute = _dispute(session, lw)
    assert dispute.id is not None
    owner_b = lw.world.owner_b
    assert disputes.may_read_talk(session, owner_b, dispute, WHEN)
    _leave(session, lw.b, WHEN + timedelta(hours=1))
    assert not disputes.may_read(session, owner_b, dispute, LATER)
    assert not disputes.may_read_talk(session, owner_b, dispute, LATER)
    assert disputes.list_disputes(session, owner_b, LATER) == []
    with pytest.raises(NotFound):
        disputes.get_dispute(session, owner_b, dispute.id, LATER)
    with pytest.raises(NotFound):
        disputes.post_message(session, owner_b, dispute.id, "Still here?", None,
                              tmp_path, None, LATER)  # type: ignore[arg-type]
    assert [d.id for d in disputes.list_disputes(session, lw.owner_c, LATER)] == [dispute.id]
    decided = disputes.decide(session, lw.owner_d, dispute.id, "uphold", None, None,
                              "The damage is new", LATER)  # the panel, D, decides
    assert decided.status == "decided"
    settled = session.exec(select(LedgerEntry.payee_member_id, LedgerEntry.amount_minor).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    assert sorted(settled) == sorted([(lw.a, 6_001), (lw.b, 4_000)])  # B is paid as ever
    assert sum(amount for _payee, amount in settled) == DAMAGE


# -- governance ------------------------------------------------------------------------------


def _leaves(session: Session, gamma: User) -> int:
    """Gamma gives notice at once (the charter's 0 days) and its exit takes effect."""
    assert gamma.member_id is not None and gamma.id is not None
    agreements.give_exit_notice(session, gamma, gamma.member_id, NOW + timedelta(days=1))
    assert exits.take_due_exits(session, NOW + timedelta(days=1, minutes=5)) == 1
    return gamma.id


def test_a_business_that_left_is_not_told_of_a_new_proposal(
        session: Session, world: World) -> None:
    charter(session, world, exit_notice_days=0)
    gamma = _leaves(session, third_member(session, world))
    governance.propose_change(session, world.coordinator,
                              terms(purpose="Share overflow work, and machines.",
                                    referral_fee_bp=700),
                              "Fees should reward hand-offs.", 7, NOW + timedelta(days=2))
    told = recipients(session, "governance.proposed")
    assert gamma not in told
    assert told == sorted([world.coordinator.id, world.owner_a.id, world.owner_b.id])


def test_a_business_that_left_during_a_vote_is_not_told_its_outcome(
        session: Session, world: World) -> None:
    charter(session, world, exit_notice_days=0)
    gamma_owner = third_member(session, world)
    proposal = governance.propose_change(
        session, world.coordinator,
        terms(purpose="Share overflow work, and machines.", referral_fee_bp=700),
        "Fees should reward hand-offs.", 7, NOW)
    gamma = _leaves(session, gamma_owner)
    assert gamma in recipients(session, "governance.proposed")  # told while a member
    assert proposal.id is not None
    assert governance.close_proposal(session, proposal.id, proposal.deadline
                                     + timedelta(minutes=1))
    told = recipients(session, "governance.closed")
    assert gamma not in told
    assert told == sorted([world.coordinator.id, world.owner_a.id, world.owner_b.id])
    assert session.exec(select(Notification).where(
        Notification.user_id == gamma, Notification.kind == "governance.closed")).first() is None


def test_a_party_whose_exit_took_effect_hears_only_the_decision_on_its_money(
        session: Session, lw: Ledger) -> None:  # noqa: F811
    """It reads no message any more, but the decision moves its money, which its last
    statements (all it keeps) show: that, and only that, it is told."""
    dispute = _dispute(session, lw)
    assert dispute.id is not None
    owner_b = lw.world.owner_b
    b_id, a_id = owner_b.id, lw.world.owner_a.id
    agreements.give_exit_notice(session, owner_b, lw.b, WHEN)
    left = session.get(Member, lw.b)
    assert left is not None and left.exit_effective_at is not None
    after = left.exit_effective_at + timedelta(minutes=5)
    assert exits.take_due_exits(session, after) == 1
    disputes.post_message(session, lw.owner_c, dispute.id, "Photos attached", None,
                          Path("unused"), None, after)
    disputes.decide(session, lw.owner_d, dispute.id, "uphold", None, None, "New damage",
                    after)
    session.close()
    told_after = session.exec(select(Notification.message).where(
        Notification.user_id == b_id, Notification.created_at >= after,
        Notification.kind == "payment.member_dispute")).all()
    assert len(told_after) == 1 and "is decided:" in told_after[0]  # not the message
    assert session.exec(select(Notification.id).where(
        Notification.user_id == a_id, Notification.created_at >= after,
        Notification.kind == "payment.member_dispute")).all() != []
