"""Every page of the foundation, as each role and as an outsider sees it."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.clusters.models import Member, User
from tests.conftest import PASSWORD, SECRET, World, login, sent_mails

PAGES = ["/", "/members", "/agreement", "/agreement/v/1", "/account"]
COORDINATOR_PAGES = ["/invites", "/agreement/edit", "/cluster/settings"]
#: What the coordinator opens: the agreement is signed, so a change is a proposal.
COORDINATOR_OPENS = ["/invites", "/agreement/proposals/new", "/cluster/settings"]


def _member_pages(member_id: int) -> list[str]:
    return [f"/members/{member_id}"]


def test_anonymous_is_sent_to_login(client: FlaskClient, world: World) -> None:
    for path in [*PAGES, *COORDINATOR_PAGES, *_member_pages(world.member_a_id),
                 f"/members/{world.member_a_id}/edit"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path


@pytest.mark.parametrize("role", ["coordinator", "owner_a", "crew_a"])
def test_every_page_renders_for_each_role(client: FlaskClient, world: World, role: str) -> None:
    user: User = getattr(world, role)
    login(client, user)
    pages = [*PAGES, *_member_pages(world.member_a_id), *_member_pages(world.member_b_id)]
    if role == "coordinator":
        pages += COORDINATOR_OPENS
    if role in ("coordinator", "owner_a"):
        pages.append(f"/members/{world.member_a_id}/edit")
    for path in pages:
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, (path, html[:500])
        assert re.search(r'<html lang="[a-z]{2}', html), path


@pytest.mark.parametrize("path", COORDINATOR_PAGES)
def test_coordinator_pages_refuse_members(client: FlaskClient, world: World, path: str) -> None:
    login(client, world.owner_a)
    response = client.get(path)
    assert response.status_code == 403
    assert "Only the cluster coordinator can do this." in response.get_data(as_text=True)


def test_crew_cannot_edit_the_business(client: FlaskClient, world: World) -> None:
    login(client, world.crew_a)
    assert client.get(f"/members/{world.member_a_id}/edit").status_code == 403
    refused = client.post(f"/members/{world.member_a_id}/edit", data={"name": "Hijacked"})
    assert refused.status_code == 403


def test_other_cluster_urls_are_not_found(client: FlaskClient, session: Session,
                                          world: World) -> None:
    rival_member_id = world.other_owner.member_id
    login(client, world.owner_a)
    for method, path, data in [
        ("get", f"/members/{rival_member_id}", None),
        ("get", f"/members/{rival_member_id}/edit", None),
        ("post", f"/members/{rival_member_id}/edit", {"name": "Took over"}),
        ("post", f"/members/{rival_member_id}/people", {"email": "x@y.test", "role": "crew"}),
        ("post", f"/members/{rival_member_id}/exit", {"confirm": "y"}),
    ]:
        response = getattr(client, method)(path, data=data)
        assert response.status_code == 404, path
    rival = session.get(Member, rival_member_id)
    assert rival is not None and rival.name == "Rival Yard" and rival.exit_noticed_at is None


def test_profile_bad_input_changes_nothing(client: FlaskClient, session: Session,
                                           world: World) -> None:
    login(client, world.owner_a)
    response = client.post(f"/members/{world.member_a_id}/edit", data={
        "name": "Alpha Lawns", "trades": ["mowing", "laser_surgery"], "base_lat": "200",
        "base_lng": "-75", "service_radius": "30",
    })
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Latitude must be between -90 and 90." in html
    assert "Choose trades from the list." in html
    session.expire_all()
    member = session.get(Member, world.member_a_id)
    assert member is not None and member.base_lat is None


def test_profile_saves_trades_and_area(client: FlaskClient, session: Session,
                                       world: World) -> None:
    login(client, world.owner_a)
    response = client.post(f"/members/{world.member_a_id}/edit", data={
        "name": "Alpha Lawns & Trees", "trades": ["mowing", "tree_work"], "base_lat": "45.42",
        "base_lng": "-75.69", "service_radius": "30", "insurance_expires_on": "2027-05-01",
    })
    assert response.status_code == 302
    page = client.get(f"/members/{world.member_a_id}").get_data(as_text=True)
    assert "Alpha Lawns &amp; Trees" in page and "Tree work" in page and "30 km" in page


def test_garbage_form_values_are_422_not_500(client: FlaskClient, world: World) -> None:
    login(client, world.other_coordinator)  # a charter no member has signed yet
    response = client.post("/agreement/edit", data={
        "purpose": "x", "referral_fee_percent": "lots", "platform_fee_percent": "-3",
        "sunset_on": "31/31/2020", "exit_notice_days": "soon", "information_rules": "y",
    })
    assert response.status_code == 422
    login(client, world.coordinator)
    edit = client.post(f"/members/{world.member_a_id}/edit", data={"base_lat": "north"})
    assert edit.status_code == 422


def test_agreement_publish_through_the_form(client: FlaskClient, world: World) -> None:
    login(client, world.other_coordinator)  # a charter no member has signed yet
    response = client.post("/agreement/edit", data={
        "purpose": "Share overflow work fairly, again.", "scope_overflow_jobs": "y",
        "referral_fee_percent": "2.5", "platform_fee_percent": "1", "sunset_on": "2030-01-01",
        "exit_notice_days": "60", "information_rules": "No prices across the barrier.",
    })
    assert response.status_code == 302
    page = client.get("/agreement").get_data(as_text=True)
    assert "Version 2" in page and "2.5 %" in page


def test_wrong_password_says_what_to_do(client: FlaskClient, world: World) -> None:
    response = client.post("/login", data={"email": world.owner_a.email, "password": "nope"})
    assert response.status_code == 401
    assert "reset your password" in response.get_data(as_text=True)


def test_logout_ends_the_session(client: FlaskClient, world: World) -> None:
    login(client, world.owner_a)
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_password_reset_link_works_once(app: Flask, client: FlaskClient, world: World,
                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        client.post("/password/forgot", data={"email": world.owner_b.email})
        [mail] = sent_mails(app)
    assert mail["To"] == world.owner_b.email
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://localhost(/password/reset/\S+)", body)
    assert match, body
    assert match.group(1) not in caplog.text  # the link is in the mail, never in the log
    assert PASSWORD not in caplog.text and SECRET not in caplog.text
    link = match.group(1)
    assert client.post(link, data={"password": "a brand new password"}).status_code == 302
    again = client.post(link, data={"password": "yet another password"})
    assert again.status_code == 410
    ok = client.post("/login", data={"email": world.owner_b.email,
                                     "password": "a brand new password"})
    assert ok.status_code == 302


def test_unknown_email_gets_the_same_answer(client: FlaskClient, world: World) -> None:
    response = client.post("/password/forgot", data={"email": "nobody@nowhere.test"})
    assert response.status_code == 302


def test_start_a_cluster(client: FlaskClient) -> None:
    response = client.post("/start", data={
        "cluster_name": "Lakeshore Trades", "currency": "EUR", "default_locale": "de_DE",
        "timezone": "Europe/Berlin", "unit_system": "metric", "name": "Greta",
        "email": "greta@lakeshore.test", "password": PASSWORD,
    })
    assert response.status_code == 302 and response.headers["Location"].endswith(
        "/agreement/edit")
    bad = FlaskClient(client.application, use_cookies=True).post("/start", data={
        "cluster_name": "X", "currency": "EUR", "default_locale": "de_DE",
        "timezone": "Mars/Olympus", "unit_system": "metric", "name": "G",
        "email": "greta@lakeshore.test", "password": PASSWORD,
    })
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "Choose a time zone from the list" in html
    assert "An account with this e-mail address exists already" in html


def test_open_redirect_is_refused(client: FlaskClient, world: World) -> None:
    response = client.post("/login?next=https://evil.example/",
                           data={"email": world.owner_a.email, "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_language_switch_persists_for_the_user(client: FlaskClient, session: Session,
                                               world: World) -> None:
    login(client, world.owner_a)
    client.get("/lang/fr?next=/")
    session.expire_all()
    user = session.get(User, world.owner_a.id)
    assert user is not None and user.locale == "fr"
    session.commit()  # end the read so the app can write (SQLite has one writer)
    # French in this Canadian cluster: Canadian French (i18n.regional).
    assert '<html lang="fr-CA"' in client.get("/").get_data(as_text=True)


def test_unknown_page_is_a_styled_404(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "We could not find that page" in response.get_data(as_text=True)


def test_json_clients_get_json_errors(client: FlaskClient, world: World) -> None:
    login(client, world.owner_a)
    response = client.get("/invites", headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "coordinator_only"


def test_csrf_is_enforced(app, world: World) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    response = client.post("/login", data={"email": world.owner_a.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Your form expired" in response.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token, page
    ok = client.post("/login", data={"email": world.owner_a.email, "password": PASSWORD,
                                     "csrf_token": token.group(1)})
    assert ok.status_code == 302


def test_session_cookie_flags(app, world: World) -> None:
    app.config.update(SESSION_COOKIE_SECURE=True)
    client = app.test_client()
    response = client.post("/login", data={"email": world.owner_a.email, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
