"""The listing form: list a machine, record a co-owned one, change a listing.

The machine's weekly hours are typed in its own time zone; every field error
(amounts, percentages, rules) is shown at once."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from marketplace.clusters.service import get_cluster, list_members, require_coordinator
from marketplace.db import utcnow
from marketplace.equipment import listings
from marketplace.equipment.access import can_manage, get_equipment
from marketplace.equipment.forms import WEEKDAYS, ListingForm, weekly_hours_field_names
from marketplace.equipment.views.common import bp, uploaded_photo
from marketplace.errors import N_, ValidationError
from marketplace.i18n import select_timezone
from marketplace.persisted import id_of
from marketplace.places.views import locate_typed
from marketplace.web import db, money_from_form, submit, viewer


def _percent_to_bp(text: str, field: str) -> int:
    message = N_("Enter a percentage between 0 and 100 with at most two decimals.")
    try:
        value = Decimal((text or "0").strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError("invalid_percent", message, fields={field: message}) from None
    # Bound before multiplying: 1e999999 * 100 overflows Decimal's context.
    basis_points = value * 100 if value.is_finite() and abs(value) <= 100 else Decimal(-1)
    if basis_points != basis_points.to_integral_value() or not 0 <= basis_points <= 10_000:
        raise ValidationError("invalid_percent", message, fields={field: message})
    return int(basis_points)


def _minutes(text: str) -> int | None:
    if not text:
        return None
    hours, _sep, minutes = text.partition(":")
    if not (hours.isascii() and hours.isdigit() and minutes.isascii() and minutes.isdigit()):
        return None
    return int(hours) * 60 + int(minutes)


def _weekly_hours() -> tuple[listings.WeeklyHours, ...]:
    """opens-N / closes-N (HH:MM) per weekday; an empty day is closed; 00:00 to 00:00 all day."""
    hours = []
    for weekday in range(7):
        opens_name, closes_name = weekly_hours_field_names(weekday)
        opens, closes = _minutes(request.form.get(opens_name, "")), \
            _minutes(request.form.get(closes_name, ""))
        if opens is None or closes is None:
            continue
        if closes == 0:
            closes = 1440  # "until 00:00" means until midnight at the end of the day
        hours.append(listings.WeeklyHours(weekday, opens, closes))
    return tuple(hours)


def _draft(form: ListingForm, currency: str) -> listings.ListingDraft:
    """The listing as typed; every field error (amounts, percentages, rules) at once."""
    errors: dict[str, str] = {}

    def amount(field: str) -> int:
        text = (getattr(form, field).data or "0").strip()
        if text.startswith("-"):
            errors[field] = N_("Rates cannot be negative.")
            return 0
        try:
            return money_from_form(text, field, currency)
        except ValidationError as error:
            errors.update(error.fields)
            return 0

    try:
        cancel_fee_bp = _percent_to_bp(form.cancel_fee.data or "0", "cancel_fee")
    except ValidationError as error:
        errors.update(error.fields)
        cancel_fee_bp = 0
    base_lat, base_lng, town = 0.0, 0.0, ""
    try:
        base = locate_typed(form.base_place.data, form.base_lat.data, form.base_lng.data,
                            form.base_resolved.data, "base_place")
        base_lat, base_lng, town = base.lat, base.lng, base.town or ""
    except ValidationError as error:
        errors.update(error.fields)
    draft = listings.ListingDraft(
        name=form.name.data or "", kind=form.kind.data or "",
        description=form.description.data or "",
        locality=(form.locality.data or "").strip() or town,
        base_lat=base_lat, base_lng=base_lng,
        hour_rate_minor=amount("hour_rate"), day_rate_minor=amount("day_rate"),
        min_minutes=form.min_minutes.data or 0, max_minutes=form.max_minutes.data or 0,
        buffer_minutes=form.buffer_minutes.data or 0,
        granularity_minutes=int(form.granularity_minutes.data or 0),
        timezone=(form.timezone.data or "").strip(),
        needs_approval=bool(form.needs_approval.data),
        cancel_cutoff_hours=form.cancel_cutoff_hours.data or 0,
        cancel_fee_bp=cancel_fee_bp, hours=_weekly_hours())
    if errors:
        try:
            listings.validate_draft(draft)
        except ValidationError as error:
            errors = {**error.fields, **errors}
        raise ValidationError("invalid_listing", N_("Some fields need your attention."),
                              fields=errors)
    return draft


def _hours_rows(windows: list[Any] | None = None) -> list[dict[str, Any]]:
    """Seven rows for the weekly-hours inputs: from the form, the listing, or a default."""
    rows = []
    by_day = {w.weekday: w for w in windows or []}
    for weekday, label in enumerate(WEEKDAYS):
        opens_name, closes_name = weekly_hours_field_names(weekday)
        if request.method == "POST":
            opens, closes = request.form.get(opens_name, ""), request.form.get(closes_name, "")
        elif windows is not None:
            window = by_day.get(weekday)
            opens = f"{window.start_minute // 60:02d}:{window.start_minute % 60:02d}" \
                if window else ""
            closes = f"{window.end_minute % 1440 // 60:02d}:{window.end_minute % 60:02d}" \
                if window else ""
        else:
            opens, closes = ("07:00", "18:00") if weekday < 5 else ("", "")
        rows.append({"label": label, "opens_name": opens_name, "closes_name": closes_name,
                     "opens": opens, "closes": closes})
    return rows


def _listing_page(form: ListingForm, title: str, **extra: Any) -> str:
    return render_template("equipment/listing_form.html", form=form, title=title,
                           hours=extra.pop("hours", None) or _hours_rows(), **extra)


def _status(form: ListingForm) -> int:
    """A form shown for the first time is 200; one the browser sent back invalid, 422."""
    return 422 if form.errors else 200


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    user = viewer()
    listings.require_owner_role(user)
    cluster = get_cluster(db(), user)
    form = ListingForm()
    if request.method == "GET":
        form.timezone.data = select_timezone()

    def page() -> str:
        return _listing_page(form, _("List a machine"))

    def list_machine() -> ResponseReturnValue:
        draft = _draft(form, cluster.currency)
        photo = uploaded_photo(form.photo)
        machine = listings.list_machine(db(), user, draft, utcnow(), photo)
        flash(_("Machine listed. Members of the cluster can book it now."))
        return redirect(url_for("equipment.detail", equipment_id=machine.id))

    if form.validate_on_submit():
        return submit(form, list_machine, page)
    return page(), _status(form)


@bp.route("/co-owned/new", methods=["GET", "POST"])
def new_co_owned() -> ResponseReturnValue:
    user = viewer()
    require_coordinator(user)
    cluster = get_cluster(db(), user)
    members = list_members(db(), user)
    form = ListingForm()
    if request.method == "GET":
        form.timezone.data = cluster.timezone

    def page() -> str:
        return _listing_page(form, _("Record a co-owned machine"), members=members)

    def record() -> ResponseReturnValue:
        draft = _draft(form, cluster.currency)
        shares = {id_of(m): _percent_to_bp(request.form.get(f"share-{m.id}", ""), "shares")
                  for m in members}
        shares = {m: s for m, s in shares.items() if s}
        photo = uploaded_photo(form.photo)
        machine = listings.record_co_owned(db(), user, draft, shares, utcnow(), photo)
        flash(_("Co-owned machine recorded."))
        return redirect(url_for("equipment.detail", equipment_id=machine.id))

    if form.validate_on_submit():
        return submit(form, record, page)
    return page(), _status(form)


@bp.route("/<int:equipment_id>/edit", methods=["GET", "POST"])
def edit(equipment_id: int) -> ResponseReturnValue:
    user = viewer()
    machine = get_equipment(db(), user, equipment_id)
    if not can_manage(db(), user, machine):
        abort(403)
    form = ListingForm(obj=machine if request.method == "GET" else None)
    if request.method == "GET":
        # The point stays the machine's until its place is typed anew.
        form.base_place.data = form.base_resolved.data = machine.locality
        form.hour_rate.data = _plain_amount(machine.hour_rate_minor)
        form.day_rate.data = _plain_amount(machine.day_rate_minor)
        form.granularity_minutes.data = str(machine.granularity_minutes)
        form.cancel_fee.data = str(Decimal(machine.cancel_fee_bp) / 100)
    hours = _hours_rows(listings.hours_of(db(), equipment_id))

    def page() -> str:
        return _listing_page(form, _("Change the listing"), hours=hours, machine=machine)

    def save() -> ResponseReturnValue:
        draft = _draft(form, machine.currency)
        photo = uploaded_photo(form.photo)
        listings.update_listing(db(), user, equipment_id, draft, photo)
        flash(_("Listing saved. Existing bookings keep their terms."))
        return redirect(url_for("equipment.detail", equipment_id=equipment_id))

    if form.validate_on_submit():
        return submit(form, save, page)
    return page(), _status(form)


def _plain_amount(minor: int) -> str:
    """Minor units as a plain decimal for an input (locale parsing accepts the dot)."""
    return str(Decimal(minor) / 100)
