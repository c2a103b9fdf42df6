"""Values at the edges of what Python and the database can hold, each of which once gave
a 500: a refusal that says what to fix is the only acceptable answer."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.equipment.models import Equipment
from tests.api.conftest import bearer
from tests.conftest import World, login
from tests.equipment.conftest import Equip, draft
from tests.matrix_world import table_digest


@pytest.mark.parametrize("query", ["member=%C2%B2", "member=99999999999999",
                                   "first=0999-01", "first=9999-12&last=9999-12"])
def test_dashboard_filters_at_the_edges_are_refused(client: FlaskClient, world: World,
                                                    query: str) -> None:
    login(client, world.coordinator)
    response = client.get(f"/dashboard?{query}")
    assert response.status_code == 422


@pytest.mark.parametrize("month", ["0999-01", "0001-01", "10000-01"])
def test_a_month_outside_the_ledger_is_refused(client: FlaskClient, world: World,
                                               month: str) -> None:
    login(client, world.owner_a)
    assert client.get(f"/ledger/{month}").status_code in (404, 422)
    assert client.get(f"/api/v1/ledger/{month}/statement",
                      headers={"Accept": "application/json"}).status_code in (404, 422)


@pytest.mark.parametrize("week", ["9999-12-31", "0001-01-01"])
def test_a_week_far_away_still_shows(client: FlaskClient, world: World, machine: Equipment,
                                     week: str) -> None:
    login(client, world.owner_b)
    assert client.get(f"/equipment/{machine.id}?week={week}").status_code == 200
    assert client.get(f"/api/v1/equipment/{machine.id}?week={week}").status_code == 422


def test_a_booking_at_the_end_of_time_is_a_422(client: FlaskClient, session: Session,
                                               world: World, machine: Equipment) -> None:
    headers = bearer(session, world.owner_b)
    before = table_digest(session)
    response = client.post(f"/api/v1/equipment/{machine.id}/bookings", headers=headers,
                           json={"starts_at": "9999-12-31T22:00:00-05:00",
                                 "ends_at": "9999-12-31T23:00:00-05:00"})
    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"starts_at", "ends_at"}
    session.rollback()
    after = table_digest(session)
    assert {k: v for k, v in after.items() if k != "apitoken"} == \
        {k: v for k, v in before.items() if k != "apitoken"}


def test_percentages_too_large_for_decimal_are_refused(client: FlaskClient, world: World,
                                                      eq: Equip) -> None:
    login(client, world.owner_a)
    listing = draft()
    form = {"name": listing.name, "kind": listing.kind, "locality": listing.locality,
            "base_lat": "43.7", "base_lng": "-79.4", "hour_rate": "40", "day_rate": "250",
            "min_minutes": "60", "max_minutes": "600", "buffer_minutes": "0",
            "granularity_minutes": "30", "timezone": "America/Toronto",
            "cancel_cutoff_hours": "24", "cancel_fee": "1e999999"}
    response = client.post("/equipment/new", data=form)
    assert response.status_code == 422
    assert "percentage" in response.get_data(as_text=True)


def test_thousands_of_nested_brackets_are_a_400(client: FlaskClient, session: Session,
                                                world: World) -> None:
    response = client.post("/api/v1/jobs", headers={**bearer(session, world.owner_a),
                                                    "Content-Type": "application/json"},
                           data="[" * 50_000 + "]" * 50_000)
    assert response.status_code in (400, 422)


def test_a_token_sent_with_a_session_cookie_must_be_that_persons(
        client: FlaskClient, session: Session, world: World) -> None:
    login(client, world.owner_a)
    assert client.get("/api/v1/me", headers=bearer(session, world.owner_a)).status_code == 200
    assert client.get("/api/v1/me", headers=bearer(session, world.owner_b)).status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer cm_nope"}
                      ).status_code == 401


def test_a_token_opens_no_page(client: FlaskClient, session: Session, world: World) -> None:
    """Tokens are for /api/ only: a stolen token does not open the HTML app."""
    response = client.get("/jobs", headers=bearer(session, world.owner_a))
    assert response.status_code == 302 and "/login" in response.headers["Location"]



@pytest.mark.parametrize("percent", ["sNaN", "NaN", "Infinity", "1e999999"])
def test_an_agreement_fee_that_is_no_number_is_refused(client: FlaskClient, world: World,
                                                       percent: str) -> None:
    login(client, world.other_coordinator)  # a charter no member has signed yet
    response = client.post("/agreement/edit", data={
        "purpose": "Share overflow work fairly.", "scope_overflow_jobs": "y",
        "referral_fee_percent": percent, "platform_fee_percent": "1",
        "sunset_on": "2028-01-01", "exit_notice_days": "30", "information_rules": "None."})
    assert response.status_code == 422
