"""A booking tap costs what booking needs, also when the slot was taken.

In the morning rush most taps on a popular machine are refused (409: someone
else got the slot).  Such a refusal used to load the person again after its
rollback only to word the refusal in their language, and every JSON POST read
the page's notification cursor although no page is drawn: two statements of
about fifteen, on SQLite inside the one write lock every booking waits for.
Then it read the person's cluster apart from the person, the machine twice, and
the blackouts and holding bookings in two statements; on PostgreSQL it queued
for the machine's row lock behind every other tap only to be refused.
"""

from __future__ import annotations

import re
import threading

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
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


def _taken_slot(app: Flask, client: FlaskClient, session: Session, world: World) -> str:
    """A machine with 09:00-11:00 tomorrow booked by B (logged in); its booking URL."""
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    login(client, world.owner_b)
    url = f"/equipment/{machine.id}/book"
    first = client.post(url, headers={"Accept": "application/json"}, data={
        "starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)})
    assert first.status_code == 201, first.get_json()
    return url


def test_a_refused_tap_reads_each_thing_once(app: Flask, client: FlaskClient,
                                             session: Session, world: World) -> None:
    url = _taken_slot(app, client, session, world)
    with recorded(app.extensions["engine"]) as seen:
        taken = client.post(url, headers={"Accept": "application/json"}, data={
            "starts_at": _tomorrow_local(10), "ends_at": _tomorrow_local(12)})
    assert taken.status_code == 409
    reads = [s for s in seen if s.lstrip().startswith(("SELECT", "("))]
    # The person with its cluster, business, the agreement in force and the business's
    # acceptance of it; the machine; the weekly hours with what is in the way: no row
    # twice (on PostgreSQL each read is a round trip the tap waits for).
    assert len(reads) <= 3, reads
    assert not [s for s in reads if re.match(r"\s*SELECT agreement\.", s)], \
        "the participation gate is answered from the person's read"
    assert not [s for s in reads if re.match(r'\s*SELECT cluster\.', s)], \
        "the person's cluster is read with the person"
    assert sum(bool(re.search(r"FROM equipment\s", s)) for s in reads) == 1


def test_a_taken_slot_is_refused_while_a_booking_holds_the_machines_lock(
        app: Flask, client: FlaskClient, session: Session, world: World,
        database_url: str) -> None:
    """On PostgreSQL a booking that looks free waits for the machine's row lock; a tap
    on a slot already taken must not wait behind it (the morning rush is mostly such
    taps, and each used to queue for the lock only to be refused)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks exist on PostgreSQL; SQLite's writer holds the database")
    url = _taken_slot(app, client, session, world)
    equipment_id = int(url.split("/")[2])
    locker = create_engine(database_url)
    answer: dict[str, object] = {}

    def tap() -> None:
        taken = client.post(url, headers={"Accept": "application/json"}, data={
            "starts_at": _tomorrow_local(10), "ends_at": _tomorrow_local(12)})
        answer["status"] = taken.status_code

    try:
        with locker.connect() as conn:
            conn.execute(text("SELECT id FROM equipment WHERE id = :id FOR UPDATE"),
                         {"id": equipment_id})
            tapping = threading.Thread(target=tap)
            tapping.start()
            tapping.join(timeout=5)
            still_waiting = tapping.is_alive()
            conn.rollback()
        tapping.join(timeout=10)
    finally:
        locker.dispose()
    assert not still_waiting, "the refused tap waited for the machine's lock"
    assert answer["status"] == 409


def test_the_gate_read_with_the_person_refuses_until_the_business_accepts(
        app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    """The participation gate answers from the person's read: a version published since
    the last tap is seen on the next one, and so is the owner's acceptance of it."""
    from marketplace.clusters import agreements
    from tests.conftest import NOW, terms

    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    login(client, world.owner_b)
    url = f"/equipment/{machine.id}/book"
    json = {"Accept": "application/json"}
    slot = {"starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)}
    agreements.publish_agreement(session, world.coordinator, terms(referral_fee_bp=700), NOW)
    refused = client.post(url, headers=json, data=slot)
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "agreement_not_accepted"
    agreements.accept_agreement(session, world.owner_b, 2, NOW)
    booked = client.post(url, headers=json, data=slot)
    assert booked.status_code == 201, booked.get_json()


def test_a_page_reads_the_person_without_the_gates_facts(
        app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    """Only a request that acts pays for the gate's facts in its read of the person; a
    page that shows the gate asks it itself."""
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), utcnow())
    login(client, world.owner_b)
    with recorded(app.extensions["engine"]) as seen:
        assert client.get(f"/equipment/{machine.id}").status_code == 200
    person_reads = [s for s in seen if re.search(r'FROM "?user"?\s', s)]
    assert len(person_reads) == 1 and "agreement" not in person_reads[0], person_reads
