"""Cluster totals a member may see: pools of other members' money and ratings that
cannot be taken apart (DESIGN, "Barrier, read models and channels"; issue #16).

A member looking at the whole cluster must not learn one rival's figure -- a
winning bid price, one partner's fees or ratings -- by reading a total, by
taking its own share out of it, or by reading twice and subtracting.  So, in
that view, every cell that sums other members' money (contract value kept or
not taken, equipment fees, revenue received, paid and net) or ratings (average
rating, on-time share) is published only when

(a) its month is over in the cluster's time zone, and
(b) the rows the viewer cannot know by itself -- those its own business is
    not part of, as poster, party, owner, booker, payer, payee, rater or
    ratee -- number at least k and come from at least k members other than
    the viewer, counted on the side whose figure it is (the winners of a
    contract, the poster of a job nobody took, the owner earning a fee, the
    member receiving or paying, the member rated).  k is the agreement's
    information rule (`Agreement.aggregate_min_group`, 3 by default).

Otherwise the cell is withheld, with the reason; the coordinator's view and a
member's view of its own business do not come through here.

Why no two reads can be subtracted into one contract: a published cell is a
function of rows that can no longer change once its month is over.  Each row
is filed under a month fixed by a moment that has already passed when the
month closes, never by a later event:

* contract value kept counts in the month the contract was *signed* (contracts
  are immutable) -- not, as the coordinator's view does, in the month the job
  was posted, which would let a June award change May's figure;
* a job's value counts as not taken in the month of the moment it became
  overdue (the end of its start date, or its posting if later) when no
  contract was signed before that moment -- whatever happens to it later,
  and without its status, which a later cancellation would change;
* fees count in their ledger month: an entry is written into the month it
  happens in or a later open one, never into a month that is over;
* revenue counts only for approved months, which are locked for good;
* ratings count in the month they were given; they are never edited.

So between two reads a published cell either did not exist yet (its month
was running, or it was withheld) or has the same value; and a cell that
appears appears whole, a sum over at least k of other members' rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func

from marketplace.dashboard.access import Scope
from marketplace.dashboard.periods import MonthRange
from marketplace.errors import N_
from marketplace.jobs.models import ContractParty, JobContract, JobRating, OverflowJob
from marketplace.ledger.models import EntrySource, LedgerEntry

#: Shown in a withheld cell (the reason goes with it).
TOO_FEW = N_("too few to show")
#: The rule, in every pooled chart's hint.
RULE = N_("Cluster totals are shown only for months that are over, and only when they "
          "combine at least %(k)d other members and %(k)d contracts (bookings, ratings).")
MONTH_RUNNING = N_("the month is not over yet")
FEW_MEMBERS = N_("fewer than %(k)d other members")
# What each cell adds up, as its reason names them.
CONTRACTS = N_("fewer than %(k)d contracts")
JOBS = N_("fewer than %(k)d jobs")
BOOKINGS = N_("fewer than %(k)d bookings")
ENTRIES = N_("fewer than %(k)d ledger entries")
RATINGS = N_("fewer than %(k)d ratings")

FEE_SOURCES = (EntrySource.BOOKING.value, EntrySource.CANCELLATION_FEE.value)
FEE_REFUND = EntrySource.BOOKING_REFUND.value
TRANSFER_MECHANICS = (EntrySource.PAYOUT.value, EntrySource.REVERSAL.value)


@dataclass(frozen=True)
class Withheld:
    """Why a cell is not shown: a msgid and its parameters."""

    reason: str
    k: int

    @property
    def params(self) -> dict[str, int]:
        return {"k": self.k}


@dataclass
class Pool:
    """One cell's rows: their sum and number (all of them, the viewer's included), and
    the rows the viewer is not part of with the other members they come from."""

    viewer: int | None
    total: int = 0
    count: int = 0
    others: set[int] = field(default_factory=set)
    hidden: set[object] = field(default_factory=set)

    def add(self, amount: int, items: Sequence[object], contributors: Iterable[int | None],
            involved: Iterable[int | None]) -> None:
        """Rows worth `amount` together: `items` (contracts, bookings ...), whose figure
        they are (`contributors`) and every member taking part in them (`involved`)."""
        self.total += amount
        self.count += len(items)
        if self.viewer in set(involved):
            return
        self.hidden.update(items)
        self.others.update(m for m in contributors if m is not None and m != self.viewer)

    @property
    def average(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass(frozen=True)
class Rule:
    """The information rule for one viewer, read at `now`."""

    k: int
    viewer: int | None
    now: datetime

    @classmethod
    def of(cls, scope: Scope, now: datetime) -> Rule:
        return cls(scope.min_group, scope.viewer_member_id, now)

    def pool(self) -> Pool:
        return Pool(self.viewer)

    def withheld(self, months: MonthRange, month: str, pool: Pool, items: str
                 ) -> Withheld | None:
        """Why `pool` may not be shown for `month` (None: it may).  `items` names what
        it adds up, for the reason.  A month with no rows at all shows its zero."""
        end = months.starts[months.months.index(month) + 1]
        if end > self.now:
            return Withheld(MONTH_RUNNING, self.k)
        if pool.count == 0:
            return None
        if len(pool.others) < self.k:
            return Withheld(FEW_MEMBERS, self.k)
        if len(pool.hidden) < self.k:
            return Withheld(items, self.k)
        return None


def _pools(rule: Rule, months: MonthRange, count: int = 1) -> dict[str, list[Pool]]:
    return {m: [rule.pool() for _ in range(count)] for m in months.months}


def _overdue_at(starts_on: date, timezone: str) -> datetime:
    """The end of a job's start date where the cluster is: from then on it is overdue."""
    day = starts_on + timedelta(days=1)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def value_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
                ) -> dict[str, tuple[Pool, Pool]]:
    """Per month: the value of contracts signed in it (the winners' figure), and of jobs
    that became overdue in it with no contract signed by then (the posters')."""
    currency, timezone = scope.cluster.currency, scope.cluster.timezone
    pools = _pools(rule, months, 2)
    parties: dict[int, tuple[datetime, int, int, set[int]]] = {}
    for contract, signed_at, value, poster, party in session.execute(
            sa_select(col(JobContract.id), col(JobContract.signed_at),
                      col(JobContract.value_minor), col(JobContract.poster_member_id),
                      col(ContractParty.member_id))
            .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
            .where(col(JobContract.cluster_id) == scope.cluster_id,
                   col(JobContract.currency) == currency,
                   col(JobContract.signed_at) >= months.start,
                   col(JobContract.signed_at) < months.end)):
        parties.setdefault(contract, (signed_at, value, poster, set()))[3].add(party)
    for contract, (signed_at, value, poster, winners) in parties.items():
        month = months.month_of(signed_at)
        if month is not None:
            pools[month][0].add(value, [("contract", contract)], winners, {poster, *winners})
    first_start = months.first_date - timedelta(days=1)
    for job, created, starts_on, value, poster, signed_at in session.execute(
            sa_select(col(OverflowJob.id), col(OverflowJob.created_at),
                      col(OverflowJob.starts_on), col(OverflowJob.value_minor),
                      col(OverflowJob.poster_member_id), col(JobContract.signed_at))
            .outerjoin(JobContract, col(JobContract.job_id) == OverflowJob.id)
            .where(col(OverflowJob.cluster_id) == scope.cluster_id,
                   col(OverflowJob.currency) == currency,
                   col(OverflowJob.created_at) < months.end,
                   col(OverflowJob.starts_on) >= first_start,
                   col(OverflowJob.starts_on) < months.end_date)):
        overdue = max(created, _overdue_at(starts_on, timezone))
        month = months.month_of(overdue)
        if month is not None and (signed_at is None or signed_at >= overdue):
            pools[month][1].add(value, [("job", job)], (poster,), (poster,))
    return {m: (kept, untaken) for m, (kept, untaken) in pools.items()}


def fee_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
              ) -> dict[str, Pool]:
    """Per ledger month: booking and late-cancellation fees owed to owners, less
    refunded fees (the owners' figure), booking by booking."""
    pools = _pools(rule, months)
    refund = col(LedgerEntry.source) == FEE_REFUND
    owner = case((refund, col(LedgerEntry.payer_member_id)),
                 else_=col(LedgerEntry.payee_member_id))
    booker = case((refund, col(LedgerEntry.payee_member_id)),
                  else_=col(LedgerEntry.payer_member_id))
    net = func.sum(case((refund, -col(LedgerEntry.amount_minor)),
                        else_=col(LedgerEntry.amount_minor)))
    for month, booking, owner_id, booker_id, amount in session.execute(
            sa_select(col(LedgerEntry.month), col(LedgerEntry.source_id), owner, booker, net)
            .where(col(LedgerEntry.cluster_id) == scope.cluster_id,
                   col(LedgerEntry.currency) == scope.cluster.currency,
                   col(LedgerEntry.month) >= months.first,
                   col(LedgerEntry.month) <= months.last,
                   col(LedgerEntry.source).in_((*FEE_SOURCES, FEE_REFUND)))
            .group_by(col(LedgerEntry.month), col(LedgerEntry.source_id), owner, booker)):
        if month in pools:
            pools[month][0].add(int(amount), [("booking", booking)], (owner_id,),
                                (owner_id, booker_id))
    return {m: p[0] for m, p in pools.items()}


def revenue_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule,
                  approved: set[str]) -> dict[str, tuple[Pool, Pool]]:
    """Per approved month: what members received (the payees' figure) and paid (the
    payers'), entry by entry, the platform's side left out as the coordinator's is."""
    pools = _pools(rule, months, 2)
    payer, payee = col(LedgerEntry.payer_member_id), col(LedgerEntry.payee_member_id)
    for month, payer_id, payee_id, amount, entries in session.execute(
            sa_select(col(LedgerEntry.month), payer, payee,
                      func.sum(LedgerEntry.amount_minor), func.count())
            .where(col(LedgerEntry.cluster_id) == scope.cluster_id,
                   col(LedgerEntry.currency) == scope.cluster.currency,
                   col(LedgerEntry.month).in_(sorted(approved)),
                   col(LedgerEntry.source).not_in(TRANSFER_MECHANICS))
            .group_by(col(LedgerEntry.month), payer, payee)):
        if month not in pools:
            continue
        received, paid = pools[month]
        items = [("entry", payer_id, payee_id, n) for n in range(int(entries))]
        if payee_id is not None:
            received.add(int(amount), items, (payee_id,), (payer_id, payee_id))
        if payer_id is not None:
            paid.add(int(amount), items, (payer_id,), (payer_id, payee_id))
    return {m: (received, paid) for m, (received, paid) in pools.items()}


def rating_pools(session: Session, scope: Scope, months: MonthRange, rule: Rule
                 ) -> dict[str, tuple[Pool, Pool]]:
    """Per month given: the scores and the on-time answers (the rated member's figure)."""
    pools = _pools(rule, months, 2)
    for rating, created, rater, ratee, score, on_time in session.execute(
            sa_select(col(JobRating.id), col(JobRating.created_at),
                      col(JobRating.rater_member_id), col(JobRating.ratee_member_id),
                      col(JobRating.score), col(JobRating.on_time))
            .join(OverflowJob, col(OverflowJob.id) == JobRating.job_id)
            .where(col(OverflowJob.cluster_id) == scope.cluster_id,
                   col(JobRating.created_at) >= months.start,
                   col(JobRating.created_at) < months.end)):
        month = months.month_of(created)
        if month is None:
            continue
        scores, punctual = pools[month]
        scores.add(score, [("rating", rating)], (ratee,), (rater, ratee))
        punctual.add(int(bool(on_time)), [("rating", rating)], (ratee,), (rater, ratee))
    return {m: (scores, punctual) for m, (scores, punctual) in pools.items()}

