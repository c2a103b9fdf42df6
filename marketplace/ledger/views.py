"""Money pages: each member's balance and monthly statements; the coordinator's
settlement (nets, adjustments, approval); statements as CSV and a printable page.

A member sees only its own entries.  The coordinator sees every member's
totals, because settling the month is its job, and any member's statement.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.clusters.models import Member, User
from marketplace.clusters.service import (
    get_cluster,
    get_member,
    list_members,
    require_coordinator,
)
from marketplace.db import parse_id, utcnow
from marketplace.errors import N_, ValidationError
from marketplace.ledger import connect, disputes, payments, refunds, service, settlement
from marketplace.ledger.forms import AdjustmentForm, ApproveForm
from marketplace.ledger.models import Settlement, SettlementStatus
from marketplace.ledger.statements import (
    SOURCE_LABELS,
    entry_note,
    signed_amount,
    statement_rows,
)
from marketplace.persisted import id_of
from marketplace.web import (
    csv_download,
    db,
    money_from_form,
    submit,
    viewer,
)

bp = Blueprint("ledger", __name__, url_prefix="/ledger")

@bp.before_request
@login_required
def _require_login() -> None:
    """Money pages are for logged-in people only."""


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"source_label": lambda s: _(SOURCE_LABELS.get(s, s)), "signed": signed_amount,
            "entry_note": entry_note}


def _names(user: User) -> dict[int | None, str]:
    names: dict[int | None, str] = {m.id: m.name for m in list_members(db(), user)}
    names[None] = _("the cluster")
    return names


def _statement_member(user: User) -> Member:
    """Whose statement: a member's own; the coordinator picks one with ?member=."""
    if user.is_coordinator:
        member_id = parse_id(request.args.get("member"))
        if member_id is None:
            abort(404)
        return get_member(db(), user, member_id)
    if user.member_id is None:
        abort(404)
    return get_member(db(), user, user.member_id)


@bp.route("")
def index() -> ResponseReturnValue:
    user = viewer()
    session = db()
    cluster = get_cluster(session, user)
    now = utcnow()
    current = settlement.current_month(cluster, now)
    if user.is_coordinator:
        months = settlement.months_with_entries(session, id_of(cluster))
        rows = [(m, settlement.settlement_for(session, id_of(cluster), m)) for m in months]
        return render_template("ledger/cluster.html", rows=rows, current=current,
                               next_step=next_settlement_step(rows, current),
                               approve_form=ApproveForm(), names=_names(user),
                               failed=payments.failed_payouts(session, id_of(cluster)),
                               reversals=refunds.failed_reversals(session, id_of(cluster)),
                               disputes=disputes.open_disputes(session, id_of(cluster)),
                               currency=cluster.currency,
                               own_reasons={payments.NOT_ONBOARDED: _(payments.NOT_ONBOARDED),
                                            payments.WAITING_FOR_CHARGE:
                                            _(payments.WAITING_FOR_CHARGE)})
    if user.member_id is None:
        abort(404)
    months = settlement.months_with_entries(session, id_of(cluster), user.member_id)
    nets = {m: settlement.month_nets(session, id_of(cluster), m).get(user.member_id)
            for m in months}
    return render_template("ledger/member.html", months=months, nets=nets, current=current,
                           balance=service.balance(session, user.member_id),
                           currency=cluster.currency,
                           stripe_on=bool(current_app.config.get("STRIPE_SECRET_KEY")),
                           account=connect.account_of(session, user.member_id),
                           setup_form=ApproveForm())


def next_settlement_step(rows: list[tuple[str, Settlement | None]], current: str
                         ) -> tuple[str, str] | None:
    """The one settlement action the coordinator can take next, on the oldest finished
    month that is not approved: ("draft", month) when it has no draft yet, ("approve",
    month) when its draft waits for review; None when every finished month is settled.
    Never "draft" for a month that already has a draft, nor for the running month."""
    for month, found in sorted(rows, key=lambda row: row[0]):
        if month >= current or (found is not None and found.status == SettlementStatus.APPROVED):
            continue
        return ("draft", month) if found is None else ("approve", month)
    return None


def _month(text: str) -> str:
    return settlement.parse_month(text)


def _month_context(month: str, **forms: Any) -> dict[str, Any]:
    user = viewer()
    session = db()
    cluster = get_cluster(session, user)
    draft = settlement.settlement_for(session, id_of(cluster), month)
    nets = settlement.month_nets(session, id_of(cluster), month)
    members = list_members(session, user)
    adjustment_form = forms.get("adjustment_form") or AdjustmentForm()
    adjustment_form.member_id.choices = [(str(m.id), m.name) for m in members]
    return {
        "month": month, "cluster": cluster, "settlement": draft, "members": members,
        "nets": nets, "plan": settlement.netting(nets),
        "transfers": settlement.transfers_of(session, draft) if draft else {},
        "conservation": sum(n.net for n in nets.values()),
        "month_over": month < settlement.current_month(cluster, utcnow()),
        "adjustment_form": adjustment_form,
        "approve_form": forms.get("approve_form") or ApproveForm(),
    }


@bp.route("/<month>")
def month_page(month: str) -> ResponseReturnValue:
    user = viewer()
    month = _month(month)
    if user.is_coordinator and request.args.get("member") is None:
        return render_template("ledger/settlement.html", **_month_context(month))
    return _statement(month, printable=False)


def _statement_context(month: str) -> dict[str, Any]:
    user = viewer()
    session = db()
    cluster = get_cluster(session, user)
    member = _statement_member(user)
    entries = settlement.statement(session, id_of(cluster), id_of(member), month)
    net = settlement.month_nets(session, id_of(cluster), month).get(member.id)
    draft = settlement.settlement_for(session, id_of(cluster), month)
    transfer = settlement.transfers_of(session, draft).get(id_of(member)) if draft else None
    return {"month": month, "member": member, "cluster": cluster, "entries": entries,
            "net": net, "settlement": draft, "transfer": transfer, "names": _names(user)}


def _statement(month: str, printable: bool) -> ResponseReturnValue:
    context = _statement_context(month)
    template = "ledger/statement_print.html" if printable else "ledger/statement.html"
    return render_template(template, **context)


@bp.route("/<month>/print")
def statement_print(month: str) -> ResponseReturnValue:
    return _statement(_month(month), printable=True)


@bp.route("/<month>/statement.csv")
def statement_csv(month: str) -> ResponseReturnValue:
    month = _month(month)
    member = _statement_member(viewer())
    rows = statement_rows(db(), viewer(), member, month)
    return csv_download(rows, f"statement-{month}-{member.id}.csv")


@bp.route("/<month>/draft", methods=["POST"])
def draft(month: str) -> ResponseReturnValue:
    ApproveForm().validate_on_submit()
    settlement.draft_for(db(), viewer(), month, utcnow())
    flash(_("Settlement drafted. Review it, add adjustments if needed, then approve."))
    return redirect(url_for("ledger.month_page", month=_month(month)))


@bp.route("/<month>/adjustments", methods=["POST"])
def add_adjustment(month: str) -> ResponseReturnValue:
    # First: a refused form re-renders the settlement page, every member's nets.
    require_coordinator(viewer())
    month = _month(month)
    form = AdjustmentForm()
    form.member_id.choices = [(str(m.id), m.name) for m in list_members(db(), viewer())]

    def adjust() -> ResponseReturnValue:
        if not form.validate_on_submit():
            raise ValidationError("invalid_adjustment", N_("Some fields need your attention."))
        cluster = get_cluster(db(), viewer())
        amount = money_from_form(form.amount.data or "", "amount", cluster.currency)
        if form.direction.data == "charge":
            amount = -amount
        settlement.add_adjustment(db(), viewer(), month, parse_id(form.member_id.data) or 0,
                                  amount, form.reason.data or "", utcnow())
        flash(_("Adjustment recorded."))
        return redirect(url_for("ledger.month_page", month=month))

    return submit(form, adjust, lambda: render_template(
        "ledger/settlement.html", **_month_context(month, adjustment_form=form)))


@bp.route("/<month>/approve", methods=["POST"])
def approve(month: str) -> ResponseReturnValue:
    ApproveForm().validate_on_submit()
    month = _month(month)
    references = {settlement_id: value for key, value in request.form.items()
                  if key.startswith("reference-")
                  and (settlement_id := parse_id(key.removeprefix("reference-"))) is not None}
    settlement.approve(db(), viewer(), month, references, utcnow(),
                       by_stripe=bool(current_app.config.get("STRIPE_SECRET_KEY")))
    flash(_("Month approved and locked. Members have been told their statements are ready."))
    return redirect(url_for("ledger.month_page", month=month))

