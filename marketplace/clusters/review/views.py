"""Pages of the sunset review: the list, a review with its targets and answers, a
business's answer, the coordinator's renewal, and the postmortem (printable page, CSV).

A blueprint nested in the cluster pages' (clusters/views.py registers it), so its
endpoints read `clusters.review.*` and its pages need a login like theirs.  What a
viewer reads of a review comes from `review.service.review_view` only; the page, the
printable record and the CSV are all written from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, format_percent
from flask_babel import gettext as _
from flask_login import login_required
from sqlmodel import Session

from marketplace.clusters.agreements import agreement_in_force
from marketplace.clusters.models import Cluster
from marketplace.clusters.review import service
from marketplace.clusters.review.forms import AnswerForm, RenewForm
from marketplace.clusters.review.progress import (
    RULE,
    QuarterFigure,
    TargetProgress,
    recent_quarters,
    target_progress,
)
from marketplace.clusters.review.service import CHOICE_LABELS, ReviewView
from marketplace.clusters.service import require_coordinator
from marketplace.clusters.targets import TargetUnit
from marketplace.dashboard.access import Scope
from marketplace.db import utcnow
from marketplace.i18n import money
from marketplace.spreadsheet import spreadsheet_text
from marketplace.web import csv_download, db, submit
from marketplace.web import viewer as acting_user

bp = Blueprint("review", __name__)


# -- what the figures and the outcome read like ------------------------------------------
# The one place the review page, its printable record, its CSV and the dashboard's
# targets panel turn `progress.TargetProgress` into text, so they never disagree.


def quarter_name(quarter: str) -> str:
    """"2026-Q2" as the viewer reads it."""
    return _("Q%(number)s %(year)s", number=quarter[6:], year=quarter[:4])


def figure_text(unit: TargetUnit, value: int | None, currency: str) -> str:
    if value is None:
        return "–"
    if unit is TargetUnit.MONEY:
        return money(value, currency)
    if unit is TargetUnit.BASIS_POINTS:
        return format_percent(value / 10_000, format="#,##0.0%")
    return format_decimal(value)


def figure_plain(unit: TargetUnit, value: int | None) -> str:
    """A figure as the CSV writes it: minor units, counts and basis points as integers."""
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Row:
    """One target in one quarter, ready for a table."""

    label: str
    quarter: str
    goal: str
    reached: str
    share: str  # of the goal, e.g. "84.0 %"
    why: str  # why withheld ("" when shown)
    progress: TargetProgress
    figure: QuarterFigure


def rows_of(progress: list[TargetProgress] | tuple[TargetProgress, ...], currency: str
            ) -> list[Row]:
    rows = []
    for target in progress:
        for figure in target.quarters:
            reached = target.reached_bp(figure)
            why = _(figure.withheld.reason, **figure.withheld.params) if figure.withheld else ""
            rows.append(Row(
                _(target.label), quarter_name(figure.quarter),
                figure_text(target.unit, target.goal, currency),
                _("too few to show") if figure.withheld else
                figure_text(target.unit, figure.value, currency),
                "" if reached is None else format_percent(reached / 10_000, format="#,##0%"),
                why, target, figure))
    return rows


def dashboard_targets(session: Session, scope: Scope, now: datetime
                      ) -> tuple[list[Row], str]:
    """The dashboard's target rows (the last four quarters) for the viewer's view of the
    cluster's totals; none when the agreement sets no target.  The second value is the
    rule's sentence for a member's pooled view ("" for the coordinator)."""
    current = agreement_in_force(session, scope.cluster_id)
    if current is None or not current.targets:
        return [], ""
    quarters = recent_quarters(scope, now)
    progress = target_progress(session, scope, dict(current.targets), quarters, now)
    rule = _(RULE) if scope.pooled else ""
    return rows_of(progress, scope.cluster.currency), rule


def outcome_text(view: ReviewView) -> str:
    review = view.review
    if review.outcome == "renewed":
        return _("Renewed: version %(version)d, until %(date)s.",
                 version=review.renewed_version or 0,
                 date=review.renewed_sunset_on.isoformat() if review.renewed_sunset_on else "")
    if review.outcome == "wound_down":
        return _("Not renewed: the cluster winds down from its sunset date.")
    return _("Open: members answer until the sunset.")


@bp.before_request
@login_required
def _require_login() -> None:
    """Every review page is for logged-in people only."""


# -- pages ------------------------------------------------------------------------------------


@bp.route("/agreement/reviews")
def reviews() -> ResponseReturnValue:
    viewer, session = acting_user(), db()
    found = service.list_reviews(session, viewer)
    return render_template("clusters/reviews.html", reviews=found,
                           closes={r.id: service.closing_moment(session, r) for r in found})


def _page(review_id: int, answer_form: AnswerForm | None = None,
          renew_form: RenewForm | None = None, status: int = 200) -> ResponseReturnValue:
    return _render(review_id, answer_form, renew_form), status


def _render(review_id: int, answer_form: AnswerForm | None = None,
            renew_form: RenewForm | None = None) -> str:
    viewer = acting_user()
    session = db()
    found = service.get_review(session, viewer, review_id)
    view = service.review_view(session, viewer, found, utcnow())
    if answer_form is None:
        answer_form = AnswerForm(formdata=None)
        if view.mine is not None:
            answer_form.choice.data = view.mine.choice
            answer_form.lessons.data = view.mine.lessons
    return render_template(
        "clusters/review.html", view=view, answer_form=answer_form,
        renew_form=renew_form or RenewForm(formdata=None), labels=CHOICE_LABELS,
        rows=rows_of(view.progress, _currency(view)),
        quarters=[quarter_name(q) for q in view.quarters])


def _currency(view: ReviewView) -> str:
    cluster = db().get(Cluster, view.review.cluster_id)
    return cluster.currency if cluster is not None else "USD"


@bp.route("/agreement/reviews/<int:review_id>")
def review(review_id: int) -> ResponseReturnValue:
    return _page(review_id)


@bp.route("/agreement/reviews/<int:review_id>/answer", methods=["POST"])
def answer(review_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    service.get_review(db(), viewer, review_id)  # another cluster's: 404 first
    form = AnswerForm()
    if not form.validate_on_submit():
        return _page(review_id, answer_form=form, status=422)

    def record() -> ResponseReturnValue:
        service.answer(db(), viewer, review_id, form.choice.data or "",
                       form.lessons.data or "", utcnow())
        flash(_("Your business's answer is recorded. You can change it until the review "
                "closes."))
        return redirect(url_for("clusters.review.review", review_id=review_id))

    return submit(form, record, lambda: _render(review_id, answer_form=form))


@bp.route("/agreement/reviews/<int:review_id>/renew", methods=["POST"])
def renew(review_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    service.get_review(db(), viewer, review_id)  # another cluster's: 404 first
    require_coordinator(viewer)  # members are refused before the form
    form = RenewForm()
    if not form.validate_on_submit():
        return _page(review_id, renew_form=form, status=422)

    def publish() -> ResponseReturnValue:
        published = service.renew(db(), viewer, review_id, form.sunset_on.data, utcnow())
        flash(_("Version %(version)d is published with the new sunset date. Every member "
                "has been told to accept it.", version=published.version))
        return redirect(url_for("clusters.review.review", review_id=review_id))

    return submit(form, publish, lambda: _render(review_id, renew_form=form))


# -- the postmortem -----------------------------------------------------------------------------


def _record_view(review_id: int) -> tuple[ReviewView, str]:
    viewer = acting_user()
    session = db()
    found = service.get_review(session, viewer, review_id)
    view = service.review_view(session, viewer, found, utcnow())
    return view, _currency(view)


@bp.route("/agreement/reviews/<int:review_id>/record")
def record(review_id: int) -> ResponseReturnValue:
    view, currency = _record_view(review_id)
    return render_template("clusters/review_record.html", view=view, labels=CHOICE_LABELS,
                           rows=rows_of(view.progress, currency),
                           cluster=db().get(Cluster, view.review.cluster_id))


@bp.route("/agreement/reviews/<int:review_id>.csv")
def record_csv(review_id: int) -> ResponseReturnValue:
    view, currency = _record_view(review_id)
    review = view.review
    table: list[list[Any]] = [
        [_("Sunset review"), review.sunset_on.isoformat()],
        [_("Agreement version"), review.agreement_version],
        [_("Outcome"), outcome_text(view)],
        [],
        [_("Target"), _("Quarter"), _("Goal per quarter"), _("Reached"),
         _("Share of the goal"), _("Why not shown")],
    ]
    for row in rows_of(view.progress, currency):
        reached = row.progress.reached_bp(row.figure)
        table.append([row.label, row.figure.quarter,
                      figure_plain(row.progress.unit, row.progress.goal),
                      figure_plain(row.progress.unit, row.figure.value),
                      "" if reached is None else reached, row.why])
    table.append([])
    if view.tally is not None:
        table.append([_("Answers")] + [_(CHOICE_LABELS[c]) for c in service.CHOICES])
        table.append([""] + [view.tally[c] for c in service.CHOICES])
        table.append([])
    table.append([_("Member"), _("Answer"), _("What it learned"), _("Answered")])
    for a in view.answers:
        table.append([spreadsheet_text(a.member_name),
                      _(CHOICE_LABELS[a.choice]) if a.choice else "",
                      spreadsheet_text(a.lessons), a.changed_at.isoformat()])
    return csv_download(table, f"sunset-review-{review.sunset_on.isoformat()}.csv")

