"""The JSON API as a script would use it: a personal token, the same rules as the pages,
the same barrier, refusals that say what to fix and change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.api import tokens
from marketplace.api.models import ApiToken
from marketplace.db import utcnow
from marketplace.jobs.models import OverflowJob
from tests.api.conftest import bearer
from tests.conftest import World, login
from tests.jobs.conftest import ADDRESS, CUSTOMER_NAME, SITE, count


def job_body(**changes: Any) -> dict[str, Any]:
    starts = (utcnow() + timedelta(days=10)).date()
    body = {"title": "Mow the Evergreen estate", "description": "Four acres, weekly.",
            "trades": ["mowing"], "site_lat": SITE[0], "site_lng": SITE[1],
            "locality": "Annex, Toronto", "address": ADDRESS, "customer_name": CUSTOMER_NAME,
            "customer_contact": "zelda@example.test", "crew_days": 6,
            "starts_on": starts.isoformat(),
            "ends_on": (starts + timedelta(days=10)).isoformat(),
            "value_minor": 1_234_570, "mode": "handoff"}
    body.update(changes)
    return body


@pytest.fixture
def api(client: FlaskClient) -> FlaskClient:
    return client


def test_no_credentials_is_a_401_that_says_what_to_send(api: FlaskClient) -> None:
    response = api.get("/api/v1/jobs")
    assert response.status_code == 401
    assert "API token" in response.get_json()["error"]["message"]


def test_a_mistyped_or_revoked_token_authenticates_nobody(
        api: FlaskClient, session: Session, jobs_world: World) -> None:
    headers = bearer(session, jobs_world.owner_b)
    assert api.get("/api/v1/me", headers=headers).get_json()["email"] == "b@beta.test"
    wrong = {"Authorization": headers["Authorization"][:-2] + "xx"}
    assert api.get("/api/v1/me", headers=wrong).status_code == 401
    token = session.exec(select(ApiToken)).one()
    tokens.revoke_token(session, jobs_world.owner_b, token.id, utcnow())  # type: ignore[arg-type]
    assert api.get("/api/v1/me", headers=headers).status_code == 401


def test_a_token_call_sets_no_session_cookie(api: FlaskClient, session: Session,
                                             jobs_world: World) -> None:
    response = api.get("/api/v1/me", headers=bearer(session, jobs_world.owner_a))
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_post_claim_and_barrier_through_the_api(api: FlaskClient, session: Session,
                                                jobs_world: World) -> None:
    poster, partner = bearer(session, jobs_world.owner_a), bearer(session, jobs_world.owner_b)
    rival = bearer(session, jobs_world.other_owner)
    posted = api.post("/api/v1/jobs", json=job_body(), headers=poster)
    assert posted.status_code == 201, posted.get_json()
    job_id = posted.get_json()["job"]["id"]
    assert posted.get_json()["job"]["address"] == ADDRESS  # the poster sees its customer

    board = api.get("/api/v1/jobs", headers=partner).get_json()["jobs"]
    card = next(j for j in board if j["id"] == job_id)
    assert "address" not in card and "customer_name" not in card
    assert round(card["approx_lat"], 3) == card["approx_lat"]  # a stored point, rounded
    assert ADDRESS not in api.get(f"/api/v1/jobs/{job_id}", headers=partner).get_data(
        as_text=True)

    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/claim"):
        method = api.get if path.endswith(str(job_id)) else api.post
        refused = method(path, headers=rival)
        assert refused.status_code == 404
        assert CUSTOMER_NAME not in refused.get_data(as_text=True)

    claimed = api.post(f"/api/v1/jobs/{job_id}/claim", headers=partner)
    assert claimed.status_code == 200
    assert claimed.get_json()["job"]["customer_name"] == CUSTOMER_NAME
    again = api.post(f"/api/v1/jobs/{job_id}/claim", headers=bearer(session,
                                                                      jobs_world.crew_a))
    assert again.status_code in (403, 409)


def test_bad_input_is_a_422_per_field_and_writes_nothing(
        api: FlaskClient, session: Session, jobs_world: World) -> None:
    headers = bearer(session, jobs_world.owner_a)
    cases = [
        job_body(site_lat=91),
        job_body(value_minor=-5),
        job_body(mode="auction"),
        job_body(starts_on="next tuesday"),
        job_body(colour="green"),
        job_body(value_minor=10**30),
        {k: v for k, v in job_body().items() if k != "title"},
    ]
    for body in cases:
        response = api.post("/api/v1/jobs", json=body, headers=headers)
        assert response.status_code == 422, body
        error = response.get_json()["error"]
        assert error["fields"], body
    assert api.post("/api/v1/jobs", data="not json", headers=headers).status_code == 422
    # The service's own rules answer in the same shape: a job that ends before it starts.
    late = api.post("/api/v1/jobs", headers=headers, json=job_body(
        ends_on=(utcnow() - timedelta(days=400)).date().isoformat()))
    assert late.status_code == 422 and "ends_on" in late.get_json()["error"]["fields"]
    assert count(session, OverflowJob) == 0


def test_errors_come_in_the_callers_language(api: FlaskClient, session: Session,
                                             jobs_world: World) -> None:
    headers = {**bearer(session, jobs_world.owner_a), "Accept-Language": "fr"}
    api.put("/api/v1/me/preferences", json={"locale": "fr"}, headers=headers)
    response = api.post("/api/v1/jobs", json=job_body(site_lat=91), headers=headers)
    assert response.get_json()["error"]["fields"]["site_lat"] != "This number is too large."


def test_huge_ids_are_404_not_500(api: FlaskClient, session: Session,
                                  jobs_world: World) -> None:
    headers = bearer(session, jobs_world.owner_a)
    assert api.get(f"/api/v1/jobs/{2**40}", headers=headers).status_code == 404
    assert api.get("/api/v1/jobs/2147483647", headers=headers).status_code == 404


def test_session_writes_need_the_csrf_header(database_url: str, tmp_path: Any,
                                             session: Session) -> None:
    from marketplace import create_app
    from tests.conftest import CHEAP_HASHING, SECRET, make_world

    app: Flask = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                             "RATELIMIT_ENABLED": False, "TESTING": True,
                             "UPLOAD_DIR": str(tmp_path), **CHEAP_HASHING})
    world = make_world(session)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    client.post("/login", data={"email": world.owner_a.email, "password":
                                "correct horse battery", "csrf_token": csrf})
    assert client.get("/api/v1/me").status_code == 200
    refused = client.put("/api/v1/me/preferences", json={"locale": "fr"})
    assert refused.status_code == 400
    accepted = client.put("/api/v1/me/preferences", json={"locale": "fr"},
                          headers={"X-CSRFToken": csrf})
    assert accepted.status_code == 200 and accepted.get_json()["locale"] == "fr"
    # A token needs no CSRF header: no browser attaches it on its own.
    headers = bearer(session, world.owner_b)
    fresh = app.test_client()
    assert fresh.put("/api/v1/me/preferences", json={"locale": "de"},
                     headers=headers).status_code == 200
    app.extensions["engine"].dispose()


def test_tokens_are_created_and_revoked_on_the_profile_page(
        client: FlaskClient, session: Session, world: World) -> None:
    login(client, world.owner_a)
    page = client.post("/account/tokens", data={"name": "Invoicing script"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    secret = html.split('data-testid="new-token">')[1].split("<")[0]
    assert secret.startswith("cm_")
    token = session.exec(select(ApiToken)).one()
    assert token.secret_hash != secret and secret not in token.secret_hash
    assert secret not in client.get("/account").get_data(as_text=True)  # shown once
    headers = {"Authorization": f"Bearer {secret}"}
    fresh = client.application.test_client()
    assert fresh.get("/api/v1/tokens", headers=headers).get_json()["tokens"][0]["name"] \
        == "Invoicing script"
    assert client.post("/account/tokens", data={"name": ""}).status_code == 422
    revoked = client.post(f"/account/tokens/{token.id}/revoke")
    assert revoked.status_code == 302
    assert fresh.get("/api/v1/me", headers=headers).status_code == 401
    # Someone else's token id looks missing.
    session.rollback()  # end the test's read snapshot before it writes (SQLite)
    other = tokens.create_token(session, world.owner_b, "b's", utcnow()).token
    assert client.post(f"/account/tokens/{other.id}/revoke").status_code == 404


def test_an_owner_invites_a_person_and_gets_the_link_to_send(
        api: FlaskClient, session: Session, jobs_world: World) -> None:
    member_id = jobs_world.member_a_id
    response = api.post(f"/api/v1/members/{member_id}/people", headers=bearer(
        session, jobs_world.owner_a), json={"email": "new.crew@alpha.test", "role": "crew"})
    assert response.status_code == 201, response.get_json()
    link = response.get_json()["link"]
    assert api.get(link.removeprefix("http://localhost")).status_code == 200  # the sign-up
    # B's owner cannot staff A's business.
    refused = api.post(f"/api/v1/members/{member_id}/people", headers=bearer(
        session, jobs_world.owner_b), json={"email": "x@beta.test", "role": "owner"})
    assert refused.status_code == 403


def test_the_calendar_feed_address_renews(api: FlaskClient, session: Session,
                                          jobs_world: World) -> None:
    headers = bearer(session, jobs_world.owner_b)
    first = api.get("/api/v1/calendar", headers=headers).get_json()["url"]
    assert api.get(first.removeprefix("http://localhost")).status_code == 200
    renewed = api.post("/api/v1/calendar/renew", headers=headers).get_json()["url"]
    assert renewed != first
    assert api.get(first.removeprefix("http://localhost")).status_code == 404
