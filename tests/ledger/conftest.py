"""Ledger fixtures: the shared world with four trading members and a busy June.

Reuses the jobs fixtures (profiles so members can take jobs) and the equipment
fixtures (member C "Gamma Trees" and the trailer A and B co-own 60/40).  Member
D "Delta Decks" joins as C's joint-bid partner.  `busy_month` then runs a
realistic June 2026 (Toronto) through the real services: a hand-off job, a
joint bid, co-owned bookings, a late cancellation (refund + fee) and a damage
fee.  Adjustments and approval are left to the tests, which run in July.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.equipment import booking
from marketplace.equipment.models import Equipment
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.models import JobContract, JobMode, OverflowJob
from marketplace.ledger.models import JobPayment, LedgerEntry, PaymentStatus
from tests.conftest import NOW, World
from tests.equipment.conftest import (  # noqa: F401 - fixtures used by the ledger tests
    NEXT_MONDAY,
    Equip,
    at,
    co_owned,
    eq,
)
from tests.jobs.conftest import (  # noqa: F401 - jobs_world is a fixture
    CLOSES_AT,
    STARTS_ON,
    add_partner,
    give_profile,
    job_draft,
    jobs_world,
)

JUNE = "2026-06"
JULY = "2026-07"
DONE_AT = NOW + timedelta(days=20)  # 2026-06-21: jobs reported done and confirmed
JULY_2 = datetime(2026, 7, 2, 14, 0, tzinfo=UTC)  # June is over in Toronto; review day
TUESDAY = NEXT_MONDAY + timedelta(days=1)  # 2026-06-09
WEDNESDAY = NEXT_MONDAY + timedelta(days=2)
HANDOFF_VALUE = 1_234_570  # referral 61_728 (61_728.5 half to even), platform 12_346
JOINT_PRICE = 999_999  # referral 50_000, platform 10_000, remaining 939_999
JOINT_SHARES = (6_667, 3_333)  # C leads, D is the partner: D gets 313_302 (939_999 * 0.3333 ...)


@dataclass
class Ledger:
    """The world with four trading members: A (poster, co-owner), B (co-owner),
    C (joint-bid lead, books the trailer), D (joint partner, cancels late)."""

    world: World
    eq: Equip
    owner_d: User
    trailer: Equipment

    @property
    def a(self) -> int:
        return self.world.member_a_id

    @property
    def b(self) -> int:
        return self.world.member_b_id

    @property
    def c(self) -> int:
        return self.eq.member_c_id

    @property
    def d(self) -> int:
        assert self.owner_d.member_id is not None
        return self.owner_d.member_id

    @property
    def owner_c(self) -> User:
        return self.eq.owner_c

    @property
    def coordinator(self) -> User:
        return self.world.coordinator


@pytest.fixture
def lw(session: Session, jobs_world: World, eq: Equip,  # noqa: F811
       co_owned: Equipment) -> Ledger:  # noqa: F811
    give_profile(session, eq.owner_c)
    owner_d = add_partner(session, jobs_world, "Delta Decks", "d@delta.test")
    return Ledger(jobs_world, eq, owner_d, co_owned)


def handoff_job(session: Session, lw: Ledger, value: int = HANDOFF_VALUE,
                title: str = "Mow the Evergreen estate", confirm_at: datetime = DONE_AT
                ) -> OverflowJob:
    """A posts a hand-off, B claims it, does it, A confirms (on 21 June by default)."""
    job = service.post_job(session, lw.world.owner_a, job_draft(value_minor=value, title=title),
                           NOW)
    service.claim_job(session, lw.world.owner_b, job.id, NOW)  # type: ignore[arg-type]
    completion.report_done(session, lw.world.owner_b, job.id, confirm_at)  # type: ignore[arg-type]
    completion.confirm_completion(session, lw.world.owner_a, job.id, confirm_at)  # type: ignore[arg-type]
    return job


def joint_job(session: Session, lw: Ledger, price: int = JOINT_PRICE,
              shares: tuple[int, int] = JOINT_SHARES, confirm_at: datetime = DONE_AT,
              *, paid_by_card: bool = False) -> OverflowJob:
    """A posts a bid window; C and D bid jointly; A awards, C reports done, A confirms.
    `paid_by_card`: the customer paid the contract on the platform before it was
    confirmed (the row Stripe's checkout webhook leaves), so the platform pays each
    party instead of the lead."""
    job = service.post_job(session, lw.world.owner_a, job_draft(
        mode=JobMode.BID_WINDOW.value, closes_at=CLOSES_AT, title="Plant the boulevard"), NOW)
    terms = bidding.BidTerms(price_minor=price, crew_size=4, earliest_start=STARTS_ON)
    bid = bidding.propose_joint_bid(session, lw.owner_c, job.id, terms,  # type: ignore[arg-type]
                                    {lw.c: shares[0], lw.d: shares[1]}, NOW)
    bidding.confirm_joint_share(session, lw.owner_d, bid.id, NOW)  # type: ignore[arg-type]
    bidding.submit_joint_bid(session, lw.owner_c, bid.id, NOW)  # type: ignore[arg-type]
    assert bidding.close_window(session, job.id, CLOSES_AT)  # type: ignore[arg-type]
    bidding.award_bid(session, lw.world.owner_a, job.id, bid.id, CLOSES_AT)  # type: ignore[arg-type]
    if paid_by_card:
        contract = session.exec(select(JobContract).where(JobContract.job_id == job.id)).one()
        session.add(JobPayment(
            contract_id=contract.id, checkout_session_id=f"cs_test_{contract.id}",
            checkout_url=f"https://checkout.stripe.com/c/pay/cs_test_{contract.id}",
            amount_minor=contract.value_minor, currency=contract.currency,
            status=PaymentStatus.PAID.value, created_at=CLOSES_AT, paid_at=CLOSES_AT))
        session.commit()
    completion.report_done(session, lw.owner_c, job.id, confirm_at)  # type: ignore[arg-type]
    completion.confirm_completion(session, lw.world.owner_a, job.id, confirm_at)  # type: ignore[arg-type]
    return job


def busy_month(session: Session, lw: Ledger) -> None:
    """Everything that moves money in June, through the services that move it."""
    handoff_job(session, lw)
    joint_job(session, lw)
    trailer = lw.trailer.id
    # C (outsider) books the co-owned trailer; it comes back damaged.
    made = booking.book(session, lw.owner_c, trailer, at(TUESDAY, 9), at(TUESDAY, 11), NOW)  # type: ignore[arg-type]
    booking.check_out(session, lw.owner_c, made.id, None, "", None, at(TUESDAY, 9))  # type: ignore[arg-type]
    booking.return_machine(session, lw.owner_c, made.id, None, "", at(TUESDAY, 11))  # type: ignore[arg-type]
    booking.close(session, lw.coordinator, made.id, 10_001, "Cracked tail light",  # type: ignore[arg-type]
                  at(TUESDAY, 11))
    # B (co-owner) books it: it pays only A's part.
    booking.book(session, lw.world.owner_b, trailer, at(TUESDAY, 13), at(TUESDAY, 14), NOW)  # type: ignore[arg-type]
    # D books and cancels an hour before: refund of the fee, then the late fee.
    late = booking.book(session, lw.owner_d, trailer, at(WEDNESDAY, 9), at(WEDNESDAY, 11),  # type: ignore[arg-type]
                        NOW)
    booking.cancel(session, lw.owner_d, late.id, "Rained out", at(WEDNESDAY, 8))  # type: ignore[arg-type]


#: What `busy_month` must write, (source, payer, payee, amount) with member letters
#: ("P" for the platform account).  Worked out by hand from the rules.
BUSY_ENTRIES = [
    ("referral_fee", "B", "A", 61_728), ("platform_fee", "B", "P", 12_346),
    ("referral_fee", "C", "A", 50_000), ("platform_fee", "C", "P", 10_000),
    ("job_share", "C", "D", 313_302),
    ("booking", "C", "A", 5_480), ("booking", "C", "B", 3_654),
    ("damage_fee", "C", "A", 6_001), ("damage_fee", "C", "B", 4_000),
    ("booking", "B", "A", 2_740),
    ("booking", "D", "A", 5_480), ("booking", "D", "B", 3_654),
    ("booking_refund", "A", "D", 5_480), ("booking_refund", "B", "D", 3_654),
    ("cancellation_fee", "D", "A", 2_740), ("cancellation_fee", "D", "B", 1_827),
]


def letters(lw: Ledger) -> dict[int | None, str]:
    return {lw.a: "A", lw.b: "B", lw.c: "C", lw.d: "D", None: "P"}


def all_entries(session: Session) -> list[LedgerEntry]:
    session.expire_all()
    return list(session.exec(select(LedgerEntry).order_by(LedgerEntry.id)))  # type: ignore[arg-type]


def lettered(session: Session, lw: Ledger) -> list[tuple[str, str, str, int]]:
    names = letters(lw)
    return [(e.source, names[e.payer_member_id], names[e.payee_member_id], e.amount_minor)
            for e in all_entries(session)]


def first_of(month: str) -> date:
    return date.fromisoformat(f"{month}-01")
