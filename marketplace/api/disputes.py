"""Disputes between members over the API: the same services and the same barrier as the
pages (a dispute the caller may not read answers as a missing one).

A message's photo travels as base64 in JSON, both ways, as an insurance certificate's
document does: the service checks and re-encodes it exactly as it does the page's
upload, and it is read back (without its metadata) by the parties and the coordinator
only, like the page's photo."""

from __future__ import annotations

import base64
from typing import Any, Literal

from pydantic import Field

from marketplace.api.fields import BasisPoints, Id, Minor, Moment, decoded_base64
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.models import User
from marketplace.db import utcnow
from marketplace.disputes import service as disputes
from marketplace.disputes.models import MemberDispute
from marketplace.equipment.photos import display_copy, full_size, is_stored_name
from marketplace.errors import N_, ValidationError, not_found
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
    body: str = Field(default="", max_length=2000, description="The message; may be "
                      "left out when a photo is sent.")
    photo_base64: str | None = Field(
        default=None, min_length=1, max_length=7_200_000, description="A photo (JPEG, PNG "
        "or WebP), base64-encoded; at most 5 MB.  It is stored re-encoded, without its "
        "metadata (where it was taken, the phone).")
    request_key: str | None = Field(default=None, max_length=64, description="A one-time "
                                    "key: the same message sent twice is stored once.")


class PhotoQuery(RequestModel):
    size: Literal["display", "full"] = Field(default="display", description="display: the "
                                             "smaller copy the dispute's page shows (WebP, "
                                             "at most 1024 px a side); full: the photo as "
                                             "stored.")


class PhotoOut(ResponseModel):
    message_id: int
    media_type: Literal["image/jpeg", "image/png", "image/webp"]
    width: int
    height: int
    photo_base64: str = Field(description="The picture, base64-encoded, without metadata.")


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


@operation("POST", "/disputes/{dispute_id}/messages", summary="Post a message, a photo or "
           "both in an open dispute (its parties' people and the coordinator)", tag=TAG,
           body=MessageIn, response=MessageOut, status=201)
def post_message(dispute_id: int, body: MessageIn) -> dict[str, Any]:
    from marketplace.disputes.views import photo_dir

    user = viewer()
    if not disputes.may_read_talk(db(), user, disputes.get_dispute(db(), user, dispute_id)):
        raise not_found()  # another's, or the panel's: 404 before the photo is looked at
    photo = None if body.photo_base64 is None else decoded_base64(
        body.photo_base64, "photo_base64", "invalid_photo",
        N_("Send the photo as base64 (RFC 4648, without line breaks)."))
    try:
        message = disputes.post_message(db(), user, dispute_id, body.body, photo,
                                        photo_dir(), body.request_key, utcnow())
    except ValidationError as refused:  # named after the field this request sent
        refused.fields = {("photo_base64" if name == "photo" else name): text
                          for name, text in refused.fields.items()}
        raise
    view = disputes.dispute_view(db(), user, disputes.get_dispute(db(), user, dispute_id),
                                 utcnow())
    shown = next(m for m in view.messages if m.id == message.id)
    return {"id": shown.id, "author": shown.author, "business": shown.business,
            "body": shown.body, "has_photo": shown.photo is not None,
            "created_at": shown.created_at}


@operation("GET", "/disputes/{dispute_id}/messages/{message_id}/photo", summary="A "
           "message's photo, without its metadata (the dispute's parties' people and the "
           "coordinator, as on its page; the panel does not read the parties' messages)",
           tag=TAG, query=PhotoQuery, response=PhotoOut)
def message_photo(dispute_id: int, message_id: int, query: PhotoQuery) -> dict[str, Any]:
    from marketplace.disputes.views import photo_dir

    session, user = db(), viewer()
    stored = disputes.photo_of(session, user, message_id)  # the talk's readers, or 404
    view = disputes.dispute_view(session, user, disputes.get_dispute(session, user,
                                                                     dispute_id), utcnow())
    if not is_stored_name(stored) or all(m.id != message_id for m in view.messages):
        raise not_found()  # a message of another dispute: as a missing one
    shown = full_size(photo_dir(), stored) if query.size == "full" \
        else display_copy(photo_dir(), stored)
    if shown is None:
        raise not_found()
    return {"message_id": message_id, "media_type": shown.media_type,
            "width": shown.width, "height": shown.height,
            "photo_base64": base64.b64encode(shown.path.read_bytes()).decode("ascii")}


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
