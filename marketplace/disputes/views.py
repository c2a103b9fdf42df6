"""Pages for disputes between members: the list, opening one on a finished job or
booking, a dispute with its messages and photos, posting, deciding.

What a viewer reads of a dispute comes from `disputes.service.dispute_view` only; a
dispute the viewer may not read answers the same 404 as one that does not exist.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.db import utcnow
from marketplace.disputes import service as disputes
from marketplace.disputes.forms import DecisionForm, MessageForm, OpenDisputeForm
from marketplace.equipment.photos import Rendition, display_copy, full_size, is_stored_name
from marketplace.errors import N_, ValidationError
from marketplace.persisted import id_of
from marketplace.web import db, money_from_form, submit
from marketplace.web import viewer as acting_user

bp = Blueprint("disputes", __name__, url_prefix="/disputes")


@bp.before_request
@login_required
def _require_login() -> None:
    """Dispute pages are for logged-in people only."""


def photo_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "disputes"


@bp.app_context_processor
def _labels() -> dict[str, object]:
    return {
        "dispute_money_label": lambda s: _(disputes.MONEY_LABELS.get(s, s)),
        "dispute_outcome_label": lambda o: _(disputes.OUTCOME_LABELS.get(o, o)) if o else "",
        "dispute_photo_shown": _photo_shown,
    }


def _photo_shown(name: str | None) -> Rendition | None:
    """The copy a dispute page shows (its pixel size reserves the space), if any."""
    if not name or not is_stored_name(name):
        return None
    return display_copy(photo_dir(), name)


@bp.route("/")
def index() -> ResponseReturnValue:
    viewer = acting_user()
    return render_template("disputes/index.html",
                           rows=disputes.list_disputes(db(), viewer))


@bp.route("/new/job/<int:job_id>", methods=["GET", "POST"])
def open_for_job(job_id: int) -> ResponseReturnValue:
    return _open("job", job_id)


@bp.route("/new/booking/<int:booking_id>", methods=["GET", "POST"])
def open_for_booking(booking_id: int) -> ResponseReturnValue:
    return _open("booking", booking_id)


def _open(kind: str, subject_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    now = utcnow()
    subject = disputes.subject_of(session, viewer, kind, subject_id)
    if viewer.member_id is None or viewer.member_id not in subject.involved:
        abort(404)  # not a party: as if there were nothing here
    money = disputes.disputable_money(session, viewer, subject)
    form = OpenDisputeForm()
    form.source.choices = [(m.source, _(disputes.MONEY_LABELS[m.source]))
                           for m in money if m.dispute_id is None
                           and _still_open(disputes.window_end(session, subject, m.source), now)]

    def again() -> str:
        return render_template("disputes/open.html", form=form, subject=subject, money=money,
                               window_end=disputes.window_end(session, subject), now=now,
                               paid_by_card=kind == "job"
                               and disputes.paid_by_card(session, subject),
                               paid_by_card_text=disputes.PAID_BY_CARD)

    if form.validate_on_submit():
        def open_it() -> ResponseReturnValue:
            dispute = disputes.open_dispute(session, viewer, kind, subject_id,
                                            form.source.data or "", form.reason.data or "",
                                            now)
            flash(_("Your dispute is open and its money is held out of settlement. "
                    "Everyone concerned has been told."))
            return redirect(url_for("disputes.detail", dispute_id=id_of(dispute)))

        return submit(form, open_it, again)
    return again(), 422 if form.errors else 200


def _still_open(ends: datetime | None, now: datetime) -> bool:
    """Whether that money's own window has not passed (before the job or booking is
    finished the service says why it cannot be disputed yet)."""
    return ends is None or now <= ends


@bp.route("/<int:dispute_id>")
def detail(dispute_id: int) -> ResponseReturnValue:
    return _page(dispute_id, MessageForm(formdata=None), DecisionForm(formdata=None))


def _page(dispute_id: int, message_form: MessageForm, decision_form: DecisionForm,
          status: int = 200) -> ResponseReturnValue:
    return _render(dispute_id, message_form, decision_form), status


def _render(dispute_id: int, message_form: MessageForm, decision_form: DecisionForm) -> str:
    viewer = acting_user()
    session = db()
    dispute = disputes.get_dispute(session, viewer, dispute_id)
    view = disputes.dispute_view(session, viewer, dispute, utcnow())
    if not message_form.request_key.data:
        message_form.request_key.data = secrets.token_hex(16)
    return render_template("disputes/detail.html", view=view, d=dispute,
                           message_form=message_form, decision_form=decision_form)


@bp.route("/<int:dispute_id>/messages", methods=["POST"])
def post_message(dispute_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    disputes.get_dispute(session, viewer, dispute_id)  # another's: 404 before the form
    form = MessageForm()
    if not form.validate_on_submit():
        return _page(dispute_id, form, DecisionForm(formdata=None), 422)
    upload = request.files.get("photo")
    photo = upload.read() if upload is not None and upload.filename else None

    def post() -> ResponseReturnValue:
        disputes.post_message(session, viewer, dispute_id, form.body.data or "", photo,
                              photo_dir(), form.request_key.data or None, utcnow())
        flash(_("Your message is posted."))
        return redirect(url_for("disputes.detail", dispute_id=dispute_id) + "#messages")

    return submit(form, post, lambda: _render(dispute_id, form, DecisionForm(formdata=None)))


@bp.route("/<int:dispute_id>/decide", methods=["POST"])
def decide(dispute_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    dispute = disputes.get_dispute(session, viewer, dispute_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        return _page(dispute_id, MessageForm(formdata=None), form, 422)

    def decide_it() -> ResponseReturnValue:
        amount = None
        if form.outcome.data == "adjust":
            amount = money_from_form(form.amount.data or "", "amount", dispute.currency)
        split = _split_bp(form.split_percent.data or "") if form.outcome.data == "split" \
            else None
        decided = disputes.decide(session, viewer, dispute_id, form.outcome.data or "",
                                  amount, split, form.note.data or "", utcnow())
        if decided.status == "open":  # a panel business's vote, short of a majority
            flash(_("Your business's decision is recorded. The panel decides when more "
                    "than half of it agrees."))
        else:
            flash(_("The dispute is decided. Its entries settle with the current month."))
        return redirect(url_for("disputes.detail", dispute_id=dispute_id))

    return submit(form, decide_it,
                  lambda: _render(dispute_id, MessageForm(formdata=None), form))


def _split_bp(text: str) -> int:
    """A percentage typed as 40, 40.5 or 40,5 -> basis points, or a 422 on the field."""
    message = N_("Enter the payer's part as a percentage from 0 to 100.")
    try:
        percent = Decimal(text.strip().replace(",", "."))
    except InvalidOperation:
        raise ValidationError("invalid_split", message, fields={"split_percent": message}) \
            from None
    bp_value = percent * 100
    if not percent.is_finite() or bp_value != bp_value.to_integral_value() \
            or not 0 <= bp_value <= 10_000:
        raise ValidationError("invalid_split", message, fields={"split_percent": message})
    return int(bp_value)


@bp.route("/photos/<int:message_id>")
def photo(message_id: int) -> Response:
    """A message's photo, for the dispute's readers only (a smaller copy; `?size=full`
    the whole photo), both without metadata."""
    stored = disputes.photo_of(db(), acting_user(), message_id)
    if not is_stored_name(stored):
        abort(404)
    shown = full_size(photo_dir(), stored) if request.args.get("size") == "full" \
        else display_copy(photo_dir(), stored)
    if shown is None:
        abort(404)
    response = send_from_directory(shown.path.parent, shown.path.name,
                                   mimetype=shown.media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response
