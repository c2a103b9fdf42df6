"""The job form and the member profile take a place as text (or the phone's position)
and never show a coordinate; GET /places suggests towns."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters.models import Member
from marketplace.db import utcnow
from marketplace.jobs.models import OverflowJob
from tests.conftest import World, login
from tests.jobs.conftest import jobs_world  # noqa: F401 - the fixture
from tests.places.nominatim_fake import FakeNominatim, nominatim

OTTAWA = (45.41117, -75.69812)


def job_form(**changes: str) -> dict[str, Any]:
    start = (utcnow() + timedelta(days=5)).date().isoformat()
    return {"title": "Mow the Glebe", "description": "", "trades": ["mowing"],
            "locality": "", "address": "Ottawa", "site_lat": "", "site_lng": "",
            "site_resolved": "", "customer_name": "Quinn", "customer_contact": "",
            "crew_days": "3", "starts_on": start, "ends_on": start, "value": "1234.50",
            "mode": "handoff", **changes}


def posted_jobs(session: Session) -> list[OverflowJob]:
    session.commit()
    return list(session.exec(select(OverflowJob)))


def test_the_job_form_asks_for_a_place_not_coordinates(client: FlaskClient,
                                                       jobs_world: World) -> None:  # noqa: F811
    login(client, jobs_world.owner_a)
    page = client.get("/jobs/new").get_data(as_text=True)
    assert "Address or town" in page and "I'm at the site</button>" in page
    assert "atitude" not in page and "ongitude" not in page
    for name in ("site_lat", "site_lng", "site_resolved"):
        assert re.search(rf'<input[^>]*name="{name}"[^>]*type="hidden"|'
                         rf'<input[^>]*type="hidden"[^>]*name="{name}"', page), name
    assert "js/places.js" in page


def test_a_job_posted_by_typing_a_town_lands_on_the_town(
        client: FlaskClient, session: Session, jobs_world: World) -> None:  # noqa: F811
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(address="ottawa"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    [job] = posted_jobs(session)
    assert (job.site_lat, job.site_lng) == OTTAWA
    assert job.locality == "Ottawa" and job.address == "ottawa"


def test_an_unknown_place_is_refused_and_nothing_is_written(
        client: FlaskClient, session: Session, jobs_world: World) -> None:  # noqa: F811
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(address="Xqzzy Corners"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert ("We could not find &#39;Xqzzy Corners&#39;. Type a town and its province, or use "
            "&#39;I&#39;m at the site&#39;.") in html
    assert posted_jobs(session) == []


def test_hidden_coordinates_from_the_phone_are_the_site(
        client: FlaskClient, session: Session, jobs_world: World) -> None:  # noqa: F811
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(
        address="", site_lat="45.3500", site_lng="-75.7600", site_resolved="device"))
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    [job] = posted_jobs(session)
    assert (job.site_lat, job.site_lng) == (45.35, -75.76)
    assert job.address == "45.35000, -75.76000" and job.locality  # the nearest town


@pytest.mark.parametrize(("lat", "lng"), [("95", "-75"), ("45", "190"), ("inf", "0")])
def test_hidden_coordinates_off_the_globe_are_refused(
        client: FlaskClient, session: Session, jobs_world: World,  # noqa: F811
        lat: str, lng: str) -> None:
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(site_lat=lat, site_lng=lng,
                                                      site_resolved="device"))
    assert response.status_code == 422
    assert "The position is not on Earth" in response.get_data(as_text=True)
    assert posted_jobs(session) == []


def test_text_typed_after_a_pick_is_looked_up_again(
        client: FlaskClient, session: Session, jobs_world: World) -> None:  # noqa: F811
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(
        address="Gatineau", site_lat=str(OTTAWA[0]), site_lng=str(OTTAWA[1]),
        site_resolved="Ottawa, ON, Canada"))
    assert response.status_code == 302
    [job] = posted_jobs(session)
    assert job.locality == "Gatineau" and job.site_lat != OTTAWA[0]


@pytest.fixture
def geocoder(app: Flask) -> Iterator[FakeNominatim]:
    with nominatim() as fake:
        fake.known["111 wellington st, ottawa"] = (
            45.42366, -75.70077, "111, Wellington Street, Ottawa",
            {"house_number": "111", "road": "Wellington Street", "city": "Ottawa"})
        app.config["GEOCODER_URL"] = fake.url
        yield fake


def test_a_typed_street_address_keeps_its_point_through_the_geocoder(
        client: FlaskClient, session: Session, jobs_world: World,  # noqa: F811
        geocoder: FakeNominatim) -> None:
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=job_form(address="111 Wellington St, Ottawa"))
    assert response.status_code == 302
    [job] = posted_jobs(session)
    assert (job.site_lat, job.site_lng, job.locality) == (45.42366, -75.70077, "Ottawa")
    assert len(geocoder.requests) == 1


def test_suggestions_are_json_for_members_only(client: FlaskClient, world: World) -> None:
    assert client.get("/places?q=mont").status_code == 302  # to the login page
    login(client, world.owner_a)
    places = client.get("/places?q=montreal").get_json()["places"]
    assert places[0] == {"label": "Montréal, QC, Canada", "lat": 45.50884, "lng": -73.58781,
                         "town": "Montréal", "precision": "town"}
    assert client.get("/places?q=" + "x" * 300).get_json() == {"places": []}


def test_the_base_location_is_typed_and_kept_until_changed(
        client: FlaskClient, session: Session, world: World) -> None:
    login(client, world.owner_a)
    edit = f"/members/{world.member_a_id}/edit"
    page = client.get(edit).get_data(as_text=True)
    assert "Address or town" in page and "atitude" not in page
    base = {"name": "Alpha Lawns", "trades": ["mowing"], "service_radius": "30"}
    assert client.post(edit, data={**base, "base_place": "Kingston, ON",
                                   "base_lat": "", "base_lng": "",
                                   "base_resolved": ""}).status_code == 302
    session.expire_all()
    member = session.get(Member, world.member_a_id)
    assert member is not None and round(member.base_lat or 0, 1) == 44.2
    # The page shows the town, and sends the exact point back unchanged.
    session.commit()
    form = client.get(edit).get_data(as_text=True)
    assert re.search(r'name="base_place"[^>]*value="Kingston"|value="Kingston"[^>]*'
                     r'name="base_place"', form)
    assert "-76." not in client.get(f"/members/{world.member_a_id}").get_data(as_text=True)
    assert client.post(edit, data={**base, "base_place": "Kingston",
                                   "base_lat": "44.25", "base_lng": "-76.51",
                                   "base_resolved": "Kingston"}).status_code == 302
    session.expire_all()
    member = session.get(Member, world.member_a_id)
    assert member is not None and (member.base_lat, member.base_lng) == (44.25, -76.51)
    session.commit()  # end the read: the app writes next (SQLite has one writer)
    # Emptying the field clears the base.
    assert client.post(edit, data={**base, "base_place": "", "base_lat": "44.25",
                                   "base_lng": "-76.51",
                                   "base_resolved": "Kingston"}).status_code == 302
    session.expire_all()
    member = session.get(Member, world.member_a_id)
    assert member is not None and member.base_lat is None


def test_an_unknown_base_is_refused_and_nothing_changes(
        client: FlaskClient, session: Session, world: World) -> None:
    login(client, world.owner_a)
    response = client.post(f"/members/{world.member_a_id}/edit", data={
        "name": "Renamed", "trades": ["mowing"], "base_place": "Xqzzy Corners"})
    assert response.status_code == 422
    assert "We could not find &#39;Xqzzy Corners&#39;" in response.get_data(as_text=True)
    session.expire_all()
    member = session.get(Member, world.member_a_id)
    assert member is not None and member.name == "Alpha Lawns" and member.base_lat is None
