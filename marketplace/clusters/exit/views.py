"""Pages of a clean exit: what it did (for the leaver's people and the coordinator),
the coordinator's list of exits, and a co-owned machine's agreed value.

A blueprint nested in the cluster pages' (clusters/views.py registers it), so its
endpoints read `clusters.exit.*` and its pages need a login like theirs.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.access import viewer_is_former_member
from marketplace.clusters.insurance.views import typed_amount
from marketplace.clusters.models import Member
from marketplace.clusters.service import get_cluster
from marketplace.db import utcnow
from marketplace.equipment.views.machines import detail_context
from marketplace.errors import ValidationError
from marketplace.forms import WebForm
from marketplace.ledger import settlement
from marketplace.persisted import id_of
from marketplace.web import db, money_from_form, translate, viewer, wants_json

bp = Blueprint("exit", __name__)


@bp.before_request
@login_required
def _require_login() -> None:
    """Every exit page is for logged-in people only."""


def _outcome_page(member_id: int | None) -> ResponseReturnValue:
    user, session = viewer(), db()
    record = exits.outcome_for(session, user, member_id)
    member = session.get(Member, record.member_id)
    cluster = get_cluster(session, user)
    months = settlement.months_with_entries(session, id_of(cluster), record.member_id)
    return render_template("clusters/exit.html", record=record, member=member,
                           summary=record.summary, currency=cluster.currency,
                           months=months, own=user.member_id == record.member_id,
                           wound_down=record.reason == exits.ExitReason.WIND_DOWN)


@bp.route("/exit")
def outcome() -> ResponseReturnValue:
    """The viewer's business's exit: what was cancelled, refunded and bought out."""
    user = viewer()
    if user.member_id is None:
        return redirect(url_for("clusters.exit.exits_list"))
    member = db().get(Member, user.member_id)
    if exits.exit_of(db(), user.member_id) is None and exits.is_former_member(member, utcnow()):
        # The date came; the scheduler has not made the exit take effect yet (a minute).
        return render_template("clusters/exit_pending.html", member=member)
    return _outcome_page(None)


@bp.route("/exit/members/<int:member_id>")
def member_outcome(member_id: int) -> ResponseReturnValue:
    """One member's exit (the coordinator, or the member's own people)."""
    return _outcome_page(member_id)


@bp.route("/exits")
def exits_list() -> ResponseReturnValue:
    """The coordinator's record of every exit that took effect."""
    user = viewer()
    if not user.is_coordinator:
        abort(404)
    return render_template("clusters/exit_list.html",
                           rows=exits.exits_of_cluster(db(), user))


@bp.route("/equipment/<int:equipment_id>/agreed-value", methods=["POST"])
def agreed_value(equipment_id: int) -> ResponseReturnValue:
    """A co-owned machine's owners or the coordinator set what it is worth."""
    WebForm().validate_on_submit()  # the CSRF token
    user, session = viewer(), db()
    text = (request.form.get("agreed_value") or "").strip()
    try:
        cluster = get_cluster(session, user)
        value = money_from_form(text, "agreed_value", cluster.currency) if text else None
        exits.set_agreed_value(session, user, equipment_id, value, now=utcnow())
    except ValidationError as error:  # shown next to the field, on the machine's page
        if wants_json():
            raise
        session.rollback()
        message = translate(error, error.fields.get("agreed_value"))
        return render_template("equipment/detail.html", **detail_context(equipment_id),
                               agreed_value_error=message, agreed_value_typed=text), 422
    flash(_("Agreed value saved.") if value is not None else _("Agreed value cleared."))
    return redirect(url_for("equipment.detail", equipment_id=equipment_id))



@bp.app_context_processor
def _amounts() -> dict[str, object]:
    """A machine page prefills its agreed value the way the viewer types amounts."""
    return {"exit_typed_amount": typed_amount, "former_member": viewer_is_former_member,
            "exit_effective": lambda member: exits.is_former_member(member, utcnow())}
