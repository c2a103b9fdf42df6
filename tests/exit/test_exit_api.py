"""A clean exit over the API: the same services and the same readers as the pages."""

from __future__ import annotations

from flask import Flask
from sqlmodel import Session

from marketplace.clusters.exit import service as exits
from tests.api.conftest import bearer
from tests.exit.conftest import AFTER, ExitWorld, leave


def test_the_exit_over_the_api(app: Flask, session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    api = app.test_client()
    trailer = exit_world.trailer.id
    # Owners of the co-owned trailer (and the coordinator) set its agreed value.
    as_b = bearer(session, w.owner_b)
    answer = api.put(f"/api/v1/equipment/{trailer}/agreed-value", headers=as_b,
                     json={"agreed_value_minor": 2_000_000})
    assert answer.status_code == 200
    assert answer.get_json() == {"equipment_id": trailer, "agreed_value_minor": 2_000_000}
    as_c = bearer(session, exit_world.eq.owner_c)
    assert api.put(f"/api/v1/equipment/{trailer}/agreed-value", headers=as_c,
                   json={"agreed_value_minor": 1}).status_code == 403
    assert api.put(f"/api/v1/equipment/{trailer}/agreed-value", headers=as_b,
                   json={"agreed_value_minor": 0}).status_code == 422
    # The exit: its people read it, the coordinator reads it, B does not.
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    mine = api.get("/api/v1/exit", headers=bearer(session, w.owner_a)).get_json()
    assert mine["summary"]["buyouts"][0]["price_minor"] == 1_200_000  # 60 % of 20 000.00
    assert mine["final_month"] == "2026-07"
    as_coordinator = bearer(session, w.coordinator)
    one = api.get(f"/api/v1/exit/members/{w.member_a_id}", headers=as_coordinator)
    assert one.status_code == 200 and one.get_json()["member_id"] == w.member_a_id
    assert api.get(f"/api/v1/exit/members/{w.member_a_id}", headers=as_b).status_code == 404
    assert api.get("/api/v1/exit", headers=as_b).status_code == 404  # B has not left
    rival = bearer(session, w.other_owner)
    assert api.get(f"/api/v1/exit/members/{w.member_a_id}", headers=rival).status_code == 404
