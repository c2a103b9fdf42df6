"""Money over the API: a member's months and statement lines; the coordinator's
monthly settlement (draft, adjustments, approval).

A member reads only its own statement; a coordinator reads any member's and the
whole settlement.  Amounts are integers in minor units, signed from the
member's side on statements (positive: it receives).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from pydantic import Field

from marketplace.api.fields import Id, Moment
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import get_cluster, get_member, require_coordinator
from marketplace.db import MAX_ID, parse_id, utcnow
from marketplace.errors import not_found
from marketplace.ledger import service, settlement
from marketplace.persisted import id_of
from marketplace.web import db, viewer

TAG = "money"


class MonthOut(ResponseModel):
    month: str
    status: str | None = Field(description="draft or approved; null before drafting.")
    net_minor: int | None = Field(default=None, description="The caller's business's net "
                                  "for the month (members only).")


class MonthList(ResponseModel):
    currency: str
    balance_minor: int | None = Field(default=None, description="Open balance of the "
                                      "caller's business (members only).")
    months: list[MonthOut]


class LineOut(ResponseModel):
    id: int
    created_at: Moment
    source: str
    other_member_id: int | None = Field(description="The other side; null: the cluster.")
    memo: str
    late_from: str = Field(description="The month the fact belongs to when that month was "
                                       "already settled (the line is in the next open one); "
                                       "empty otherwise.")
    amount_minor: int = Field(description="Positive: the member receives it.")


class StatementOut(ResponseModel):
    month: str
    member_id: int
    currency: str
    lines: list[LineOut]
    net_minor: int


class NetOut(ResponseModel):
    member_id: int | None
    credits_minor: int
    debits_minor: int
    net_minor: int


class TransferOut(ResponseModel):
    member_id: int
    direction: str
    amount_minor: int
    method: str | None = None
    status: str | None = None
    reference: str | None = None


class SettlementOut(ResponseModel):
    month: str
    currency: str
    status: str | None
    nets: list[NetOut]
    transfers: list[TransferOut] = Field(description="Recorded transfers once approved, "
                                         "else the netting plan.")


class StatementQuery(RequestModel):
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                                  description="Coordinators: whose statement.")


class AdjustmentIn(RequestModel):
    member_id: Id
    amount_minor: int = Field(ge=-MAX_ID, le=MAX_ID, description="Positive credits the "
                              "member, negative charges it.")
    reason: str = Field(max_length=300)


class ApproveIn(RequestModel):
    references: dict[str, str] = Field(default_factory=dict, max_length=1000,
                                       description="Bank reference per member id, for "
                                       "transfers made outside Stripe.")


def _statement_member(user: User, member_id: int | None) -> Member:
    if user.is_coordinator and member_id is not None:
        return get_member(db(), user, member_id)
    if user.member_id is None or member_id not in (None, user.member_id):
        raise not_found()
    return get_member(db(), user, user.member_id)


def settlement_state(month: str) -> dict[str, Any]:
    """The month's nets and its transfers (recorded, or planned while a draft)."""
    user, session = viewer(), db()
    require_coordinator(user)
    cluster = get_cluster(session, user)
    nets = settlement.month_nets(session, id_of(cluster), month)
    found = settlement.settlement_for(session, id_of(cluster), month)
    recorded = settlement.transfers_of(session, found) if found else {}
    transfers: list[Any] = list(recorded.values()) or settlement.netting(nets)
    return {"month": month, "currency": cluster.currency,
            "status": found.status if found else None,
            "nets": [{"member_id": n.member_id, "credits_minor": n.credits,
                      "debits_minor": n.debits, "net_minor": n.net} for n in nets.values()],
            "transfers": transfers}


@operation("GET", "/ledger/months", summary="Months with money movements (a member: its "
           "own nets and balance)", tag=TAG, response=MonthList)
def list_months() -> dict[str, Any]:
    user, session = viewer(), db()
    cluster = get_cluster(session, user)
    member_id = None if user.is_coordinator else user.member_id
    months = settlement.months_with_entries(session, id_of(cluster), member_id)
    rows = []
    for month in months:
        found = settlement.settlement_for(session, id_of(cluster), month)
        net = (settlement.month_nets(session, id_of(cluster), month).get(member_id)
               if member_id else None)
        rows.append({"month": month, "status": found.status if found else None,
                     **({"net_minor": net.net if net else 0} if member_id else {})})
    return {"currency": cluster.currency, "months": rows,
            **({"balance_minor": service.balance(session, member_id)} if member_id else {})}


@operation("GET", "/ledger/{month}/statement", summary="A member's statement lines for a "
           "month (YYYY-MM)", tag=TAG, query=StatementQuery, response=StatementOut,
           string_params=("month",))
def statement(month: str, query: StatementQuery) -> dict[str, Any]:
    month = settlement.parse_month(month)
    user, session = viewer(), db()
    cluster = get_cluster(session, user)
    member = _statement_member(user, query.member_id)
    entries = settlement.statement(session, id_of(cluster), id_of(member), month)
    net = settlement.month_nets(session, id_of(cluster), month).get(member.id)
    mine = member.id
    return {"month": month, "member_id": mine, "currency": cluster.currency,
            "net_minor": net.net if net else 0,
            "lines": [{"id": e.id, "created_at": e.created_at, "source": e.source,
                       "memo": e.memo, "late_from": e.late_from,
                       "other_member_id": (e.payer_member_id if e.payee_member_id == mine
                                           else e.payee_member_id),
                       "amount_minor": (e.amount_minor if e.payee_member_id == mine
                                        else -e.amount_minor)} for e in entries]}


@operation("GET", "/ledger/{month}/settlement", summary="The cluster's settlement of a "
           "month: nets per member and transfers (coordinator)", tag=TAG,
           response=SettlementOut, string_params=("month",))
def get_settlement(month: str) -> dict[str, Any]:
    return settlement_state(settlement.parse_month(month))


@operation("POST", "/ledger/{month}/draft", summary="Draft (or refresh) the month's "
           "settlement (coordinator)", tag=TAG, response=SettlementOut,
           string_params=("month",))
def draft_settlement(month: str) -> dict[str, Any]:
    month = settlement.parse_month(month)
    settlement.draft_for(db(), viewer(), month, utcnow())
    return settlement_state(month)


@operation("POST", "/ledger/{month}/adjustments", summary="Credit or charge a member, with "
           "a reason (coordinator; open months only)", tag=TAG, body=AdjustmentIn,
           response=SettlementOut, status=201, string_params=("month",))
def add_adjustment(month: str, body: AdjustmentIn) -> dict[str, Any]:
    month = settlement.parse_month(month)
    settlement.add_adjustment(db(), viewer(), month, body.member_id, body.amount_minor,
                              body.reason, utcnow())
    return settlement_state(month)


@operation("POST", "/ledger/{month}/approve", summary="Approve and lock the month; one "
           "transfer per member (coordinator)", tag=TAG, body=ApproveIn,
           response=SettlementOut, string_params=("month",))
def approve_settlement(month: str, body: ApproveIn) -> dict[str, Any]:
    month = settlement.parse_month(month)
    references = {member_id: value for key, value in body.references.items()
                  if (member_id := parse_id(key)) is not None}
    settlement.approve(db(), viewer(), month, references, utcnow(),
                       by_stripe=bool(current_app.config.get("STRIPE_SECRET_KEY")))
    return settlement_state(month)
