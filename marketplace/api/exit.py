"""A clean exit over the API: what a business's exit did (its people, the coordinator)
and a co-owned machine's agreed value, through the same services as the pages."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from marketplace.api.fields import Moment
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.buyout import MAX_AGREED_VALUE_MINOR
from marketplace.clusters.exit.models import MemberExit
from marketplace.db import utcnow
from marketplace.web import db, viewer

TAG = "exit"


class ExitOut(ResponseModel):
    member_id: int
    reason: str = Field(description="notice: the business's exit date came; wind_down: the "
                        "agreement reached its sunset with no newer version")
    effective_at: Moment
    final_month: str = Field(description="The month (YYYY-MM) of the business's last "
                             "statement, where the exit's buy-outs and refunds are")
    summary: dict[str, Any] = Field(description="What the exit did, with amounts in minor "
                                    "units: bookings_cancelled, others_bookings_cancelled, "
                                    "machines_withdrawn, buyouts, jobs_cancelled, "
                                    "jobs_handed_back, bids_lapsed, contracts_kept, currency")


class AgreedValueIn(RequestModel):
    agreed_value_minor: int | None = Field(gt=0, le=MAX_AGREED_VALUE_MINOR,
                                           description="What the co-owners agree the "
                                           "machine is worth, minor units; null clears it")


class AgreedValueOut(ResponseModel):
    equipment_id: int
    agreed_value_minor: int | None


def _out(record: MemberExit) -> dict[str, Any]:
    return {"member_id": record.member_id, "reason": record.reason,
            "effective_at": record.effective_at, "final_month": record.final_month,
            "summary": record.summary}


@operation("GET", "/exit", summary="What the caller's business's exit did (once it took "
           "effect)", tag=TAG, response=ExitOut)
def my_exit() -> dict[str, Any]:
    return _out(exits.outcome_for(db(), viewer()))


@operation("GET", "/exit/members/{member_id}", summary="What a business's exit did (its "
           "people, the coordinator)", tag=TAG, response=ExitOut)
def member_exit(member_id: int) -> dict[str, Any]:
    return _out(exits.outcome_for(db(), viewer(), member_id))


@operation("PUT", "/equipment/{equipment_id}/agreed-value", summary="Set what a co-owned "
           "machine is worth, for buying out a leaving co-owner (its owners, the "
           "coordinator)", tag=TAG, body=AgreedValueIn, response=AgreedValueOut)
def set_agreed_value(equipment_id: int, body: AgreedValueIn) -> dict[str, Any]:
    machine = exits.set_agreed_value(db(), viewer(), equipment_id, body.agreed_value_minor,
                                    now=utcnow())
    return {"equipment_id": machine.id, "agreed_value_minor": machine.agreed_value_minor}
