"""A property of the pooled cluster totals, over random small clusters (issue #16).

Random members sign random contracts (hand-offs and bid windows awarded days or
weeks after posting, sometimes after the start date), leave jobs untaken, rate
each other and earn booking fees, at random moments over four months.  After
every event each member reads the cluster's totals.  For every member and
every month, each money or rating cell is either withheld, or

* its month is over, and the rows it sums that the reader is not part of and
  cannot know otherwise (a bid's price, a booking, a rating -- not a hand-off
  or an untaken job, whose values are on the board) are none, or number at
  least k and come from at least k other members (worked out here from the
  events, independently of the code under test), and it is their exact sum or
  average; and
* it has the same value in every later read, whatever happened in between.

Rows are written directly (the services' rules are tested elsewhere): what
matters here is only when each fact happened and who took part.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from marketplace.clusters.models import Agreement, Cluster, Member, Role, User
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.figures import Figure, figure
from marketplace.dashboard.periods import month_range
from marketplace.jobs.models import (
    Bid,
    BidStatus,
    ContractParty,
    JobContract,
    JobRating,
    JobStatus,
    OverflowJob,
)
from marketplace.ledger.models import EntrySource, LedgerEntry, entry_key
from marketplace.ledger.service import ledger_month

TZ = "America/Toronto"
START = datetime(2026, 3, 1, 5, tzinfo=UTC)  # 1 March 00:00 in Toronto
MONTHS = ("2026-03", "2026-04", "2026-05", "2026-06", "2026-07")
LATER = datetime(2026, 8, 2, 12, tzinfo=UTC)  # every month of the events is over
_serial = itertools.count()


@dataclass
class Contract:
    job: int
    poster: int
    winners: tuple[int, ...]
    value: int
    signed_at: datetime
    by_bid: bool  # a bid window's award: its price is known only to its parties


@dataclass
class Facts:
    """What happened so far, as the oracle sees it."""

    jobs: dict[int, tuple[int, int, datetime, date]] = field(default_factory=dict)
    contracts: dict[int, Contract] = field(default_factory=dict)  # by job
    ratings: list[tuple[int, int, int, bool, datetime]] = field(default_factory=list)
    fees: list[tuple[int, int, int, int, datetime]] = field(default_factory=list)


def _month(when: datetime) -> str:
    return when.astimezone(ZoneInfo(TZ)).strftime("%Y-%m")


def _month_end(month: str) -> datetime:
    year, number = int(month[:4]), int(month[5:7])
    following = date(year + number // 12, number % 12 + 1, 1)
    return datetime.combine(following, time.min, tzinfo=ZoneInfo(TZ)).astimezone(UTC)


def _overdue(created: datetime, starts_on: date) -> datetime:
    end = datetime.combine(starts_on + timedelta(days=1), time.min, tzinfo=ZoneInfo(TZ))
    return max(created, end.astimezone(UTC))


def expected(facts: Facts, viewer: int, month: str
             ) -> dict[tuple[str, int], tuple[float, int, set[int], int]]:
    """(chart, column) -> (sum or average, rows, other members, rows the viewer is not
    part of and cannot know), worked out from the facts."""
    cells: dict[tuple[str, int], tuple[float, int, set[int], int]] = {}
    kept = [c for c in facts.contracts.values() if _month(c.signed_at) == month]
    hidden = [c for c in kept
              if c.by_bid and viewer != c.poster and viewer not in c.winners]
    cells[("value", 1)] = (sum(c.value for c in kept), len(kept),
                           {w for c in hidden for w in c.winners}, len(hidden))
    untaken = []
    for job, (poster, value, created, starts_on) in facts.jobs.items():
        overdue = _overdue(created, starts_on)
        contract = facts.contracts.get(job)
        if _month(overdue) == month and (contract is None or contract.signed_at >= overdue):
            untaken.append((poster, value))
    cells[("value", 2)] = (sum(v for _p, v in untaken), len(untaken), set(), 0)  # public
    rated = [r for r in facts.ratings if _month(r[4]) == month]
    others = [r for r in rated if viewer not in (r[0], r[1])]
    for column, pick in ((1, lambda r: r[2]), (3, lambda r: int(r[3]))):
        cells[("rating", column)] = (sum(pick(r) for r in rated) / len(rated) if rated else 0,
                                     len(rated), {r[1] for r in others}, len(others))
    paid = [f for f in facts.fees if _month(f[4]) == month]
    others_fees = [f for f in paid if viewer not in (f[0], f[1])]
    cells[("fees", 1)] = (sum(f[2] for f in paid), len(paid), {f[1] for f in others_fees},
                          len({f[3] for f in others_fees}))
    return cells


class Cluster_:
    """A fresh cluster per example, written row by row."""

    def __init__(self, session: Session, size: int, k: int) -> None:
        n = next(_serial)
        self.session = session
        cluster = Cluster(name=f"Prop {n}", currency="CAD", default_locale="en_CA",
                          timezone=TZ, created_at=START)
        session.add(cluster)
        session.flush()
        assert cluster.id is not None
        self.cluster = cluster
        coordinator = User(email=f"coord{n}@prop.test", name="Coordinator", password_hash="x",
                           cluster_id=cluster.id, role=Role.COORDINATOR, created_at=START)
        session.add(coordinator)
        session.flush()
        self.agreement = Agreement(
            cluster_id=cluster.id, version=1, purpose="Share.", referral_fee_bp=500,
            platform_fee_bp=100, sunset_on=date(2030, 1, 1), exit_notice_days=30,
            information_rules="No prices.", aggregate_min_group=k,
            created_by_id=coordinator.id, created_at=START)  # type: ignore[arg-type]
        session.add(self.agreement)
        self.members: list[int] = []
        self.owners: list[User] = []
        for i in range(size):
            member = Member(cluster_id=cluster.id, name=f"Member {i}", created_at=START)
            session.add(member)
            session.flush()
            assert member.id is not None
            owner = User(email=f"m{i}-{n}@prop.test", name=f"Owner {i}", password_hash="x",
                         cluster_id=cluster.id, member_id=member.id, role=Role.OWNER,
                         created_at=START)
            session.add(owner)
            self.members.append(member.id)
            self.owners.append(owner)
        session.commit()
        self.poster_user = {m: u for m, u in zip(self.members, self.owners, strict=True)}

    def post(self, poster: int, value: int, created: datetime, starts_on: date) -> int:
        job = OverflowJob(
            cluster_id=self.cluster.id, poster_member_id=poster,  # type: ignore[arg-type]
            posted_by_id=self.poster_user[poster].id, title="Job", description="Work.",  # type: ignore[arg-type]
            mode="handoff", site_lat=43.65, site_lng=-79.38, approx_lat=43.66,
            approx_lng=-79.39, locality="Toronto", address="1 Main St", customer_name="X",
            customer_contact="", crew_days=2, starts_on=starts_on, ends_on=starts_on,
            value_minor=value, currency="CAD", created_at=created)
        self.session.add(job)
        self.session.commit()
        assert job.id is not None
        return job.id

    def sign(self, job_id: int, poster: int, winners: tuple[int, ...], value: int,
             when: datetime, by_bid: bool) -> None:
        bid_id = None
        if by_bid:
            placed = Bid(job_id=job_id, member_id=winners[0],
                         placed_by_id=self.poster_user[winners[0]].id, price_minor=value,  # type: ignore[arg-type]
                         crew_size=2, earliest_start=when.date(), is_joint=len(winners) > 1,
                         status=BidStatus.SUBMITTED.value, created_at=when, submitted_at=when)
            self.session.add(placed)
            self.session.flush()
            bid_id = placed.id
        contract = JobContract(
            job_id=job_id, cluster_id=self.cluster.id, poster_member_id=poster,  # type: ignore[arg-type]
            bid_id=bid_id,
            value_minor=value, currency="CAD", referral_fee_bp=500, referral_fee_minor=0,
            platform_fee_bp=100, agreement_id=self.agreement.id, signed_at=when)  # type: ignore[arg-type]
        self.session.add(contract)
        self.session.flush()
        shares = [10_000 // len(winners)] * len(winners)
        shares[0] += 10_000 - sum(shares)
        for winner, share in zip(winners, shares, strict=True):
            self.session.add(ContractParty(contract_id=contract.id, member_id=winner,  # type: ignore[arg-type]
                                           share_bp=share))
        job = self.session.get(OverflowJob, job_id)
        assert job is not None
        job.status = JobStatus.AWARDED.value
        self.session.commit()

    def rate(self, job_id: int, rater: int, ratee: int, score: int, on_time: bool,
             when: datetime) -> None:
        self.session.add(JobRating(job_id=job_id, rater_member_id=rater, ratee_member_id=ratee,
                                   score=score, on_time=on_time, created_at=when))
        self.session.commit()

    def fee(self, booker: int, owner: int, amount: int, booking: int, when: datetime) -> None:
        source = EntrySource.BOOKING.value
        self.session.add(LedgerEntry(
            cluster_id=self.cluster.id, source=source, source_id=booking,  # type: ignore[arg-type]
            entry_key=entry_key(source, booking, booker, owner), payer_member_id=booker,
            payee_member_id=owner, amount_minor=amount, currency="CAD",
            month=ledger_month(self.cluster, when), created_at=when))
        self.session.commit()

    def read(self, viewer: int, now: datetime) -> dict[str, Figure]:
        """The three charts with pooled cells, as the page and the CSVs get them."""
        user = self.poster_user[viewer]
        scope = scope_for(self.session, user, CLUSTER)
        months = month_range(self.cluster, now, MONTHS[0], MONTHS[-1])
        return {name: figure(self.session, name, scope, months, now)
                for name in ("value", "fees", "rating")}


# One event: (kind, moment in hours from 1 March, who, whom, amount, delay in days,
# start date offset in days from posting, score, on time).
EVENT = st.tuples(
    st.sampled_from(["handoff", "window", "untaken", "fee"]),
    st.integers(0, 75 * 24), st.integers(0, 5), st.integers(0, 5),
    st.integers(1, 50).map(lambda n: n * 1_000), st.integers(0, 40), st.integers(-5, 40),
    st.one_of(st.none(), st.integers(1, 5)), st.booleans(), st.booleans())


def _actions(events: list[tuple], members: list[int]) -> list[tuple[datetime, str, tuple]]:
    """The events as timed steps, oldest first."""
    steps: list[tuple[datetime, str, tuple]] = []
    for n, (kind, hours, who, whom, amount, delay, start, score, on_time, joint) in \
            enumerate(events):
        poster = members[who % len(members)]
        winner = members[whom % len(members)]
        if winner == poster:
            winner = members[(members.index(poster) + 1) % len(members)]
        posted = START + timedelta(hours=hours)
        starts_on = (posted.astimezone(ZoneInfo(TZ)) + timedelta(days=start)).date()
        if kind == "fee":
            steps.append((posted, "fee", (winner, poster, amount, n)))
            continue
        steps.append((posted, "post", (n, poster, amount, starts_on)))
        if kind == "untaken":
            continue
        winners: tuple[int, ...] = (winner,)
        if joint:
            third = next((m for m in members if m not in (poster, winner)), None)
            winners = (winner, third) if third is not None else winners
        signed = posted + timedelta(days=delay if kind == "window" else 0, hours=1)
        price = amount - 500 if kind == "window" else amount  # a bid below the job's value
        steps.append((signed, "sign", (n, poster, winners, price, kind == "window")))
        if score is not None:
            steps.append((signed + timedelta(days=3), "rate", (n, poster, winner, score,
                                                               on_time)))
    return sorted(steps, key=lambda step: step[0])


def _check(figs: dict[str, Figure], facts: Facts, viewer: int, now: datetime, k: int,
           seen: dict[tuple[str, str, int], object]) -> int:
    """Check every cell; the number of non-zero cells published."""
    published = 0
    for chart, columns in (("value", (1, 2)), ("fees", (1,)), ("rating", (1, 3))):
        fig = figs[chart]
        for row in fig.rows:
            month = str(row[0])
            cells = expected(facts, viewer, month)
            for column in columns:
                value = row[column]
                key = (chart, month, column)
                if value is None:
                    assert key not in seen, (key, "published, then withheld")
                    continue
                total, rows, others, hidden = cells[(chart, column)]
                assert _month_end(month) <= now, (key, "a running month")
                if rows:
                    assert hidden == 0 or (len(others) >= k and hidden >= k), \
                        (key, others, hidden)
                    assert value == pytest.approx(total), key
                else:
                    assert value == 0, key
                if key in seen:
                    assert seen[key] == value, (key, seen[key], value)
                seen[key] = value
                published += bool(value)
    return published


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(size=st.integers(3, 5), k=st.integers(2, 3),
       events=st.lists(EVENT, min_size=1, max_size=12))
@example(size=4, k=2, events=[  # a busy March: enough for every cell, and a late award
    ("handoff", 24, 0, 1, 10_000, 0, 5, 4, True, False),
    ("handoff", 48, 1, 2, 11_000, 0, 5, 5, False, False),
    ("handoff", 72, 2, 3, 12_000, 0, 5, 3, True, False),
    ("handoff", 96, 3, 0, 13_000, 0, 5, 2, True, False),
    ("window", 600, 0, 2, 20_000, 10, 20, None, True, False),
    ("untaken", 100, 0, 0, 7_000, 0, 2, None, True, False),
    ("untaken", 110, 1, 0, 8_000, 0, 2, None, True, False),
    ("untaken", 120, 2, 0, 9_000, 0, 2, None, True, False),
    ("fee", 130, 0, 1, 3_000, 0, 0, None, True, False),
    ("fee", 140, 1, 2, 4_000, 0, 0, None, True, False),
    ("fee", 150, 2, 3, 5_000, 0, 0, None, True, False),
    ("fee", 160, 3, 0, 6_000, 0, 0, None, True, False)])
def test_published_cluster_cells_hide_k_members_and_never_move(
        session: Session, size: int, k: int, events: list[tuple]) -> None:
    world = Cluster_(session, size, k)
    facts = Facts()
    seen: dict[int, dict[tuple[str, str, int], object]] = {m: {} for m in world.members}
    jobs: dict[int, int] = {}
    steps = _actions(events, world.members)
    for when, kind, args in steps:
        if kind == "post":
            n, poster, value, starts_on = args
            jobs[n] = world.post(poster, value, when, starts_on)
            facts.jobs[jobs[n]] = (poster, value, when, starts_on)
        elif kind == "sign":
            n, poster, winners, price, by_bid = args
            world.sign(jobs[n], poster, winners, price, when, by_bid)
            facts.contracts[jobs[n]] = Contract(jobs[n], poster, winners, price, when, by_bid)
        elif kind == "rate":
            n, poster, winner, score, on_time = args
            world.rate(jobs[n], poster, winner, score, on_time, when)
            facts.ratings.append((poster, winner, score, on_time, when))
        else:
            booker, owner, amount, booking = args
            world.fee(booker, owner, amount, booking, when)
            facts.fees.append((booker, owner, amount, booking, when))
        for viewer in world.members:
            _check(world.read(viewer, when), facts, viewer, when, k, seen[viewer])
    published = sum(_check(world.read(viewer, LATER), facts, viewer, LATER, k, seen[viewer])
                    for viewer in world.members)  # and once every month is over
    event("some cells published" if published else "every cell withheld or zero")
