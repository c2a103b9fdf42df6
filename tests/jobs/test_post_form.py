"""The posting form asks for a bid deadline only for a bid window: the field sits in the
mode's fieldset, hidden while "hand-off" is chosen, and the server ignores it for a
hand-off whatever it holds."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.jobs.models import JobMode, OverflowJob
from tests.conftest import World, login
from tests.jobs.conftest import ADDRESS, CUSTOMER_NAME, SITE


def _form(**changes: str) -> dict[str, Any]:
    start = (utcnow() + timedelta(days=5)).date().isoformat()
    return {"title": "Mow the Annex", "description": "", "trades": ["mowing"],
            "locality": "Annex, Toronto", "site_lat": str(SITE[0]), "site_lng": str(SITE[1]),
            "address": ADDRESS, "customer_name": CUSTOMER_NAME, "customer_contact": "",
            "crew_days": "3", "starts_on": start, "ends_on": start, "value": "1234.50",
            "mode": "handoff", **changes}


def test_the_deadline_field_belongs_to_the_bid_window_choice(client: FlaskClient,
                                                             jobs_world: World) -> None:
    login(client, jobs_world.owner_a)
    page = client.get("/jobs/new").get_data(as_text=True)
    fieldset = re.search(r'<fieldset class="mode-choice">(.*?)</fieldset>', page, re.S)
    assert fieldset is not None
    assert 'class="bid-only"' in fieldset.group(1) and 'name="closes_at"' in fieldset.group(1)
    assert page.count('name="closes_at"') == 1


def test_a_hand_off_ignores_whatever_the_deadline_field_holds(
        client: FlaskClient, session: Session, jobs_world: World) -> None:
    login(client, jobs_world.owner_a)
    for stale in ("not a time", (utcnow() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")):
        response = client.post("/jobs/new", data=_form(closes_at=stale))
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    session.commit()
    jobs = list(session.exec(select(OverflowJob)))
    assert [(j.mode, j.closes_at) for j in jobs] == [(JobMode.HANDOFF, None)] * 2


def test_a_bid_window_still_needs_its_deadline(client: FlaskClient, session: Session,
                                               jobs_world: World) -> None:
    login(client, jobs_world.owner_a)
    response = client.post("/jobs/new", data=_form(mode="bid_window", closes_at=""))
    assert response.status_code == 422
    assert "Choose when the bid window closes." in response.get_data(as_text=True)
    session.commit()
    assert session.exec(select(OverflowJob)).first() is None
