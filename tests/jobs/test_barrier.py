"""The information barrier: rivals never see each other's prices or the customer early."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, select

from marketplace.clusters.models import Member, User
from marketplace.geo import distance_km
from marketplace.jobs import bidding, service
from marketplace.jobs.models import Bid, BidShare, OverflowJob
from marketplace.jobs.visibility import Viewer, bids_for, contract_member_ids, job_for
from marketplace.money import format_money
from tests.conftest import NOW, World, invite_user
from tests.jobs.conftest import (
    ADDRESS,
    CLOSES_AT,
    CUSTOMER_CONTACT,
    CUSTOMER_NAME,
    SITE,
    STARTS_ON,
    add_partner,
    dumped,
    notifications,
    recipients,
)

Post = Callable[..., OverflowJob]
PRICE_B = 3_141_593
PRICE_G = 2_718_282
PRICE_JOINT = 1_414_214
PRIVATE_KEYS = {"customer_name", "customer_contact", "address", "site_lat", "site_lng"}
CUSTOMER_STRINGS = (CUSTOMER_NAME, CUSTOMER_CONTACT, ADDRESS, str(SITE[0]), str(SITE[1]))


def price_strings(price: int) -> list[str]:
    """How a price could show up: raw minor units or formatted in any locale we serve."""
    return [str(price)] + [format_money(price, "CAD", loc) for loc in ("en_CA", "fr_CA", "de")]


def viewer(user: User) -> Viewer:
    return Viewer(member_id=user.member_id, cluster_id=user.cluster_id,
                  is_coordinator=user.is_coordinator)


def member_of(session: Session, user: User) -> Member | None:
    return session.get(Member, user.member_id) if user.member_id else None


def leaks(data: Any, forbidden: list[str]) -> list[str]:
    text = data if isinstance(data, str) else json.dumps(data, default=str)
    return [f for f in forbidden if f in text]


@dataclass
class Auction:
    job: OverflowJob
    gamma: User  # a rival bidder
    delta: User  # eligible, never bids
    bid_b: Bid
    bid_g: Bid


def bid(session: Session, user: User, job: OverflowJob, price: int) -> Bid:
    return bidding.place_bid(session, user, job.id,
                             bidding.BidTerms(price, 3, STARTS_ON, "ready"), NOW)


@pytest.fixture
def auction(session: Session, jobs_world: World, post: Post) -> Auction:
    gamma = add_partner(session, jobs_world, "Gamma Trees", "g@gamma.test")
    delta = add_partner(session, jobs_world, "Delta Yards", "d@delta.test")
    job = post(bid_window=True)
    return Auction(job, gamma, delta, bid(session, jobs_world.owner_b, job, PRICE_B),
                   bid(session, gamma, job, PRICE_G))


# -- bids ----------------------------------------------------------------------------------

def test_rival_bidder_sees_only_its_own_price(session: Session, jobs_world: World,
                                              auction: Auction) -> None:
    seen = bids_for(session, viewer(jobs_world.owner_b), auction.job)
    assert seen["count"] == 2
    assert [b["id"] for b in seen["bids"]] == [auction.bid_b.id]
    assert seen["bids"][0]["price_minor"] == PRICE_B
    assert leaks(seen, price_strings(PRICE_G)) == []
    other = bids_for(session, viewer(auction.gamma), auction.job)
    assert [b["price_minor"] for b in other["bids"]] == [PRICE_G]
    assert leaks(other, price_strings(PRICE_B)) == []
    # A crew member of a bidder sees what its business sees, nothing more.
    crew_b = invite_user(session, jobs_world.owner_b, "crew@beta.test")
    assert bids_for(session, viewer(crew_b), auction.job) == seen


def test_non_bidders_see_only_the_count(session: Session, jobs_world: World,
                                        auction: Auction) -> None:
    for user in (auction.delta, jobs_world.coordinator):
        assert bids_for(session, viewer(user), auction.job) == {"count": 2, "bids": []}


def test_poster_sees_every_submitted_bid(session: Session, jobs_world: World,
                                         auction: Auction) -> None:
    for user in (jobs_world.owner_a, jobs_world.crew_a):
        seen = bids_for(session, viewer(user), auction.job)
        assert sorted((b["member_id"], b["price_minor"]) for b in seen["bids"]) == sorted(
            [(jobs_world.member_b_id, PRICE_B), (auction.gamma.member_id, PRICE_G)])


def test_joint_draft_is_seen_by_its_partners_only(session: Session, jobs_world: World,
                                                  auction: Auction) -> None:
    joint = bidding.propose_joint_bid(
        session, auction.delta, auction.job.id,
        bidding.BidTerms(PRICE_JOINT, 6, STARTS_ON, "together"),
        {auction.delta.member_id: 5_000, auction.gamma.member_id: 5_000}, NOW)  # type: ignore[dict-item]
    for partner in (auction.delta, auction.gamma):
        seen = bids_for(session, viewer(partner), auction.job)
        assert joint.id in [b["id"] for b in seen["bids"]]
    for outsider in (jobs_world.owner_b, jobs_world.owner_a):  # a rival; the poster (a draft)
        seen = bids_for(session, viewer(outsider), auction.job)
        assert joint.id not in [b["id"] for b in seen["bids"]]
        assert leaks(seen, price_strings(PRICE_JOINT)) == []
    # Gamma sees the joint price and its own single bid, never B's.
    assert leaks(bids_for(session, viewer(auction.gamma), auction.job),
                 price_strings(PRICE_B)) == []


# -- the customer --------------------------------------------------------------------------

def _private(session: Session, user: User, job: OverflowJob) -> set[str]:
    data = job_for(session, viewer(user), job, member_of(session, user))
    found = PRIVATE_KEYS & data.keys()
    if not found:
        assert leaks(data, list(CUSTOMER_STRINGS)) == [], user.email
    return found


def test_customer_is_hidden_from_partners_until_award(session: Session, jobs_world: World,
                                                      auction: Auction) -> None:
    job = auction.job
    for user in (jobs_world.owner_b, auction.gamma, auction.delta, jobs_world.coordinator,
                 jobs_world.other_owner):
        assert _private(session, user, job) == set(), user.email
    assert _private(session, jobs_world.owner_a, job) == PRIVATE_KEYS
    partner_view = job_for(session, viewer(jobs_world.owner_b), job,
                           member_of(session, jobs_world.owner_b))
    assert partner_view["locality"] == job.locality
    # the job's approximate point, at least a kilometre off, and whole kilometres from it
    assert distance_km(*SITE, partner_view["approx_lat"], partner_view["approx_lng"]) >= 1.0
    assert partner_view["distance_precision"] == "about"
    assert partner_view["distance_km"] in {4, 5, 6, 7}  # the site is 5.3 km from B's base

    assert bidding.close_window(session, job.id, CLOSES_AT)
    for user in (jobs_world.owner_b, auction.gamma):  # closed, not yet awarded
        assert _private(session, user, job) == set()
    bidding.award_bid(session, jobs_world.owner_a, job.id, auction.bid_b.id, CLOSES_AT)
    assert _private(session, jobs_world.owner_b, job) == PRIVATE_KEYS
    winner = job_for(session, viewer(jobs_world.owner_b), job)
    assert (winner["customer_name"], winner["customer_contact"], winner["address"]) == (
        CUSTOMER_NAME, CUSTOMER_CONTACT, ADDRESS)
    for user in (auction.gamma, auction.delta, jobs_world.coordinator):  # losers stay outside
        assert _private(session, user, job) == set(), user.email


def test_handoff_customer_reaches_only_the_claimant(session: Session, jobs_world: World,
                                                    post: Post) -> None:
    rival = add_partner(session, jobs_world, "Gamma Trees", "g@gamma.test")
    job = post()
    assert _private(session, jobs_world.owner_b, job) == set()
    service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    assert _private(session, jobs_world.owner_b, job) == PRIVATE_KEYS
    assert _private(session, rival, job) == set()


# -- notifications -------------------------------------------------------------------------

def _check_notifications(session: Session, job: OverflowJob) -> int:
    """Every notification so far carries only what its recipient may see; returns how many
    went to someone other than the poster's people."""
    bids = list(session.exec(select(Bid).where(Bid.job_id == job.id)))
    parties = {b.id: {s.member_id for s in session.exec(
        select(BidShare).where(BidShare.bid_id == b.id))} for b in bids}
    winners = contract_member_ids(session, job.id)
    checked = 0
    for row in notifications(session):
        user = session.get(User, row.user_id)
        assert user is not None
        if user.member_id == job.poster_member_id:
            continue
        checked += 1
        forbidden = [s for b in bids if user.member_id not in parties[b.id]
                     for s in price_strings(b.price_minor)]
        if user.member_id not in winners:
            forbidden += CUSTOMER_STRINGS
        assert leaks(dumped(row), forbidden) == [], (row.kind, user.email, dumped(row))
        assert not PRIVATE_KEYS & row.payload.keys(), (row.kind, user.email)
    return checked


def test_notifications_never_carry_prices_or_customer_to_outsiders(
        session: Session, jobs_world: World, auction: Auction) -> None:
    job = auction.job
    joint_lead = add_partner(session, jobs_world, "Epsilon Earthworks", "e@eps.test")
    joint = bidding.propose_joint_bid(
        session, joint_lead, job.id, bidding.BidTerms(PRICE_JOINT, 6, STARTS_ON, "together"),
        {joint_lead.member_id: 7_000, auction.delta.member_id: 3_000}, NOW)  # type: ignore[dict-item]
    bidding.confirm_joint_share(session, auction.delta, joint.id, NOW)
    bidding.submit_joint_bid(session, joint_lead, joint.id, NOW)
    assert _check_notifications(session, job) > 0
    assert bidding.close_due_windows(session, CLOSES_AT) == [job.id]
    _check_notifications(session, job)
    bidding.award_bid(session, jobs_world.owner_a, job.id, joint.id, CLOSES_AT)
    checked = _check_notifications(session, job)
    kinds = {n.kind for n in notifications(session)}
    assert {"job.posted", "bid.received", "joint.invited", "joint.confirmed",
            "window.closed", "job.awarded", "job.taken"} <= kinds
    # B and Gamma lost: they hear the job is gone, never the winning price.
    assert jobs_world.owner_b.id in recipients(session, "job.taken")
    assert auction.gamma.id in recipients(session, "job.taken")
    assert checked >= 10


def test_bid_received_goes_to_the_poster_only(session: Session, jobs_world: World,
                                              auction: Auction) -> None:
    assert recipients(session, "bid.received") == sorted(
        [jobs_world.owner_a.id, jobs_world.crew_a.id] * 2)
    for row in notifications(session, "bid.received"):
        assert leaks(dumped(row), list(CUSTOMER_STRINGS)) == []


def test_window_closed_tells_bidders_the_count_not_the_prices(
        session: Session, jobs_world: World, auction: Auction) -> None:
    bidding.close_window(session, auction.job.id, CLOSES_AT + timedelta(minutes=1))
    rows = notifications(session, "window.closed")
    assert sorted(r.user_id for r in rows) == sorted(
        [jobs_world.owner_a.id, jobs_world.crew_a.id, jobs_world.owner_b.id, auction.gamma.id])
    for row in rows:
        assert row.payload["bid_count"] == 2
        assert leaks(dumped(row), price_strings(PRICE_B) + price_strings(PRICE_G)
                     + list(CUSTOMER_STRINGS)) == []


def test_job_posted_reaches_exactly_the_eligible_partners(
        session: Session, jobs_world: World, post: Post) -> None:
    w = jobs_world
    crew_b = invite_user(session, w.owner_b, "crew@beta.test")
    gone_b = invite_user(session, w.owner_b, "gone@beta.test")
    gone_b.active = False
    session.add(gone_b)
    session.commit()
    gamma = add_partner(session, w, "Gamma Trees", "g@gamma.test")
    add_partner(session, w, "Delta Drains", "d@delta.test", trades=("drainage",))
    add_partner(session, w, "Far Fields", "f@far.test", base=(45.5017, -73.5673))
    job = post()
    assert recipients(session, "job.posted") == sorted([w.owner_b.id, crew_b.id, gamma.id])
    assert w.other_owner.id not in recipients(session, "job.posted")
    assert all(n.kind == "job.posted" for n in notifications(session))
    for row in notifications(session, "job.posted"):
        assert row.payload["id"] == job.id
        assert leaks(dumped(row), list(CUSTOMER_STRINGS)) == []
        assert not PRIVATE_KEYS & row.payload.keys()
