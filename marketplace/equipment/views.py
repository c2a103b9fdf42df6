"""Equipment pages: machines, the week calendar, booking, rotation, the .ics feed.

Times are typed in the viewer's own time zone and shown in it; the machine's
weekly hours are in the machine's time zone (where it lives).  Every form
posts to the same service functions the scheduler and tests use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.api.equipment import BookingOut, MachineDetail, MachineList
from marketplace.api.spec import document
from marketplace.barrier import Audience
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import get_cluster, list_members, require_coordinator
from marketplace.db import parse_id, utcnow
from marketplace.durations import format_duration
from marketplace.equipment import booking as bookings
from marketplace.equipment import calendar, listings, quotes, rotation
from marketplace.equipment.access import (
    can_manage,
    get_equipment,
    owned_machine_ids,
    owner_shares,
)
from marketplace.equipment.forms import (
    KIND_LABELS,
    WEEKDAYS,
    ActionForm,
    BlackoutForm,
    BookingForm,
    CheckOutForm,
    CloseForm,
    ListingForm,
    PlanForm,
    ReasonForm,
    ReturnForm,
    StatusForm,
    SwapForm,
    weekly_hours_field_names,
)
from marketplace.equipment.models import Booking, Equipment
from marketplace.equipment.photos import (
    Rendition,
    display_copy,
    full_size,
    is_stored_name,
    store_photo,
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
from marketplace.errors import N_, DomainError, ValidationError
from marketplace.i18n import first_weekday, select_timezone
from marketplace.places.views import locate_typed
from marketplace.ratelimits import claim_limit
from marketplace.web import (
    apply_to_form,
    db,
    money_from_form,
    refuse_form,
    utc_from_form,
    viewer,
    wants_json,
)

bp = Blueprint("equipment", __name__, url_prefix="/equipment")
feed_bp = Blueprint("calendar_feed", __name__)

BOOKING_STATUS_LABELS = {
    "requested": N_("waiting for approval"), "confirmed": N_("confirmed"),
    "checked_out": N_("checked out"), "returned": N_("returned"), "closed": N_("closed"),
    "declined": N_("declined"), "cancelled": N_("cancelled"),
}
LISTING_STATUS_LABELS = {"active": N_("Active"), "paused": N_("Paused"),
                         "retired": N_("Retired")}


@bp.app_template_filter("duration")
def _duration(minutes: int) -> str:
    """Minutes as the viewer says them ("1 hour and 30 minutes", "3 días")."""
    return format_duration(minutes, str(get_locale() or "en"))


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "booking_status_label": lambda s: _(BOOKING_STATUS_LABELS.get(s, s)),
        "listing_status_label": lambda s: _(LISTING_STATUS_LABELS.get(s, s)),
        "kind_label": lambda k: str(KIND_LABELS.get(k, k)),
        "photo_shown": _photo_shown,
    }


def _photo_shown(name: str | None) -> Rendition | None:
    """What a page shows for a stored photo (its pixel size reserves the space), if any."""
    if not name or not is_stored_name(name):
        return None
    return display_copy(_photo_dir(), name)


@bp.before_request
@login_required
def _require_login() -> None:
    """Equipment pages are for logged-in people only."""


def _photo_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "equipment"


def _uploaded_photo(form_field: Any) -> str | None:
    upload = form_field.data
    if upload is None or not getattr(upload, "filename", ""):
        return None
    return store_photo(upload.read(), _photo_dir())


# --- machines --------------------------------------------------------------------------


@bp.route("")
def index() -> ResponseReturnValue:
    user = viewer()
    kind = request.args.get("kind") or None
    machines = listings.machines(db(), user, kind if kind in KIND_LABELS else None)
    if wants_json():
        audience = _audience_to_machines(user)
        return jsonify(document(MachineList, {"machines": [
            machine_model(m, audience(m)) for m in machines]}))
    return render_template("equipment/index.html", machines=machines, kind=kind,
                           kinds=KIND_LABELS)


def _audience_to_machines(user: User) -> Callable[[Equipment], Audience]:
    """Who `user` is to each machine of a list (its owned machines loaded once)."""
    return audiences_to_machines(MachineViewer.of(user),
                                 owned_machine_ids(db(), user.member_id))


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


def _listing_page(form: ListingForm, title: str, status: int = 200, **extra: Any
                  ) -> ResponseReturnValue:
    return render_template("equipment/listing_form.html", form=form, title=title,
                           hours=extra.pop("hours", None) or _hours_rows(), **extra), status


@bp.route("/new", methods=["GET", "POST"])
def new() -> ResponseReturnValue:
    user = viewer()
    listings.require_owner_role(user)
    cluster = get_cluster(db(), user)
    form = ListingForm()
    if request.method == "GET":
        form.timezone.data = select_timezone()
    if form.validate_on_submit():
        try:
            draft = _draft(form, cluster.currency)
            photo = _uploaded_photo(form.photo)
            machine = listings.list_machine(db(), user, draft, utcnow(), photo)
        except DomainError as error:
            refuse_form(form, error)
            return _listing_page(form, _("List a machine"), 422)
        flash(_("Machine listed. Members of the cluster can book it now."))
        return redirect(url_for("equipment.detail", equipment_id=machine.id))
    return _listing_page(form, _("List a machine"), 422 if form.errors else 200)


@bp.route("/co-owned/new", methods=["GET", "POST"])
def new_co_owned() -> ResponseReturnValue:
    user = viewer()
    require_coordinator(user)
    cluster = get_cluster(db(), user)
    members = list_members(db(), user)
    form = ListingForm()
    if request.method == "GET":
        form.timezone.data = cluster.timezone
    if form.validate_on_submit():
        try:
            draft = _draft(form, cluster.currency)
            shares = {m.id: _percent_to_bp(request.form.get(f"share-{m.id}", ""), "shares")
                      for m in members}
            shares = {m: s for m, s in shares.items() if s}
            photo = _uploaded_photo(form.photo)
            machine = listings.record_co_owned(db(), user, draft, shares, utcnow(), photo)  # type: ignore[arg-type]
        except DomainError as error:
            refuse_form(form, error)
            return _listing_page(form, _("Record a co-owned machine"), 422, members=members)
        flash(_("Co-owned machine recorded."))
        return redirect(url_for("equipment.detail", equipment_id=machine.id))
    return _listing_page(form, _("Record a co-owned machine"), 422 if form.errors else 200,
                         members=members)


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
    if form.validate_on_submit():
        try:
            draft = _draft(form, machine.currency)
            photo = _uploaded_photo(form.photo)
            listings.update_listing(db(), user, equipment_id, draft, photo)
        except DomainError as error:
            refuse_form(form, error)
            return _listing_page(form, _("Change the listing"), 422, hours=hours,
                                 machine=machine)
        flash(_("Listing saved. Existing bookings keep their terms."))
        return redirect(url_for("equipment.detail", equipment_id=equipment_id))
    return _listing_page(form, _("Change the listing"), 422 if form.errors else 200,
                         hours=hours, machine=machine)


def _plain_amount(minor: int) -> str:
    """Minor units as a plain decimal for an input (locale parsing accepts the dot)."""
    return str(Decimal(minor) / 100)


def _week_start(text: str | None, timezone: str, shown_day: date | None = None) -> date:
    try:
        chosen = date.fromisoformat(text) if text else shown_day
    except ValueError:
        chosen = shown_day
    return calendar.week_start(chosen, timezone, first_weekday(), utcnow())


def _detail_context(equipment_id: int, shown_day: date | None = None,
                    **forms: Any) -> dict[str, Any]:
    """The machine page; its week is `?week=`, else the one holding `shown_day` (the day a
    refused booking asked for, so the user sees what is in the way), else this week."""
    user = viewer()
    session = db()
    machine = get_equipment(session, user, equipment_id)
    shares = owner_shares(session, equipment_id)
    is_owner = user.member_id in shares
    audience = audience_to_machine(MachineViewer.of(user), machine, shares)
    manager = can_manage(session, user, machine)
    first = _week_start(request.args.get("week"), machine.timezone, shown_day)
    names = {m.id: m.name for m in list_members(session, user)}
    return {
        "machine": machine, "owners": owner_models(shares, audience), "names": names,
        "is_owner": is_owner, "audience": audience,
        "manager": manager, "hours": listings.hours_of(session, equipment_id),
        "weekdays": WEEKDAYS,
        "days": calendar.week(session, machine, first, user.member_id, audience,
                              now=utcnow()),
        "week_start": first, "previous_week": first - timedelta(days=7),
        "next_week": first + timedelta(days=7),
        "blackouts": listings.blackouts_of(session, equipment_id, utcnow()),
        "plan": rotation.plan_for(session, equipment_id),
        "booking_form": forms.get("booking_form") or BookingForm(),
        "blackout_form": forms.get("blackout_form") or BlackoutForm(),
        "status_form": forms.get("status_form") or StatusForm(),
        "action_form": ActionForm(), "viewer_timezone": select_timezone(),
    }


@bp.route("/<int:equipment_id>")
def detail(equipment_id: int) -> ResponseReturnValue:
    context = _detail_context(equipment_id)
    if wants_json():
        return jsonify(document(MachineDetail, machine_detail(
            context["machine"], context["owners"], context["hours"], context["days"],
            context["audience"])))
    return render_template("equipment/detail.html", **context)


@bp.route("/<int:equipment_id>/photo")
def photo(equipment_id: int) -> ResponseReturnValue:
    machine = get_equipment(db(), viewer(), equipment_id)
    if not machine.photo or not is_stored_name(machine.photo):
        abort(404)
    return _send_photo(machine.photo)


def _send_photo(name: str) -> Response:
    """The smaller copy pages show; the full-size photo with `?size=full`.  Both
    without metadata (an old upload is scrubbed on its first full-size serve)."""
    if request.args.get("size") == "full":
        shown = full_size(_photo_dir(), name)
    else:
        shown = display_copy(_photo_dir(), name)
    if shown is None:
        abort(404)
    path, media_type = shown.path, shown.media_type
    response = send_from_directory(path.parent, path.name, mimetype=media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


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
        try:
            quoted = quotes.quote(db(), viewer(), machine.id, _form_instant(form, "starts_at"),  # type: ignore[arg-type]
                                  _form_instant(form, "ends_at"), utcnow())
        except DomainError as error:
            db().rollback()
            apply_to_form(form, error)
            status = status if proposed else max(status, error.status)
    return render_template("equipment/book.html", machine=machine, booking_form=form,
                           quote=quoted, signature=_signature(form, quoted),
                           confirm=confirm, viewer_timezone=select_timezone()), status


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
    status = 200
    quoted = None
    if not form.validate():
        status = 422
    else:
        try:
            quoted = quotes.quote(db(), viewer(), equipment_id, _form_instant(form, "starts_at"),
                                  _form_instant(form, "ends_at"), utcnow())
        except DomainError as error:
            db().rollback()
            apply_to_form(form, error)
            status = error.status
    return render_template("equipment/_quote.html", machine=machine, quote=quoted,
                           booking_form=form, signature=_signature(form, quoted)), status


@bp.route("/<int:equipment_id>/book", methods=["POST"])
@claim_limit
def book(equipment_id: int) -> ResponseReturnValue:
    form = BookingForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_booking", N_("Enter when the booking starts and "
                                                        "ends."))
        starts_at = utc_from_form(form.starts_at.data, "starts_at")  # type: ignore[arg-type]
        ends_at = utc_from_form(form.ends_at.data, "ends_at")  # type: ignore[arg-type]
        if "quoted" in request.form:  # a person's form: book only the price it saw
            shown = quotes.quote(db(), viewer(), equipment_id, starts_at, ends_at, utcnow())
            if request.form["quoted"] != _signature(form, shown):
                machine = get_equipment(db(), viewer(), equipment_id)
                return _book_page(machine, form, confirm=True)
        booking = bookings.book(db(), viewer(), equipment_id, starts_at, ends_at, utcnow())
    except DomainError as error:
        db().rollback()
        if wants_json():
            raise
        apply_to_form(form, error)
        if "quoted" in request.form and request.form.get("from") != "week":
            return _book_page(get_equipment(db(), viewer(), equipment_id), form,
                              status=error.status)
        asked = form.starts_at.data.date() if form.starts_at.data else None
        return render_template("equipment/detail.html", **_detail_context(
            equipment_id, asked, booking_form=form)), error.status
    message = (_("Booking requested. The owner will approve or decline it.")
               if booking.status == "requested" else _("Booked. It is in your calendar."))
    if wants_json():
        return jsonify({"ok": True, "message": message,
                        "booking": _booking_document(booking)}), 201
    flash(message)
    return redirect(url_for("equipment.booking_detail", booking_id=booking.id))


def _booking_document(booking: Booking) -> dict[str, Any]:
    """The booking as the viewer may see it, in the API's shape (`BookingOut`)."""
    session = db()
    machine = get_equipment(session, viewer(), booking.equipment_id)
    model = booking_for(MachineViewer.of(viewer()), booking, machine,
                        owner_shares(session, booking.equipment_id))
    return document(BookingOut, model)


@bp.route("/<int:equipment_id>/status", methods=["POST"])
def change_status(equipment_id: int) -> ResponseReturnValue:
    form = StatusForm()
    try:
        listings.set_status(db(), viewer(), equipment_id, form.status.data or "",
                            form.reason.data or "", utcnow())
    except DomainError as error:
        refuse_form(form, error)
        return render_template("equipment/detail.html",
                               **_detail_context(equipment_id, status_form=form)), 422
    flash(_("Listing status changed. Anyone whose booking was cancelled has been told."))
    return redirect(url_for("equipment.detail", equipment_id=equipment_id))


@bp.route("/<int:equipment_id>/blackouts", methods=["POST"])
def add_blackout(equipment_id: int) -> ResponseReturnValue:
    form = BlackoutForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_blackout", N_("Some fields need your attention."))
        listings.add_blackout(db(), viewer(), equipment_id,
                              utc_from_form(form.starts_at.data, "starts_at"),  # type: ignore[arg-type]
                              utc_from_form(form.ends_at.data, "ends_at"),  # type: ignore[arg-type]
                              form.reason.data or "", utcnow())
    except DomainError as error:
        refuse_form(form, error)
        return render_template("equipment/detail.html",
                               **_detail_context(equipment_id, blackout_form=form)), 422
    flash(_("Blackout added. Bookings inside it were cancelled and their bookers told."))
    return redirect(url_for("equipment.detail", equipment_id=equipment_id))


@bp.route("/blackouts/<int:blackout_id>/delete", methods=["POST"])
def remove_blackout(blackout_id: int) -> ResponseReturnValue:
    equipment_id = request.form.get("equipment_id", type=int)
    listings.remove_blackout(db(), viewer(), blackout_id)
    flash(_("Blackout removed."))
    return redirect(url_for("equipment.detail", equipment_id=equipment_id) if equipment_id
                    else url_for("equipment.index"))


# --- bookings --------------------------------------------------------------------------


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


@bp.route("/calendar/renew", methods=["POST"])
def renew_feed() -> ResponseReturnValue:
    user = viewer()
    member = db().get(Member, user.member_id) if user.member_id else None
    if member is None:
        abort(403)
    calendar.feed_token(db(), member, utcnow(), renew=True)
    flash(_("New calendar address made. The old one no longer works."))
    return redirect(url_for("equipment.my_bookings"))


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
    return _send_photo(booking.checkout_photo)


def _booking_done(booking_id: int, message: str) -> ResponseReturnValue:
    if wants_json():
        context = _booking_context(booking_id)
        return jsonify({"ok": True, "message": message,
                        "booking": _booking_document(context["booking"])})
    flash(message)
    return redirect(url_for("equipment.booking_detail", booking_id=booking_id))


def _booking_refused(booking_id: int, form_name: str, form: Any, error: DomainError
                     ) -> ResponseReturnValue:
    refuse_form(form, error)
    return render_template("equipment/booking.html",
                           **_booking_context(booking_id, **{form_name: form})), 422


@bp.route("/bookings/<int:booking_id>/approve", methods=["POST"])
def approve(booking_id: int) -> ResponseReturnValue:
    bookings.approve(db(), viewer(), booking_id, utcnow())
    return _booking_done(booking_id, _("Booking approved. The booker has been told."))


@bp.route("/bookings/<int:booking_id>/decline", methods=["POST"])
def decline(booking_id: int) -> ResponseReturnValue:
    form = ReasonForm()
    try:
        bookings.decline(db(), viewer(), booking_id, form.reason.data or "", utcnow())
    except DomainError as error:
        return _booking_refused(booking_id, "reason_form", form, error)
    return _booking_done(booking_id, _("Request declined. The booker has been told."))


@bp.route("/bookings/<int:booking_id>/cancel", methods=["POST"])
def cancel(booking_id: int) -> ResponseReturnValue:
    form = ReasonForm()
    try:
        bookings.cancel(db(), viewer(), booking_id, form.reason.data or "", utcnow())
    except DomainError as error:
        return _booking_refused(booking_id, "reason_form", form, error)
    return _booking_done(booking_id, _("Booking cancelled."))


@bp.route("/bookings/<int:booking_id>/check-out", methods=["POST"])
def check_out(booking_id: int) -> ResponseReturnValue:
    form = CheckOutForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        photo_name = _uploaded_photo(form.photo)
        bookings.check_out(db(), viewer(), booking_id, form.meter.data, form.note.data or "",
                           photo_name, utcnow())
    except DomainError as error:
        return _booking_refused(booking_id, "checkout_form", form, error)
    return _booking_done(booking_id, _("Checked out. Return it by the end of the booking."))


@bp.route("/bookings/<int:booking_id>/return", methods=["POST"])
def return_machine(booking_id: int) -> ResponseReturnValue:
    form = ReturnForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        bookings.return_machine(db(), viewer(), booking_id, form.meter.data,
                                form.note.data or "", utcnow())
    except DomainError as error:
        return _booking_refused(booking_id, "return_form", form, error)
    return _booking_done(booking_id, _("Returned. The owner will check it and close the "
                                       "booking."))


@bp.route("/bookings/<int:booking_id>/close", methods=["POST"])
def close(booking_id: int) -> ResponseReturnValue:
    form = CloseForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_input", N_("Some fields need your attention."))
        booking = bookings.get_booking(db(), viewer(), booking_id)
        damage = money_from_form(form.damage.data or "0", "damage", booking.currency)
        bookings.close(db(), viewer(), booking_id, damage, form.damage_note.data or "",
                       utcnow())
    except DomainError as error:
        return _booking_refused(booking_id, "close_form", form, error)
    return _booking_done(booking_id, _("Booking closed."))


# --- rotation --------------------------------------------------------------------------


def _rotation_context(equipment_id: int, **forms: Any) -> dict[str, Any]:
    user = viewer()
    session = db()
    machine = get_equipment(session, user, equipment_id)
    shares = owner_shares(session, equipment_id)
    audience = audience_to_machine(MachineViewer.of(user), machine, shares)
    plan = rotation.plan_for(session, equipment_id)
    now = utcnow()
    periods = rotation.schedule(session, plan, now) if plan else []
    swap_form = forms.get("swap_form") or SwapForm()
    swap_form.offered_id.choices = [(str(p.id), str(p.index)) for p in periods
                                    if p.member_id == user.member_id and p.starts_at > now]
    swap_form.wanted_id.choices = [(str(p.id), str(p.index)) for p in periods
                                   if p.member_id != user.member_id and p.starts_at > now]
    plan_form = forms.get("plan_form") or PlanForm()
    if plan_form.starts_on.data is None:
        plan_form.starts_on.data = now.astimezone(ZoneInfo(machine.timezone)).date()
    return {
        "machine": machine, "plan": plan, "periods": periods, "now": now,
        "owners": owner_models(shares, audience), "is_owner": user.member_id in shares,
        "names": {m.id: m.name for m in list_members(session, user)},
        "manager": can_manage(session, user, machine),
        "swaps": rotation.pending_swaps(session, plan) if plan else [],
        "period_by_id": {p.id: p for p in periods},
        "plan_form": plan_form, "swap_form": swap_form, "action_form": ActionForm(),
    }


@bp.route("/<int:equipment_id>/rotation")
def rotation_page(equipment_id: int) -> ResponseReturnValue:
    return render_template("equipment/rotation.html", **_rotation_context(equipment_id))


@bp.route("/<int:equipment_id>/rotation", methods=["POST"])
def create_plan(equipment_id: int) -> ResponseReturnValue:
    form = PlanForm()
    try:
        if not form.validate_on_submit():
            raise ValidationError("invalid_plan", N_("Some fields need your attention."))
        rotation.create_plan(db(), viewer(), equipment_id, form.period.data or "",
                             form.starts_on.data, utcnow())  # type: ignore[arg-type]
    except DomainError as error:
        refuse_form(form, error)
        return render_template("equipment/rotation.html",
                               **_rotation_context(equipment_id, plan_form=form)), 422
    flash(_("Rotation planned for the next periods."))
    return redirect(url_for("equipment.rotation_page", equipment_id=equipment_id))


@bp.route("/custody/<int:custody_id>/release", methods=["POST"])
def release(custody_id: int) -> ResponseReturnValue:
    custody = rotation.release(db(), viewer(), custody_id, utcnow())
    flash(_("Released: other members can book the machine in that period."))
    return redirect(url_for("equipment.rotation_page", equipment_id=custody.equipment_id))


@bp.route("/<int:equipment_id>/swaps", methods=["POST"])
def request_swap(equipment_id: int) -> ResponseReturnValue:
    form = SwapForm()
    offered, wanted = parse_id(form.offered_id.data) or -1, parse_id(form.wanted_id.data) or -1
    try:
        rotation.request_swap(db(), viewer(), offered, wanted, utcnow())
    except DomainError as error:
        refuse_form(form, error)
        return render_template("equipment/rotation.html",
                               **_rotation_context(equipment_id, swap_form=form)), 422
    flash(_("Swap requested. It happens when the other co-owner accepts."))
    return redirect(url_for("equipment.rotation_page", equipment_id=equipment_id))


@bp.route("/swaps/<int:swap_id>/<answer>", methods=["POST"])
def answer_swap(swap_id: int, answer: str) -> ResponseReturnValue:
    if answer not in ("accept", "decline"):
        abort(404)
    swap = rotation.answer_swap(db(), viewer(), swap_id, answer == "accept", utcnow())
    custody = rotation.custody_by_id(db(), swap.wanted_id)
    flash(_("Swap accepted: the periods changed hands.") if answer == "accept"
          else _("Swap declined."))
    return redirect(url_for("equipment.rotation_page", equipment_id=custody.equipment_id))


# --- the .ics feed (no login: the secret URL is the key) -------------------------------


@feed_bp.route("/calendar/<token>.ics")
def feed(token: str) -> ResponseReturnValue:
    session = db()
    member = calendar.member_for_token(session, token)
    if member is None:
        abort(404)
    now = utcnow()
    labels = {"booking": _("Booking: %(machine)s"), "lent": _("Lent out: %(machine)s"),
              "custody": _("Your turn with %(machine)s")}
    events = calendar.member_events(session, member, now, labels)
    domain = urlparse(current_app.config["PUBLIC_URL"]).hostname or "marketplace"
    body = calendar.render_ics(events, _("%(member)s: equipment", member=member.name),
                               domain, now)
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = "inline; filename=equipment.ics"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response

