"""Machines: the list, a machine's page with its week, its photo, its status and
blackouts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from marketplace.api.equipment import MachineDetail, MachineList
from marketplace.api.spec import document
from marketplace.barrier import Audience
from marketplace.clusters.models import User
from marketplace.clusters.service import list_members
from marketplace.db import utcnow
from marketplace.equipment import calendar, listings, quotes, rotation
from marketplace.equipment.access import can_manage, get_equipment, owned_machine_ids, owner_shares
from marketplace.equipment.forms import (
    KIND_LABELS,
    WEEKDAYS,
    ActionForm,
    BlackoutForm,
    BookingForm,
    StatusForm,
)
from marketplace.equipment.models import Equipment
from marketplace.equipment.photos import is_stored_name
from marketplace.equipment.readmodels import (
    MachineViewer,
    audience_to_machine,
    audiences_to_machines,
    machine_detail,
    machine_model,
    owner_models,
)
from marketplace.equipment.views.common import bp, send_photo
from marketplace.errors import N_, ValidationError
from marketplace.forms import filled
from marketplace.i18n import first_weekday, select_timezone
from marketplace.web import db, submit, utc_from_form, viewer, wants_json


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



def _week_start(text: str | None, timezone: str, shown_day: date | None = None) -> date:
    try:
        chosen = date.fromisoformat(text) if text else shown_day
    except ValueError:
        chosen = shown_day
    return calendar.week_start(chosen, timezone, first_weekday(), utcnow())


def detail_context(equipment_id: int, shown_day: date | None = None,
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
    now = utcnow()

    def holds_a_slot(segment: calendar.Segment) -> bool:
        """Whether a free piece holds the slot a tap on it proposes (the machine's
        shortest booking from its next step): the rest of today after the last slot
        that fits before closing is free, but a tap there could only be refused."""
        return quotes.first_slot(machine, segment.starts_at, now)[1] <= segment.ends_at

    return {
        "machine": machine, "owners": owner_models(shares, audience), "names": names,
        "is_owner": is_owner, "audience": audience,
        "manager": manager, "hours": listings.hours_of(session, equipment_id),
        "weekdays": WEEKDAYS,
        "days": calendar.week(session, machine, first, user.member_id, audience,
                              now=now),
        "week_start": first, "previous_week": first - timedelta(days=7),
        "next_week": first + timedelta(days=7),
        "blackouts": listings.blackouts_of(session, equipment_id, now),
        "plan": rotation.plan_for(session, equipment_id),
        "booking_form": forms.get("booking_form") or BookingForm(),
        "blackout_form": forms.get("blackout_form") or BlackoutForm(),
        "status_form": forms.get("status_form") or StatusForm(),
        "action_form": ActionForm(), "viewer_timezone": select_timezone(),
        "holds_a_slot": holds_a_slot,
    }


@bp.route("/<int:equipment_id>")
def detail(equipment_id: int) -> ResponseReturnValue:
    context = detail_context(equipment_id)
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
    return send_photo(machine.photo)


def detail_page(equipment_id: int, shown_day: date | None = None, **forms: Any) -> str:
    """The machine page again, with a refused form as the viewer filled it in."""
    return render_template("equipment/detail.html",
                           **detail_context(equipment_id, shown_day, **forms))


@bp.route("/<int:equipment_id>/status", methods=["POST"])
def change_status(equipment_id: int) -> ResponseReturnValue:
    form = StatusForm()

    def change() -> ResponseReturnValue:
        listings.set_status(db(), viewer(), equipment_id, form.status.data or "",
                            form.reason.data or "", utcnow())
        flash(_("Listing status changed. Anyone whose booking was cancelled has been told."))
        return redirect(url_for("equipment.detail", equipment_id=equipment_id))

    return submit(form, change, lambda: detail_page(equipment_id, status_form=form))


@bp.route("/<int:equipment_id>/blackouts", methods=["POST"])
def add_blackout(equipment_id: int) -> ResponseReturnValue:
    form = BlackoutForm()

    def add() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_blackout", N_("Some fields need your attention."))
        listings.add_blackout(db(), viewer(), equipment_id,
                              utc_from_form(filled(form.starts_at.data), "starts_at"),
                              utc_from_form(filled(form.ends_at.data), "ends_at"),
                              form.reason.data or "", utcnow())
        flash(_("Blackout added. Bookings inside it were cancelled and their bookers told."))
        return redirect(url_for("equipment.detail", equipment_id=equipment_id))

    return submit(form, add, lambda: detail_page(equipment_id, blackout_form=form))


@bp.route("/blackouts/<int:blackout_id>/delete", methods=["POST"])
def remove_blackout(blackout_id: int) -> ResponseReturnValue:
    equipment_id = request.form.get("equipment_id", type=int)
    listings.remove_blackout(db(), viewer(), blackout_id)
    flash(_("Blackout removed."))
    return redirect(url_for("equipment.detail", equipment_id=equipment_id) if equipment_id
                    else url_for("equipment.index"))
