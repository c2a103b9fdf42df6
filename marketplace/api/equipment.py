"""Shared equipment over the API: listings, the week's availability, bookings and
their life cycle, blackouts, rotation of co-owned machines.

Same services as the equipment pages; a third member sees "booked", never by
whom (`calendar.week` decides), and bookings are readable only by their parties.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import url_for
from pydantic import Field

from marketplace.api.fields import (
    BasisPoints,
    Count,
    Day,
    Id,
    Latitude,
    Longitude,
    Minor,
    Moment,
    Reading,
)
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.barrier import ReadModel
from marketplace.clusters.service import acting_member
from marketplace.db import utcnow
from marketplace.equipment import booking as bookings
from marketplace.equipment import calendar, listings, rotation
from marketplace.equipment.access import get_equipment, owned_machine_ids, owner_shares
from marketplace.equipment.models import (
    Booking,
    Equipment,
    EquipmentKind,
    ListingStatus,
    RotationPeriod,
)
from marketplace.equipment.readmodels import (
    MachineViewer,
    audience_to_machine,
    audiences_to_machines,
    booking_for,
    machine_detail,
    machine_model,
    owner_models,
)
from marketplace.i18n import first_weekday
from marketplace.persisted import id_of
from marketplace.ratelimits import claim_limit
from marketplace.web import db, viewer

TAG = "equipment"


class MachineOut(ResponseModel):
    """A listing: what `marketplace.barrier.TABLE` lets every member of the cluster see
    (never the yard's coordinates)."""

    id: int
    name: str
    kind: str
    description: str
    locality: str
    status: str
    hour_rate_minor: int
    day_rate_minor: int
    currency: str
    timezone: str
    min_minutes: int
    max_minutes: int
    buffer_minutes: int
    granularity_minutes: int
    needs_approval: bool
    cancel_cutoff_hours: int
    cancel_fee_bp: int


class MachineList(ResponseModel):
    machines: list[MachineOut]


class HoursOut(ResponseModel):
    weekday: int = Field(description="0 = Monday, in the machine's time zone.")
    start_minute: int
    end_minute: int


class SegmentOut(ResponseModel):
    """A piece of the week.  Who holds it (`member_id`: the booker, or the co-owner whose
    rotation period it is) and `booking_id` are present only for the booking's parties,
    the machine's owners and the coordinator."""

    starts_at: Moment
    ends_at: Moment
    kind: str = Field(description="free, past (open time already gone), booked, mine, "
                      "buffer, blackout, closed or custody.")
    note: str = Field(default="", description="The owner's reason for a blackout.")
    booking_id: int | None = None
    member_id: int | None = None


class DayOut(ResponseModel):
    day: date
    segments: list[SegmentOut]


class OwnerOut(ResponseModel):
    """An owner; its share only for the machine's owners and the coordinator."""

    member_id: int
    share_bp: int | None = None


class MachineDetail(ResponseModel):
    machine: MachineOut
    owners: list[OwnerOut]
    hours: list[HoursOut]
    week: list[DayOut]


class BookingOut(ResponseModel):
    """A booking, for its booker, its machine's owners and the coordinator only."""

    id: int
    equipment_id: int
    member_id: int
    status: str
    starts_at: Moment
    ends_at: Moment
    price_minor: int
    currency: str
    in_custody: bool
    checkout_meter: float | None
    checkout_note: str
    return_meter: float | None
    return_note: str
    damage_minor: int
    damage_note: str
    cancel_fee_minor: int
    cancel_reason: str


class BookingList(ResponseModel):
    bookings: list[BookingOut]


class MachineQuery(RequestModel):
    kind: EquipmentKind | None = None


class WeekQuery(RequestModel):
    week: Day | None = Field(default=None, description="Any day of the week to show; "
                              "default: this week.")


class HoursIn(RequestModel):
    weekday: int = Field(ge=0, le=6)
    start_minute: int = Field(ge=0, le=1440)
    end_minute: int = Field(ge=0, le=1440)


class ListingIn(RequestModel):
    name: str = Field(max_length=120)
    kind: EquipmentKind
    description: str = Field(default="", max_length=4000)
    locality: str = Field(max_length=120)
    base_lat: Latitude
    base_lng: Longitude
    hour_rate_minor: Minor
    day_rate_minor: Minor
    min_minutes: Count
    max_minutes: Count
    buffer_minutes: Count = 0
    granularity_minutes: Count = 30
    timezone: str = Field(max_length=64)
    needs_approval: bool = False
    cancel_cutoff_hours: Count = 24
    cancel_fee_bp: BasisPoints = 0
    hours: list[HoursIn] = Field(max_length=7)


class OwnerShareIn(RequestModel):
    member_id: Id
    share_bp: BasisPoints


class CoOwnedIn(ListingIn):
    owners: list[OwnerShareIn] = Field(max_length=50)


class StatusIn(RequestModel):
    status: ListingStatus
    reason: str = Field(default="", max_length=500)


class PeriodIn(RequestModel):
    starts_at: Moment
    ends_at: Moment


class BlackoutIn(PeriodIn):
    reason: str = Field(default="", max_length=300)


class BlackoutOut(ResponseModel):
    id: int
    equipment_id: int
    starts_at: Moment
    ends_at: Moment
    reason: str


class ReasonIn(RequestModel):
    reason: str = Field(default="", max_length=500)


class MeterIn(RequestModel):
    meter: Reading | None = None
    note: str = Field(default="", max_length=1000)


class CloseIn(RequestModel):
    damage_minor: Minor = 0
    damage_note: str = Field(default="", max_length=1000)


class PlanIn(RequestModel):
    period: RotationPeriod
    starts_on: Day


class SwapIn(RequestModel):
    offered_id: Id
    wanted_id: Id


class AnswerIn(RequestModel):
    accept: bool


class CustodyOut(ResponseModel):
    id: int
    equipment_id: int
    member_id: int
    starts_at: Moment
    ends_at: Moment
    released: bool


class SwapOut(ResponseModel):
    id: int
    offered_id: int
    wanted_id: int
    status: str


class FeedOut(ResponseModel):
    url: str = Field(description="Secret address of the business's equipment calendar "
                     "(iCalendar); anyone holding it can read it.")


def _booking_out(booking: Booking) -> ReadModel:
    """The booking cut for the caller (`barrier.BOOKING`), whichever operation made it."""
    session = db()
    machine = get_equipment(session, viewer(), booking.equipment_id)
    return booking_for(MachineViewer.of(viewer()), booking, machine,
                       owner_shares(session, booking.equipment_id))


def _machine_out(machine: Equipment) -> ReadModel:
    """The listing cut for the caller (`barrier.MACHINE`)."""
    return machine_model(machine, audience_to_machine(
        MachineViewer.of(viewer()), machine, owner_shares(db(), id_of(machine))))


def _draft(body: ListingIn) -> listings.ListingDraft:
    hours = tuple(listings.WeeklyHours(h.weekday, h.start_minute, h.end_minute)
                  for h in body.hours)
    return listings.ListingDraft(**body.model_dump(exclude={"hours", "owners"}), hours=hours)


@operation("GET", "/equipment", summary="The cluster's machines that are not retired",
           tag=TAG, query=MachineQuery, response=MachineList)
def list_machines(query: MachineQuery) -> dict[str, Any]:
    user = viewer()
    audience = audiences_to_machines(MachineViewer.of(user),
                                     owned_machine_ids(db(), user.member_id))
    return {"machines": [machine_model(m, audience(m))
                         for m in listings.machines(db(), user, query.kind)]}


@operation("POST", "/equipment", summary="List a machine the caller's business owns",
           tag=TAG, body=ListingIn, response=MachineOut, status=201)
def list_machine(body: ListingIn) -> Any:
    return _machine_out(listings.list_machine(db(), viewer(), _draft(body), utcnow()))


@operation("POST", "/equipment/co-owned", summary="Record a machine several members own, "
           "with their shares (coordinator)", tag=TAG, body=CoOwnedIn, response=MachineOut,
           status=201)
def record_co_owned(body: CoOwnedIn) -> Any:
    shares = {owner.member_id: owner.share_bp for owner in body.owners}
    return _machine_out(listings.record_co_owned(db(), viewer(), _draft(body), shares, utcnow()))


@operation("GET", "/equipment/{equipment_id}", summary="A machine, its owners, weekly hours "
           "and one week of availability", tag=TAG, query=WeekQuery, response=MachineDetail)
def get_machine(equipment_id: int, query: WeekQuery) -> dict[str, Any]:
    user, session = viewer(), db()
    machine = get_equipment(session, user, equipment_id)
    shares = owner_shares(session, equipment_id)
    audience = audience_to_machine(MachineViewer.of(user), machine, shares)
    first = calendar.week_start(query.week, machine.timezone, first_weekday(), utcnow())
    days = calendar.week(session, machine, first, user.member_id, audience, now=utcnow())
    return machine_detail(machine, owner_models(shares, audience),
                          listings.hours_of(session, equipment_id), days, audience)


@operation("PUT", "/equipment/{equipment_id}", summary="Change a listing (its managers)",
           tag=TAG, body=ListingIn, response=MachineOut)
def update_listing(equipment_id: int, body: ListingIn) -> Any:
    return _machine_out(listings.update_listing(db(), viewer(), equipment_id, _draft(body)))


@operation("POST", "/equipment/{equipment_id}/status", summary="Pause, resume or retire a "
           "listing; affected bookings are cancelled and refunded", tag=TAG, body=StatusIn,
           response=MachineOut)
def change_status(equipment_id: int, body: StatusIn) -> Any:
    return _machine_out(listings.set_status(db(), viewer(), equipment_id, body.status,
                                            body.reason, utcnow()))


@operation("POST", "/equipment/{equipment_id}/blackouts", summary="Block a period "
           "(maintenance, own use); affected bookings are cancelled", tag=TAG,
           body=BlackoutIn, response=BlackoutOut, status=201)
def add_blackout(equipment_id: int, body: BlackoutIn) -> Any:
    return listings.add_blackout(db(), viewer(), equipment_id, body.starts_at, body.ends_at,
                                 body.reason, utcnow())


@operation("DELETE", "/equipment/blackouts/{blackout_id}", summary="Remove a blackout",
           tag=TAG)
def remove_blackout(blackout_id: int) -> None:
    listings.remove_blackout(db(), viewer(), blackout_id)


@operation("POST", "/equipment/{equipment_id}/bookings", summary="Book a slot (refused "
           "with a reason if it is taken, closed or too short)", tag=TAG, body=PeriodIn,
           response=BookingOut, status=201, limit=claim_limit)
def book(equipment_id: int, body: PeriodIn) -> Any:
    return _booking_out(bookings.book(db(), viewer(), equipment_id, body.starts_at,
                                      body.ends_at, utcnow()))


@operation("GET", "/bookings", summary="The caller's business's bookings", tag=TAG,
           response=BookingList)
def my_bookings() -> dict[str, Any]:
    return {"bookings": [_booking_out(b) for b in
                         bookings.bookings_of_member(db(), viewer(), utcnow())]}


@operation("GET", "/bookings/{booking_id}", summary="One booking (its parties only)",
           tag=TAG, response=BookingOut)
def get_booking(booking_id: int) -> Any:
    return _booking_out(bookings.get_booking(db(), viewer(), booking_id))


@operation("POST", "/bookings/{booking_id}/approve", summary="Approve a requested booking "
           "(owner side)", tag=TAG, response=BookingOut)
def approve_booking(booking_id: int) -> Any:
    return _booking_out(bookings.approve(db(), viewer(), booking_id, utcnow()))


@operation("POST", "/bookings/{booking_id}/decline", summary="Decline a requested booking "
           "(owner side)", tag=TAG, body=ReasonIn, response=BookingOut)
def decline_booking(booking_id: int, body: ReasonIn) -> Any:
    return _booking_out(bookings.decline(db(), viewer(), booking_id, body.reason, utcnow()))


@operation("POST", "/bookings/{booking_id}/cancel", summary="Cancel a booking (a late "
           "cancellation may cost the listing's fee)", tag=TAG, body=ReasonIn,
           response=BookingOut)
def cancel_booking(booking_id: int, body: ReasonIn) -> Any:
    return _booking_out(bookings.cancel(db(), viewer(), booking_id, body.reason, utcnow()))


@operation("POST", "/bookings/{booking_id}/check-out", summary="Take the machine: meter "
           "reading and note", tag=TAG, body=MeterIn, response=BookingOut)
def check_out(booking_id: int, body: MeterIn) -> Any:
    return _booking_out(bookings.check_out(db(), viewer(), booking_id, body.meter,
                                           body.note, None, utcnow()))


@operation("POST", "/bookings/{booking_id}/return", summary="Bring the machine back",
           tag=TAG, body=MeterIn, response=BookingOut)
def return_machine(booking_id: int, body: MeterIn) -> Any:
    return _booking_out(bookings.return_machine(db(), viewer(), booking_id, body.meter,
                                                body.note, utcnow()))


@operation("POST", "/bookings/{booking_id}/close", summary="Close a returned booking, with "
           "a damage fee if any (owner side)", tag=TAG, body=CloseIn, response=BookingOut)
def close_booking(booking_id: int, body: CloseIn) -> Any:
    return _booking_out(bookings.close(db(), viewer(), booking_id, body.damage_minor,
                                       body.damage_note, utcnow()))


def _feed(renew: bool) -> dict[str, str]:
    user = viewer()
    member = acting_member(db(), user)
    token = calendar.feed_token(db(), member, utcnow(), renew=renew)
    return {"url": url_for("calendar_feed.feed", token=token, _external=True)}


@operation("GET", "/calendar", summary="The business's calendar feed address", tag=TAG,
           response=FeedOut)
def calendar_feed() -> dict[str, str]:
    return _feed(renew=False)


@operation("POST", "/calendar/renew", summary="Replace the calendar feed address; the old "
           "one stops working", tag=TAG, response=FeedOut)
def renew_calendar_feed() -> dict[str, str]:
    return _feed(renew=True)


@operation("POST", "/equipment/{equipment_id}/rotation", summary="Start rotating a "
           "co-owned machine among its owners", tag=TAG, body=PlanIn, response=MachineOut,
           status=201)
def create_plan(equipment_id: int, body: PlanIn) -> Any:
    rotation.create_plan(db(), viewer(), equipment_id, body.period, body.starts_on, utcnow())
    return _machine_out(get_equipment(db(), viewer(), equipment_id))


@operation("POST", "/custody/{custody_id}/release", summary="Let others book the machine "
           "during the caller's period", tag=TAG, response=CustodyOut)
def release_custody(custody_id: int) -> Any:
    return rotation.release(db(), viewer(), custody_id, utcnow())


@operation("POST", "/swaps", summary="Offer one of the caller's periods for another "
           "co-owner's", tag=TAG, body=SwapIn, response=SwapOut, status=201)
def request_swap(body: SwapIn) -> Any:
    return rotation.request_swap(db(), viewer(), body.offered_id, body.wanted_id, utcnow())


@operation("POST", "/swaps/{swap_id}/answer", summary="Accept or decline a swap offered "
           "to the caller", tag=TAG, body=AnswerIn, response=SwapOut)
def answer_swap(swap_id: int, body: AnswerIn) -> Any:
    return rotation.answer_swap(db(), viewer(), swap_id, body.accept, utcnow())


