"""Rotation of a co-owned machine among its owners: the plan, releases and swaps."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from marketplace.clusters.service import list_members
from marketplace.db import parse_id, utcnow
from marketplace.equipment import rotation
from marketplace.equipment.access import can_manage, get_equipment, owner_shares
from marketplace.equipment.forms import ActionForm, PlanForm, SwapForm
from marketplace.equipment.readmodels import MachineViewer, audience_to_machine, owner_models
from marketplace.equipment.views.common import bp
from marketplace.errors import N_, ValidationError
from marketplace.forms import filled
from marketplace.web import db, submit, viewer


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


def _rotation_page(equipment_id: int, **forms: Any) -> str:
    """The rotation page again, with a refused form as the viewer filled it in."""
    return render_template("equipment/rotation.html", **_rotation_context(equipment_id, **forms))


@bp.route("/<int:equipment_id>/rotation", methods=["POST"])
def create_plan(equipment_id: int) -> ResponseReturnValue:
    form = PlanForm()

    def plan() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_plan", N_("Some fields need your attention."))
        rotation.create_plan(db(), viewer(), equipment_id, form.period.data or "",
                             filled(form.starts_on.data), utcnow())
        flash(_("Rotation planned for the next periods."))
        return redirect(url_for("equipment.rotation_page", equipment_id=equipment_id))

    return submit(form, plan, lambda: _rotation_page(equipment_id, plan_form=form))


@bp.route("/custody/<int:custody_id>/release", methods=["POST"])
def release(custody_id: int) -> ResponseReturnValue:
    custody = rotation.release(db(), viewer(), custody_id, utcnow())
    flash(_("Released: other members can book the machine in that period."))
    return redirect(url_for("equipment.rotation_page", equipment_id=custody.equipment_id))


@bp.route("/<int:equipment_id>/swaps", methods=["POST"])
def request_swap(equipment_id: int) -> ResponseReturnValue:
    form = SwapForm()
    offered, wanted = parse_id(form.offered_id.data) or -1, parse_id(form.wanted_id.data) or -1

    def ask() -> ResponseReturnValue:
        rotation.request_swap(db(), viewer(), offered, wanted, utcnow())
        flash(_("Swap requested. It happens when the other co-owner accepts."))
        return redirect(url_for("equipment.rotation_page", equipment_id=equipment_id))

    return submit(form, ask, lambda: _rotation_page(equipment_id, swap_form=form))


@bp.route("/swaps/<int:swap_id>/<answer>", methods=["POST"])
def answer_swap(swap_id: int, answer: str) -> ResponseReturnValue:
    if answer not in ("accept", "decline"):
        abort(404)
    swap = rotation.answer_swap(db(), viewer(), swap_id, answer == "accept", utcnow())
    custody = rotation.custody_by_id(db(), swap.wanted_id)
    flash(_("Swap accepted: the periods changed hands.") if answer == "accept"
          else _("Swap declined."))
    return redirect(url_for("equipment.rotation_page", equipment_id=custody.equipment_id))
