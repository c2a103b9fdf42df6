"""Dashboard fixtures: four months of a small cluster, built through the services.

`spring` runs March to June 2026 (Toronto) in order, each step at its own
moment, so every row carries the time a real user would have given it:

* March: A posts hand-off J1 (1 000.00), B claims, does it, A confirms (B owes A
  the 5 % referral fee, 50.00, and the platform 1 %, 10.00); A and B rate each
  other.  On 31 March at 23:30 Toronto (already 1 April in UTC) A opens bid
  window J2 (2 000.00); B bids 1 500.00 and is awarded on 3 April, but never
  reports it done.  The coordinator credits C 25.00 and settles March.
* April: A cancels J3 (500.00); nobody takes B's J4 (700.00, starting 1 May).
  A lists its excavator on 15 April (weekdays 07:00-18:00 Toronto); B books 4 h
  (160.00).  C gets another 10.00; April is settled on 2 May.
* May: a blackout takes 12 May; B books 11 h on 5 May (a day: 250.00) and
  cancels a 2 h booking (80.00) an hour before it starts (refund, then a late fee
  of 40.00).  At 23:00 on 31 May Toronto (1 June UTC) A posts J5 (300.00, from
  10 June).  May stays open.

EXPECTED holds the numbers worked out by hand from the rules, as of NOW
(1 June 2026, 11:00 Toronto).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from marketplace.clusters.models import User
from marketplace.equipment import booking, listings
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.models import JobMode, OverflowJob
from marketplace.ledger import settlement
from tests.conftest import World
from tests.equipment.conftest import at
from tests.equipment.conftest import draft as machine_draft
from tests.jobs.conftest import (  # noqa: F401 - jobs_world is a fixture
    add_partner,
    job_draft,
    jobs_world,
)

MONTHS = ("2026-03", "2026-04", "2026-05", "2026-06")
J2_POSTED = datetime(2026, 4, 1, 3, 30, tzinfo=UTC)  # 31 March 23:30 in Toronto
J5_POSTED = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)  # 31 May 23:00 in Toronto


def utc(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


@dataclass
class Spring:
    world: World
    owner_c: User

    @property
    def a(self) -> int:
        return self.world.member_a_id

    @property
    def b(self) -> int:
        return self.world.member_b_id

    @property
    def c(self) -> int:
        assert self.owner_c.member_id is not None
        return self.owner_c.member_id


def _job(session: Session, by: User, value: int, posted: datetime, starts: date, ends: date,
         **changes: object) -> int:
    job = service.post_job(session, by, job_draft(value_minor=value, starts_on=starts,
                                                  ends_on=ends, **changes), posted)
    assert job.id is not None
    return job.id


def build_spring(session: Session, world: World) -> Spring:
    """The four months described above, through the real services, in time order."""
    a, b, coordinator = world.owner_a, world.owner_b, world.coordinator
    owner_c = add_partner(session, world, "Gamma Trees", "c@gamma.test")
    spring = Spring(world, owner_c)
    # March.
    j1 = _job(session, a, 100_000, utc(3, 10), date(2026, 3, 20), date(2026, 3, 25),
              title="Mow the spring lawns")
    service.claim_job(session, b, j1, utc(3, 11))
    settlement.add_adjustment(session, coordinator, "2026-03", spring.c, 2_500,
                              "Shared fuel", utc(3, 15))
    completion.report_done(session, b, j1, utc(3, 26))
    completion.confirm_completion(session, a, j1, utc(3, 27))
    completion.rate(session, a, j1, spring.b, 4, True, "", utc(3, 28))
    completion.rate(session, b, j1, spring.a, 5, False, "", utc(3, 28))
    j2 = _job(session, a, 200_000, J2_POSTED, date(2026, 4, 10), date(2026, 4, 20),
              title="Grade the school field", mode=JobMode.BID_WINDOW.value,
              closes_at=utc(4, 3, 3))
    bid = bidding.place_bid(session, b, j2, bidding.BidTerms(150_000, 3, date(2026, 4, 10)),
                            utc(4, 1))
    settlement.draft_for(session, coordinator, "2026-03", utc(4, 2))
    settlement.approve(session, coordinator, "2026-03", {}, utc(4, 2))
    assert bidding.close_window(session, j2, utc(4, 3, 4))
    bidding.award_bid(session, a, j2, bid.id, utc(4, 3))  # type: ignore[arg-type]
    # April.
    j3 = _job(session, a, 50_000, utc(4, 5), date(2026, 4, 20), date(2026, 4, 21),
              title="Edge the boulevard")
    service.cancel_job(session, a, j3, "The customer withdrew.", utc(4, 6))
    _job(session, b, 70_000, utc(4, 10), date(2026, 5, 1), date(2026, 5, 5),
         title="Lay the patio stones")
    machine = listings.list_machine(session, a, machine_draft(), utc(4, 15))
    assert machine.id is not None
    booking.book(session, b, machine.id, at(date(2026, 4, 20), 9), at(date(2026, 4, 20), 13),
                 utc(4, 16))
    settlement.add_adjustment(session, coordinator, "2026-04", spring.c, 1_000,
                              "Shared fuel", utc(4, 20))
    # May.
    listings.add_blackout(session, a, machine.id, at(date(2026, 5, 12), 7),
                          at(date(2026, 5, 12), 18), "Service", utc(5, 1))
    late = booking.book(session, b, machine.id, at(date(2026, 5, 4), 9),
                        at(date(2026, 5, 4), 11), utc(5, 1))
    booking.book(session, b, machine.id, at(date(2026, 5, 5), 7), at(date(2026, 5, 5), 18),
                 utc(5, 1))
    settlement.draft_for(session, coordinator, "2026-04", utc(5, 2))
    settlement.approve(session, coordinator, "2026-04", {}, utc(5, 2))
    booking.cancel(session, b, late.id, "Rained out", at(date(2026, 5, 4), 8))  # type: ignore[arg-type]
    _job(session, a, 30_000, J5_POSTED, date(2026, 6, 10), date(2026, 6, 12),
         title="Plant the hedge")
    return spring


@pytest.fixture
def spring(session: Session, jobs_world: World) -> Spring:  # noqa: F811
    return build_spring(session, jobs_world)


H = 60  # minutes per hour: availability and bookings are counted in minutes

#: scope -> chart -> rows (the figure's cells, month first), worked out by hand.
EXPECTED: dict[str, dict[str, list[tuple[object, ...]]]] = {
    "cluster": {
        # month, posted, claimed, awarded, not taken, waiting, contracts signed
        "jobs": [("2026-03", 2, 1, 1, 0, 0, 1), ("2026-04", 2, 0, 0, 2, 0, 1),
                 ("2026-05", 1, 0, 0, 0, 1, 0), ("2026-06", 0, 0, 0, 0, 0, 0)],
        # month, kept (J1 1 000.00 + J2's winning bid 1 500.00), turned away (J3 + J4)
        "value": [("2026-03", 250_000, 0), ("2026-04", 0, 120_000), ("2026-05", 0, 0),
                  ("2026-06", 0, 0)],
        # month, utilization, booked minutes, available minutes (11 h a weekday from
        # 15 April 08:00; May's 21 weekdays less the blackout; June's 22 weekdays)
        "utilization": [("2026-03", None, 0, 0), ("2026-04", 4 / 131, 4 * H, 131 * H),
                        ("2026-05", 11 / 220, 11 * H, 220 * H),
                        ("2026-06", 0.0, 0, 242 * H)],
        # month, fees: 160.00; 80.00 + 250.00 - 80.00 refunded + 40.00 late fee
        "fees": [("2026-03", 0), ("2026-04", 16_000), ("2026-05", 29_000), ("2026-06", 0)],
        # month, settled, received (A's referral fee + C's credit; A's fee + C's credit),
        # paid (B's referral and platform fees; B's booking), net
        "revenue": [("2026-03", True, 7_500, 6_000, 1_500),
                    ("2026-04", True, 17_000, 16_000, 1_000),
                    ("2026-05", False, None, None, None), ("2026-06", False, None, None, None)],
        # member, received, paid, net (settled months only)
        "members": [("Alpha Lawns", 21_000, 0, 21_000), ("Beta Stone", 0, 22_000, -22_000),
                    ("Gamma Trees", 3_500, 0, 3_500)],
        # month, average, ratings, on-time share
        "rating": [("2026-03", 4.5, 2, 0.5), ("2026-04", None, 0, None),
                   ("2026-05", None, 0, None), ("2026-06", None, 0, None)],
        # month, completion rate, due, reported done, confirmed (J2 ended 20 April, undone)
        "completion": [("2026-03", 1.0, 1, 1, 1), ("2026-04", 0.0, 1, 0, 0),
                       ("2026-05", None, 0, 0, 0), ("2026-06", None, 0, 0, 0)],
    },
    "b": {
        "jobs": [("2026-03", 0, 0, 0, 0, 0, 1), ("2026-04", 1, 0, 0, 1, 0, 1),
                 ("2026-05", 0, 0, 0, 0, 0, 0), ("2026-06", 0, 0, 0, 0, 0, 0)],
        "value": [("2026-03", 0, 0), ("2026-04", 0, 70_000), ("2026-05", 0, 0),
                  ("2026-06", 0, 0)],
        "utilization": [(m, None, 0, 0) for m in MONTHS],  # B owns no machine
        "fees": [(m, 0) for m in MONTHS],  # B pays fees, earns none
        "revenue": [("2026-03", True, 0, 6_000, -6_000), ("2026-04", True, 0, 16_000, -16_000),
                    ("2026-05", False, None, None, None), ("2026-06", False, None, None, None)],
        "rating": [("2026-03", 4.0, 1, 1.0), ("2026-04", None, 0, None),
                   ("2026-05", None, 0, None), ("2026-06", None, 0, None)],
        "completion": [("2026-03", 1.0, 1, 1, 1), ("2026-04", 0.0, 1, 0, 0),
                       ("2026-05", None, 0, 0, 0), ("2026-06", None, 0, 0, 0)],
    },
    "a": {
        "jobs": [("2026-03", 2, 1, 1, 0, 0, 0), ("2026-04", 1, 0, 0, 1, 0, 0),
                 ("2026-05", 1, 0, 0, 0, 1, 0), ("2026-06", 0, 0, 0, 0, 0, 0)],
        "value": [("2026-03", 250_000, 0), ("2026-04", 0, 50_000), ("2026-05", 0, 0),
                  ("2026-06", 0, 0)],
        "revenue": [("2026-03", True, 5_000, 0, 5_000), ("2026-04", True, 16_000, 0, 16_000),
                    ("2026-05", False, None, None, None), ("2026-06", False, None, None, None)],
        "rating": [("2026-03", 5.0, 1, 0.0), ("2026-04", None, 0, None),
                   ("2026-05", None, 0, None), ("2026-06", None, 0, None)],
        "completion": [(m, None, 0, 0, 0) for m in MONTHS],  # A took no job
    },
}


# --- a market big enough for cluster totals: five members, April closed ---------------

#: The agreement's default k: cluster totals combine at least 3 other members and items.
K = 3


@dataclass
class Market:
    """Members A, B (the rival who reads), C, D and E, with April 2026 worked out:

    * hand-offs A -> C (1 000.00), A -> D (1 100.00), C -> E (1 200.00) and B -> A
      (1 300.00), each done, confirmed and rated by its poster (C 4, D 5, E 3, A 5;
      on time except D's);
    * C, D and E each list a machine on 1 April; A books each for 4 h on 21 April
      (160.00 a booking);
    * D posts a job (770.00, starting 15 April) nobody takes.

    For B every April total combines C, D and E (B's own contract with A left aside):
    enough for k = 3.  For C it combines only D and A (and E only through C's own job).
    """

    world: World
    owner_c: User
    owner_d: User
    owner_e: User
    machines: dict[str, int]

    def member(self, name: str) -> int:
        user = self.owner(name)
        assert user.member_id is not None
        return user.member_id

    def owner(self, name: str) -> User:
        return {"a": self.world.owner_a, "b": self.world.owner_b, "c": self.owner_c,
                "d": self.owner_d, "e": self.owner_e}[name]


#: April's contracts (poster, winner, value) and ratings (poster rates winner).
APRIL_HANDOFFS = (("a", "c", 100_000, 4, True), ("a", "d", 110_000, 5, False),
                  ("c", "e", 120_000, 3, True), ("b", "a", 130_000, 5, True))
APRIL_BOOKING_FEE = 16_000  # 4 h at 40.00
UNTAKEN_VALUE = 77_000


def handoff(session: Session, poster: User, winner: User, value: int, when: datetime,
            starts: date | None = None, title: str = "Trim the hedges") -> int:
    """A hand-off posted at `when` and claimed an hour later; its id."""
    starts = starts or (when + timedelta(days=6)).date()
    job = _job(session, poster, value, when, starts, starts + timedelta(days=2), title=title)
    service.claim_job(session, winner, job, when + timedelta(hours=1))
    return job


def finish(session: Session, poster: User, winner: User, job: int, when: datetime,
           score: int, on_time: bool) -> None:
    """The winner reports the job done, the poster confirms and rates the winner."""
    assert winner.member_id is not None
    completion.report_done(session, winner, job, when)
    completion.confirm_completion(session, poster, job, when + timedelta(hours=1))
    completion.rate(session, poster, job, winner.member_id, score, on_time, "",
                    when + timedelta(hours=2))


def bid_window(session: Session, poster: User, value: int, when: datetime,
               closes: datetime, starts: date, title: str = "Grade the field") -> int:
    return _job(session, poster, value, when, starts, starts + timedelta(days=2), title=title,
                mode=JobMode.BID_WINDOW.value, closes_at=closes)


def bid(session: Session, bidder: User, job: int, price: int, when: datetime) -> int:
    starts = session.get(OverflowJob, job)  # ready to start when the job does
    assert starts is not None
    placed = bidding.place_bid(session, bidder, job,
                               bidding.BidTerms(price, 3, starts.starts_on), when)
    assert placed.id is not None
    return placed.id


def award(session: Session, poster: User, job: int, bid_id: int, when: datetime) -> None:
    bidding.close_window(session, job, when)
    bidding.award_bid(session, poster, job, bid_id, when + timedelta(minutes=1))


def build_market(session: Session, world: World) -> Market:
    owners = [add_partner(session, world, name, email) for name, email in (
        ("Gamma Trees", "c@gamma.test"), ("Delta Paving", "d@delta.test"),
        ("Epsilon Ponds", "e@epsilon.test"))]
    market = Market(world, owners[0], owners[1], owners[2], machines={})
    for day, (poster, winner, value, score, on_time) in enumerate(APRIL_HANDOFFS, start=2):
        job = handoff(session, market.owner(poster), market.owner(winner), value,
                      utc(4, day), date(2026, 4, 12), title=f"April job {day}")
        finish(session, market.owner(poster), market.owner(winner), job, utc(4, 20),
               score, on_time)
    _job(session, market.owner_d, UNTAKEN_VALUE, utc(4, 6), date(2026, 4, 15),
         date(2026, 4, 16), title="Nobody wants this")
    for name in ("c", "d", "e"):
        machine = listings.list_machine(session, market.owner(name),
                                        machine_draft(name=f"Machine {name}"), utc(4, 1))
        assert machine.id is not None
        market.machines[name] = machine.id
        booking.book(session, world.owner_a, machine.id, at(date(2026, 4, 21), 9),
                     at(date(2026, 4, 21), 13), utc(4, 15))
    return market


@pytest.fixture
def market(session: Session, jobs_world: World) -> Market:  # noqa: F811
    return build_market(session, jobs_world)
