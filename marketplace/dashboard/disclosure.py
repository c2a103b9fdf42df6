"""Cluster totals a member may see: pools of other members' money and ratings that
cannot be taken apart (DESIGN, "Barrier, read models and channels"; issue #16).

A member looking at the whole cluster must not learn one rival's figure -- a
winning bid price, one partner's fees or ratings -- by reading a total, by
taking out of it what it knows already, or by reading twice and subtracting.
So, in that view, every cell that sums other members' money (contract value
kept or not taken, equipment fees, revenue received, paid and net) or ratings
(average rating, on-time share) is published only when

(a) its month is over in the cluster's time zone, and
(b) the amounts in it that the viewer cannot know -- see "What every member
    knows" -- are none at all (the total is then made of the viewer's own
    amounts and public ones: it could add it up itself), or number at least k
    and come from at least k members other than the viewer, counted on the
    side whose figure it is (the winners of a contract, the owners earning a
    fee, the member receiving or paying, the member rated).  k is the
    agreement's information rule (`Agreement.aggregate_min_group`, 3 by
    default).

Otherwise the cell is withheld, with the reason; the coordinator's view and a
member's view of its own business do not come through here.

What every member knows
-----------------------
An amount is *public* when any member can work it out, at any time, from what
the barrier lets every member receive (`barrier.TABLE`: the job card and its
outcome go to every member of the cluster) and from the agreement it accepted.
Public amounts hide nothing: a total of two hand-offs and one award is, to a
rival that read the board, the winning bid.  So they never count towards k.

* A hand-off's contract is public: its value is the job's value on the card
  (`claim_job` signs at that value, and who claimed it is the card's outcome);
  its referral and platform fees are that value times the rates of the
  agreement in force; its only party gets the rest.  So are its ledger entries.
* A job nobody took is public: value, poster, start date and status are on its
  card.
* A contract priced by a bid is not: bid prices reach only the poster and the
  bid's parties (`barrier.BID`), a joint bid's shares only its parties.  Nor are
  its fees and shares.
* A booking is not, though machines' rates are listed: the calendar shows the
  others only that a slot is taken -- not by whom (a co-owner in its custody
  period pays nothing), not whether adjacent slots are one booking or two (the
  day rate applies per booking), not the rate it was booked at (owners change
  rates) -- and a cancellation, its late fee or refund, and a damage fee leave
  no trace there.
* Coordinators' adjustments, customer refunds, dispute holds and ratings are
  known to their parties only.

What publishing a public total can tell is at most *when* something public
happened (the month a hand-off was claimed, that an award came after the start
date), never an amount.  An item the viewer takes part in (as poster, party,
owner, booker, payer, payee, rater or ratee) it knows; an item of a sum worth
nothing (a booking cancelled in time) hides nothing.  Neither counts.

Revenue counts facts, not ledger entries: a contract's referral fee, platform
fee and each party's share are one contract, a booking's fee, refund, late and
damage fees one booking -- else one joint contract paying three members would
pass for three amounts.

Why no read can be subtracted from another
------------------------------------------
What a member sees of a closed month is fixed on the first read: each figure
is computed once and stored (`models.ClusterSnapshot`, one row per cluster,
month and figure, written with INSERT ... ON CONFLICT DO NOTHING, so two first
reads at once store one and both serve it), and every later read serves the
stored figure.  A fact filed late, a new time zone (which moves rows near a
month's edge), another range: none of them changes a number a member has seen.
The stored row keeps, for the items only their parties know, who they belong
to -- not their amounts -- so the rule still applies per viewer and per k (a
new agreement may raise or lower k; it shows or hides the same number).  The
coordinator's live view is computed from the rows as before.

The first read files each row under a month fixed by a moment that is over
when the month closes, the same whatever range was asked for:

* contract value kept counts in the month the contract was *signed* (contracts
  are immutable) -- not, as the coordinator's view does, in the month the job
  was posted, which would let a June award change May's figure;
* a job's value counts as not taken in the month of the moment it became
  overdue (the end of its start date, or its posting if later) when no
  contract was signed before that moment;
* fees count in their ledger month;
* revenue counts only for approved months, which are locked for good;
* ratings count in the month they were given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Insert, or_
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, func

from marketplace.dashboard.access import Scope
from marketplace.dashboard.models import ClusterSnapshot
from marketplace.dashboard.periods import MonthRange
from marketplace.db import on_postgresql
from marketplace.equipment.models import Booking
from marketplace.errors import N_
from marketplace.jobs.models import ContractParty, JobContract, JobRating, OverflowJob
from marketplace.ledger.models import EntrySource, LedgerEntry

#: Shown in a withheld cell (the reason goes with it).
TOO_FEW = N_("too few to show")
#: The rule, in every pooled chart's hint.
RULE = N_("Cluster totals are shown only for months that are over, and only when the "
          "amounts in them that only their parties know (bid prices, bookings, "
          "adjustments, ratings) come from at least %(k)d other members and number at "
          "least %(k)d, or are none: hand-offs and untaken jobs are on the board for all. "
          "A month's figures never change once shown.")
MONTH_RUNNING = N_("the month is not over yet")
FEW_MEMBERS = N_("fewer than %(k)d other members")
# What each cell adds up, as its reason names them.
CONTRACTS = N_("fewer than %(k)d contracts")
JOBS = N_("fewer than %(k)d jobs")
BOOKINGS = N_("fewer than %(k)d bookings")
FACTS = N_("fewer than %(k)d contracts, bookings or adjustments")
RATINGS = N_("fewer than %(k)d ratings")

FEE_SOURCES = (EntrySource.BOOKING.value, EntrySource.CANCELLATION_FEE.value)
FEE_REFUND = EntrySource.BOOKING_REFUND.value
TRANSFER_MECHANICS = (EntrySource.PAYOUT.value, EntrySource.REVERSAL.value)
#: The fact a ledger entry belongs to, for the sources several entries share a fact in
#: (others are a fact of their own kind: an adjustment, a customer refund, a dispute).
CONTRACT = "contract"
BOOKING = "booking"
FACT_OF = {
    EntrySource.REFERRAL_FEE.value: CONTRACT, EntrySource.PLATFORM_FEE.value: CONTRACT,
    EntrySource.JOB_SHARE.value: CONTRACT, EntrySource.BOOKING.value: BOOKING,
    EntrySource.BOOKING_REFUND.value: BOOKING,
    EntrySource.CANCELLATION_FEE.value: BOOKING, EntrySource.DAMAGE_FEE.value: BOOKING,
    # A fee passed on at a co-owner's exit, and its return: the booking's own fact, which
    # its booker knows (it paid the fee) though it is no party to these entries.
    EntrySource.BOOKING_HANDOVER.value: BOOKING,
    EntrySource.BOOKING_HANDOVER_REFUND.value: BOOKING,
    EntrySource.DISPUTE_HOLD.value: "dispute", EntrySource.DISPUTE_RELEASE.value: "dispute",
}

# The figures stored per closed month (`ClusterSnapshot.figure`).
KEPT, UNTAKEN, FEES = "kept", "untaken", "fees"
RECEIVED, PAID, SCORES, ON_TIME = "received", "paid", "scores", "on_time"
FIGURES = (KEPT, UNTAKEN, FEES, RECEIVED, PAID, SCORES, ON_TIME)

Members = frozenset[int]


@dataclass(frozen=True)
class Withheld:
    """Why a cell is not shown: a msgid and its parameters."""

    reason: str
    k: int

    @property
    def params(self) -> dict[str, int]:
        return {"k": self.k}


def _members(ids: Iterable[int | None]) -> Members:
    return frozenset(m for m in ids if m is not None)


@dataclass
class Pool:
    """One cell: the sum over its items (contracts, jobs, bookings, facts, ratings) and
    their number, and for each item only its parties know, whose figure it is and who
    takes part in it.  `sums`: a sum of money, where an item worth nothing hides
    nothing (an average's items all count)."""

    total: int = 0
    count: int = 0
    hidden: list[tuple[Members, Members]] = field(default_factory=list)
    sums: bool = True

    def add(self, amount: int, contributors: Iterable[int | None],
            involved: Iterable[int | None], *, public: bool) -> None:
        """One item worth `amount`: whose figure it is (`contributors`), every member
        taking part in it (`involved`), and whether every member knows it anyway."""
        self.total += amount
        self.count += 1
        if not public and not (self.sums and amount == 0):
            self.hidden.append((_members(contributors), _members(involved)))

    def hidden_from(self, viewer: int | None) -> tuple[int, set[int]]:
        """The items `viewer` cannot know, and the other members they come from."""
        items = [who for who, involved in self.hidden if viewer not in involved]
        return len(items), {m for who in items for m in who if m != viewer}

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None

    def stored(self) -> list[list[list[int]]]:
        """`hidden` as the snapshot keeps it (JSON, in a stable order)."""
        return sorted([sorted(who), sorted(involved)] for who, involved in self.hidden)

    @classmethod
    def of(cls, row: ClusterSnapshot) -> Pool:
        return cls(int(row.total), row.count,
                   [(frozenset(who), frozenset(involved)) for who, involved in row.hidden])


@dataclass(frozen=True)
class Rule:
    """The information rule for one viewer, read at `now`."""

    k: int
    viewer: int | None
    now: datetime

    @classmethod
    def of(cls, scope: Scope, now: datetime) -> Rule:
        return cls(scope.min_group, scope.viewer_member_id, now)

    def closed(self, months: MonthRange) -> set[str]:
        """The range's months that are over."""
        return {m for m, end in zip(months.months, months.starts[1:], strict=True)
                if end <= self.now}

    def withheld(self, months: MonthRange, month: str, pool: Pool, items: str
                 ) -> Withheld | None:
        """Why `pool` may not be shown for `month` (None: it may).  `items` names what
        it adds up, for the reason."""
        if month not in self.closed(months):
            return Withheld(MONTH_RUNNING, self.k)
        hidden, others = pool.hidden_from(self.viewer)
        if hidden == 0:
            return None
        if len(others) < self.k:
            return Withheld(FEW_MEMBERS, self.k)
        if hidden < self.k:
            return Withheld(items, self.k)
        return None


Pools = dict[str, tuple[Pool, ...]]


def _pools(months: MonthRange, count: int, sums: bool = True) -> Pools:
    return {m: tuple(Pool(sums=sums) for _ in range(count)) for m in months.months}


# --- snapshots ---------------------------------------------------------------------------


def _stored(session: Session, cluster_id: int, months: set[str], names: Sequence[str]
            ) -> dict[tuple[str, str], Pool]:
    return {(row.month, row.figure): Pool.of(row) for row in session.execute(
        sa_select(ClusterSnapshot).where(col(ClusterSnapshot.cluster_id) == cluster_id,
                                         col(ClusterSnapshot.month).in_(sorted(months)),
                                         col(ClusterSnapshot.figure).in_(names))).scalars()}


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING: a row another read stored first stands."""
    insert = postgresql.insert if on_postgresql(session) else sqlite.insert
    return insert(ClusterSnapshot).values(rows).on_conflict_do_nothing(
        index_elements=["cluster_id", "month", "figure"])


def _frozen(session: Session, scope: Scope, months: MonthRange, rule: Rule,
            names: Sequence[str], compute: Callable[[], Pools], closed: set[str], *,
            running: bool = False) -> Pools:
    """Per month, the pools of `names`: a closed month's as stored on its first read
    (stored and committed now, from `compute`, if it is this one), a running month's
    from `compute` when `running` (its counts are shown), else empty (never shown)."""
    stored = _stored(session, scope.cluster_id, closed, names) if closed else {}
    missing = [(m, i, name) for m in sorted(closed) for i, name in enumerate(names)
               if (m, name) not in stored]
    live = compute() if missing or (running and len(closed) < len(months.months)) else None
    if missing:
        assert live is not None
        session.execute(_insert_new(session, [
            {"cluster_id": scope.cluster_id, "month": m, "figure": name,
             "total": live[m][i].total, "count": live[m][i].count,
             "hidden": live[m][i].stored(), "timezone": months.timezone,
             "created_at": rule.now} for m, i, name in missing]))
        session.commit()
        stored = _stored(session, scope.cluster_id, closed, names)
    return {m: tuple(stored[(m, name)] for name in names) if m in closed
            else live[m] if live is not None else tuple(Pool() for _name in names)
            for m in months.months}


# --- the figures -------------------------------------------------------------------------


def _overdue_at(starts_on: date, timezone: str) -> datetime:
    """The end of a job's start date where the cluster is: from then on it is overdue."""
    day = starts_on + timedelta(days=1)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def live_value_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
                     ) -> Pools:
    """Per month, from the rows: the value of contracts signed in it (the winners'
    figure; a hand-off's is public), and of jobs that became overdue in it with no
    contract signed by then (the posters'; public)."""
    currency, timezone = scope.cluster.currency, scope.cluster.timezone
    pools = _pools(months, 2)
    signed: dict[int, tuple[datetime, int, int, bool, set[int]]] = {}
    for contract, signed_at, value, poster, bid_id, party in session.execute(
            sa_select(col(JobContract.id), col(JobContract.signed_at),
                      col(JobContract.value_minor), col(JobContract.poster_member_id),
                      col(JobContract.bid_id), col(ContractParty.member_id))
            .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
            .where(col(JobContract.cluster_id) == scope.cluster_id,
                   col(JobContract.currency) == currency,
                   col(JobContract.signed_at) >= months.start,
                   col(JobContract.signed_at) < months.end)):
        signed.setdefault(contract, (signed_at, value, poster, bid_id is None, set()))[4] \
            .add(party)
    for signed_at, value, poster, handoff, winners in signed.values():
        month = months.month_of(signed_at)
        if month is not None:
            pools[month][0].add(value, winners, {poster, *winners}, public=handoff)
    # Overdue in the range: posted before its end, and posted in it or starting no
    # earlier than the day before it (whatever the range, the same jobs per month).
    first_start = months.first_date - timedelta(days=1)
    for created, starts_on, value, poster, signed_at in session.execute(
            sa_select(col(OverflowJob.created_at), col(OverflowJob.starts_on),
                      col(OverflowJob.value_minor), col(OverflowJob.poster_member_id),
                      col(JobContract.signed_at))
            .outerjoin(JobContract, col(JobContract.job_id) == OverflowJob.id)
            .where(col(OverflowJob.cluster_id) == scope.cluster_id,
                   col(OverflowJob.currency) == currency,
                   col(OverflowJob.created_at) < months.end,
                   col(OverflowJob.starts_on) < months.end_date,
                   or_(col(OverflowJob.created_at) >= months.start,
                       col(OverflowJob.starts_on) >= first_start))):
        overdue = max(created, _overdue_at(starts_on, timezone))
        month = months.month_of(overdue)
        if month is not None and (signed_at is None or signed_at >= overdue):
            pools[month][1].add(value, (poster,), (poster,), public=True)
    return pools


def value_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
                ) -> dict[str, tuple[Pool, Pool]]:
    """Per month: contract value kept and not taken (closed months as first read)."""
    pools = _frozen(session, scope, months, rule, (KEPT, UNTAKEN),
                    lambda: live_value_pools(session, scope, months, rule),
                    rule.closed(months))
    return {m: (kept, untaken) for m, (kept, untaken) in pools.items()}


def _live_fees(session: Session, scope: Scope, months: MonthRange) -> Pools:
    bookings: dict[tuple[str, int], tuple[list[int], set[int | None], set[int | None]]] = {}
    refund = col(LedgerEntry.source) == FEE_REFUND
    for month, booking, is_refund, payer, payee, amount in session.execute(
            sa_select(col(LedgerEntry.month), col(LedgerEntry.source_id), refund,
                      col(LedgerEntry.payer_member_id), col(LedgerEntry.payee_member_id),
                      func.sum(LedgerEntry.amount_minor))
            .where(col(LedgerEntry.cluster_id) == scope.cluster_id,
                   col(LedgerEntry.currency) == scope.cluster.currency,
                   col(LedgerEntry.month) >= months.first,
                   col(LedgerEntry.month) <= months.last,
                   col(LedgerEntry.source).in_((*FEE_SOURCES, FEE_REFUND)))
            .group_by(col(LedgerEntry.month), col(LedgerEntry.source_id), refund,
                      col(LedgerEntry.payer_member_id), col(LedgerEntry.payee_member_id))):
        net, owners, bookers = bookings.setdefault((month, booking), ([0], set(), set()))
        net[0] += -int(amount) if is_refund else int(amount)
        owners.add(payer if is_refund else payee)
        bookers.add(payee if is_refund else payer)
    live = _pools(months, 1)
    for (month, _booking), (net, owners, bookers) in sorted(bookings.items()):
        if month in live:
            live[month][0].add(net[0], owners, owners | bookers, public=False)
    return live


def fee_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
              ) -> dict[str, Pool]:
    """Per ledger month: booking and late-cancellation fees owed to owners, less
    refunded fees (the owners' figure), booking by booking, however many owners."""
    pools = _frozen(session, scope, months, rule, (FEES,),
                    lambda: _live_fees(session, scope, months), rule.closed(months))
    return {m: p[0] for m, p in pools.items()}


@dataclass
class _Fact:
    """One fact's entries in one month: what its members received and paid."""

    received: int = 0
    paid: int = 0
    payees: set[int] = field(default_factory=set)
    payers: set[int] = field(default_factory=set)


def _live_revenue(session: Session, scope: Scope, months: MonthRange, approved: set[str]
                  ) -> Pools:
    facts: dict[tuple[str, str, int], _Fact] = {}
    for month, source, source_id, payer, payee, amount in session.execute(
            sa_select(col(LedgerEntry.month), col(LedgerEntry.source),
                      col(LedgerEntry.source_id), col(LedgerEntry.payer_member_id),
                      col(LedgerEntry.payee_member_id), func.sum(LedgerEntry.amount_minor))
            .where(col(LedgerEntry.cluster_id) == scope.cluster_id,
                   col(LedgerEntry.currency) == scope.cluster.currency,
                   col(LedgerEntry.month).in_(sorted(approved)),
                   col(LedgerEntry.source).not_in(TRANSFER_MECHANICS))
            .group_by(col(LedgerEntry.month), col(LedgerEntry.source),
                      col(LedgerEntry.source_id), col(LedgerEntry.payer_member_id),
                      col(LedgerEntry.payee_member_id))):
        fact = facts.setdefault((month, FACT_OF.get(source, source), source_id), _Fact())
        if payee is not None:
            fact.received += int(amount)
            fact.payees.add(payee)
        if payer is not None:
            fact.paid += int(amount)
            fact.payers.add(payer)
    contracts = sorted({n for _m, kind, n in facts if kind == CONTRACT})
    handoffs = set(session.execute(sa_select(col(JobContract.id)).where(
        col(JobContract.id).in_(contracts), col(JobContract.bid_id).is_(None))).scalars()) \
        if contracts else set()
    bookings = sorted({n for _m, kind, n in facts if kind == BOOKING})
    bookers: dict[int, int] = {booking_id: member_id for booking_id, member_id in (
        session.execute(sa_select(col(Booking.id), col(Booking.member_id))
                        .where(col(Booking.id).in_(bookings))) if bookings else ())}
    live = _pools(months, 2)
    for (month, kind, number), fact in sorted(facts.items()):
        if month not in live:
            continue
        received, paid = live[month]
        public = kind == CONTRACT and number in handoffs
        involved = fact.payers | fact.payees
        if kind == BOOKING and number in bookers:  # the booker knows what it paid
            involved = involved | {bookers[number]}
        if fact.payees:
            received.add(fact.received, fact.payees, involved, public=public)
        if fact.payers:
            paid.add(fact.paid, fact.payers, involved, public=public)
    return live


def revenue_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule,
                  approved: set[str]) -> dict[str, tuple[Pool, Pool]]:
    """Per approved month: what members received (the payees' figure) and paid (the
    payers'), fact by fact, the platform's side left out as the coordinator's is."""
    pools = _frozen(session, scope, months, rule, (RECEIVED, PAID),
                    lambda: _live_revenue(session, scope, months, approved),
                    rule.closed(months) & approved)
    return {m: (received, paid) for m, (received, paid) in pools.items()}


def _live_ratings(session: Session, scope: Scope, months: MonthRange) -> Pools:
    live = _pools(months, 2, sums=False)
    for created, rater, ratee, score, on_time in session.execute(
            sa_select(col(JobRating.created_at), col(JobRating.rater_member_id),
                      col(JobRating.ratee_member_id), col(JobRating.score),
                      col(JobRating.on_time))
            .join(OverflowJob, col(OverflowJob.id) == JobRating.job_id)
            .where(col(OverflowJob.cluster_id) == scope.cluster_id,
                   col(JobRating.created_at) >= months.start,
                   col(JobRating.created_at) < months.end)):
        month = months.month_of(created)
        if month is None:
            continue
        scores, punctual = live[month]
        scores.add(score, (ratee,), (rater, ratee), public=False)
        punctual.add(int(bool(on_time)), (ratee,), (rater, ratee), public=False)
    return live


def rating_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
                 ) -> dict[str, tuple[Pool, Pool]]:
    """Per month given: the scores and the on-time answers (the rated member's figure);
    a running month's too, for its number of ratings."""
    pools = _frozen(session, scope, months, rule, (SCORES, ON_TIME),
                    lambda: _live_ratings(session, scope, months), rule.closed(months),
                    running=True)
    return {m: (scores, punctual) for m, (scores, punctual) in pools.items()}
