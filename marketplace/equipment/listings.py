"""Listing machines, their weekly hours and blackouts; pausing and retiring them.

A member lists a machine it owns alone; the coordinator records a machine the
cluster's members co-own, with ownership shares summing to 10 000.  Whatever
makes existing bookings impossible (a pause, a retirement, a blackout)
cancels the bookings that have not started yet, refunds their fee and tells
each booker why, in the same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, delete, select

from marketplace.clusters.agreements import Activity, require_participation
from marketplace.clusters.models import Cluster, Member, Role, User
from marketplace.clusters.service import (
    acting_member,
    is_timezone,
    lock_cluster_settings,
    require_coordinator,
)
from marketplace.equipment.access import get_equipment, require_manager
from marketplace.equipment.availability import WeeklyHours
from marketplace.equipment.booking import cancel_affected
from marketplace.equipment.models import (
    AvailabilityWindow,
    Blackout,
    Equipment,
    EquipmentKind,
    EquipmentOwner,
    ListingStatus,
)
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.money import BASIS_POINTS_WHOLE
from marketplace.persisted import id_of

# Caps keep the dearest allowed booking (60 days) inside 32-bit money columns.
MAX_HOUR_RATE_MINOR = 10_000_00
MAX_DAY_RATE_MINOR = 100_000_00
MAX_BOOKING_MINUTES = 60 * 24 * 60  # sixty days
GRANULARITIES = (15, 30, 60)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ListingDraft:
    name: str
    kind: str
    description: str
    locality: str
    base_lat: float
    base_lng: float
    hour_rate_minor: int
    day_rate_minor: int
    min_minutes: int
    max_minutes: int
    buffer_minutes: int
    granularity_minutes: int
    timezone: str
    needs_approval: bool
    cancel_cutoff_hours: int
    cancel_fee_bp: int
    hours: tuple[WeeklyHours, ...]


def _hours_errors(hours: Sequence[WeeklyHours], step: int) -> str | None:
    if not hours:
        return N_("Give the machine at least one bookable period in the week.")
    for window in hours:
        if not 0 <= window.weekday <= 6 or not 0 <= window.start_minute < window.end_minute <= 1440:
            return N_("Each day's hours must start before they end, between 00:00 and 24:00.")
        if window.start_minute % step or window.end_minute % step:
            return N_("Hours must fall on the machine's booking steps.")
    return None


def validate_draft(draft: ListingDraft) -> None:
    """Every field error of a listing at once (views call it to merge their own)."""
    errors: dict[str, str] = {}
    if not 0 < len(draft.name.strip()) <= 120:
        errors["name"] = N_("Name the machine (up to 120 characters).")
    if draft.kind not in {k.value for k in EquipmentKind}:
        errors["kind"] = N_("Choose a machine type from the list.")
    if len(draft.description) > 4000:
        errors["description"] = N_("Keep the description under 4000 characters.")
    if not 0 < len(draft.locality.strip()) <= 120:
        errors["locality"] = N_("Say where the machine is kept (town or yard).")
    if not (-90 <= draft.base_lat <= 90 and -180 <= draft.base_lng <= 180):
        errors["base_lat"] = N_("Give the latitude (-90 to 90) and longitude (-180 to 180).")
    for field, rate, cap in (("hour_rate", draft.hour_rate_minor, MAX_HOUR_RATE_MINOR),
                             ("day_rate", draft.day_rate_minor, MAX_DAY_RATE_MINOR)):
        if rate < 0:
            errors[field] = N_("Rates cannot be negative.")
        elif rate > cap:
            errors[field] = N_("That rate is higher than this marketplace accepts; check "
                               "the amount.")
    step = draft.granularity_minutes
    if step not in GRANULARITIES:
        errors["granularity_minutes"] = N_("Choose 15, 30 or 60 minute steps.")
        step = 60
    if not (step <= draft.min_minutes <= MAX_BOOKING_MINUTES and draft.min_minutes % step == 0):
        errors["min_minutes"] = N_("The shortest booking must be a whole number of steps.")
    if not (draft.min_minutes <= draft.max_minutes <= MAX_BOOKING_MINUTES
            and draft.max_minutes % step == 0):
        errors["max_minutes"] = N_("The longest booking must be at least the shortest, at "
                                   "most 60 days, in whole steps.")
    if not 0 <= draft.buffer_minutes <= 7 * 24 * 60:
        errors["buffer_minutes"] = N_("The buffer between bookings is 0 minutes to 7 days.")
    if not is_timezone(draft.timezone):
        errors["timezone"] = N_("Choose a time zone from the list.")
    if not 0 <= draft.cancel_cutoff_hours <= 30 * 24:
        errors["cancel_cutoff_hours"] = N_("The free-cancellation cutoff is 0 to 720 hours.")
    if not 0 <= draft.cancel_fee_bp <= BASIS_POINTS_WHOLE:
        errors["cancel_fee"] = N_("The cancellation fee is 0 to 100 percent of the booking.")
    hours_error = _hours_errors(draft.hours, step)
    if hours_error:
        errors["hours"] = hours_error
    if errors:
        raise ValidationError("invalid_listing", N_("Some fields need your attention."),
                              fields=errors)


def _validate_shares(session: Session, cluster_id: int, shares: Mapping[int, int]) -> None:
    message = None
    if len(shares) < 2:
        message = N_("A co-owned machine has at least two co-owners.")
    elif any(share <= 0 for share in shares.values()) or \
            sum(shares.values()) != BASIS_POINTS_WHOLE:
        message = N_("Ownership shares must be above zero and add up to 10000 basis points "
                     "(100 %).")
    else:
        found = session.exec(select(Member.id).where(
            col(Member.id).in_(list(shares)), Member.cluster_id == cluster_id)).all()
        if len(found) != len(shares):
            message = N_("Co-owners must be member businesses of this cluster.")
    if message:
        raise ValidationError("invalid_shares", message, fields={"shares": message})


def _write(session: Session, equipment: Equipment, draft: ListingDraft) -> None:
    for field in ("kind", "base_lat", "base_lng", "hour_rate_minor", "day_rate_minor",
                  "min_minutes", "max_minutes", "buffer_minutes", "granularity_minutes",
                  "timezone", "needs_approval", "cancel_cutoff_hours", "cancel_fee_bp"):
        setattr(equipment, field, getattr(draft, field))
    equipment.name = draft.name.strip()
    equipment.description = draft.description.strip()
    equipment.locality = draft.locality.strip()
    session.add(equipment)
    session.flush()
    session.execute(delete(AvailabilityWindow).where(
        col(AvailabilityWindow.equipment_id) == equipment.id))
    for window in sorted(set(draft.hours), key=lambda w: (w.weekday, w.start_minute)):
        session.add(AvailabilityWindow(equipment_id=id_of(equipment), weekday=window.weekday,
                                       start_minute=window.start_minute,
                                       end_minute=window.end_minute))


def _new_equipment(session: Session, cluster: Cluster, actor: User, now: datetime
                   ) -> Equipment:
    """A listing priced in the cluster's currency, read under the settings lock."""
    currency = lock_cluster_settings(session, id_of(cluster))[1]
    return Equipment(cluster_id=id_of(cluster), name="", kind="", locality="", base_lat=0.0,
                     base_lng=0.0, hour_rate_minor=0, day_rate_minor=0,
                     currency=currency, min_minutes=60, max_minutes=60,
                     timezone=cluster.timezone, listed_by_id=id_of(actor), created_at=now)


def require_owner_role(actor: User) -> None:
    """Crew book machines; only a business's owners list them."""
    if actor.role != Role.OWNER:
        raise Forbidden("owner_role_only", N_("Only an owner of the business can list its "
                                              "machines."))


def list_machine(session: Session, actor: User, draft: ListingDraft, now: datetime,
                 photo: str | None = None) -> Equipment:
    """An owner lists a machine its business owns outright."""
    member = acting_member(session, actor)
    require_owner_role(actor)
    require_participation(session, member, Activity.EQUIPMENT, now)
    validate_draft(draft)
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    equipment = _new_equipment(session, cluster, actor, now)
    equipment.photo = photo
    _write(session, equipment, draft)
    session.add(EquipmentOwner(equipment_id=id_of(equipment), member_id=id_of(member),
                               share_bp=BASIS_POINTS_WHOLE))
    session.commit()
    return equipment


def record_co_owned(session: Session, actor: User, draft: ListingDraft,
                    shares: Mapping[int, int], now: datetime, photo: str | None = None
                    ) -> Equipment:
    """The coordinator records a machine several members own, with their shares."""
    require_coordinator(actor)
    errors: dict[str, str] = {}
    for check in (lambda: validate_draft(draft),
                  lambda: _validate_shares(session, actor.cluster_id, shares)):
        try:
            check()
        except ValidationError as error:
            errors.update(error.fields)
    if errors:
        raise ValidationError("invalid_listing", N_("Some fields need your attention."),
                              fields=errors)
    cluster = session.get(Cluster, actor.cluster_id)
    assert cluster is not None
    equipment = _new_equipment(session, cluster, actor, now)
    equipment.photo = photo
    _write(session, equipment, draft)
    for member_id, share in sorted(shares.items()):
        session.add(EquipmentOwner(equipment_id=id_of(equipment), member_id=member_id,
                                   share_bp=share))
    session.commit()
    return equipment


def update_listing(session: Session, actor: User, equipment_id: int, draft: ListingDraft,
                   photo: str | None = None) -> Equipment:
    """Change a listing; existing bookings keep the terms they were made under."""
    equipment = get_equipment(session, actor, equipment_id, for_update=True)
    require_manager(session, actor, equipment)
    if equipment.status == ListingStatus.RETIRED:
        raise Conflict("retired", N_("This machine is retired; its listing cannot change."))
    validate_draft(draft)
    if photo is not None:
        equipment.photo = photo
    _write(session, equipment, draft)
    session.commit()
    return equipment


def hours_of(session: Session, equipment_id: int) -> list[AvailabilityWindow]:
    """The machine's weekly hours, Monday first."""
    return list(session.exec(select(AvailabilityWindow).where(
        AvailabilityWindow.equipment_id == equipment_id)
        .order_by(col(AvailabilityWindow.weekday), col(AvailabilityWindow.start_minute))))


def set_status(session: Session, actor: User, equipment_id: int, status: str, reason: str,
               now: datetime) -> Equipment:
    """Pause, resume or retire; pausing and retiring cancel bookings not yet started."""
    equipment = get_equipment(session, actor, equipment_id, for_update=True)
    require_manager(session, actor, equipment)
    allowed = {ListingStatus.ACTIVE: {ListingStatus.PAUSED, ListingStatus.RETIRED},
               ListingStatus.PAUSED: {ListingStatus.ACTIVE, ListingStatus.RETIRED},
               ListingStatus.RETIRED: set()}
    if status not in allowed[ListingStatus(equipment.status)]:
        raise Conflict("status_unchanged", N_("A retired machine stays retired; an active or "
                                              "paused one can be paused, resumed or retired."))
    reason = reason.strip()
    if status != ListingStatus.ACTIVE and not 0 < len(reason) <= 300:
        message = N_("Say why, so people with bookings know (up to 300 characters).")
        raise ValidationError("reason_required", message, fields={"reason": message})
    equipment.status = status
    session.add(equipment)
    if status != ListingStatus.ACTIVE:
        cancel_affected(session, equipment, now, FAR_FUTURE, reason, now)
    session.commit()
    return equipment


def add_blackout(session: Session, actor: User, equipment_id: int, starts_at: datetime,
                 ends_at: datetime, reason: str, now: datetime) -> Blackout:
    """Block a period (maintenance, own use); bookings inside it are cancelled with notice."""
    equipment = get_equipment(session, actor, equipment_id, for_update=True)
    require_manager(session, actor, equipment)
    errors: dict[str, str] = {}
    if ends_at <= starts_at:
        errors["ends_at"] = N_("The end must be after the start.")
    if ends_at <= now:
        errors["ends_at"] = N_("A blackout must end in the future.")
    if not 0 < len(reason.strip()) <= 300:
        errors["reason"] = N_("Say why, so people with bookings know (up to 300 characters).")
    if errors:
        raise ValidationError("invalid_blackout", N_("Some fields need your attention."),
                              fields=errors)
    blackout = Blackout(equipment_id=id_of(equipment), starts_at=starts_at, ends_at=ends_at,
                        reason=reason.strip(), created_by_id=id_of(actor))
    session.add(blackout)
    cancel_affected(session, equipment, starts_at, ends_at, blackout.reason, now)
    session.commit()
    return blackout


def remove_blackout(session: Session, actor: User, blackout_id: int) -> None:
    """The machine is bookable again in that period."""
    blackout = session.get(Blackout, blackout_id)
    if blackout is None:  # gone, or never ours: the same answer, so ids reveal nothing
        raise not_found()
    equipment = get_equipment(session, actor, blackout.equipment_id)
    require_manager(session, actor, equipment)
    session.delete(blackout)
    session.commit()


def blackouts_of(session: Session, equipment_id: int, after: datetime) -> list[Blackout]:
    """Blackouts not yet over, soonest first."""
    return list(session.exec(select(Blackout).where(
        Blackout.equipment_id == equipment_id, col(Blackout.ends_at) > after)
        .order_by(col(Blackout.starts_at))))


def machines(session: Session, viewer: User, kind: str | None = None) -> list[Equipment]:
    """The cluster's machines that are not retired, by name."""
    query = select(Equipment).where(Equipment.cluster_id == viewer.cluster_id,
                                    col(Equipment.status) != ListingStatus.RETIRED)
    if kind:
        query = query.where(Equipment.kind == kind)
    return list(session.exec(query.order_by(col(Equipment.name))))

