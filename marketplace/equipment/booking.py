"""Booking a machine: the slot rules, the lifecycle, and the fees it writes.

No double booking, ever.  On PostgreSQL a slot that looks free is checked again
and booked while this transaction holds (a slot already taken is refused before,
without waiting for anything):

- the machine's row, shared: bookers of the machine run side by side, while a
  change of the machine itself (pause, retire, blackout, new hours, an owner's
  exit) takes it exclusively and so waits for them, and they for it;
- one transaction-scoped advisory lock per UTC day the slot's blocked range
  [start, end + buffer) touches, (machine id, day number), taken in day order:
  two slots that could overlap share a day, so they are checked and inserted
  one after the other, while slots on other days of the same week are not held
  up by them.

An exclusion constraint on (machine, [start, end + buffer)) refuses an overlap
even if the check were wrong.  (Sharing the row *without* the day locks was
measured and refused: with 50 members booking one machine's week, two inserts of
overlapping slots each waited for the other's commit inside the constraint, and
PostgreSQL broke every such deadlock after its 1 s deadlock_timeout, as an
error.  The day locks keep any two overlapping inserts apart.)  On SQLite every
write transaction takes the single writer lock before it begins
(marketplace/db.py), so the check and the insert happen under it.  State changes
are conditional updates (`UPDATE ... WHERE status = 'requested'`), so two clicks
change a booking once.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, false, null, text, union_all, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.agreements import Activity, require_participation
from marketplace.clusters.models import Cluster, Member, User
from marketplace.clusters.service import acting_member, active_users_of
from marketplace.db import on_postgresql
from marketplace.equipment.access import can_manage, get_equipment, owner_shares
from marketplace.equipment.availability import (
    WeeklyHours,
    covers,
    on_granularity,
    open_intervals,
)
from marketplace.equipment.models import (
    HOLDING_STATUSES,
    AvailabilityWindow,
    Blackout,
    Booking,
    BookingStatus,
    Equipment,
    ListingStatus,
)
from marketplace.equipment.pricing import booking_fee, cancellation_fee
from marketplace.equipment.rotation import custody_overlapping
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.ledger import service as ledger
from marketplace.ledger.models import EntrySource
from marketplace.persisted import id_of

MAX_METER = 1_000_000.0
MAX_DAMAGE_MINOR = 10_000_000_00


def _slot_error(code: str, message: str, field: str = "starts_at", **params: object
                ) -> ValidationError:
    return ValidationError(code, message, fields={field: message}, params=params)


def check_slot(session: Session, equipment: Equipment, starts_at: datetime,
                ends_at: datetime, now: datetime) -> None:
    """Raise the first rule the slot breaks, with a message that says what to change."""
    if ends_at <= starts_at:
        raise _slot_error("end_before_start", N_("The end must be after the start."), "ends_at")
    if starts_at < now:
        raise _slot_error("slot_in_past", N_("That slot has already started. Choose a time "
                                             "in the future."))
    step = equipment.granularity_minutes
    if not (on_granularity(starts_at, equipment.timezone, step)
            and on_granularity(ends_at, equipment.timezone, step)):
        raise _slot_error("off_granularity", N_("Start and end must fall on the machine's "
                                                "%(minutes)d-minute steps."), minutes=step)
    minutes = int((ends_at - starts_at).total_seconds() // 60)
    if minutes < equipment.min_minutes:
        raise _slot_error("too_short", N_("This machine is booked for at least %(minutes)d "
                                          "minutes."), "ends_at", minutes=equipment.min_minutes)
    if minutes > equipment.max_minutes:
        raise _slot_error("too_long", N_("This machine is booked for at most %(minutes)d "
                                         "minutes."), "ends_at", minutes=equipment.max_minutes)
    windows, blackout_reason, clash = _hours_and_what_is_in_the_way(
        session, equipment, starts_at, ends_at)
    if not covers(open_intervals(windows, equipment.timezone, starts_at, ends_at),
                  starts_at, ends_at):
        raise _slot_error("outside_availability", N_("The machine is not available for all "
                                                     "of that time. Check its weekly hours."))
    if blackout_reason is not None:
        raise _slot_error("in_blackout", N_("The machine is blocked then: %(reason)s."),
                          reason=blackout_reason)
    if clash:
        raise Conflict("slot_taken", N_("Someone has booked the machine then (including "
                                        "%(buffer)d minutes to move and clean it between "
                                        "bookings). Choose another time."),
                       params={"buffer": equipment.buffer_minutes})


#: The machine's weekly hours (a row each), then one row with what may stand in the
#: slot's way: the reason of a blackout over it, and whether a holding booking overlaps
#: it with its buffer.  One statement, built once: every tap on a busy week asks it
#: (on PostgreSQL twice when the slot looks free), and each round trip counts there.
_HOURS_AND_WHAT_IS_IN_THE_WAY = union_all(
    sa_select(col(AvailabilityWindow.weekday), col(AvailabilityWindow.start_minute),
              col(AvailabilityWindow.end_minute), null().label("reason"),
              false().label("clash"))
    .where(col(AvailabilityWindow.equipment_id) == bindparam("equipment_id")),
    sa_select(null(), null(), null(),
              select(Blackout.reason).where(
                  col(Blackout.equipment_id) == bindparam("equipment_id"),
                  col(Blackout.starts_at) < bindparam("ends_at"),
                  col(Blackout.ends_at) > bindparam("starts_at")).limit(1).scalar_subquery(),
              exists().where(
                  col(Booking.equipment_id) == bindparam("equipment_id"),
                  col(Booking.status).in_(HOLDING_STATUSES),
                  col(Booking.starts_at) < bindparam("blocked_until"),
                  col(Booking.blocked_until) > bindparam("starts_at"))))


def _hours_and_what_is_in_the_way(session: Session, equipment: Equipment,
                                  starts_at: datetime, ends_at: datetime
                                  ) -> tuple[list[WeeklyHours], str | None, bool]:
    """The machine's weekly hours, the reason of a blackout over the slot (if any) and
    whether a booking holds it."""
    windows: list[WeeklyHours] = []
    reason, clashed = None, False
    for weekday, start_minute, end_minute, blackout, clash in session.execute(
            _HOURS_AND_WHAT_IS_IN_THE_WAY, {
                "equipment_id": equipment.id, "starts_at": starts_at, "ends_at": ends_at,
                "blocked_until": ends_at + timedelta(minutes=equipment.buffer_minutes)}):
        if weekday is None:
            reason, clashed = blackout, bool(clash)
        else:
            windows.append(WeeklyHours(weekday, start_minute, end_minute))
    return windows, reason, clashed


def custody_terms(session: Session, equipment: Equipment, member: Member,
                   starts_at: datetime, ends_at: datetime) -> bool:
    """True when the booker holds the machine for the whole slot (so it pays nothing).

    Raises when another co-owner holds part of the slot and has not released it.
    """
    periods = custody_overlapping(session, id_of(equipment), starts_at, ends_at)
    for period in periods:
        if period.member_id != member.id and not period.released:
            raise Conflict("held_in_rotation", N_("Another co-owner holds the machine then in "
                                                  "its rotation and has not released that "
                                                  "time."))
    own = [p for p in periods if p.member_id == member.id]
    return bool(own) and min(p.starts_at for p in own) <= starts_at and \
        max(p.ends_at for p in own) >= ends_at and len(own) == len(periods)


def book(session: Session, actor: User, equipment_id: int, starts_at: datetime,
         ends_at: datetime, now: datetime) -> Booking:
    """Book [starts_at, ends_at) for the actor's business, or say which rule it breaks."""
    member = acting_member(session, actor)
    require_participation(session, member, Activity.EQUIPMENT, now)
    equipment = get_equipment(session, actor, equipment_id)
    _check_bookable(session, equipment, starts_at, ends_at, now)
    if on_postgresql(session):
        # Most taps on a busy week are refused above without queueing for any lock; a
        # slot that looked free is checked again under the slot's locks, since a
        # booking may have committed in between.  (SQLite's writer holds the whole
        # database already.)
        equipment = _hold_the_slot(session, equipment, starts_at, ends_at)
        _check_bookable(session, equipment, starts_at, ends_at, now)
    in_custody = custody_terms(session, equipment, member, starts_at, ends_at)
    shares = owner_shares(session, id_of(equipment))
    minutes = int((ends_at - starts_at).total_seconds() // 60)
    price = 0 if in_custody else booking_fee(minutes, equipment.hour_rate_minor,
                                             equipment.day_rate_minor)
    approval_needed = equipment.needs_approval and member.id not in shares
    booking = Booking(
        equipment_id=id_of(equipment), cluster_id=equipment.cluster_id, member_id=id_of(member),
        booked_by_id=id_of(actor), starts_at=starts_at, ends_at=ends_at,
        blocked_until=ends_at + timedelta(minutes=equipment.buffer_minutes),
        status=(BookingStatus.REQUESTED if approval_needed else BookingStatus.CONFIRMED).value,
        price_minor=price, currency=equipment.currency, in_custody=in_custody, created_at=now,
        decided_at=None if approval_needed else now)
    session.add(booking)
    try:
        session.flush()
    except IntegrityError:  # PostgreSQL's exclusion constraint: a racing booking won
        session.rollback()
        raise Conflict("slot_taken", N_("Someone booked the machine for that time a moment "
                                        "ago. Choose another time.")) from None
    params = {"machine": equipment.name, "member": member.name}
    owner_ids = [m for m in shares if m != member.id]
    if approval_needed:
        _tell(session, owner_ids, "booking.requested",
              N_("%(member)s asks to book %(machine)s. Approve or decline it."), booking, now,
              **params)
    else:
        _charge(session, booking, id_of(member), shares, now)
        _tell(session, owner_ids, "booking.confirmed", N_("%(member)s booked %(machine)s."),
              booking, now, **params)
    session.commit()
    return booking


SECONDS_PER_DAY = 86_400

_SHARE_MACHINE = select(Equipment).where(col(Equipment.id) == bindparam("equipment_id")) \
    .with_for_update(read=True).execution_options(populate_existing=True)
#: The two-key form of PostgreSQL's advisory locks, apart from the scheduler's one-key
#: leader lock (marketplace/scheduling/leader.py): (machine id, UTC day number).
_LOCK_DAY = text("SELECT pg_advisory_xact_lock(CAST(:equipment_id AS integer), "
                 "CAST(:day AS integer))")


def slot_days(starts_at: datetime, blocked_until: datetime) -> range:
    """The UTC day numbers (days since 1970-01-01) the blocked range [starts_at,
    blocked_until) touches: any two overlapping ranges share one of them."""
    first = int(starts_at.timestamp()) // SECONDS_PER_DAY
    last = (int(blocked_until.timestamp()) - 1) // SECONDS_PER_DAY
    return range(first, max(first, last) + 1)


def _hold_the_slot(session: Session, equipment: Equipment, starts_at: datetime,
                   ends_at: datetime) -> Equipment:
    """PostgreSQL: share the machine's row (read afresh) and lock the slot's days, in
    day order; held until the transaction ends."""
    shared = session.exec(_SHARE_MACHINE, params={"equipment_id": id_of(equipment)}).one()
    blocked_until = ends_at + timedelta(minutes=shared.buffer_minutes)
    for day in slot_days(starts_at, blocked_until):
        session.execute(_LOCK_DAY, {"equipment_id": id_of(shared), "day": day})
    return shared


def _check_bookable(session: Session, equipment: Equipment, starts_at: datetime,
                    ends_at: datetime, now: datetime) -> None:
    if equipment.status != ListingStatus.ACTIVE:
        raise Conflict("not_bookable", N_("This machine is paused or retired and cannot be "
                                          "booked."))
    check_slot(session, equipment, starts_at, ends_at, now)


def _tell(session: Session, member_ids: list[int], kind: str, message: str, booking: Booking,
          now: datetime, **params: object) -> None:
    """Notify the people of these members about this booking, in the same transaction."""
    events.notify(session, active_users_of(session, member_ids), kind, message, now=now,
                  params=params, payload=_payload(booking),
                  link=f"/equipment/bookings/{booking.id}")


def _payload(booking: Booking) -> dict[str, object]:
    """What owners and booker both may see of a booking (no money of anyone else)."""
    return {"id": booking.id, "equipment_id": booking.equipment_id,
            "status": booking.status, "starts_at": booking.starts_at.isoformat(),
            "ends_at": booking.ends_at.isoformat()}


def _cluster(session: Session, cluster_id: int) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    assert cluster is not None
    return cluster


def _charge(session: Session, booking: Booking, payer_id: int, shares: dict[int, int],
            now: datetime) -> None:
    """The booker owes the owners the fee, split by ownership share."""
    ledger.record_split(session, _cluster(session, booking.cluster_id), EntrySource.BOOKING,
                        id_of(booking), payer_id, booking.price_minor, shares, now,
                        currency=booking.currency)


def refund_fee(session: Session, cluster: Cluster, booking: Booking, now: datetime
               ) -> int:
    """A cancelled booking's fee back to the booker; what it was refunded.

    Every owner paid gives its part back, and a part a leaving co-owner passed on to
    the remaining owners at its exit (`BOOKING_HANDOVER`) comes back to it from them:
    each member nets to zero on the booking, whoever owns the machine now.
    """
    refunded = ledger.reverse(session, cluster, EntrySource.BOOKING, id_of(booking),
                              EntrySource.BOOKING_REFUND, now)
    ledger.reverse(session, cluster, EntrySource.BOOKING_HANDOVER, id_of(booking),
                   EntrySource.BOOKING_HANDOVER_REFUND, now)
    return sum(e.amount_minor for e in refunded)


def get_booking(session: Session, viewer: User, booking_id: int, *,
                for_update: bool = False) -> Booking:
    """A booking the viewer is party to (booker or owner) or coordinates, else NotFound.

    Actions pass `for_update` so, on PostgreSQL, the status they read cannot
    change before their conditional update runs.
    """
    query = select(Booking).where(Booking.id == booking_id)
    if for_update:  # the locked read's values win over a copy read before it
        query = query.with_for_update().execution_options(populate_existing=True)
    booking = session.exec(query).first()
    if booking is None or booking.cluster_id != viewer.cluster_id:
        raise not_found()
    if viewer.is_coordinator or viewer.member_id == booking.member_id:
        return booking
    if viewer.member_id in owner_shares(session, booking.equipment_id):
        return booking
    raise not_found()


def _booking_for_money(session: Session, actor: User, booking_id: int) -> Booking:
    """The booking, locked, for an action that writes its money from the owners' shares
    (approve, cancel, close).  On PostgreSQL the machine's row is shared first, in the
    order booking and exit take it (machine, then booking), so such an action waits for
    a co-owner's exit that is changing the owners and splits by the shares it leaves,
    and an exit waits for it -- never both, which would deadlock."""
    if on_postgresql(session):
        booking = get_booking(session, actor, booking_id)
        session.exec(_SHARE_MACHINE, params={"equipment_id": booking.equipment_id}).one()
    return get_booking(session, actor, booking_id, for_update=True)


def _move(session: Session, booking: Booking, from_statuses: tuple[str, ...],
          **values: object) -> None:
    """Conditionally move the booking on; a second click or a race gets a Conflict."""
    moved = session.exec(
        update(Booking).where(col(Booking.id) == booking.id,
                              col(Booking.status).in_(from_statuses)).values(**values))
    if moved.rowcount != 1:
        session.rollback()
        raise Conflict("booking_changed", N_("This booking has changed in the meantime. "
                                             "Reload the page to see where it stands."))
    session.refresh(booking)


def _require_owner_side(session: Session, actor: User, booking: Booking) -> Equipment:
    equipment = get_equipment(session, actor, booking.equipment_id)
    if not can_manage(session, actor, equipment):
        raise Forbidden("owner_only", N_("Only an owner of the machine can do this."))
    return equipment


def _require_party(session: Session, actor: User, booking: Booking) -> Equipment:
    equipment = get_equipment(session, actor, booking.equipment_id)
    if actor.member_id != booking.member_id and not can_manage(session, actor, equipment):
        raise Forbidden("party_only", N_("Only the booker or an owner of the machine can "
                                         "do this."))
    return equipment


def approve(session: Session, actor: User, booking_id: int, now: datetime) -> Booking:
    """The owner accepts a request; the fee is charged and the booker told."""
    booking = _booking_for_money(session, actor, booking_id)
    equipment = _require_owner_side(session, actor, booking)
    if booking.starts_at <= now and booking.status == BookingStatus.REQUESTED:
        raise Conflict("request_expired", N_("This request's slot has already started; it "
                                             "can only be declined."))
    booker = session.get(Member, booking.member_id)
    if booker is not None and booker.exit_effective_at is not None \
            and booker.exit_effective_at <= now:
        # Its exit cancels its requests; approving one at the same moment would leave a
        # confirmed, charged booking of a business that is gone.
        raise Conflict("booker_left", N_("The business that asked for this booking has "
                                         "left the cluster, so it can only be declined."))
    _move(session, booking, (BookingStatus.REQUESTED.value,),
          status=BookingStatus.CONFIRMED.value, decided_at=now)
    _charge(session, booking, booking.member_id,
            owner_shares(session, id_of(equipment)), now)
    _tell(session, [booking.member_id], "booking.approved",
          N_("Your booking of %(machine)s is confirmed."), booking, now, machine=equipment.name)
    session.commit()
    return booking


def decline(session: Session, actor: User, booking_id: int, reason: str, now: datetime
            ) -> Booking:
    """The owner refuses a request, saying why; nothing is charged."""
    booking = get_booking(session, actor, booking_id, for_update=True)
    equipment = _require_owner_side(session, actor, booking)
    reason = _reason(reason)
    _move(session, booking, (BookingStatus.REQUESTED.value,),
          status=BookingStatus.DECLINED.value, decided_at=now, cancel_reason=reason)
    _tell(session, [booking.member_id], "booking.declined",
          N_("Your request for %(machine)s was declined: %(reason)s"), booking, now,
          machine=equipment.name, reason=reason)
    session.commit()
    return booking


def _reason(text: str) -> str:
    reason = text.strip()
    if not 0 < len(reason) <= 500:
        message = N_("Say why, in up to 500 characters.")
        raise ValidationError("reason_required", message, fields={"reason": message})
    return reason


def _meter(value: float | None, field: str, at_least: float | None = None) -> float | None:
    if value is None:
        return None
    if not 0 <= value <= MAX_METER:
        message = N_("Enter the hour meter as shown on the machine (0 to 1000000).")
        raise ValidationError("invalid_meter", message, fields={field: message})
    if at_least is not None and value < at_least:
        message = N_("The meter cannot read less than at check-out (%(reading)s).")
        raise ValidationError("meter_went_back", message, fields={field: message},
                              params={"reading": at_least})
    return value


def _note(text: str, field: str) -> str:
    if len(text) > 1000:
        message = N_("Keep the note under 1000 characters.")
        raise ValidationError("note_too_long", message, fields={field: message})
    return text.strip()


def check_out(session: Session, actor: User, booking_id: int, meter: float | None,
              note: str, photo: str | None, now: datetime) -> Booking:
    """The machine leaves its base: hour meter and condition at hand-over."""
    booking = get_booking(session, actor, booking_id, for_update=True)
    _require_party(session, actor, booking)
    values = {"checkout_meter": _meter(meter, "meter"), "checkout_note": _note(note, "note"),
              "checkout_photo": photo}
    _move(session, booking, (BookingStatus.CONFIRMED.value,),
          status=BookingStatus.CHECKED_OUT.value, **values)
    session.commit()
    return booking


def return_machine(session: Session, actor: User, booking_id: int, meter: float | None,
                   note: str, now: datetime) -> Booking:
    """The machine comes back: meter and condition; the owner then closes the booking."""
    booking = get_booking(session, actor, booking_id, for_update=True)
    equipment = _require_party(session, actor, booking)
    values = {"return_meter": _meter(meter, "meter", booking.checkout_meter),
              "return_note": _note(note, "note")}
    _move(session, booking, (BookingStatus.CHECKED_OUT.value,),
          status=BookingStatus.RETURNED.value, **values)
    shares = owner_shares(session, id_of(equipment))
    _tell(session, [m for m in shares if m != booking.member_id], "booking.returned",
          N_("%(machine)s is back. Check it and close the booking."), booking, now,
          machine=equipment.name)
    session.commit()
    return booking


def close(session: Session, actor: User, booking_id: int, damage_minor: int,
          damage_note: str, now: datetime) -> Booking:
    """The owner inspects the returned machine and closes, charging damage if any."""
    booking = _booking_for_money(session, actor, booking_id)
    equipment = _require_owner_side(session, actor, booking)
    if not 0 <= damage_minor <= MAX_DAMAGE_MINOR:
        message = N_("Enter a damage fee of zero or more.")
        raise ValidationError("invalid_damage", message, fields={"damage": message})
    note = _note(damage_note, "damage_note")
    if damage_minor and not note:
        message = N_("Describe the damage you are charging for.")
        raise ValidationError("damage_note_required", message, fields={"damage_note": message})
    _move(session, booking, (BookingStatus.RETURNED.value,),
          status=BookingStatus.CLOSED.value, damage_minor=damage_minor, damage_note=note)
    if damage_minor:
        ledger.record_split(session, _cluster(session, booking.cluster_id),
                            EntrySource.DAMAGE_FEE, id_of(booking), booking.member_id,
                            damage_minor, owner_shares(session, id_of(equipment)),
                            now, note,
                            currency=booking.currency)
        _tell(session, [booking.member_id], "booking.damage",
              N_("The owners of %(machine)s charged a damage fee: %(note)s"), booking, now,
              machine=equipment.name, note=note)
    session.commit()
    return booking


def late_cancellation_fee(equipment: Equipment, booking: Booking, now: datetime) -> int:
    """What cancelling now costs: nothing before the cutoff or before confirmation."""
    cutoff = booking.starts_at - timedelta(hours=equipment.cancel_cutoff_hours)
    if booking.status != BookingStatus.CONFIRMED or now < cutoff:
        return 0
    return cancellation_fee(booking.price_minor, equipment.cancel_fee_bp)


def cancel(session: Session, actor: User, booking_id: int, reason: str, now: datetime
           ) -> Booking:
    """The booker cancels: free until the listing's cutoff, then the cancellation fee."""
    booking = _booking_for_money(session, actor, booking_id)
    if actor.member_id != booking.member_id:
        raise Forbidden("booker_only", N_("Only the business that booked can cancel. Owners "
                                          "pause the machine or add a blackout instead."))
    equipment = get_equipment(session, actor, booking.equipment_id)
    reason = _reason(reason)
    fee = late_cancellation_fee(equipment, booking, now)
    was_confirmed = booking.status == BookingStatus.CONFIRMED
    _move(session, booking, (BookingStatus.REQUESTED.value, BookingStatus.CONFIRMED.value),
          status=BookingStatus.CANCELLED.value, cancel_reason=reason, cancel_fee_minor=fee)
    cluster = _cluster(session, booking.cluster_id)
    shares = owner_shares(session, id_of(equipment))
    if was_confirmed:
        refund_fee(session, cluster, booking, now)
    ledger.record_split(session, cluster, EntrySource.CANCELLATION_FEE, id_of(booking),
                        booking.member_id, fee, shares, now, reason,
                        currency=booking.currency)
    _tell(session, [m for m in shares if m != booking.member_id], "booking.cancelled",
          N_("A booking of %(machine)s was cancelled: %(reason)s"), booking, now,
          machine=equipment.name, reason=reason)
    session.commit()
    return booking


def cancel_affected(session: Session, equipment: Equipment, starts_at: datetime,
                    ends_at: datetime, reason: str, now: datetime) -> list[Booking]:
    """Owner-side cancellation of bookings not yet started that overlap [starts_at, ends_at).

    Used by pause, retirement and blackouts: no fee, the booking fee is
    refunded, and each booker is told why.  Part of the caller's transaction.
    """
    # Locked and read afresh: an approval committed since the caller's first read is
    # seen as confirmed here, so its fee is refunded, not left on a cancelled booking.
    affected = session.exec(select(Booking).where(
        Booking.equipment_id == equipment.id,
        col(Booking.status).in_((BookingStatus.REQUESTED.value, BookingStatus.CONFIRMED.value)),
        col(Booking.starts_at) >= now, col(Booking.starts_at) < ends_at,
        col(Booking.ends_at) > starts_at)
        .with_for_update().execution_options(populate_existing=True)).all()
    cluster = _cluster(session, equipment.cluster_id)
    for booking in affected:
        was_confirmed = booking.status == BookingStatus.CONFIRMED
        booking.status = BookingStatus.CANCELLED.value
        booking.cancel_reason = reason
        session.add(booking)
        if was_confirmed:
            refund_fee(session, cluster, booking, now)
        _tell(session, [booking.member_id], "booking.cancelled_by_owner",
              N_("Your booking of %(machine)s was cancelled by its owners: %(reason)s"),
              booking, now, machine=equipment.name, reason=reason)
    return list(affected)


def bookings_of_member(session: Session, actor: User, now: datetime) -> list[Booking]:
    """The actor's business's bookings that are not over, soonest first."""
    member = acting_member(session, actor)
    return list(session.exec(select(Booking).where(
        Booking.member_id == member.id, col(Booking.ends_at) > now - timedelta(days=1),
        col(Booking.status).notin_((BookingStatus.CANCELLED.value,
                                    BookingStatus.DECLINED.value)))
        .order_by(col(Booking.starts_at))))


def bookings_between(session: Session, equipment_id: int, starts_at: datetime,
                     ends_at: datetime) -> list[Booking]:
    """The bookings of a machine overlapping [starts_at, ends_at) that were not called off
    (holding ones, and returned or closed ones for the past)."""
    return list(session.exec(select(Booking).where(
        Booking.equipment_id == equipment_id,
        col(Booking.status).notin_((BookingStatus.CANCELLED.value,
                                    BookingStatus.DECLINED.value)),
        col(Booking.starts_at) < ends_at, col(Booking.blocked_until) > starts_at)
        .order_by(col(Booking.starts_at))))
