"""Bid windows: posting rules, bids against the server clock, closing once, awards, joint bids."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.models import Member, User
from marketplace.errors import Conflict, Forbidden, ValidationError
from marketplace.jobs import bidding, service
from marketplace.jobs.models import (
    Bid,
    BidShare,
    BidStatus,
    ContractParty,
    JobContract,
    JobStatus,
    JobTrade,
    OverflowJob,
)
from marketplace.money import apply_basis_points
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, terms
from tests.jobs.conftest import (
    CLOSES_AT,
    ENDS_ON,
    STARTS_ON,
    add_partner,
    bid_window_draft,
    count,
    recipients,
)
from tests.races import at_once

Post = Callable[..., OverflowJob]


def offer(price: int = 1_100_000, **changes: Any) -> bidding.BidTerms:
    return bidding.BidTerms(**{"price_minor": price, "crew_size": 4,
                               "earliest_start": STARTS_ON, "note": "Can start Monday",
                               **changes})


@pytest.fixture
def gamma(session: Session, jobs_world: World) -> User:
    """A third member, eligible like B (leads the joint bids here)."""
    return add_partner(session, jobs_world, "Gamma Trees", "g@gamma.test")


# -- posting -----------------------------------------------------------------------------

@pytest.mark.parametrize("changes,field", [
    ({"closes_at": NOW + timedelta(minutes=14)}, "closes_at"),
    ({"closes_at": NOW + timedelta(days=14, minutes=1)}, "closes_at"),
    ({"closes_at": NOW - timedelta(hours=1)}, "closes_at"),
    ({"closes_at": None}, "closes_at"),
    ({"ends_on": STARTS_ON - timedelta(days=1)}, "ends_on"),
    ({"value_minor": 0}, "value"),
    ({"value_minor": -100}, "value"),
    ({"trades": ("mowing", "underwater_welding")}, "trades"),
    ({"trades": ()}, "trades"),
])
def test_invalid_job_is_refused_field_by_field(session: Session, jobs_world: World,
                                              changes: dict[str, Any], field: str) -> None:
    notes = count(session, Notification)
    with pytest.raises(ValidationError) as refused:
        service.post_job(session, jobs_world.owner_a, bid_window_draft(**changes), NOW)
    assert field in refused.value.fields
    session.rollback()
    assert count(session, OverflowJob) == 0
    assert count(session, JobTrade) == 0
    assert count(session, Notification) == notes


@pytest.mark.parametrize("window", [timedelta(minutes=15), timedelta(days=14)])
def test_window_limits_are_inclusive(session: Session, post: Post, window: timedelta) -> None:
    later = {"starts_on": STARTS_ON + timedelta(days=10), "ends_on": ENDS_ON + timedelta(days=10)}
    job = post(bid_window=True, closes_at=NOW + window, **later)  # closes before the start
    assert job.closes_at == NOW + window and job.status == JobStatus.OPEN


# -- bids --------------------------------------------------------------------------------

def test_place_bid_records_it_and_tells_the_poster(session: Session, jobs_world: World,
                                                  post: Post) -> None:
    job = post(bid_window=True)
    bid = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(), NOW)
    session.expire_all()
    stored = session.exec(select(Bid)).one()
    assert (stored.id, stored.member_id, stored.price_minor) == (bid.id, jobs_world.member_b_id,
                                                                1_100_000)
    assert stored.status == BidStatus.SUBMITTED and stored.submitted_at == NOW
    shares = session.exec(select(BidShare)).all()
    assert [(s.member_id, s.share_bp) for s in shares] == [(jobs_world.member_b_id, 10_000)]
    assert recipients(session, "bid.received") == [jobs_world.owner_a.id, jobs_world.crew_a.id]


def test_revising_a_bid_keeps_one_bid(session: Session, jobs_world: World, post: Post) -> None:
    job = post(bid_window=True)
    first = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(1_100_000), NOW)
    later = NOW + timedelta(hours=1)
    second = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(990_000), later)
    assert second.id == first.id
    session.expire_all()
    stored = session.exec(select(Bid)).one()
    assert stored.price_minor == 990_000 and stored.submitted_at == later
    assert count(session, BidShare) == 1


def test_bid_at_or_after_the_deadline_is_refused(session: Session, jobs_world: World,
                                                 post: Post) -> None:
    job = post(bid_window=True)
    notes = count(session, Notification)
    for delay in (timedelta(0), timedelta(seconds=1), timedelta(days=3)):
        with pytest.raises(Conflict) as refused:
            bidding.place_bid(session, jobs_world.owner_b, job.id, offer(), CLOSES_AT + delay)
        assert refused.value.code == "window_closed"
        session.rollback()
        assert count(session, Bid) == 0 and count(session, BidShare) == 0
        assert count(session, Notification) == notes


def test_bid_a_second_before_the_deadline_counts(session: Session, jobs_world: World,
                                                 post: Post) -> None:
    job = post(bid_window=True)
    bidding.place_bid(session, jobs_world.owner_b, job.id, offer(),
                      CLOSES_AT - timedelta(seconds=1))
    assert count(session, Bid) == 1


def test_invalid_bid_writes_nothing(session: Session, jobs_world: World, post: Post) -> None:
    job = post(bid_window=True)
    for bad, field in ((offer(0), "price"), (offer(-5), "price"),
                       (offer(crew_size=0), "crew_size")):
        with pytest.raises(ValidationError) as refused:
            bidding.place_bid(session, jobs_world.owner_b, job.id, bad, NOW)
        assert field in refused.value.fields
        session.rollback()
        assert count(session, Bid) == 0


def test_poster_and_hand_off_refuse_bids(session: Session, jobs_world: World,
                                         post: Post) -> None:
    job = post(bid_window=True)
    with pytest.raises(Forbidden) as own:
        bidding.place_bid(session, jobs_world.owner_a, job.id, offer(), NOW)
    assert own.value.code == "own_job"
    handoff = post()
    with pytest.raises(Conflict) as wrong_mode:
        bidding.place_bid(session, jobs_world.owner_b, handoff.id, offer(), NOW)
    assert wrong_mode.value.code == "not_bid_window"
    session.rollback()
    assert count(session, Bid) == 0


# -- closing the window ------------------------------------------------------------------

def test_close_due_windows_closes_each_window_once(session: Session, jobs_world: World,
                                                   post: Post) -> None:
    due = post(bid_window=True)
    later = post(bid_window=True, closes_at=CLOSES_AT + timedelta(days=1))
    handoff = post()
    bidding.place_bid(session, jobs_world.owner_b, due.id, offer(), NOW)
    assert bidding.close_due_windows(session, CLOSES_AT - timedelta(seconds=1)) == []
    assert bidding.close_due_windows(session, CLOSES_AT) == [due.id]
    assert bidding.close_due_windows(session, CLOSES_AT) == []
    session.expire_all()
    closed = session.get(OverflowJob, due.id)
    assert closed is not None and closed.status == JobStatus.WINDOW_CLOSED
    assert closed.window_closed_at == CLOSES_AT
    assert session.get(OverflowJob, later.id).status == JobStatus.OPEN  # type: ignore[union-attr]
    assert session.get(OverflowJob, handoff.id).status == JobStatus.OPEN  # type: ignore[union-attr]
    assert recipients(session, "window.closed") == sorted(
        [jobs_world.owner_a.id, jobs_world.crew_a.id, jobs_world.owner_b.id])
    assert bidding.close_due_windows(session, CLOSES_AT + timedelta(days=2)) == [later.id]


def test_close_window_before_the_deadline_does_nothing(session: Session, post: Post) -> None:
    job = post(bid_window=True)
    assert bidding.close_window(session, job.id, CLOSES_AT - timedelta(minutes=1)) is False
    session.expire_all()
    assert session.get(OverflowJob, job.id).status == JobStatus.OPEN  # type: ignore[union-attr]
    assert count(session, Notification) == len(recipients(session, "job.posted"))


CLOSERS = 8


def test_eight_simultaneous_closers_close_once(app: Flask, session: Session,
                                               jobs_world: World, gamma: User,
                                               post: Post) -> None:
    job = post(bid_window=True)
    job_id = job.id
    bidding.place_bid(session, jobs_world.owner_b, job_id, offer(), NOW)
    bidding.place_bid(session, gamma, job_id, offer(1_050_000), NOW)
    session.commit()
    results = at_once(app.extensions["engine"], CLOSERS,
                      lambda own: bidding.close_window(own, job_id, CLOSES_AT))
    assert sorted(results, key=repr) == [False] * (CLOSERS - 1) + [True]
    session.expire_all()
    expected = sorted([jobs_world.owner_a.id, jobs_world.crew_a.id, jobs_world.owner_b.id,
                       gamma.id])
    assert recipients(session, "window.closed") == expected  # one set, no duplicates


# -- award -------------------------------------------------------------------------------

def test_award_signs_a_contract_at_the_bid_price(session: Session, jobs_world: World,
                                                 gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    winning = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(1_111_110), NOW)
    bidding.place_bid(session, gamma, job.id, offer(999_999), NOW)
    assert bidding.close_window(session, job.id, CLOSES_AT)
    bidding.award_bid(session, jobs_world.owner_a, job.id, winning.id, CLOSES_AT)
    session.expire_all()
    contract = session.exec(select(JobContract)).one()
    assert contract.bid_id == winning.id and contract.job_id == job.id
    assert contract.value_minor == 1_111_110
    assert contract.referral_fee_minor == apply_basis_points(1_111_110, 500) == 55_556
    parties = session.exec(select(ContractParty)).all()
    assert [(p.member_id, p.share_bp) for p in parties] == [(jobs_world.member_b_id, 10_000)]
    awarded = session.get(OverflowJob, job.id)
    assert awarded is not None and awarded.status == JobStatus.AWARDED
    assert awarded.awarded_member_id == jobs_world.member_b_id
    assert recipients(session, "job.taken") == [gamma.id]  # the loser hears it is gone


def test_award_before_close_is_refused(session: Session, jobs_world: World,
                                       post: Post) -> None:
    job = post(bid_window=True)
    bid = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(), NOW)
    notes = count(session, Notification)
    with pytest.raises(Conflict) as refused:
        bidding.award_bid(session, jobs_world.owner_a, job.id, bid.id, NOW)
    assert refused.value.code == "not_awardable"
    session.rollback()
    assert count(session, JobContract) == 0 and count(session, ContractParty) == 0
    assert count(session, Notification) == notes
    assert session.get(OverflowJob, job.id).status == JobStatus.OPEN  # type: ignore[union-attr]


def test_award_is_for_the_poster_and_happens_once(session: Session, jobs_world: World,
                                                  gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(), NOW)
    other = bidding.place_bid(session, gamma, job.id, offer(), NOW)
    bidding.close_window(session, job.id, CLOSES_AT)
    with pytest.raises(Forbidden) as not_poster:
        bidding.award_bid(session, jobs_world.owner_b, job.id, bid.id, CLOSES_AT)
    assert not_poster.value.code == "poster_only"
    bidding.award_bid(session, jobs_world.owner_a, job.id, bid.id, CLOSES_AT)
    with pytest.raises(Conflict) as again:
        bidding.award_bid(session, jobs_world.owner_a, job.id, other.id, CLOSES_AT)
    assert again.value.code == "not_awardable"
    session.rollback()
    assert count(session, JobContract) == 1


# -- joint bids --------------------------------------------------------------------------

BAD_SHARES = [
    {"lead": 6_000, "b": 3_000},     # sums to 9000
    {"lead": 6_000, "b": 5_000},     # sums to 11000
    {"lead": 11_000, "b": -1_000},   # negative
    {"lead": 10_000, "b": 0},        # a partner with nothing
    {"lead": 10_000},                # nobody to bid with
    {"b": 10_000},                   # the lead left itself out
]


def test_joint_bid_shares_must_be_whole(session: Session, jobs_world: World, gamma: User,
                                        post: Post) -> None:
    job = post(bid_window=True)
    ids = {"lead": gamma.member_id, "b": jobs_world.member_b_id}
    for shares in BAD_SHARES:
        with pytest.raises(ValidationError) as refused:
            bidding.propose_joint_bid(session, gamma, job.id, offer(),
                                      {ids[k]: v for k, v in shares.items()}, NOW)
        assert "shares" in refused.value.fields, shares
        session.rollback()
        assert count(session, Bid) == 0 and count(session, BidShare) == 0, shares


def test_joint_bid_partner_must_be_eligible(session: Session, jobs_world: World,
                                            gamma: User, post: Post) -> None:
    job = post(bid_window=True, trades=("mowing", "tree_work"))
    with pytest.raises(Forbidden):
        bidding.propose_joint_bid(session, jobs_world.owner_b, job.id, offer(),
                                  {jobs_world.member_b_id: 5_000, gamma.member_id: 5_000}, NOW)
    session.rollback()
    assert count(session, Bid) == 0


def _joint(session: Session, world: World, gamma: User, job: OverflowJob) -> Bid:
    return bidding.propose_joint_bid(
        session, gamma, job.id, offer(2_000_001),
        {gamma.member_id: 6_000, world.member_b_id: 4_000}, NOW)  # type: ignore[dict-item]


def test_joint_bid_needs_every_partner_then_freezes(session: Session, jobs_world: World,
                                                    gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = _joint(session, jobs_world, gamma, job)
    assert recipients(session, "joint.invited") == [jobs_world.owner_b.id]
    with pytest.raises(Conflict) as early:
        bidding.submit_joint_bid(session, gamma, bid.id, NOW)
    assert early.value.code == "unconfirmed_shares"
    session.rollback()
    assert session.get(Bid, bid.id).status == BidStatus.DRAFT  # type: ignore[union-attr]
    assert recipients(session, "bid.received") == []

    bidding.confirm_joint_share(session, jobs_world.owner_b, bid.id, NOW)
    submitted = bidding.submit_joint_bid(session, gamma, bid.id, NOW + timedelta(minutes=5))
    assert submitted.status == BidStatus.SUBMITTED
    assert recipients(session, "bid.received") == [jobs_world.owner_a.id, jobs_world.crew_a.id]

    with pytest.raises(Conflict) as frozen:
        bidding.propose_joint_bid(session, gamma, job.id, offer(1_500_000),
                                  {gamma.member_id: 9_000, jobs_world.member_b_id: 1_000},
                                  NOW)  # type: ignore[dict-item]
    assert frozen.value.code == "bid_frozen"
    with pytest.raises(Conflict) as reconfirm:
        bidding.confirm_joint_share(session, jobs_world.owner_b, bid.id, NOW)
    assert reconfirm.value.code == "bid_frozen"
    session.rollback()
    session.expire_all()
    stored = session.get(Bid, bid.id)
    assert stored is not None and stored.price_minor == 2_000_001
    assert sorted((s.member_id, s.share_bp) for s in session.exec(select(BidShare))) == sorted(
        [(gamma.member_id, 6_000), (jobs_world.member_b_id, 4_000)])


def test_reproposing_a_draft_asks_partners_again(session: Session, jobs_world: World,
                                                 gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = _joint(session, jobs_world, gamma, job)
    bidding.confirm_joint_share(session, jobs_world.owner_b, bid.id, NOW)
    bidding.propose_joint_bid(session, gamma, job.id, offer(2_000_001),
                              {gamma.member_id: 7_000, jobs_world.member_b_id: 3_000},
                              NOW)  # type: ignore[dict-item]
    with pytest.raises(Conflict) as refused:
        bidding.submit_joint_bid(session, gamma, bid.id, NOW)
    assert refused.value.code == "unconfirmed_shares"


def test_only_invited_partners_confirm_and_only_the_lead_submits(
        session: Session, jobs_world: World, gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = _joint(session, jobs_world, gamma, job)
    outsider = add_partner(session, jobs_world, "Delta Yards", "d@delta.test")
    with pytest.raises(Forbidden):
        bidding.confirm_joint_share(session, outsider, bid.id, NOW)
    bidding.confirm_joint_share(session, jobs_world.owner_b, bid.id, NOW)
    with pytest.raises(Forbidden):
        bidding.submit_joint_bid(session, jobs_world.owner_b, bid.id, NOW)


def test_awarded_joint_bid_contract_has_both_parties(session: Session, jobs_world: World,
                                                     gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = _joint(session, jobs_world, gamma, job)
    bidding.confirm_joint_share(session, jobs_world.owner_b, bid.id, NOW)
    bidding.submit_joint_bid(session, gamma, bid.id, NOW)
    assert bidding.close_due_windows(session, CLOSES_AT) == [job.id]
    bidding.award_bid(session, jobs_world.owner_a, job.id, bid.id, CLOSES_AT)
    session.expire_all()
    contract = session.exec(select(JobContract)).one()
    assert contract.value_minor == 2_000_001 and contract.bid_id == bid.id
    assert contract.referral_fee_minor == apply_basis_points(2_000_001, 500) == 100_000
    parties = sorted((p.member_id, p.share_bp) for p in session.exec(select(ContractParty)))
    assert parties == sorted([(gamma.member_id, 6_000), (jobs_world.member_b_id, 4_000)])
    assert session.get(OverflowJob, job.id).awarded_member_id == gamma.member_id  # type: ignore[union-attr]
    assert recipients(session, "job.awarded").count(jobs_world.owner_b.id) == 1
    assert gamma.id in recipients(session, "job.awarded")



def _suspend(session: Session, user: User) -> None:
    member = session.get(Member, user.member_id)
    assert member is not None
    member.suspended = True
    session.add(member)
    session.commit()


def test_award_refused_when_a_bidder_can_no_longer_take_part(
        session: Session, jobs_world: World, gamma: User, post: Post) -> None:
    job = post(bid_window=True)
    bid = bidding.place_bid(session, jobs_world.owner_b, job.id, offer(), NOW)
    bidding.close_window(session, job.id, CLOSES_AT)
    _suspend(session, jobs_world.owner_b)
    notes = count(session, Notification)
    with pytest.raises(Conflict) as refused:
        bidding.award_bid(session, jobs_world.owner_a, job.id, bid.id, CLOSES_AT)
    assert refused.value.code == "bidder_cannot_take_part"
    assert refused.value.params == {"member": "Beta Stone"}
    session.rollback()
    assert count(session, JobContract) == 0 and count(session, Notification) == notes
    assert session.get(OverflowJob, job.id).status == JobStatus.WINDOW_CLOSED  # type: ignore[union-attr]


def test_award_needs_every_party_bound_by_the_agreement_in_force(
        session: Session, jobs_world: World, gamma: User, post: Post) -> None:
    w = jobs_world
    job = post(bid_window=True)
    bid = _joint(session, w, gamma, job)
    bidding.confirm_joint_share(session, w.owner_b, bid.id, NOW)
    bidding.submit_joint_bid(session, gamma, bid.id, NOW)
    bidding.close_window(session, job.id, CLOSES_AT)
    agreements.publish_agreement(session, w.coordinator, terms(referral_fee_bp=800), CLOSES_AT)
    agreements.accept_agreement(session, w.owner_a, 2, CLOSES_AT)
    agreements.accept_agreement(session, gamma, 2, CLOSES_AT)
    with pytest.raises(Conflict) as refused:  # B, a partner, has not accepted version 2
        bidding.award_bid(session, w.owner_a, job.id, bid.id, CLOSES_AT)
    assert refused.value.params == {"member": "Beta Stone"}
    session.rollback()
    assert count(session, JobContract) == 0
    agreements.accept_agreement(session, w.owner_b, 2, CLOSES_AT)
    bidding.award_bid(session, w.owner_a, job.id, bid.id, CLOSES_AT)
    contract = session.exec(select(JobContract)).one()
    assert contract.referral_fee_bp == 800


def test_poster_must_accept_the_agreement_in_force_to_award(
        session: Session, jobs_world: World, post: Post) -> None:
    w = jobs_world
    job = post(bid_window=True)
    bid = bidding.place_bid(session, w.owner_b, job.id, offer(), NOW)
    bidding.close_window(session, job.id, CLOSES_AT)
    agreements.publish_agreement(session, w.coordinator, terms(referral_fee_bp=800), CLOSES_AT)
    agreements.accept_agreement(session, w.owner_b, 2, CLOSES_AT)
    with pytest.raises(Forbidden) as refused:
        bidding.award_bid(session, w.owner_a, job.id, bid.id, CLOSES_AT)
    assert refused.value.code == "agreement_not_accepted"
    session.rollback()
    assert count(session, JobContract) == 0
