"""The sunset review through the API: the reviews, one review with its outcomes against
the targets and its answers, a business's answer, and the coordinator's renewal.

What a caller reads is the same `review_view` the review page and its record show:
what each business learned for every member, each business's answer for the
coordinator and the business itself only, the count of each answer for members only
once the review is closed and each answer hides its businesses, money totals of the
targets only for quarters that are over and shown on the member's dashboard.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from marketplace.api.fields import Day, Moment
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.review import service
from marketplace.db import utcnow
from marketplace.web import db, viewer

TAG = "sunset reviews"
Choice = Literal["renew", "change", "leave"]


class ReviewQuarterOut(ResponseModel):
    quarter: str = Field(description="YYYY-Qn, in the cluster's time zone.")
    value: int | None = Field(description="What the quarter reached (minor units, a count "
                              "or basis points, as the unit says); None when withheld or "
                              "not measurable.")
    closed: bool
    withheld: str | None = Field(description="Why a member does not see it (English).")


class ReviewTargetOut(ResponseModel):
    code: str
    unit: Literal["money", "count", "bp"]
    goal: int = Field(description="The goal per quarter, in the unit.")
    quarters: list[ReviewQuarterOut]


class ReviewAnswerOut(ResponseModel):
    member_id: int
    member_name: str
    choice: Choice | None = Field(description="Only for the coordinator and the business "
                                  "itself.")
    lessons: str = Field(description="What the business learned: shared with every member.")
    answered_at: Moment
    changed_at: Moment


class ReviewTallyOut(ResponseModel):
    renew: int
    change: int
    leave: int


class ReviewOut(ResponseModel):
    id: int
    status: Literal["open", "closed"]
    sunset_on: Day
    agreement_version: int
    opened_at: Moment
    closes_at: Moment
    closed_at: Moment | None
    outcome: Literal["renewed", "wound_down"] | None
    renewed_version: int | None
    renewed_sunset_on: Day | None
    participants: int | None
    answered: int
    tally: ReviewTallyOut | None = Field(description="The coordinator's always; members' once the "
                                   "review is closed and each answer hides its businesses.")
    answers: list[ReviewAnswerOut]
    my_choice: Choice | None
    may_answer: bool
    may_renew: bool
    targets: list[ReviewTargetOut]


class ReviewList(ResponseModel):
    reviews: list[ReviewOut]


class ReviewAnswerIn(RequestModel):
    choice: Choice
    lessons: str = Field(default="", max_length=service.MAX_LESSONS,
                         description="What your business learned; shared with every member.")


class ReviewRenewIn(RequestModel):
    sunset_on: Day = Field(description="The new sunset date, later than the current one.")


def _review_out(view: service.ReviewView) -> dict[str, Any]:
    review = view.review
    return {
        "id": review.id, "status": review.status, "sunset_on": review.sunset_on,
        "agreement_version": review.agreement_version, "opened_at": review.opened_at,
        "closes_at": view.closes_at, "closed_at": review.closed_at,
        "outcome": review.outcome, "renewed_version": review.renewed_version,
        "renewed_sunset_on": review.renewed_sunset_on, "participants": view.participants,
        "answered": view.answered, "tally": view.tally,
        "answers": [{"member_id": a.member_id, "member_name": a.member_name,
                     "choice": a.choice, "lessons": a.lessons, "answered_at": a.answered_at,
                     "changed_at": a.changed_at} for a in view.answers],
        "my_choice": view.mine.choice if view.mine is not None else None,
        "may_answer": view.may_answer, "may_renew": view.may_renew,
        "targets": [{"code": t.code, "unit": t.unit.value, "goal": t.goal,
                     "quarters": [{"quarter": f.quarter, "value": f.value, "closed": f.closed,
                                   "withheld": f.withheld.reason % f.withheld.params
                                   if f.withheld else None} for f in t.quarters]}
                    for t in view.progress],
    }


def _shown(review_id: int) -> dict[str, Any]:
    session, user = db(), viewer()
    found = service.get_review(session, user, review_id)
    return _review_out(service.review_view(session, user, found, utcnow()))


@operation("GET", "/agreement/reviews", summary="The cluster's sunset reviews, newest "
           "first", tag=TAG, response=ReviewList)
def list_reviews() -> dict[str, Any]:
    session, user, now = db(), viewer(), utcnow()
    return {"reviews": [_review_out(service.review_view(session, user, r, now))
                        for r in service.list_reviews(session, user)]}


@operation("GET", "/agreement/reviews/{review_id}", summary="One sunset review: outcomes "
           "against the targets, answers and lessons, as the caller may see them", tag=TAG,
           response=ReviewOut)
def get_review(review_id: int) -> dict[str, Any]:
    return _shown(review_id)


@operation("POST", "/agreement/reviews/{review_id}/answer", summary="Answer the review for "
           "the caller's business (its owners): renew, change or leave, and what it "
           "learned; may be changed until the review closes", tag=TAG, body=ReviewAnswerIn,
           response=ReviewOut)
def answer_review(review_id: int, body: ReviewAnswerIn) -> dict[str, Any]:
    session, user = db(), viewer()
    service.get_review(session, user, review_id)  # another cluster's: 404 first
    service.answer(session, user, review_id, body.choice, body.lessons, utcnow())
    return _shown(review_id)


@operation("POST", "/agreement/reviews/{review_id}/renew", summary="Renew the agreement "
           "with a later sunset date and nothing else changed (the coordinator); the review "
           "closes as renewed", tag=TAG, body=ReviewRenewIn, response=ReviewOut)
def renew_review(review_id: int, body: ReviewRenewIn) -> dict[str, Any]:
    session, user = db(), viewer()
    service.get_review(session, user, review_id)
    service.renew(session, user, review_id, body.sunset_on, utcnow())
    return _shown(review_id)
