"""Disputes between members over the API: the same services and the same barrier as the
pages (a dispute the caller may not read answers as a missing one)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from marketplace.api.fields import BasisPoints, Id, Minor, Moment
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.models import User
from marketplace.db import utcnow
from marketplace.disputes import service as disputes
from marketplace.disputes.models import MemberDispute
from marketplace.web import db, viewer

TAG = "disputes"
Source = Literal["job_share", "referral_fee", "booking", "damage_fee", "cancellation_fee"]


class DisputeOut(ResponseModel):
    id: int
    subject: Literal["job", "booking"]
    subject_id: int
    source: str = Field(description="The money disputed (a ledger source).")
    title: str
    reason: str
    disputed_minor: int
    currency: str
    resolver: Literal["coordinator", "panel"]
    status: Literal["open", "decided"]
    opened_at: Moment
    deadline: Moment
    outcome: Literal["uphold", "adjust", "split", "cancel"] | None
    decided_minor: int | None = Field(description="What the payers owe of it, decided.")
    split_bp: int | None
    decision_note: str
    decided_at: Moment | None


class DisputeList(ResponseModel):
    disputes: list[DisputeOut]


class EntryOut(ResponseModel):
    payer: str
    payee: str
    amount_minor: int
    month: str
    settled_minor: int | None


class MessageOut(ResponseModel):
    id: int
    author: str
    business: str
    body: str
    has_photo: bool
    created_at: Moment


class DisputeDetail(DisputeOut):
    parties: list[str]
    panel: list[str]
    entries: list[EntryOut]
    messages: list[MessageOut]
    may_decide: bool
    may_post: bool
    panel_votes: int = Field(description="Panel businesses that have cast a decision.")
    decided_by: str = Field(description="Who recorded the decision (empty while open).")


class OpenIn(RequestModel):
    subject: Literal["job", "booking"]
    subject_id: Id
    source: Source
    reason: str = Field(min_length=1, max_length=2000)


class MessageIn(RequestModel):
    body: str = Field(min_length=1, max_length=2000)
    request_key: str | None = Field(default=None, max_length=64, description="A one-time "
                                    "key: the same message sent twice is stored once.")


class DecisionIn(RequestModel):
    outcome: Literal["uphold", "adjust", "split", "cancel"]
    amount_minor: Minor | None = Field(default=None, description="adjust: what the payers "
                                       "owe instead (at most the disputed amount).")
    split_bp: BasisPoints | None = Field(default=None, description="split: the payers' "
                                         "part of the disputed amount.")
    note: str = Field(min_length=1, max_length=2000)


def _detail(user: User, dispute: MemberDispute) -> dict[str, Any]:
    view = disputes.dispute_view(db(), user, dispute, utcnow())
    return {**DisputeOut.model_validate(dispute).model_dump(),
            "parties": list(view.parties), "panel": list(view.panel),
            "entries": [vars(e) for e in view.entries],
            "messages": [{"id": m.id, "author": m.author, "business": m.business,
                          "body": m.body, "has_photo": m.photo is not None,
                          "created_at": m.created_at} for m in view.messages],
            "may_decide": view.may_decide, "may_post": view.may_post,
            "panel_votes": view.panel_votes, "decided_by": view.decided_by}


@operation("GET", "/disputes", summary="The disputes the caller may read (its business's, "
           "its panel's; all for the coordinator), open first", tag=TAG,
           response=DisputeList)
def list_disputes() -> dict[str, Any]:
    return {"disputes": disputes.list_disputes(db(), viewer())}


@operation("GET", "/disputes/{dispute_id}", summary="A dispute (its parties, its panel "
           "and the coordinator); its entries and messages for its parties and the "
           "coordinator only (the panel reads the disputed total and the reason)", tag=TAG,
           response=DisputeDetail)
def get_dispute(dispute_id: int) -> dict[str, Any]:
    user = viewer()
    return _detail(user, disputes.get_dispute(db(), user, dispute_id))


@operation("POST", "/disputes", summary="Open a dispute on a finished job's or booking's "
           "money within the agreement's window (an owner of a party); the money is held "
           "out of settlement", tag=TAG, body=OpenIn, response=DisputeDetail, status=201)
def open_dispute(body: OpenIn) -> dict[str, Any]:
    user = viewer()
    dispute = disputes.open_dispute(db(), user, body.subject, body.subject_id, body.source,
                                    body.reason, utcnow())
    return _detail(user, dispute)


@operation("POST", "/disputes/{dispute_id}/messages", summary="Post a message in an open "
           "dispute (photos: on the dispute's page)", tag=TAG, body=MessageIn,
           response=MessageOut, status=201)
def post_message(dispute_id: int, body: MessageIn) -> dict[str, Any]:
    from marketplace.disputes.views import photo_dir

    user = viewer()
    message = disputes.post_message(db(), user, dispute_id, body.body, None, photo_dir(),
                                    body.request_key, utcnow())
    view = disputes.dispute_view(db(), user, disputes.get_dispute(db(), user, dispute_id),
                                 utcnow())
    shown = next(m for m in view.messages if m.id == message.id)
    return {"id": shown.id, "author": shown.author, "business": shown.business,
            "body": shown.body, "has_photo": shown.photo is not None,
            "created_at": shown.created_at}


@operation("POST", "/disputes/{dispute_id}/decision", summary="Decide a dispute once "
           "(its resolver): uphold, adjust to an amount, split by basis points, or cancel; "
           "the entries settle in the current month.  A panel business casts its decision: "
           "the panel decides when more than half agree", tag=TAG, body=DecisionIn,
           response=DisputeDetail)
def decide(dispute_id: int, body: DecisionIn) -> dict[str, Any]:
    user = viewer()
    dispute = disputes.decide(db(), user, dispute_id, body.outcome, body.amount_minor,
                              body.split_bp, body.note, utcnow())
    return _detail(user, dispute)
