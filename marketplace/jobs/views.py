"""Job pages: board, post, detail with claim / bid / joint bid / award, my jobs.

Every page builds what it shows through `jobs.visibility`, the information
barrier; forms post to the same service functions the API and scheduler use.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import uuid4

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from marketplace.api.jobs import job_state
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import get_cluster, list_members
from marketplace.clusters.trades import TRADES
from marketplace.db import parse_id, utcnow
from marketplace.errors import N_, ValidationError
from marketplace.forms import filled
from marketplace.jobs import bidding, completion, service
from marketplace.jobs.cards import render_card, render_cards
from marketplace.jobs.eligibility import reason_as_error
from marketplace.jobs.forms import ActionForm, AwardForm, BidForm, CancelForm, JobForm, RateForm
from marketplace.jobs.models import Bid, JobMode
from marketplace.jobs.visibility import (
    bids_for,
    contract_member_ids,
    job_for,
    jobs_for,
    viewer_of,
)
from marketplace.ledger.contracts import contract_lead
from marketplace.ledger.payments import payment_of
from marketplace.persisted import id_of
from marketplace.places.views import locate_typed
from marketplace.ratelimits import claim_limit, post_limit
from marketplace.web import (
    db,
    money_from_form,
    submit,
    translate,
    utc_from_form,
    viewer,
    wants_json,
)

bp = Blueprint("jobs", __name__, url_prefix="/jobs")

@bp.before_request
@login_required
def _require_login() -> None:
    """Job pages are for logged-in people only."""


def _money(text: str, field: str) -> int:
    """An amount in the viewer's cluster currency."""
    return money_from_form(text, field, get_cluster(db(), viewer()).currency)


#: Cards per board page: a phone's few screens; the rest is one tap away.
BOARD_PAGE_SIZE = 20
#: The distances a crew can narrow the board to (whole km, as partners see them).
WITHIN_KM = (5, 10, 25, 50)


def _board_filters(args: MultiDict[str, str]) -> service.BoardFilters:
    """The board's filters from the query string; a value that is not offered is ignored
    (the whole board), never an error page on a phone."""
    trade, mode, within = args.get("trade"), args.get("mode"), args.get("within", type=int)
    return service.BoardFilters(
        trade=trade if trade in TRADES else None,
        mode=mode if mode in {m.value for m in JobMode} else None,
        closing_soon=args.get("closing") == "soon",
        within_km=within if within in WITHIN_KM else None,
        order="nearest" if args.get("order") == "nearest" else "newest")


def board_page(user: User, args: MultiDict[str, str]) -> dict[str, Any]:
    """Everything the board shows `user` for these query arguments: one page of cards,
    the filters, the links to the pages around it (also what bench/board.py times)."""
    filters = _board_filters(args)
    page = min(max(args.get("page", 1, type=int) or 1, 1), 10_000)
    # Held before the board is read: the session's identity map keeps only rows
    # something still refers to, and the cards need the member again.
    member = db().get(Member, user.member_id)
    board = service.board_slice(db(), user, utcnow(), filters,
                                offset=(page - 1) * BOARD_PAGE_SIZE, limit=BOARD_PAGE_SIZE)
    more = board.total > page * BOARD_PAGE_SIZE
    asked: dict[str, Any] = {k: v for k, v in args.items() if k != "page" and v}
    cards = jobs_for(db(), viewer_of(user), [job for job, _d in board.rows], member,
                     board.trades)
    return {
        "cards": cards, "card_html": render_cards(cards, one_tap_claim=True),
        "page": page, "total": board.total, "first": (page - 1) * BOARD_PAGE_SIZE + 1,
        "filters": filters, "within_km": WITHIN_KM, "trades": TRADES,
        "more_url": url_for("jobs.board", **asked, page=page + 1) if more else None,
        "back_url": url_for("jobs.board", **asked, page=page - 1) if page > 1 else None,
    }


@bp.route("")
def board() -> ResponseReturnValue:
    user = viewer()
    if user.member_id is None:
        return redirect(url_for("jobs.cluster_jobs"))
    context = board_page(user, request.args)
    if wants_json():
        return jsonify({"jobs": context["cards"], "page": context["page"],
                        "more": context["more_url"] is not None, "total": context["total"]})
    return render_template("jobs/board.html", **context)


@bp.route("/<int:job_id>/card")
def card(job_id: int) -> ResponseReturnValue:
    """The job's board card for this viewer, for the live client to insert: the same
    function, template and flags the board renders it with (a card the viewer could
    claim carries the one-tap claim button), so a live card and a reloaded card are the
    same markup.  Another cluster's job is 404, as on the job page."""
    user = viewer()
    session = db()
    job = service.get_job(session, user, job_id)
    member = session.get(Member, user.member_id) if user.member_id is not None else None
    claimable = member is not None and not service.explain(session, user, job, utcnow())
    html = render_card(job_for(session, viewer_of(user), job, member), one_tap_claim=claimable)
    return html, 200, {"Content-Type": "text/html; charset=utf-8",
                       "Cache-Control": "private, no-store"}


@bp.route("/cluster")
def cluster_jobs() -> ResponseReturnValue:
    """Coordinators see the cluster's jobs and their state, never bids or customers."""
    user = viewer()
    cards = jobs_for(db(), viewer_of(user), service.cluster_jobs(db(), user))
    return render_template("jobs/cluster.html", cards=cards, trades=TRADES)


@bp.route("/new", methods=["GET", "POST"])
@post_limit
def post() -> ResponseReturnValue:
    user = viewer()
    form = JobForm()

    def post_it() -> ResponseReturnValue:
        closes_at = None
        if form.mode.data == JobMode.BID_WINDOW and form.closes_at.data is not None:
            closes_at = utc_from_form(form.closes_at.data, "closes_at")
        site = locate_typed(form.address.data, form.site_lat.data, form.site_lng.data,
                            form.site_resolved.data, "address")
        draft = service.JobDraft(
            title=form.title.data or "", description=form.description.data or "",
            trades=tuple(form.trades.data or ()), site_lat=site.lat,
            site_lng=site.lng, locality=(form.locality.data or "").strip() or site.town,
            # From the phone with nothing typed: the winner still gets where to go.
            address=(form.address.data or "").strip() or f"{site.lat:.5f}, {site.lng:.5f}",
            customer_name=form.customer_name.data or "",
            customer_contact=form.customer_contact.data or "",
            crew_days=form.crew_days.data or 0, starts_on=filled(form.starts_on.data),
            ends_on=filled(form.ends_on.data),
            value_minor=_money(form.value.data or "", "value"), mode=form.mode.data or "",
            closes_at=closes_at)
        job = service.post_job(db(), user, draft, utcnow())
        flash(_("Job posted. Eligible partners have been notified."))
        return redirect(url_for("jobs.detail", job_id=job.id))

    if form.validate_on_submit():
        return submit(form, post_it, lambda: render_template("jobs/post.html", form=form))
    return render_template("jobs/post.html", form=form), 422 if form.errors else 200


def _detail_context(job_id: int) -> dict[str, Any]:
    user = viewer()
    session = db()
    job = service.get_job(session, user, job_id)
    member = session.get(Member, user.member_id) if user.member_id else None
    parties = contract_member_ids(session, id_of(job))
    is_poster = member is not None and member.id == job.poster_member_id
    now = utcnow()
    reasons = service.explain(session, user, job, now) if member else []
    member_id = member.id if member else None
    members = list_members(session, user)
    names = {m.id: m.name for m in members}
    partners = ([m for m in members if m.id not in (job.poster_member_id, member.id)]
                if member else [])
    return {
        "job": job_for(session, viewer_of(user), job, member),
        "bids": bids_for(session, viewer_of(user), job),
        "reasons": [translate(reason_as_error(r)) for r in reasons],
        "is_poster": is_poster, "is_party": member is not None and member.id in parties,
        "may_confirm": completion.may_confirm(session, user, job, now),
        "my_bid": bidding.member_bid(session, id_of(job), member_id), "names": names,
        "trades": TRADES, "member": member, "window_open": bidding.window_open(job, now),
        "closes_at": job.closes_at,
        "rate_targets": completion.rate_targets(session, member_id, job, parties),
        "partners": partners,
        **_payment_context(session, id_of(job), member),
        "bid_form": BidForm(), "cancel_form": CancelForm(), "action_form": ActionForm(),
        "award_form": AwardForm(), "rate_form": RateForm(),
    }


def _payment_context(session: Any, job_id: int, member: Member | None) -> dict[str, Any]:
    """Card payment for the job (Stripe mode): visible to the lead party and the poster."""
    contract = completion.contract_of(session, job_id)
    if contract is None or member is None:
        return {"payment": None, "is_lead": False, "stripe_on": False}
    return {"payment": payment_of(session, id_of(contract)),
            "refund_key": uuid4().hex,  # one refund however often the form is sent
            "is_lead": contract_lead(session, contract) == member.id,
            "stripe_on": bool(current_app.config.get("STRIPE_SECRET_KEY"))}


@bp.route("/<int:job_id>")
def detail(job_id: int) -> ResponseReturnValue:
    if wants_json():  # the API's own document (GET /api/v1/jobs/<id>), one shape
        return jsonify(job_state(job_id))
    return render_template("jobs/detail.html", **_detail_context(job_id))


def _after_action(job_id: int, message: str) -> ResponseReturnValue:
    if wants_json():
        return jsonify({"ok": True, "message": message, **_json_state(job_id)})
    flash(message)
    return redirect(url_for("jobs.detail", job_id=job_id))


def _json_state(job_id: int) -> dict[str, Any]:
    state = job_state(job_id)
    return {"job": state["job"], "bids": state["bids"]}


def _detail_page(job_id: int, **forms: Any) -> str:
    """The job page again, with a refused form as the viewer filled it in."""
    return render_template("jobs/detail.html", **{**_detail_context(job_id), **forms})


@bp.route("/<int:job_id>/claim", methods=["POST"])
@claim_limit
def claim(job_id: int) -> ResponseReturnValue:
    service.claim_job(db(), viewer(), job_id, utcnow())
    return _after_action(job_id, _("The job is yours. The customer's details are below."))


def _require_valid(form: BidForm) -> None:
    """A bid form the browser sent back invalid is a 422 on its fields."""
    if not form.validate_on_submit():
        raise ValidationError("invalid_bid", N_("Some fields need your attention."))


def _bid_terms(form: BidForm) -> bidding.BidTerms:
    return bidding.BidTerms(_money(form.price.data or "", "price"), form.crew_size.data or 0,
                            filled(form.earliest_start.data), form.note.data or "")


@bp.route("/<int:job_id>/bid", methods=["POST"])
@claim_limit
def bid(job_id: int) -> ResponseReturnValue:
    form = BidForm()

    def place() -> ResponseReturnValue:
        _require_valid(form)
        bidding.place_bid(db(), viewer(), job_id, _bid_terms(form), utcnow())
        return _after_action(job_id, _("Your bid is in. Only the poster sees your price."))

    return submit(form, place, lambda: _detail_page(job_id, bid_form=form))


@bp.route("/<int:job_id>/joint", methods=["POST"])
def propose_joint(job_id: int) -> ResponseReturnValue:
    form = BidForm()

    def propose() -> ResponseReturnValue:
        _require_valid(form)
        shares = _shares_from_form()
        bidding.propose_joint_bid(db(), viewer(), job_id, _bid_terms(form), shares, utcnow())
        return _after_action(job_id,
                             _("Joint bid proposed. Each partner must confirm its share."))

    return submit(form, propose, lambda: _detail_page(job_id, bid_form=form))


def _shares_from_form() -> dict[int, int]:
    """share-<member id> fields in percent (two decimals) -> basis points."""
    shares: dict[int, int] = {}
    message = N_("Shares must be whole basis points, none negative, adding up to 10000 "
                 "(100 %), with your business and at least one partner.")
    for key, raw in request.form.items():
        if not key.startswith("share-") or not raw.strip():
            continue
        member_id = parse_id(key.removeprefix("share-"))
        try:
            percent = Decimal(raw.strip().replace(",", "."))
        except InvalidOperation:
            percent = Decimal("NaN")
        if member_id is None or not percent.is_finite() or abs(percent) > 100:
            raise ValidationError("invalid_shares", message, fields={"shares": message})
        basis_points = percent * 100
        if basis_points != basis_points.to_integral_value():
            raise ValidationError("invalid_shares", message, fields={"shares": message})
        if basis_points:
            shares[member_id] = int(basis_points)
    return shares


@bp.route("/bids/<int:bid_id>/confirm", methods=["POST"])
def confirm_share(bid_id: int) -> ResponseReturnValue:
    share = bidding.confirm_joint_share(db(), viewer(), bid_id, utcnow())
    bid_row = db().get(Bid, share.bid_id)
    assert bid_row is not None
    return _after_action(bid_row.job_id, _("You confirmed your share of the joint bid."))


@bp.route("/bids/<int:bid_id>/submit", methods=["POST"])
def submit_joint(bid_id: int) -> ResponseReturnValue:
    bid_row = bidding.submit_joint_bid(db(), viewer(), bid_id, utcnow())
    return _after_action(bid_row.job_id, _("Joint bid submitted; the shares are now frozen."))


@bp.route("/<int:job_id>/award", methods=["POST"])
def award(job_id: int) -> ResponseReturnValue:
    form = AwardForm()
    bidding.award_bid(db(), viewer(), job_id, parse_id(form.bid_id.data) or -1, utcnow())
    return _after_action(job_id, _("Job awarded. The winners can now see the customer's "
                                   "details."))


@bp.route("/<int:job_id>/cancel", methods=["POST"])
def cancel(job_id: int) -> ResponseReturnValue:
    form = CancelForm()

    def cancel_job() -> ResponseReturnValue:
        service.cancel_job(db(), viewer(), job_id, form.reason.data or "", utcnow())
        return _after_action(job_id, _("Job cancelled. Partners have been told."))

    return submit(form, cancel_job, lambda: _detail_page(job_id, cancel_form=form))


@bp.route("/<int:job_id>/done", methods=["POST"])
def report_done(job_id: int) -> ResponseReturnValue:
    completion.report_done(db(), viewer(), job_id, utcnow())
    return _after_action(job_id, _("Marked as done. The poster will confirm."))


@bp.route("/<int:job_id>/confirm", methods=["POST"])
def confirm(job_id: int) -> ResponseReturnValue:
    completion.confirm_completion(db(), viewer(), job_id, utcnow())
    return _after_action(job_id, _("Completion confirmed. Please rate your partner."))


@bp.route("/<int:job_id>/rate", methods=["POST"])
def rate(job_id: int) -> ResponseReturnValue:
    form = RateForm()
    ratee = parse_id(form.ratee_member_id.data) or -1
    score = parse_id(form.score.data) or 0

    def rate_partner() -> ResponseReturnValue:
        completion.rate(db(), viewer(), job_id, ratee, score, bool(form.on_time.data),
                        form.comment.data or "", utcnow())
        return _after_action(job_id, _("Thank you for rating."))

    return submit(form, rate_partner, lambda: _detail_page(job_id, rate_form=form))


@bp.route("/mine")
def mine() -> ResponseReturnValue:
    """The business's jobs by group, each cut for the viewer like every other job page."""
    session, user = db(), viewer()
    seen = viewer_of(user)
    groups = {key: jobs_for(session, seen, jobs)
              for key, jobs in service.my_jobs(session, user).items()}
    return render_template("jobs/mine.html", groups=groups)
