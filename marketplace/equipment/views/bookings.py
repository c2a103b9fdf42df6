"""Bookings: the booking step with its price, booking, a member's bookings, and what
booker and owner do with a booking afterwards (approve, decline, cancel, check out,
return, close).

Times are typed in the viewer's own time zone and shown in it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from marketplace.api.equipment import BookingOut
from marketplace.api.spec import document
from marketplace.clusters.models import Member
from marketplace.clusters.service import list_members
from marketplace.db import utcnow
from marketplace.equipment import booking as bookings
from marketplace.equipment import calendar, listings, quotes, rotation
from marketplace.equipment.access import can_manage, get_equipment, owner_shares
from marketplace.equipment.forms import (
    ActionForm,
    BookingForm,
    CheckOutForm,
    CloseForm,
    ReasonForm,
    ReturnForm,
)
from marketplace.equipment.models import Booking, Equipment
from marketplace.equipment.photos import is_stored_name
from marketplace.equipment.readmodels import MachineViewer, booking_for
from marketplace.equipment.views.common import bp, send_photo, uploaded_photo
from marketplace.equipment.views.machines import detail_page
from marketplace.errors import N_, DomainError, ValidationError
from marketplace.forms import filled
from marketplace.i18n import select_timezone
from marketplace.persisted import id_of
from marketplace.ratelimits import claim_limit
from marketplace.web import (
    apply_to_form,
    db,
    money_from_form,
    submit,
    utc_from_form,
    viewer,
    wants_json,
)


def _local(moment: datetime) -> datetime:
    """An instant as the wall-clock time the viewer types in a form (its own zone)."""
    return moment.astimezone(ZoneInfo(select_timezone())).replace(tzinfo=None)


def _tapped(text: str | None) -> datetime | None:
    """The instant a tapped piece of the week starts at (`?start=`, ISO with offset)."""
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _book_page(machine: Equipment, form: BookingForm, status: int = 200,
               confirm: bool = False, proposed: bool = False) -> ResponseReturnValue:
    """The booking step: the slot, what it costs this booker, one button to confirm.
    The price is computed for the form's slot; a slot the rules refuse shows why (a
    slot we `proposed` from a tap is a page like any other, not a refused request)."""
    quoted = None
    if form.starts_at.data and form.ends_at.data and not form.errors:
        quoted, priced = _price(id_of(machine), form)
        status = status if proposed else max(status, priced)
    return _book_html(machine, form, quoted, confirm), status


def _book_html(machine: Equipment, form: BookingForm, quoted: quotes.Quote | None = None,
               confirm: bool = False) -> str:
    return render_template("equipment/book.html", machine=machine, booking_form=form,
                           quote=quoted, signature=_signature(form, quoted),
                           confirm=confirm, viewer_timezone=select_timezone())


def _price(equipment_id: int, form: BookingForm) -> tuple[quotes.Quote | None, int]:
    """What the form's slot costs this booker (200), or why the rules refuse it: the
    reason on the form and the refusal's status.  The booking step and its live price
    box show either; nothing was asked to be written, so this is no refused action
    (`web.submit`), only a price that cannot be given."""
    try:
        return quotes.quote(db(), viewer(), equipment_id, _form_instant(form, "starts_at"),
                            _form_instant(form, "ends_at"), utcnow()), 200
    except DomainError as error:
        db().rollback()
        apply_to_form(form, error)
        return None, error.status


def _form_instant(form: BookingForm, name: str) -> datetime:
    return utc_from_form(getattr(form, name).data, name)


def _signature(form: BookingForm, quoted: quotes.Quote | None) -> str:
    """What the booker saw before confirming: the slot and the amount it pays.  A post
    whose signature differs (times changed, the price moved) is shown the new price
    to confirm instead of booking."""
    if quoted is None:
        return ""
    return (f"{form.starts_at.data:%Y-%m-%dT%H:%M}|{form.ends_at.data:%Y-%m-%dT%H:%M}|"
            f"{quoted.to_pay_minor}|{quoted.currency}")


@bp.route("/<int:equipment_id>/book", methods=["GET"])
def book_form(equipment_id: int) -> ResponseReturnValue:
    """A tap on a free piece of the week: the booking step, prefilled with the first
    slot there of the machine's shortest length, its price shown before confirming."""
    machine = get_equipment(db(), viewer(), equipment_id)
    if viewer().member_id is None:
        abort(403)
    now = utcnow()
    starts, ends = quotes.first_slot(machine, _tapped(request.args.get("start")) or now, now)
    form = BookingForm(formdata=None, starts_at=_local(starts), ends_at=_local(ends))
    return _book_page(machine, form, proposed=True)


@bp.route("/<int:equipment_id>/quote")
def quote_fragment(equipment_id: int) -> ResponseReturnValue:
    """The price box for the times typed so far (the booking form refreshes it live)."""
    machine = get_equipment(db(), viewer(), equipment_id)
    form = BookingForm(formdata=request.args, meta={"csrf": False})
    quoted, status = _price(equipment_id, form) if form.validate() else (None, 422)
    return render_template("equipment/_quote.html", machine=machine, quote=quoted,
                           booking_form=form, signature=_signature(form, quoted)), status


#: A slot someone else holds, or a machine that is paused (409), is refused on the page
#: the booker typed it on (the machine's week shows what is in the way), like a 422.
_SHOWN_ON_BOOKING = frozenset({422, 409})


@bp.route("/<int:equipment_id>/book", methods=["POST"])
@claim_limit
def book(equipment_id: int) -> ResponseReturnValue:
    # A machine the viewer may not know exists is a 404 before any other refusal
    # (DESIGN rule 5), as on the booking step (`book_form`).
    machine = get_equipment(db(), viewer(), equipment_id)
    form = BookingForm()

    def again() -> str:
        if "quoted" in request.form and request.form.get("from") != "week":
            return _book_html(machine, form)
        asked = form.starts_at.data.date() if form.starts_at.data else None
        return detail_page(equipment_id, asked, booking_form=form)

    def book_slot() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_booking", N_("Enter when the booking starts and "
                                                        "ends."))
        starts_at = utc_from_form(filled(form.starts_at.data), "starts_at")
        ends_at = utc_from_form(filled(form.ends_at.data), "ends_at")
        if "quoted" in request.form:  # a person's form: book only the price it saw
            shown = quotes.quote(db(), viewer(), equipment_id, starts_at, ends_at, utcnow())
            if request.form["quoted"] != _signature(form, shown):
                return _book_page(machine, form, confirm=True)
        booking = bookings.book(db(), viewer(), equipment_id, starts_at, ends_at, utcnow())
        message = (_("Booking requested. The owner will approve or decline it.")
                   if booking.status == "requested" else _("Booked. It is in your calendar."))
        if wants_json():
            return jsonify({"ok": True, "message": message,
                            "booking": _booking_document(booking)}), 201
        flash(message)
        return redirect(url_for("equipment.booking_detail", booking_id=booking.id))

    return submit(form, book_slot, again, shown=_SHOWN_ON_BOOKING)


def _booking_document(booking: Booking) -> dict[str, Any]:
    """The booking as the viewer may see it, in the API's shape (`BookingOut`)."""
    session = db()
    machine = get_equipment(session, viewer(), booking.equipment_id)
    model = booking_for(MachineViewer.of(viewer()), booking, machine,
                        owner_shares(session, booking.equipment_id))
    return document(BookingOut, model)


@bp.route("/bookings")
def my_bookings() -> ResponseReturnValue:
    user = viewer()
    if user.member_id is None:
        return redirect(url_for("equipment.index"))
    session = db()
    now = utcnow()
    rows = bookings.bookings_of_member(session, user, now)
    machines = {m.id: m for m in listings.machines(session, user)}
    handovers = rotation.upcoming_handovers(session, user.member_id, now)
    member = session.get(Member, user.member_id)
    assert member is not None
    token = calendar.feed_token(session, member, now)
    if wants_json():
        return jsonify({"bookings": [_booking_document(b) for b in rows]})
    return render_template("equipment/my_bookings.html", bookings=rows, machines=machines,
                           handovers=handovers, names={m.id: m.name for m in
                                                       list_members(session, user)},
                           feed_url=url_for("calendar_feed.feed", token=token, _external=True),
                           action_form=ActionForm())


def _booking_context(booking_id: int, **forms: Any) -> dict[str, Any]:
    user = viewer()
    session = db()
    booking = bookings.get_booking(session, user, booking_id)
    machine = get_equipment(session, user, booking.equipment_id)
    return {
        "booking": booking, "machine": machine,
        "is_booker": user.member_id == booking.member_id,
        "manager": can_manage(session, user, machine),
        "names": {m.id: m.name for m in list_members(session, user)},
        "late_fee": bookings.late_cancellation_fee(machine, booking, utcnow()),
        "reason_form": forms.get("reason_form") or ReasonForm(),
        "checkout_form": forms.get("checkout_form") or CheckOutForm(),
        "return_form": forms.get("return_form") or ReturnForm(),
        "close_form": forms.get("close_form") or CloseForm(),
        "action_form": ActionForm(),
    }


@bp.route("/bookings/<int:booking_id>")
def booking_detail(booking_id: int) -> ResponseReturnValue:
    context = _booking_context(booking_id)
    if wants_json():
        return jsonify({"booking": _booking_document(context["booking"])})
    return render_template("equipment/booking.html", **context)


@bp.route("/bookings/<int:booking_id>/checkout-photo")
def checkout_photo(booking_id: int) -> ResponseReturnValue:
    booking = bookings.get_booking(db(), viewer(), booking_id)
    if not booking.checkout_photo or not is_stored_name(booking.checkout_photo):
        abort(404)
    return send_photo(booking.checkout_photo)


def _booking_done(booking_id: int, message: str) -> ResponseReturnValue:
    if wants_json():
        context = _booking_context(booking_id)
        return jsonify({"ok": True, "message": message,
                        "booking": _booking_document(context["booking"])})
    flash(message)
    return redirect(url_for("equipment.booking_detail", booking_id=booking_id))


def _booking_page(booking_id: int, **forms: Any) -> str:
    """The booking page again, with a refused form as the viewer filled it in."""
    return render_template("equipment/booking.html", **_booking_context(booking_id, **forms))


@bp.route("/bookings/<int:booking_id>/approve", methods=["POST"])
def approve(booking_id: int) -> ResponseReturnValue:
    bookings.approve(db(), viewer(), booking_id, utcnow())
    return _booking_done(booking_id, _("Booking approved. The booker has been told."))


@bp.route("/bookings/<int:booking_id>/decline", methods=["POST"])
def decline(booking_id: int) -> ResponseReturnValue:
    form = ReasonForm()

    def decline_request() -> ResponseReturnValue:
        bookings.decline(db(), viewer(), booking_id, form.reason.data or "", utcnow())
        return _booking_done(booking_id, _("Request declined. The booker has been told."))

    return submit(form, decline_request, lambda: _booking_page(booking_id, reason_form=form))


@bp.route("/bookings/<int:booking_id>/cancel", methods=["POST"])
def cancel(booking_id: int) -> ResponseReturnValue:
    form = ReasonForm()

    def cancel_booking() -> ResponseReturnValue:
        bookings.cancel(db(), viewer(), booking_id, form.reason.data or "", utcnow())
        return _booking_done(booking_id, _("Booking cancelled."))

    return submit(form, cancel_booking, lambda: _booking_page(booking_id, reason_form=form))


@bp.route("/bookings/<int:booking_id>/check-out", methods=["POST"])
def check_out(booking_id: int) -> ResponseReturnValue:
    form = CheckOutForm()

    def hand_over() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        photo_name = uploaded_photo(form.photo)
        bookings.check_out(db(), viewer(), booking_id, form.meter.data, form.note.data or "",
                           photo_name, utcnow())
        return _booking_done(booking_id,
                             _("Checked out. Return it by the end of the booking."))

    return submit(form, hand_over, lambda: _booking_page(booking_id, checkout_form=form))


@bp.route("/bookings/<int:booking_id>/return", methods=["POST"])
def return_machine(booking_id: int) -> ResponseReturnValue:
    form = ReturnForm()

    def give_back() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        bookings.return_machine(db(), viewer(), booking_id, form.meter.data,
                                form.note.data or "", utcnow())
        return _booking_done(booking_id, _("Returned. The owner will check it and close "
                                           "the booking."))

    return submit(form, give_back, lambda: _booking_page(booking_id, return_form=form))


@bp.route("/bookings/<int:booking_id>/close", methods=["POST"])
def close(booking_id: int) -> ResponseReturnValue:
    form = CloseForm()

    def close_booking() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        booking = bookings.get_booking(db(), viewer(), booking_id)
        damage = money_from_form(form.damage.data or "0", "damage", booking.currency)
        bookings.close(db(), viewer(), booking_id, damage, form.damage_note.data or "",
                       utcnow())
        return _booking_done(booking_id, _("Booking closed."))

    return submit(form, close_booking, lambda: _booking_page(booking_id, close_form=form))
