"""A booking tap costs what booking needs, also when the slot was taken.

In the morning rush most taps on a popular machine are refused (409: someone
else got the slot).  Such a refusal used to load the person again after its
rollback only to word the refusal in their language, and every JSON POST read
the page's notification cursor although no page is drawn: two statements of
about fifteen, on SQLite inside the one write lock every booking waits for.
"""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.clusters.service import update_preferences
from marketplace.db import utcnow
from marketplace.equipment import listings
from tests.conftest import World, login
from tests.equipment.conftest import anytime_draft
from tests.equipment.test_equipment_pages import _tomorrow_local
from tests.statements import recorded


def test_a_taken_slot_is_refused_in_the_bookers_language_without_loading_them_twice(
        app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    update_preferences(session, world.owner_b, "fr", None, None)
    login(client, world.owner_b)
    url = f"/equipment/{machine.id}/book"
    json = {"Accept": "application/json"}
    first = client.post(url, headers=json, data={
        "starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)})
    assert first.status_code == 201, first.get_json()
    with recorded(app.extensions["engine"]) as seen:
        taken = client.post(url, headers=json, data={
            "starts_at": _tomorrow_local(10), "ends_at": _tomorrow_local(12)})
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "slot_taken"
    assert taken.get_json()["error"]["message"].startswith("La machine est déjà réservée")
    person_reads = [s for s in seen if s.lstrip().startswith("SELECT")
                    and re.search(r'FROM "?user"?\s', s)]  # PostgreSQL quotes the name
    assert len(person_reads) == 1, person_reads
    assert not any("notificationsequence" in s for s in seen)
