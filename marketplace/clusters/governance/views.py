"""Pages for decisions by the charter's rule: the record of proposals, proposing a
change, a proposal with its votes, and voting.

A blueprint nested in the cluster pages' (clusters/views.py registers it), so its
endpoints read `clusters.governance.*` and its pages need a login like theirs.  What a
viewer reads of the votes comes from `governance.service.proposal_view` only.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.clusters import agreements, service
from marketplace.clusters.forms import AGREEMENT_FIELDS, ProposalForm, VoteForm
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import Agreement
from marketplace.clusters.terms_inputs import inputs_context, typed_terms
from marketplace.db import utcnow
from marketplace.web import db, submit
from marketplace.web import viewer as acting_user

bp = Blueprint("governance", __name__)


@bp.before_request
@login_required
def _require_login() -> None:
    """Every governance page is for logged-in people only."""


@bp.route("/agreement/proposals")
def proposals() -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    now = utcnow()
    views = [
        governance.proposal_view(session, viewer, p, now)
        for p in governance.list_proposals(session, viewer)
    ]
    return render_template(
        "clusters/proposals.html",
        views=views,
        may_propose=governance.may_propose(session, viewer, now),
        agreement=agreements.agreement_in_force(session, viewer.cluster_id),
    )


@bp.route("/agreement/proposals/new", methods=["GET", "POST"])
def propose() -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    now = utcnow()
    refusal = governance.proposal_refusal(session, viewer, now)
    if refusal is not None:
        raise refusal
    current = agreements.agreement_in_force(session, viewer.cluster_id)
    assert current is not None  # proposal_refusal refuses a cluster without one
    form = ProposalForm()
    if not form.is_submitted():
        form.prefill(current, now)
    currency = service.get_cluster(session, viewer).currency
    if form.validate_on_submit():

        def put_to_vote() -> ResponseReturnValue:
            terms = typed_terms(form, current, currency)
            proposal = governance.propose_change(
                session, viewer, terms, form.reason.data or "", form.voting_days.data or 0, now
            )
            flash(_("Your proposal is put to the vote. Every member has been told."))
            return redirect(url_for("clusters.governance.proposal", proposal_id=proposal.id))

        return submit(form, put_to_vote, lambda: _proposal_editor(form, current, currency),
                      rename=AGREEMENT_FIELDS)
    return _proposal_editor(form, current, currency), 422 if form.errors else 200


def _proposal_editor(form: ProposalForm, current: Agreement, currency: str) -> str:
    return render_template("clusters/proposal_edit.html", form=form,
                           **inputs_context(form, current, currency))


@bp.route("/agreement/proposals/<int:proposal_id>")
def proposal(proposal_id: int) -> ResponseReturnValue:
    return _proposal_page(proposal_id, VoteForm())


def _proposal_page(proposal_id: int, form: VoteForm, status: int = 200) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    found = governance.get_proposal(session, viewer, proposal_id)
    view = governance.proposal_view(session, viewer, found, utcnow())
    return render_template(
        "clusters/proposal.html", view=view, form=form, deadline=found.deadline
    ), status


@bp.route("/agreement/proposals/<int:proposal_id>/vote", methods=["POST"])
def vote(proposal_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    governance.get_proposal(db(), viewer, proposal_id)  # another cluster's: 404 first
    form = VoteForm()
    if not form.validate_on_submit():
        return _proposal_page(proposal_id, form, 422)

    # A refusal (not an owner, voting closed, already voted) is the app's error page,
    # with what to do instead; nothing on this form would fix it.
    governance.cast_vote(db(), viewer, proposal_id, form.choice.data == "for", utcnow())
    flash(_("Your business's vote is recorded."))
    return redirect(url_for("clusters.governance.proposal", proposal_id=proposal_id))
