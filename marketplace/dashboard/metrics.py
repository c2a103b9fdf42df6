"""What the cooperation produced, month by month: jobs, machines, money, reliability.

Every measure is derived from the rows the rest of the app writes, never
stored, so it cannot disagree with them.  Each function reads one range of
rows (or one grouped aggregate) per question -- a fixed handful of queries
whatever the number of jobs, bookings, members or months -- and buckets them
in Python by the cluster's month (`periods.MonthRange`).  Money stays in
integer minor units of the cluster's currency; rows in another currency
(written before the coordinator changed it) are counted but not added.

The scope (`access.Scope`) says whose figures: the cluster's totals, or one
member's.  These functions trust it; `access.scope_for` is what checks the
viewer may see it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, case
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, func, select

from marketplace.clusters.agreements import cluster_today
from marketplace.dashboard.access import Scope
from marketplace.dashboard.periods import MonthRange
from marketplace.equipment.availability import Interval, merge, open_intervals
from marketplace.equipment.models import (
    AvailabilityWindow,
    Blackout,
    Booking,
    BookingStatus,
    Equipment,
    EquipmentOwner,
    ListingStatus,
)
from marketplace.jobs.models import ContractParty, JobContract, JobRating, JobStatus, OverflowJob
from marketplace.ledger.models import EntrySource, LedgerEntry, Settlement, SettlementStatus
from marketplace.persisted import stored_id

#: Bookings that really used the machine (or hold it still): not requests, refusals or
#: cancellations.
USED_BOOKINGS = (BookingStatus.CONFIRMED.value, BookingStatus.CHECKED_OUT.value,
                 BookingStatus.RETURNED.value, BookingStatus.CLOSED.value)
#: What owners earn from bookings: the fee and the late-cancellation fee.  A refunded fee
#: is taken off again; a damage fee pays for a repair and is not counted as earnings.
BOOKING_EARNINGS = (EntrySource.BOOKING.value, EntrySource.CANCELLATION_FEE.value)
FEES_PASSED_ON = (EntrySource.BOOKING_HANDOVER.value, EntrySource.BOOKING_HANDOVER_REFUND.value)
#: How Stripe-mode money reaches a member (a payout, a reversal of one): the movement of
#: money already counted, not revenue.
TRANSFER_MECHANICS = (EntrySource.PAYOUT.value, EntrySource.REVERSAL.value)
WAITING = (JobStatus.OPEN.value, JobStatus.WINDOW_CLOSED.value)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# --- overflow jobs -----------------------------------------------------------------------


@dataclass
class JobsMonth:
    """The jobs posted in a month and what became of them; contracts signed in it.

    Each job counts once, in the month it was posted: claimed (a hand-off a partner
    took), awarded (a bid window won by a bid or joint bid), not taken (cancelled,
    or nobody took it before its start date) or still waiting.  `contracts` counts
    by the month of signing: for a member, the jobs it won from partners.
    """

    month: str
    posted: int = 0
    claimed: int = 0
    awarded: int = 0
    not_taken: int = 0
    waiting: int = 0
    kept_minor: int = 0  # contract value of the taken jobs: it stayed inside the cluster
    turned_away_minor: int = 0  # value of the jobs nobody in the cluster took
    contracts: int = 0


def jobs_by_month(session: Session, scope: Scope, months: MonthRange, now: datetime
                  ) -> list[JobsMonth]:
    """Overflow jobs per month (for a member: the jobs it posted, and those it won)."""
    rows = {m: JobsMonth(m) for m in months.months}
    today = cluster_today(scope.cluster, now)
    currency = scope.cluster.currency
    posted = (sa_select(col(OverflowJob.created_at), col(OverflowJob.status),
                        col(OverflowJob.starts_on), col(OverflowJob.value_minor),
                        col(OverflowJob.currency), col(JobContract.bid_id),
                        col(JobContract.value_minor), col(JobContract.currency),
                        col(JobContract.id))
              .outerjoin(JobContract, col(JobContract.job_id) == OverflowJob.id)
              .where(col(OverflowJob.cluster_id) == scope.cluster_id,
                     col(OverflowJob.created_at) >= months.start,
                     col(OverflowJob.created_at) < months.end))
    if scope.member_id is not None:
        posted = posted.where(col(OverflowJob.poster_member_id) == scope.member_id)
    for (created, status, starts_on, value, job_currency, bid_id, contract_value,
         contract_currency, contract_id) in session.execute(posted):
        month = months.month_of(created)
        if month is None:
            continue
        row = rows[month]
        row.posted += 1
        if contract_id is not None:
            row.awarded += bid_id is not None
            row.claimed += bid_id is None
            row.kept_minor += contract_value if contract_currency == currency else 0
        elif status in (JobStatus.CANCELLED, JobStatus.EXPIRED) or (status in WAITING
                                                                and starts_on < today):
            row.not_taken += 1
            row.turned_away_minor += value if job_currency == currency else 0
        else:
            row.waiting += 1
    signed = select(JobContract.signed_at).where(
        JobContract.cluster_id == scope.cluster_id,
        col(JobContract.signed_at) >= months.start, col(JobContract.signed_at) < months.end)
    if scope.member_id is not None:
        signed = signed.join(ContractParty, col(ContractParty.contract_id) == JobContract.id) \
            .where(ContractParty.member_id == scope.member_id)
    for signed_at in session.exec(signed):
        month = months.month_of(signed_at)
        if month is not None:
            rows[month].contracts += 1
    return list(rows.values())


# --- shared equipment --------------------------------------------------------------------


@dataclass
class EquipmentMonth:
    """Machine hours offered and used in a month, and the fees owners earned.

    Available: each machine's weekly hours (in its own time zone) from the day it
    was listed, minus its blackouts; a machine paused or retired now offers no
    hours from now on (when it stopped is not recorded, so its past hours count).
    Booked: the slots of bookings that went ahead, without the buffer.
    Fees: booking and late-cancellation fees owed to owners in the month, less
    refunded fees.
    """

    month: str
    available_minutes: float = 0.0
    booked_minutes: float = 0.0
    fees_minor: int = 0

    @property
    def utilization(self) -> float | None:
        return _ratio(self.booked_minutes, self.available_minutes)


def equipment_by_month(session: Session, scope: Scope, months: MonthRange, now: datetime
                       ) -> list[EquipmentMonth]:
    """Utilization and fees per month (for a member: of the machines it owns or co-owns)."""
    rows = {m: EquipmentMonth(m) for m in months.months}
    machine_ids = select(Equipment.id).where(Equipment.cluster_id == scope.cluster_id,
                                             col(Equipment.created_at) < months.end)
    if scope.member_id is not None:
        machine_ids = machine_ids.where(col(Equipment.id).in_(
            select(EquipmentOwner.equipment_id)
            .where(EquipmentOwner.member_id == scope.member_id)))
    machines = session.exec(select(Equipment.id, Equipment.timezone, Equipment.created_at,
                                   Equipment.status)
                            .where(col(Equipment.id).in_(machine_ids))).all()
    windows: dict[int, list[AvailabilityWindow]] = defaultdict(list)
    for window in session.exec(select(AvailabilityWindow).where(
            col(AvailabilityWindow.equipment_id).in_(machine_ids))):
        windows[window.equipment_id].append(window)
    blackouts: dict[int, list[Interval]] = defaultdict(list)
    for machine_id, starts_at, ends_at in session.exec(
            select(Blackout.equipment_id, Blackout.starts_at, Blackout.ends_at).where(
                col(Blackout.equipment_id).in_(machine_ids),
                col(Blackout.starts_at) < months.end, col(Blackout.ends_at) > months.start)):
        blackouts[machine_id].append((starts_at, ends_at))
    # Machines with the same weekly hours over the same span offer the same time: work it
    # out once, then take each machine's blackouts off its own total.
    offered: dict[tuple[object, ...], tuple[list[Interval], dict[str, float]]] = {}
    for selected_id, timezone, listed_at, status in machines:
        machine = stored_id(selected_id)
        opens = max(months.start, listed_at)
        closes = months.end if status == ListingStatus.ACTIVE else min(months.end, now)
        hours = tuple(sorted((w.weekday, w.start_minute, w.end_minute)
                             for w in windows[machine]))
        key = (hours, timezone, opens, closes)
        if key not in offered:
            intervals = _offered(windows[machine], timezone, opens, closes)
            offered[key] = intervals, _minutes_per_month(months, intervals)
        intervals, per_month = offered[key]
        blocked = _minutes_per_month(months, [
            (max(start, hole_start), min(end, hole_end))
            for hole_start, hole_end in merge(blackouts[machine])
            for start, end in intervals if start < hole_end and hole_start < end])
        for month, minutes in per_month.items():
            rows[month].available_minutes += minutes - blocked.get(month, 0.0)
    for starts_at, ends_at in session.exec(
            select(Booking.starts_at, Booking.ends_at).where(
                col(Booking.equipment_id).in_(machine_ids),
                col(Booking.status).in_(USED_BOOKINGS),
                col(Booking.starts_at) < months.end, col(Booking.ends_at) > months.start)):
        for month, minutes in months.split(starts_at, ends_at):
            rows[month].booked_minutes += minutes
    if not scope.pooled:  # a member's pooled view reads fees booking by booking instead
        for month, fees in _booking_fees(session, scope, months):
            rows[month].fees_minor = int(fees or 0)
    return list(rows.values())


def _offered(windows: list[AvailabilityWindow], timezone: str, opens: datetime,
             closes: datetime) -> list[Interval]:
    """The machine's weekly hours as instants inside [opens, closes)."""
    if opens >= closes:
        return []
    clipped = [(max(start, opens), min(end, closes))
               for start, end in open_intervals(windows, timezone, opens, closes)]
    return [(s, e) for s, e in clipped if e > s]


def _minutes_per_month(months: MonthRange, intervals: list[Interval]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for start, end in intervals:
        for month, minutes in months.split(start, end):
            totals[month] += minutes
    return totals


def _booking_fees(session: Session, scope: Scope, months: MonthRange
                  ) -> list[tuple[str, int | None]]:
    """Net booking fees owners earned per ledger month, in one grouped query."""
    amount = col(LedgerEntry.amount_minor)
    earned: ColumnElement[bool] = col(LedgerEntry.source).in_(BOOKING_EARNINGS)
    refunded: ColumnElement[bool] = col(LedgerEntry.source) == EntrySource.BOOKING_REFUND.value
    # A fee a leaving co-owner passed on (and its return) moves earnings between owners:
    # it counts for each of them, and nets to nothing for the cluster.
    if scope.member_id is not None:  # fees paid to the member; refunds it paid back
        passed_on = col(LedgerEntry.source).in_(FEES_PASSED_ON)
        received = col(LedgerEntry.payee_member_id) == scope.member_id
        paid = col(LedgerEntry.payer_member_id) == scope.member_id
        earned = (earned | passed_on) & received
        refunded = (refunded | passed_on) & paid
    net = func.sum(case((earned, amount), (refunded, -amount), else_=0))
    return [(m, n) for m, n in session.exec(
        select(LedgerEntry.month, net).where(
            LedgerEntry.cluster_id == scope.cluster_id,
            LedgerEntry.currency == scope.cluster.currency,
            col(LedgerEntry.month) >= months.first, col(LedgerEntry.month) <= months.last,
            col(LedgerEntry.source).in_((*BOOKING_EARNINGS, EntrySource.BOOKING_REFUND.value,
                                         *FEES_PASSED_ON)))
        .group_by(col(LedgerEntry.month)))]


# --- money settled -----------------------------------------------------------------------


@dataclass
class Settled:
    """What a member received and paid through the cluster in settled months."""

    received_minor: int = 0
    paid_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.received_minor - self.paid_minor


@dataclass
class RevenueMonth(Settled):
    """A month's money through the cluster, counted once the coordinator approved the
    month's settlement (until then `settled` is False and the amounts stay 0)."""

    month: str = ""
    settled: bool = False


@dataclass
class MemberRevenue(Settled):
    member_id: int = 0
    name: str = ""


@dataclass
class SettledSums:
    """Members' credits and debits per approved month, read once for both money charts."""

    approved: set[str]
    by_month_member: dict[tuple[str, int], Settled] = field(default_factory=dict)


def settled_sums(session: Session, scope: Scope, months: MonthRange) -> SettledSums:
    """What members received and paid per approved month, in three queries.

    The coordinator's read covers every member (its page shows each one); for a
    member's people it covers only what their scope shows, so other members'
    figures never leave the database for them.
    """
    member_id = None if scope.sees_every_member else scope.member_id
    approved = approved_months(session, scope, months)
    sums = SettledSums(approved)
    if scope.pooled:  # a member's pooled view reads the entries through `disclosure`
        return sums
    where = (LedgerEntry.cluster_id == scope.cluster_id,
             LedgerEntry.currency == scope.cluster.currency,
             col(LedgerEntry.month) >= months.first, col(LedgerEntry.month) <= months.last,
             col(LedgerEntry.source).not_in(TRANSFER_MECHANICS))
    amount = func.sum(LedgerEntry.amount_minor)
    for account, attribute in ((LedgerEntry.payee_member_id, "received_minor"),
                               (LedgerEntry.payer_member_id, "paid_minor")):
        query = select(LedgerEntry.month, account, amount).where(
            *where, col(account).is_not(None)).group_by(col(LedgerEntry.month), col(account))
        if member_id is not None:
            query = query.where(account == member_id)
        for month, member, total in session.exec(query):
            if month in approved and member is not None:  # (the query leaves out the platform)
                settled = sums.by_month_member.setdefault((month, member), Settled())
                setattr(settled, attribute, int(total))
    return sums


def approved_months(session: Session, scope: Scope, months: MonthRange) -> set[str]:
    """The range's months whose settlement the coordinator approved (locked for good)."""
    return set(session.exec(select(Settlement.month).where(
        Settlement.cluster_id == scope.cluster_id,
        Settlement.status == SettlementStatus.APPROVED.value,
        col(Settlement.month) >= months.first, col(Settlement.month) <= months.last)))


def revenue_by_month(sums: SettledSums, scope: Scope, months: MonthRange
                     ) -> list[RevenueMonth]:
    """Money received and paid through the cluster per settled month (for a member: its
    own; for the cluster: all members' together)."""
    rows = {m: RevenueMonth(month=m, settled=m in sums.approved) for m in months.months}
    for (month, member), settled in sums.by_month_member.items():
        if scope.member_id in (None, member):
            rows[month].received_minor += settled.received_minor
            rows[month].paid_minor += settled.paid_minor
    return list(rows.values())


def revenue_by_member(sums: SettledSums, scope: Scope) -> list[MemberRevenue]:
    """Each member's money through the cluster over the range's settled months, by name.
    Only for a scope that sees every member (the coordinator's)."""
    assert scope.sees_every_member, "per-member revenue is the coordinator's alone"
    rows = {m.id: MemberRevenue(member_id=m.id, name=m.name)
            for m in scope.choices if m.id is not None}
    for (_month, member), settled in sums.by_month_member.items():
        if member in rows:
            rows[member].received_minor += settled.received_minor
            rows[member].paid_minor += settled.paid_minor
    return list(rows.values())


# --- reliability -------------------------------------------------------------------------


@dataclass
class ReliabilityMonth:
    """How taken jobs ended and how partners rated each other, per month.

    Completion is counted in the month a taken job was due to end: `due` are the
    jobs already reported done or past their end date (a job still within its
    dates counts against nobody), `completed` those reported done, `confirmed`
    those the poster confirmed.  Ratings count in the month they were given (for
    a member: the ratings it received).
    """

    month: str
    due: int = 0
    completed: int = 0
    confirmed: int = 0
    ratings: int = 0
    score_total: int = 0
    on_time: int = 0

    @property
    def completion_rate(self) -> float | None:
        return _ratio(self.completed, self.due)

    @property
    def average_rating(self) -> float | None:
        return _ratio(self.score_total, self.ratings)

    @property
    def on_time_rate(self) -> float | None:
        return _ratio(self.on_time, self.ratings)


def reliability_by_month(session: Session, scope: Scope, months: MonthRange, now: datetime
                         ) -> list[ReliabilityMonth]:
    """Completion and ratings per month (for a member: as the partner that took jobs)."""
    rows = {m: ReliabilityMonth(m) for m in months.months}
    today = cluster_today(scope.cluster, now)
    taken = (select(col(OverflowJob.status), col(OverflowJob.ends_on))
             .join(JobContract, col(JobContract.job_id) == OverflowJob.id)
             .where(OverflowJob.cluster_id == scope.cluster_id,
                    col(OverflowJob.ends_on) >= months.first_date,
                    col(OverflowJob.ends_on) < months.end_date))
    if scope.member_id is not None:
        taken = taken.join(ContractParty, col(ContractParty.contract_id) == JobContract.id) \
            .where(ContractParty.member_id == scope.member_id)
    for status, ends_on in session.exec(taken):
        row = rows[ends_on.strftime("%Y-%m")]
        finished = status in (JobStatus.DONE, JobStatus.CONFIRMED)
        if finished or ends_on < today:
            row.due += 1
            row.completed += finished
            row.confirmed += status == JobStatus.CONFIRMED
    if scope.pooled:  # a member's pooled view reads ratings through `disclosure`
        return list(rows.values())
    ratings = (select(JobRating.created_at, JobRating.score, JobRating.on_time)
               .join(OverflowJob, col(OverflowJob.id) == JobRating.job_id)
               .where(OverflowJob.cluster_id == scope.cluster_id,
                      col(JobRating.created_at) >= months.start,
                      col(JobRating.created_at) < months.end))
    if scope.member_id is not None:
        ratings = ratings.where(JobRating.ratee_member_id == scope.member_id)
    for created, score, on_time in session.exec(ratings):
        month = months.month_of(created)
        if month is not None:
            rows[month].ratings += 1
            rows[month].score_total += score
            rows[month].on_time += bool(on_time)
    return list(rows.values())
