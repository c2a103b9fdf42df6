"""The exit's pages, and what a business that left keeps: its statements, nothing else.

The former member's people are checked against every route of the authorization
matrix (tests/test_authorization_matrix.py): each answers 403 unless it is one of the
few a former member keeps (its statements, its exit's outcome, its own account) or is
public anyway; and over the API with a token of theirs."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.api import tokens
from marketplace.clusters.exit import service as exits
from marketplace.clusters.exit.access import _ANYONE, _ANYONE_PREFIXES, former_member_may
from marketplace.db import utcnow
from marketplace.equipment.models import Equipment
from tests.conftest import World, login
from tests.exit.conftest import AFTER, ExitWorld, leave
from tests.matrix_world import build_world, url_of
from tests.test_authorization_matrix import MATRIX


def test_every_route_but_statements_refuses_a_former_member(
        app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    built = build_world(session, world, Path(app.config["UPLOAD_DIR"]))
    former = built.users["former_member"]
    assert former is not None
    login(client, former)
    kept = []
    for (endpoint, method), (target, *_cells) in MATRIX.items():
        if endpoint in _ANYONE or endpoint.startswith(_ANYONE_PREFIXES):
            continue
        url = url_of(app, endpoint, target, built.ids)
        response = client.open(url, method=method, data={})
        if endpoint == "clusters.home":
            assert response.status_code == 302 and response.location.endswith("/exit")
        elif former_member_may(endpoint, method):
            kept.append(endpoint)
            assert response.status_code != 403, (endpoint, method)
        else:
            assert response.status_code == 403, (endpoint, method, response.status_code)
            assert "left the cluster" in response.get_data(as_text=True)
    assert {"ledger.index", "ledger.month_page", "ledger.statement_csv",
            "clusters.exit.outcome", "clusters.account"} <= set(kept)
    # Its own exit and statements answer.
    assert client.get("/exit").status_code == 200
    assert client.get("/ledger").status_code == 200


def test_a_former_members_token_reads_only_statements(
        app: Flask, session: Session, world: World) -> None:
    built = build_world(session, world, Path(app.config["UPLOAD_DIR"]))
    former = built.users["former_member"]
    assert former is not None
    secret = tokens.create_token(session, former, "script", utcnow()).secret
    headers = {"Authorization": f"Bearer {secret}"}
    api = app.test_client()
    for path in ("/api/v1/jobs", "/api/v1/equipment", "/api/v1/members",
                 "/api/v1/notifications", "/api/v1/agreement", "/api/v1/cluster"):
        response = api.get(path, headers=headers)
        assert response.status_code == 403, path
        assert response.get_json()["error"]["code"] == "former_member"
    assert api.post("/api/v1/jobs", headers=headers, json={}).status_code == 403
    for path in ("/api/v1/me", "/api/v1/ledger/months", "/api/v1/exit",
                 f"/api/v1/ledger/{built.ids['month']}/statement"):
        assert api.get(path, headers=headers).status_code == 200, path
    assert api.get("/api/v1/exit", headers=headers).get_json()["reason"] == "notice"


def test_the_leaver_sees_what_its_exit_did(app: Flask, client: FlaskClient,
                                           session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    login(client, w.owner_a)
    page = client.get("/exit")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Shared dump trailer" in text and "Beta Stone" in text
    assert "6,000.01" in text  # 60 % of the agreed 10 000.01
    assert "Kubota KX040 excavator" in text  # withdrawn
    # Its menu offers what it keeps (money, the exit), not the cluster's places.
    assert 'href="/ledger"' in text and 'href="/jobs"' not in text
    assert 'href="/members"' not in text and 'href="/notifications"' not in text
    assert client.get("/").location.endswith("/exit")
    assert client.get("/jobs").status_code == 403
    assert client.get("/members").status_code == 403
    assert client.get(f"/equipment/{exit_world.trailer.id}").status_code == 403
    statement = client.get("/ledger/2026-07")
    assert statement.status_code == 200
    assert "Machine share bought out at exit" in statement.get_data(as_text=True)
    assert client.get("/ledger/2026-07/statement.csv").status_code == 200
    # The crew of the business keeps the same, and no more.
    client.post("/logout")
    login(client, w.crew_a)
    assert client.get("/exit").status_code == 200
    assert client.get("/equipment").status_code == 403


def test_the_coordinator_sees_every_exit_and_others_none(
        app: Flask, client: FlaskClient, session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    leave(session, w)
    exits.take_due_exits(session, AFTER)
    login(client, w.coordinator)
    listing = client.get("/exits")
    assert listing.status_code == 200 and "Alpha Lawns" in listing.get_data(as_text=True)
    members = client.get("/members").get_data(as_text=True)
    assert f"/exit/members/{w.member_a_id}" in members and 'href="/exits"' in members
    one = client.get(f"/exit/members/{w.member_a_id}")
    assert one.status_code == 200 and "600,001" not in one.get_data(as_text=True)
    assert "6,000.01" in one.get_data(as_text=True)
    client.post("/logout")
    login(client, w.owner_b)
    assert client.get(f"/exit/members/{w.member_a_id}").status_code == 404
    assert client.get("/exits").status_code == 404
    login(client, w.other_owner)
    assert client.get(f"/exit/members/{w.member_a_id}").status_code == 404


def test_owners_set_the_agreed_value_on_the_machine_page(
        app: Flask, client: FlaskClient, session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    login(client, w.owner_b)
    page = client.get(f"/equipment/{exit_world.trailer.id}")
    assert 'name="agreed_value"' in page.get_data(as_text=True)
    done = client.post(f"/equipment/{exit_world.trailer.id}/agreed-value",
                       data={"agreed_value": "12,345.67"})
    assert done.status_code == 302
    session.expire_all()
    machine = session.get(Equipment, exit_world.trailer.id)
    assert machine is not None and machine.agreed_value_minor == 1_234_567
    refused = client.post(f"/equipment/{exit_world.trailer.id}/agreed-value",
                          data={"agreed_value": "lots"})
    assert refused.status_code == 422
    session.expire_all()
    assert session.get(Equipment, exit_world.trailer.id).agreed_value_minor == 1_234_567  # type: ignore[union-attr]
    # A machine owned alone has no agreed value to set.
    login(client, w.owner_a)
    assert "agreed_value" not in client.get(
        f"/equipment/{exit_world.excavator.id}").get_data(as_text=True)
    assert client.post(f"/equipment/{exit_world.excavator.id}/agreed-value",
                       data={"agreed_value": "5"}).status_code == 409


def test_before_the_scheduler_runs_the_leaver_is_told_it_is_being_settled(
        client: FlaskClient, session: Session, exit_world: ExitWorld) -> None:
    w = exit_world.world
    leave(session, w)  # its date (in July 2026) has passed by the real clock
    login(client, w.owner_a)
    page = client.get("/exit")
    assert page.status_code == 200 and "being settled now" in page.get_data(as_text=True)
    assert client.get("/jobs").status_code == 403
