"""A member's exit taking effect, exactly once: the clean exit of issue #20.

Giving notice (`agreements.give_exit_notice`) only sets the date.  When it comes --
or when the agreement in force reaches its sunset with no newer version, and the
cluster winds down -- the scheduler's sweep (`take_due_exits`) makes each member's
exit take effect in one transaction per member:

- its bookings not yet started are cancelled and their fee refunded (no
  cancellation fee: the exit is not the booker's whim), the machines' owners told;
- a machine it owns alone is withdrawn (retired), and the bookings of others on it
  cancelled with their fees refunded, each booker told (the listings' own
  `cancel_affected`);
- its share of each co-owned machine is bought by the remaining co-owners in
  proportion to their shares at the agreement's `buyout_value_bp` of the machine's
  agreed value (`buyout.buy_out`: parts to the cent, new shares to the basis point),
  written as ledger entries from each buyer to the leaver, and its rotation periods
  pass to the remaining co-owners; when the cluster winds down every owner leaves,
  so nothing is bought and the machine is withdrawn instead;
- its open jobs are cancelled (everyone who saw or bid on them told); a job awarded
  to it alone that has not been paid for is handed back to its poster (cancelled, so
  the poster can post it again); any other contract it is party to stands, and its
  parties are told;
- its last statement is the month the exit takes effect in (buy-outs and refunds
  land there), which its people can still read and download, like every past one:
  they lose every other page of the cluster (clusters/exit/access.py).

Exactly once: the `MemberExit` row, unique per member, is inserted first, so a
second scheduler or a rerun waits for (PostgreSQL) or queues behind (SQLite) the
first and then finds the row there and changes nothing.  What the exit did is kept
in the row (`summary`), with amounts, for the leaver's and the coordinator's pages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from marketplace import events
from marketplace.clusters.agreements import agreement_in_force, cluster_today
from marketplace.clusters.exit.buyout import MAX_AGREED_VALUE_MINOR, buy_out
from marketplace.clusters.exit.models import ExitBuyout, ExitReason, MemberExit
from marketplace.clusters.models import Addressee, Cluster, Member, Role, User
from marketplace.clusters.service import active_users_of
from marketplace.db import utcnow
from marketplace.equipment.access import get_equipment, owner_shares, require_manager
from marketplace.equipment.booking import cancel_affected, refund_fee
from marketplace.equipment.listings import FAR_FUTURE
from marketplace.equipment.models import (
    Booking,
    BookingStatus,
    Custody,
    CustodySwap,
    Equipment,
    EquipmentOwner,
    ListingStatus,
    RotationPlan,
    SwapStatus,
)
from marketplace.equipment.rotation import next_holder
from marketplace.errors import N_, Conflict, ValidationError, not_found
from marketplace.jobs.models import (
    Bid,
    BidShare,
    ContractParty,
    JobContract,
    JobStatus,
    OverflowJob,
)
from marketplace.jobs.service import eligible_or_bidders
from marketplace.ledger import service as ledger
from marketplace.ledger.models import EntrySource, JobPayment
from marketplace.money import plain_decimal
from marketplace.persisted import id_of
from marketplace.rows import in_cluster

log = logging.getLogger(__name__)

#: Why the exit cancelled something, as bookers and partners read it.
EXIT_REASON = N_("%(member)s left the cluster")
WIND_DOWN_REASON = N_("the cluster agreement reached its sunset and the cluster wound down")


# -- finding what is due -------------------------------------------------------------


def sunset_moment(cluster: Cluster, sunset_on: Any) -> datetime:
    """The instant the agreement's sunset date begins where the cluster is (UTC)."""
    local = datetime.combine(sunset_on, time(0), tzinfo=ZoneInfo(cluster.timezone))
    return local.astimezone(UTC)


def due_exits(session: Session, now: datetime) -> list[tuple[int, ExitReason, datetime]]:
    """(member id, reason, effective moment) of every exit due and not yet effected:
    members whose exit date came, and every member of a cluster whose agreement in force
    reached its sunset date (cluster time) -- a renewal published before it is newer and
    keeps the cluster going."""
    session.expire_all()  # the dates as committed now
    done = exists().where(col(MemberExit.member_id) == Member.id)
    due: dict[int, tuple[int, ExitReason, datetime]] = {}
    for cluster in session.exec(select(Cluster).order_by(col(Cluster.id))).all():
        current = agreement_in_force(session, id_of(cluster))
        if current is None or current.sunset_on > cluster_today(cluster, now):
            continue
        moment = sunset_moment(cluster, current.sunset_on)
        for member in session.exec(select(Member).where(
                Member.cluster_id == cluster.id, ~done).order_by(col(Member.id))):
            left = member.exit_effective_at
            due[id_of(member)] = (  # a member whose own date came first left by notice
                (id_of(member), ExitReason.NOTICE, left) if left is not None and left <= moment
                else (id_of(member), ExitReason.WIND_DOWN, moment))
    for member in session.exec(select(Member).where(
            col(Member.exit_effective_at) <= now, ~done).order_by(col(Member.id))):
        if member.id not in due:
            assert member.exit_effective_at is not None
            due[id_of(member)] = (id_of(member), ExitReason.NOTICE, member.exit_effective_at)
    return [due[m] for m in sorted(due)]


def take_due_exits(session: Session, now: datetime) -> int:
    """Scheduler sweep: make every due exit take effect; how many this run effected (an
    exit another scheduler or an earlier run effected is not counted again)."""
    due = due_exits(session, now)
    session.commit()
    done = 0
    for member_id, reason, effective in due:
        try:
            done += take_effect(session, member_id, reason, effective, now)
        except Exception:  # one member's failure must not hold up every other exit
            session.rollback()  # nothing of it is kept; the next run tries it again
            log.exception("the exit of member %s (%s, effective %s) failed; retried on the "
                          "next run", member_id, reason.value, effective.isoformat())
    return done


# -- the effect ----------------------------------------------------------------------


@dataclass
class _Exit:
    """What one exit is working with, handed between its steps."""

    session: Session
    cluster: Cluster
    member: Member
    record: MemberExit
    reason: ExitReason
    now: datetime
    summary: dict[str, Any]

    @property
    def why(self) -> str:
        """The reason as stored on cancelled bookings and jobs (the cluster's words are
        translated where they are shown; the stored reason names the member)."""
        if self.reason == ExitReason.WIND_DOWN:
            return "The cluster agreement reached its sunset and the cluster wound down."
        return f"{self.member.name} left the cluster."


def take_effect(session: Session, member_id: int, reason: ExitReason, effective_at: datetime,
                now: datetime) -> bool:
    """Make one member's exit take effect, once; False when it already had (here or in
    another process) or the member is gone.  One transaction, committed here."""
    session.expire_all()  # read what is committed now, not rows a long session holds
    member = session.get(Member, member_id)
    if member is None:
        return False
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    record = MemberExit(cluster_id=id_of(cluster), member_id=member_id, reason=reason.value,
                        effective_at=effective_at, done_at=now, final_month="",
                        summary={})
    session.add(record)
    try:
        session.flush()  # the claim: a second insert for the member waits, then fails
    except IntegrityError:
        session.rollback()
        return False
    if reason == ExitReason.WIND_DOWN:
        current = agreement_in_force(session, id_of(cluster))
        if current is None or current.sunset_on > cluster_today(cluster, now):
            session.rollback()  # renewed since the sweep looked: the cluster goes on
            return False
    work = _Exit(session, cluster, member, record, reason, now,
                 {"currency": cluster.currency, "bookings_cancelled": [],
                  "others_bookings_cancelled": [], "machines_withdrawn": [], "buyouts": [],
                  "fees_passed_on": [],
                  "jobs_cancelled": [], "jobs_handed_back": [], "contracts_kept": []})
    if member.exit_effective_at is None or member.exit_effective_at > effective_at:
        member.exit_effective_at = effective_at
    member.exit_noticed_at = member.exit_noticed_at or effective_at
    session.add(member)
    _lock_own_machines(work)
    _cancel_own_bookings(work)
    _machines(work)
    _jobs(work)
    month = ledger.ledger_month(cluster, now)
    record.final_month = ledger.open_month(session, id_of(cluster), month)
    record.summary = work.summary
    session.add(record)
    _tell_everyone(work)
    session.commit()
    return True


_LIVE_BOOKINGS = (BookingStatus.REQUESTED.value, BookingStatus.CONFIRMED.value)


def _cancel_live(work: _Exit, booking: Booking) -> bool | None:
    """Cancel one of the leaver's bookings from the status it has now; whether it had
    been confirmed (its fee to refund), or None when it is no longer live.  The rows
    are locked (PostgreSQL) when read, so an owner's approval waits for the exit; should
    one still slip in between, the booking is read again and cancelled from its new
    status -- never skipped, which would leave a confirmed, charged booking behind."""
    session = work.session
    for _attempt in range(3):
        if booking.status not in _LIVE_BOOKINGS:
            return None  # declined or cancelled a moment ago: nothing to undo
        status = booking.status
        moved = session.exec(update(Booking).where(
            col(Booking.id) == booking.id, col(Booking.status) == status)
            .values(status=BookingStatus.CANCELLED.value, cancel_reason=work.why,
                    cancel_fee_minor=0))
        if moved.rowcount == 1:
            session.refresh(booking)
            return status == BookingStatus.CONFIRMED.value
        session.refresh(booking, with_for_update=True)  # what it became meanwhile
    raise RuntimeError(f"booking {booking.id} kept changing while member "
                       f"{work.member.id}'s exit cancelled it")


def _lock_own_machines(work: _Exit) -> None:
    """The machines the leaver owns, locked first and in id order: approving, cancelling
    or closing a booking shares the machine's row before it locks the booking
    (`booking._booking_for_money`), so with this order an exit and such an action wait
    for each other one way only, and the action splits by the owners the exit leaves."""
    session = work.session
    machine_ids = sorted(session.exec(select(EquipmentOwner.equipment_id).where(
        EquipmentOwner.member_id == work.member.id)))
    if machine_ids:
        session.exec(select(Equipment.id).where(col(Equipment.id).in_(machine_ids))
                     .order_by(col(Equipment.id)).with_for_update()).all()


def _cancel_own_bookings(work: _Exit) -> None:
    """The leaver's bookings not yet started: cancelled, fee refunded, owners told."""
    session, now = work.session, work.now
    bookings = session.exec(select(Booking).where(
        Booking.member_id == work.member.id,
        col(Booking.status).in_(_LIVE_BOOKINGS),
        col(Booking.starts_at) >= now).order_by(col(Booking.starts_at), col(Booking.id))
        .with_for_update()).all()
    for booking in bookings:
        was_confirmed = _cancel_live(work, booking)
        if was_confirmed is None:
            continue
        refunded = refund_fee(session, work.cluster, booking, now) if was_confirmed else 0
        equipment = session.get(Equipment, booking.equipment_id)
        assert equipment is not None
        owners = [m for m in owner_shares(session, id_of(equipment)) if m != work.member.id]
        events.notify(session, active_users_of(session, owners), "booking.cancelled",
                      N_("A booking of %(machine)s was cancelled: %(reason)s"), now=now,
                      params={"machine": equipment.name, "reason": work.why},
                      payload={"id": booking.id, "equipment_id": booking.equipment_id,
                               "status": BookingStatus.CANCELLED.value},
                      link=f"/equipment/bookings/{booking.id}")
        work.summary["bookings_cancelled"].append({
            "booking_id": booking.id, "machine": equipment.name,
            "starts_at": booking.starts_at.isoformat(), "refund_minor": refunded})


def _machines(work: _Exit) -> None:
    """Each machine the leaver owns: withdrawn if it owns it alone (or the cluster winds
    down), otherwise its share bought out by the remaining co-owners."""
    session = work.session
    machine_ids = sorted(session.exec(select(EquipmentOwner.equipment_id).where(
        EquipmentOwner.member_id == work.member.id)))
    for equipment_id in machine_ids:
        equipment = session.exec(select(Equipment).where(Equipment.id == equipment_id)
                                 .with_for_update()).one()
        shares = owner_shares(session, equipment_id)
        if len(shares) == 1 or work.reason == ExitReason.WIND_DOWN:
            _withdraw(work, equipment, co_owned=len(shares) > 1)
        else:
            _buy_out(work, equipment, shares)


def _withdraw(work: _Exit, equipment: Equipment, *, co_owned: bool) -> None:
    session, now = work.session, work.now
    cancelled = []
    if equipment.status != ListingStatus.RETIRED:
        equipment.status = ListingStatus.RETIRED.value
        session.add(equipment)
        cancelled = cancel_affected(session, equipment, now, FAR_FUTURE, work.why, now)
    work.summary["machines_withdrawn"].append({
        "equipment_id": equipment.id, "machine": equipment.name, "co_owned": co_owned})
    for booking in cancelled:
        booker = session.get(Member, booking.member_id)
        refunds = ledger.entries_for(session, EntrySource.BOOKING_REFUND, id_of(booking))
        work.summary["others_bookings_cancelled"].append({
            "booking_id": booking.id, "machine": equipment.name,
            "member": booker.name if booker else "", "starts_at": booking.starts_at.isoformat(),
            "refund_minor": sum(e.amount_minor for e in refunds)})


def _buy_out(work: _Exit, equipment: Equipment, shares: dict[int, int]) -> None:
    session, now, leaver = work.session, work.now, id_of(work.member)
    agreement = agreement_in_force(session, id_of(work.cluster))
    value_bp = agreement.buyout_value_bp if agreement is not None else 10_000
    outcome = buy_out(shares, leaver, equipment.agreed_value_minor, value_bp)
    row = ExitBuyout(exit_id=id_of(work.record), equipment_id=id_of(equipment),
                     leaver_share_bp=outcome.leaver_share_bp,
                     agreed_value_minor=equipment.agreed_value_minor, buyout_value_bp=value_bp,
                     price_minor=outcome.price_minor, currency=equipment.currency,
                     parts={str(m): p for m, p in outcome.parts.items()},
                     new_shares={str(m): s for m, s in outcome.new_shares.items()})
    session.add(row)
    session.flush()
    # Read (and locked) before the owner rows change: the bookings whose fee the leaver
    # holds now.  Their approvals and cancellations wait for the machine this exit holds.
    passing = _bookings_to_pass_on(work, equipment)
    for payer, part in sorted(outcome.parts.items()):
        ledger.record(session, work.cluster, EntrySource.BUYOUT, id_of(row), payer, leaver,
                      part, now, currency=equipment.currency,
                      memo=f"{equipment.name}: {outcome.leaver_share_bp / 100:g} %")
    session.execute(delete(EquipmentOwner).where(
        col(EquipmentOwner.equipment_id) == equipment.id,
        col(EquipmentOwner.member_id) == leaver))
    for member_id, share in sorted(outcome.new_shares.items()):
        session.execute(update(EquipmentOwner).where(
            col(EquipmentOwner.equipment_id) == equipment.id,
            col(EquipmentOwner.member_id) == member_id).values(share_bp=share))
    _hand_over_rotation(work, equipment, outcome.new_shares)
    _pass_on_fees(work, equipment, passing, outcome.new_shares)
    names = {m.id: m.name for m in session.exec(select(Member).where(
        col(Member.id).in_(list(outcome.new_shares))))}
    work.summary["buyouts"].append({
        "buyout_id": row.id, "equipment_id": equipment.id, "machine": equipment.name,
        "leaver_share_bp": outcome.leaver_share_bp,
        "agreed_value_minor": equipment.agreed_value_minor, "buyout_value_bp": value_bp,
        "price_minor": outcome.price_minor,
        "parts": [{"member_id": m, "member": names.get(m, ""),
                   "amount_minor": outcome.parts[m], "new_share_bp": outcome.new_shares[m]}
                  for m in sorted(outcome.new_shares)]})
    for member_id in sorted(outcome.new_shares):
        events.notify(
            session, active_users_of(session, [member_id]), "exit.buyout",
            N_("%(member)s left the cluster: your business bought its share of %(machine)s "
               "for %(amount)s and now owns %(share)s %% of it.")
            if equipment.agreed_value_minor else
            N_("%(member)s left the cluster: its share of %(machine)s passed to the remaining "
               "co-owners for nothing, because the machine has no agreed value. Your business "
               "now owns %(share)s %% of it."),
            now=now,
            params={"member": work.member.name, "machine": equipment.name,
                    "amount": f"{plain_decimal(outcome.parts[member_id], equipment.currency)} "
                              f"{equipment.currency}",
                    "share": f"{outcome.new_shares[member_id] / 100:g}"},
            payload={"equipment_id": equipment.id}, link=f"/equipment/{equipment.id}")


#: A booking whose fee a leaving co-owner was paid and whose slot is still to come.
_PAID_NOT_USED = (BookingStatus.CONFIRMED.value, BookingStatus.CHECKED_OUT.value)


def _bookings_to_pass_on(work: _Exit, equipment: Equipment) -> list[Booking]:
    """Others' paid bookings of the machine for slots from the exit's moment on, locked
    (read afresh) until the exit commits: one cancelled meanwhile drops out here, and
    one cancelled later finds the fee passed on and gives it all back (`refund_fee`).
    A machine picked up early (checked out) for such a slot counts too: the fee is the
    slot's."""
    return list(work.session.exec(select(Booking).where(
        Booking.equipment_id == equipment.id, Booking.member_id != work.member.id,
        col(Booking.status).in_(_PAID_NOT_USED),
        col(Booking.starts_at) >= work.record.effective_at)
        .order_by(col(Booking.starts_at), col(Booking.id))
        .with_for_update().execution_options(populate_existing=True)).all())


def _pass_on_fees(work: _Exit, equipment: Equipment, bookings: list[Booking],
                  new_shares: dict[int, int]) -> None:
    """Those bookings were paid for when booked, part of the fee to the leaver: that
    part now belongs to the remaining co-owners, split by the shares they own from now
    on.  What the leaver nets on each -- its fee, plus what an earlier leaver passed on
    to it -- is passed on, so exits in turn hand a fee on to the cent.  A slot that
    began before the exit stays the leaver's: it owned the machine when the use began."""
    session, now, leaver = work.session, work.now, id_of(work.member)
    for booking in bookings:
        received = ledger.net_between(session, (EntrySource.BOOKING,
                                                EntrySource.BOOKING_HANDOVER),
                                      id_of(booking), leaver)
        passed = ledger.record_split(
            session, work.cluster, EntrySource.BOOKING_HANDOVER, id_of(booking), leaver,
            received, new_shares, now, f"{equipment.name} #{booking.id}",
            currency=booking.currency)
        if passed:
            work.summary["fees_passed_on"].append({
                "booking_id": booking.id, "machine": equipment.name,
                "starts_at": booking.starts_at.isoformat(), "amount_minor": received})


def _hand_over_rotation(work: _Exit, equipment: Equipment, new_shares: dict[int, int]) -> None:
    """The leaver's current and coming custody periods pass to the remaining co-owners,
    by the same fair rule that assigns periods; swaps it was party to lapse."""
    session, now, leaver = work.session, work.now, id_of(work.member)
    plan = session.exec(select(RotationPlan).where(
        RotationPlan.equipment_id == equipment.id)).first()
    if plan is None:
        return
    periods = list(session.exec(select(Custody).where(Custody.plan_id == plan.id)
                                .order_by(col(Custody.index))))
    held: dict[int, int] = {}
    previous: int | None = None
    changed: list[int] = []
    for period in periods:
        if period.ends_at > now and period.member_id == leaver:
            period.member_id = next_holder(new_shares, held, previous)
            period.released = False
            if period.starts_at > now:
                period.eve_notice_at = period.start_notice_at = None
            session.add(period)
            changed.append(id_of(period))
        if period.member_id in new_shares:
            held[period.member_id] = held.get(period.member_id, 0) + 1
        previous = period.member_id
    if changed:
        session.execute(update(CustodySwap).where(
            col(CustodySwap.plan_id) == plan.id,
            col(CustodySwap.status) == SwapStatus.PENDING.value,
            or_(col(CustodySwap.offered_id).in_(changed), col(CustodySwap.wanted_id).in_(changed)))
            .values(status=SwapStatus.DECLINED.value, decided_at=now))


def _jobs(work: _Exit) -> None:
    """Its open jobs cancelled; jobs awarded to it alone and unpaid handed back; other
    contracts it is party to stand, their parties told."""
    session, now, leaver = work.session, work.now, id_of(work.member)
    posted_open = session.exec(select(OverflowJob).where(
        OverflowJob.poster_member_id == leaver,
        col(OverflowJob.status).in_((JobStatus.OPEN.value, JobStatus.WINDOW_CLOSED.value)))
        .order_by(col(OverflowJob.id))).all()
    for job in posted_open:
        audience = [m.id for m in eligible_or_bidders(session, job, now)]
        if not _cancel_job(work, job, (JobStatus.OPEN, JobStatus.WINDOW_CLOSED)):
            continue
        events.notify(session, active_users_of(session, audience), "job.cancelled",
                      N_("The job %(title)s was cancelled: %(reason)s"), now=now,
                      params={"title": job.title, "reason": job.cancel_reason},
                      payload={"id": job.id, "status": job.status}, link=f"/jobs/{job.id}")
        work.summary["jobs_cancelled"].append({"job_id": job.id, "title": job.title})
    _lapse_bids(work)
    contracts = session.exec(select(OverflowJob, JobContract).join(
        JobContract, col(JobContract.job_id) == OverflowJob.id).where(
        col(OverflowJob.status).in_((JobStatus.AWARDED.value, JobStatus.DONE.value)),
        or_(col(JobContract.poster_member_id) == leaver,
            col(JobContract.id).in_(select(ContractParty.contract_id).where(
                ContractParty.member_id == leaver))))
        .order_by(col(OverflowJob.id))).all()
    for job, contract in contracts:
        parties = set(session.exec(select(ContractParty.member_id).where(
            ContractParty.contract_id == contract.id)))
        paid = session.exec(select(JobPayment.id).where(
            JobPayment.contract_id == contract.id)).first() is not None
        if (job.poster_member_id != leaver and parties == {leaver}
                and job.status == JobStatus.AWARDED and not paid
                and _cancel_job(work, job, (JobStatus.AWARDED,))):
            events.notify(
                session, active_users_of(session, [job.poster_member_id]), "exit.job_handed_back",
                N_("%(member)s left the cluster before doing your job %(title)s, so the job "
                   "is back with you and closed. Post it again if the work is still to do."),
                now=now, params={"member": work.member.name, "title": job.title},
                payload={"id": job.id, "status": job.status}, link=f"/jobs/{job.id}")
            work.summary["jobs_handed_back"].append({"job_id": job.id, "title": job.title})
            continue
        others = sorted((parties | {job.poster_member_id}) - {leaver})
        events.notify(
            session, active_users_of(session, others), "exit.contract_kept",
            N_("%(member)s left the cluster. Your contract for the job %(title)s stands; the "
               "coordinator will settle with you what it still needs."),
            now=now, params={"member": work.member.name, "title": job.title},
            payload={"id": job.id}, link=f"/jobs/{job.id}")
        work.summary["contracts_kept"].append({"job_id": job.id, "title": job.title})


def _lapse_bids(work: _Exit) -> None:
    """Bids it placed or shares in, on jobs still choosing: kept as the record, but no
    longer awardable (award refuses a party that left); the poster and the bid's other
    members are told, so nobody waits on them."""
    session, now, leaver = work.session, work.now, id_of(work.member)
    shared = select(BidShare.bid_id).where(BidShare.member_id == leaver)
    rows = session.exec(select(OverflowJob, Bid).join(Bid, col(Bid.job_id) == OverflowJob.id)
                        .where(col(OverflowJob.status).in_((JobStatus.OPEN.value,
                                                             JobStatus.WINDOW_CLOSED.value)),
                               or_(col(Bid.member_id) == leaver, col(Bid.id).in_(shared)))
                        .order_by(col(Bid.id))).all()
    for job, bid in rows:
        partners = set(session.exec(select(BidShare.member_id).where(
            BidShare.bid_id == bid.id))) | {bid.member_id}
        told = sorted((partners | {job.poster_member_id}) - {leaver})
        events.notify(
            session, active_users_of(session, told), "exit.bid_lapsed",
            N_("%(member)s left the cluster: a bid it is part of on the job %(title)s can no "
               "longer be awarded."),
            now=now, params={"member": work.member.name, "title": job.title},
            payload={"id": job.id}, link=f"/jobs/{job.id}")
        work.summary.setdefault("bids_lapsed", []).append({"job_id": job.id,
                                                           "title": job.title})


def _cancel_job(work: _Exit, job: OverflowJob, from_statuses: tuple[JobStatus, ...]) -> bool:
    done = work.session.exec(update(OverflowJob).where(
        col(OverflowJob.id) == job.id,
        col(OverflowJob.status).in_([s.value for s in from_statuses]))
        .values(status=JobStatus.CANCELLED.value, cancel_reason=work.why))
    if done.rowcount != 1:
        return False
    work.session.refresh(job)
    return True


def _tell_everyone(work: _Exit) -> None:
    """The leaver's people and the coordinators: the exit took effect, see its outcome."""
    session = work.session
    events.notify(session, active_users_of(session, [work.member.id], include_former=True),
                  "exit.effective",
                  N_("Your business's exit from the cluster took effect. See what was "
                     "cancelled, refunded and bought out; your statements stay available."),
                  now=work.now, payload={"member_id": work.member.id}, link="/exit")
    events.notify(session, coordinators(session, id_of(work.cluster)), "exit.effective",
                  N_("The exit of %(member)s took effect. See what was cancelled, refunded "
                     "and bought out."),
                  now=work.now, params={"member": work.member.name},
                  payload={"member_id": work.member.id},
                  link=f"/exit/members/{work.member.id}")


def coordinators(session: Session, cluster_id: int) -> list[User]:
    return list(session.exec(select(User).where(
        User.cluster_id == cluster_id, User.role == Role.COORDINATOR.value,
        col(User.active).is_(True)).order_by(col(User.id))))


# -- reading -------------------------------------------------------------------------


def exit_of(session: Session, member_id: int) -> MemberExit | None:
    """The member's exit, once it took effect."""
    return session.exec(select(MemberExit).where(MemberExit.member_id == member_id)).first()


def outcome_for(session: Session, viewer: User, member_id: int | None = None) -> MemberExit:
    """An exit's outcome as its reader may see it: the leaver's people read their own
    business's; the coordinator reads any member's of its cluster; anyone else, or an
    exit that has not taken effect, gets NotFound."""
    if member_id is None:
        member_id = viewer.member_id
    if member_id is None:
        raise not_found()
    member = in_cluster(session, Member, member_id, viewer.cluster_id)
    if not viewer.is_coordinator and viewer.member_id != member.id:
        raise not_found()
    record = exit_of(session, id_of(member))
    if record is None:
        raise not_found()
    return record


def exits_of_cluster(session: Session, coordinator: User) -> list[tuple[MemberExit, Member]]:
    """Every exit that took effect in the coordinator's cluster, newest first."""
    if not coordinator.is_coordinator:
        raise not_found()
    return [(e, m) for e, m in session.exec(
        select(MemberExit, Member).join(Member, col(Member.id) == MemberExit.member_id)
        .where(MemberExit.cluster_id == coordinator.cluster_id)
        .order_by(col(MemberExit.done_at).desc(), col(MemberExit.id).desc()))]


def is_former_member(member: Member | None, now: datetime) -> bool:
    """Whether this business has left the cluster (its exit date came)."""
    return member is not None and member.exit_effective_at is not None \
        and member.exit_effective_at <= now


# -- a co-owned machine's agreed value ------------------------------------------------


def set_agreed_value(session: Session, actor: User, equipment_id: int,
                     value_minor: int | None, *, now: datetime | None = None) -> Equipment:
    """A co-owned machine's owners (or the coordinator) set what it is worth, for buying
    out a leaving co-owner; None clears it (a buy-out is then free).

    Once any co-owner of the machine has given notice of exit, the value in force that
    day is the one its buy-out uses: no owner may change it any more (neither the leaver,
    who is paid, nor the others, who pay); only the coordinator may correct it.  Every
    change is told, with the old and new value and who made it, to the people of the
    co-owners and the coordinators (other than whoever made it): a change is never
    unannounced, and the notifications are its record."""
    moment = now or utcnow()
    equipment = get_equipment(session, actor, equipment_id, for_update=True)
    require_manager(session, actor, equipment)
    shares = owner_shares(session, equipment_id)
    if len(shares) < 2:
        raise Conflict("not_co_owned", N_("Only a co-owned machine has an agreed value: a "
                                          "machine owned alone is never bought out."))
    if equipment.status == ListingStatus.RETIRED:
        raise Conflict("retired", N_("This machine is retired; its listing cannot change."))
    leaving = session.exec(select(Member.id).where(
        col(Member.id).in_(list(shares)),
        or_(col(Member.exit_noticed_at).is_not(None),
            col(Member.exit_effective_at).is_not(None)))).first()
    if leaving is not None and not actor.is_coordinator:
        raise Conflict("exit_pending", N_(
            "A co-owner of this machine has given notice of exit, so the agreed value in "
            "force that day is what its share will be bought at. Only the coordinator can "
            "correct it now."))
    if value_minor is not None and not 0 < value_minor <= MAX_AGREED_VALUE_MINOR:
        message = N_("Enter what the co-owners agree the machine is worth (above zero), or "
                     "leave it empty.")
        raise ValidationError("invalid_agreed_value", message,
                              fields={"agreed_value": message})
    old = equipment.agreed_value_minor
    equipment.agreed_value_minor = value_minor
    session.add(equipment)
    if old != value_minor:
        _tell_agreed_value(session, actor, equipment, shares, old, value_minor, moment)
    session.commit()
    return equipment


def _tell_agreed_value(session: Session, actor: User, equipment: Equipment,
                       shares: dict[int, int], old: int | None, new: int | None,
                       now: datetime) -> None:
    """The co-owners' people and the coordinators learn of a change of the agreed value."""
    def shown(value: int | None) -> str:
        return (f"{plain_decimal(value, equipment.currency)} {equipment.currency}"
                if value else "-")
    who = session.get(Member, actor.member_id) if actor.member_id is not None else None
    everyone: list[User | Addressee] = [*active_users_of(session, list(shares)),
                                        *coordinators(session, equipment.cluster_id)]
    audience = [u for u in everyone if u.id != actor.id]
    events.notify(
        session, audience, "equipment.agreed_value",
        N_("%(member)s changed the agreed value of %(machine)s from %(old)s to %(new)s. A "
           "leaving co-owner's share is bought at the agreement's fraction of it.")
        if who is not None else
        N_("The coordinator changed the agreed value of %(machine)s from %(old)s to "
           "%(new)s. A leaving co-owner's share is bought at the agreement's fraction of it."),
        now=now, params={"member": who.name if who is not None else "",
                         "machine": equipment.name, "old": shown(old), "new": shown(new)},
        payload={"equipment_id": equipment.id}, link=f"/equipment/{equipment.id}")
