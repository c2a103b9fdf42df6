"""The barrier's table covers machines, their owners, bookings and a machine's week.

A machine's listing (rates, rules) is every member's; how much each co-owner owns is
the co-owners' and the coordinator's; a booking -- who booked, its notes, damage fee
and cancellation -- is its booker's, its machine's owners' and the coordinator's.  A
rival sees only that a slot is taken.  (A booking's price is not protected: the rates
are public, so anyone can compute what a slot of that length costs; what must not
leak is *who* booked and what happened on the job.)

- Structural: the read-model builders produce exactly the fields `barrier.TABLE`
  lists for every audience, so a field added to a builder fails here until listed.
- End to end: each audience reads every output that carries machines or bookings
  (page JSON and HTML, the API with a token, the rotation page, its calendar feed);
  every machine, owner, booking and slot object it receives has only the fields its
  audience may receive, and no value it may not know appears anywhere it got.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace import barrier
from marketplace.barrier import (
    BOOKING,
    MACHINE,
    MACHINE_OWNER,
    SLOT,
    Audience,
    booking_audience,
)
from marketplace.clusters.models import Member, User
from marketplace.db import utcnow
from marketplace.equipment import booking, calendar, listings
from marketplace.equipment.models import Booking, Equipment
from marketplace.equipment.readmodels import booking_model, machine_model, owner_models
from tests.api.conftest import bearer
from tests.conftest import World, login
from tests.equipment.conftest import Equip, anytime_draft, co_draft

HOUR_RATE = 7_919  # 79.19 an hour
SHARES = (6_173, 3_827)  # A's and B's parts of the trailer: 61.73 % and 38.27 %
DAMAGE = 4_321  # 43.21
DAMAGE_NOTE = "Zyxwvut hydraulic hose split"
RETURN_NOTE = "Qwertzuiop returned muddy"


@dataclass
class Scene:
    eq: Equip
    grinder: Equipment  # A's own, booked by B
    trailer: Equipment  # co-owned by A and B
    booked: Booking

    @property
    def world(self) -> World:
        return self.eq.world


@pytest.fixture
def scene(session: Session, eq: Equip) -> Scene:
    world = eq.world
    grinder = listings.list_machine(session, world.owner_a,
                                    anytime_draft(hour_rate_minor=HOUR_RATE), utcnow())
    trailer = listings.record_co_owned(session, world.coordinator, co_draft(),
                                       {world.member_a_id: SHARES[0],
                                        world.member_b_id: SHARES[1]}, utcnow())
    starts = (datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
              + timedelta(days=1, hours=1))
    made = booking.book(session, world.owner_b, grinder.id, starts,  # type: ignore[arg-type]
                        starts + timedelta(hours=2), utcnow())
    during = starts + timedelta(minutes=5)
    booking.check_out(session, world.owner_b, made.id, 10.0, "", None, during)  # type: ignore[arg-type]
    booking.return_machine(session, world.owner_b, made.id, 12.0, RETURN_NOTE,  # type: ignore[arg-type]
                           during + timedelta(hours=1))
    closed = booking.close(session, world.owner_a, made.id, DAMAGE, DAMAGE_NOTE,  # type: ignore[arg-type]
                           during + timedelta(hours=2))
    return Scene(eq, grinder, trailer, closed)


# -- structural: builders and table agree --------------------------------------------------

@pytest.mark.parametrize("audience", list(Audience))
def test_builders_produce_exactly_the_fields_the_table_lists(scene: Scene,
                                                              audience: Audience) -> None:
    assert set(machine_model(scene.grinder, audience)) == barrier.fields(MACHINE, audience)
    assert set(booking_model(scene.booked, audience)) == barrier.fields(BOOKING, audience)
    for owner in owner_models({1: 5_000, 2: 5_000}, audience):
        assert set(owner) == barrier.fields(MACHINE_OWNER, audience)


def test_the_table_keeps_the_rules_of_the_design() -> None:
    """Stated independently of the table: the yard's coordinates reach nobody; a
    booking only its parties and the coordinator; shares only owners and coordinator;
    another cluster nothing."""
    for audience in Audience:
        assert not {"base_lat", "base_lng", "listed_by_id"} & barrier.fields(MACHINE, audience)
    assert {a for a in Audience if barrier.may_receive(BOOKING, a)} == {
        Audience.POSTER, Audience.PARTY, Audience.COORDINATOR}
    assert {a for a in Audience if "share_bp" in barrier.fields(MACHINE_OWNER, a)} == {
        Audience.POSTER, Audience.COORDINATOR}
    assert {a for a in Audience if "member_id" in barrier.fields(SLOT, a)} == {
        Audience.POSTER, Audience.PARTY, Audience.COORDINATOR}
    for resource in (MACHINE, MACHINE_OWNER, BOOKING, SLOT, barrier.CUSTODY):
        assert not barrier.may_receive(resource, Audience.OTHER_CLUSTER)
    # Every resource of the table is checked by a contract test: jobs and bids in
    # tests/test_barrier_contract.py, the equipment ones here.  A new one fails here
    # until a test reads it as every audience.
    assert set(barrier.TABLE) == {barrier.JOB, barrier.BIDS, barrier.BID, barrier.BID_SHARE,
                                  MACHINE, MACHINE_OWNER, BOOKING, SLOT, barrier.CUSTODY}
    for resource, rows in barrier.TABLE.items():
        assert set(rows) == set(Audience), resource  # every audience decided, none defaulted


# -- end to end: what each reader actually receives -----------------------------------------

@dataclass(frozen=True)
class Reader:
    name: str
    user: User
    to_grinder: Audience  # who it is to the grinder
    to_trailer: Audience
    to_booking: Audience


def readers(scene: Scene) -> list[Reader]:
    w = scene.world
    return [
        Reader("owner_a", w.owner_a, Audience.POSTER, Audience.POSTER, Audience.POSTER),
        Reader("booker_b", w.owner_b, Audience.OTHER_MEMBER, Audience.POSTER, Audience.PARTY),
        Reader("rival_c", scene.eq.owner_c, Audience.OTHER_MEMBER, Audience.OTHER_MEMBER,
               Audience.OTHER_MEMBER),
        Reader("coordinator", w.coordinator, Audience.COORDINATOR, Audience.COORDINATOR,
               Audience.COORDINATOR),
    ]


def _get(client: FlaskClient, path: str, headers: dict[str, str] | None = None) -> str:
    response = client.get(path, headers=headers or {})
    assert response.status_code in (200, 302, 403, 404), (path, response.status_code)
    return response.get_data(as_text=True)


def outputs(client: FlaskClient, session: Session, scene: Scene, reader: Reader
            ) -> dict[str, str]:
    """Everything `reader` can fetch about the two machines and the booking."""
    g, t, b = scene.grinder.id, scene.trailer.id, scene.booked.id
    as_json = {"Accept": "application/json"}
    token = bearer(session, reader.user)
    login(client, reader.user)
    got = {
        "page list": _get(client, "/equipment", as_json),
        "page grinder": _get(client, f"/equipment/{g}", as_json),
        "page trailer": _get(client, f"/equipment/{t}", as_json),
        "page bookings": _get(client, "/equipment/bookings", as_json),
        "page booking": _get(client, f"/equipment/bookings/{b}", as_json),
        "html grinder": _get(client, f"/equipment/{g}"),
        "html trailer": _get(client, f"/equipment/{t}"),
        "html rotation": _get(client, f"/equipment/{t}/rotation"),
        "html booking": _get(client, f"/equipment/bookings/{b}"),
        "html bookings": _get(client, "/equipment/bookings"),
        "api list": _get(client, "/api/v1/equipment", token),
        "api grinder": _get(client, f"/api/v1/equipment/{g}", token),
        "api trailer": _get(client, f"/api/v1/equipment/{t}", token),
        "api bookings": _get(client, "/api/v1/bookings", token),
        "api booking": _get(client, f"/api/v1/bookings/{b}", token),
    }
    client.post("/logout")
    if reader.user.member_id is not None:
        member = session.get(Member, reader.user.member_id)
        assert member is not None
        feed = calendar.feed_token(session, member, utcnow())
        got["ics"] = _get(client, f"/calendar/{feed}.ics")
    return got


def _objects(document: Any) -> list[tuple[str, dict[str, Any]]]:
    """(key it sits under, object) for every JSON object in a document."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            found.append((key, value))
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for item in value:
                walk(item, key)
    walk(document, "")
    return found


def _check_json_shapes(scene: Scene, reader: Reader, name: str, text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        return
    machines = {scene.grinder.id: reader.to_grinder, scene.trailer.id: reader.to_trailer}
    for key, obj in _objects(document):
        where = f"{reader.name} / {name} / {key}: {sorted(obj)}"
        if key in ("machine", "machines"):
            assert set(obj) <= barrier.fields(MACHINE, machines[obj["id"]]), where
        elif key == "owners":
            # only the trailer has two owners; the grinder's owner is A alone
            audience = reader.to_trailer if len(document.get("owners", [])) > 1 \
                else reader.to_grinder
            assert set(obj) <= barrier.fields(MACHINE_OWNER, audience), where
        elif key in ("booking", "bookings"):
            assert obj["id"] == scene.booked.id or obj["member_id"] == reader.user.member_id
            if obj["id"] == scene.booked.id:
                assert set(obj) <= barrier.fields(BOOKING, reader.to_booking), where
        elif key == "segments":
            if obj["kind"] in ("booked", "mine") and "booking_id" in obj:
                assert obj["booking_id"] == scene.booked.id, where
            allowed = barrier.fields(SLOT, Audience.POSTER) if obj["kind"] == "custody" \
                else barrier.fields(SLOT, booking_audience(
                    reader.to_grinder, viewer_member_id=reader.user.member_id,
                    booker_member_id=scene.booked.member_id))
            assert set(obj) <= allowed, where


def _secrets(scene: Scene) -> dict[str, list[str]]:
    """What a reader outside the booking (or outside the co-ownership) must never get."""
    return {
        "booking": [DAMAGE_NOTE, RETURN_NOTE, "43.21", "43,21", str(DAMAGE),
                    f'href="/equipment/bookings/{scene.booked.id}"',
                    f"UID:booking-{scene.booked.id}@"],  # the booker's or owner's .ics
        "shares": ["61.73", "61,73", "38.27", "38,27", str(SHARES[0]), str(SHARES[1])],
    }


def test_each_reader_gets_only_what_its_audience_may(client: FlaskClient, session: Session,
                                                    scene: Scene) -> None:
    secrets = _secrets(scene)
    seen: dict[str, dict[str, str]] = {}
    for reader in readers(scene):
        got = outputs(client, session, scene, reader)
        seen[reader.name] = got
        for name, text in got.items():
            _check_json_shapes(scene, reader, name, text)
        everything = "\n".join(got.values())
        if not barrier.may_receive(BOOKING, reader.to_booking):
            leaked = [s for s in secrets["booking"] if s in everything]
            assert not leaked, (reader.name, leaked)
        if "share_bp" not in barrier.fields(MACHINE_OWNER, reader.to_trailer):
            leaked = [s for s in secrets["shares"] if s in everything]
            assert not leaked, (reader.name, leaked)
    # The secrets are real: those who may know them do get them (the test can fail).
    for name in ("owner_a", "booker_b", "coordinator"):
        everything = "\n".join(seen[name].values())
        assert DAMAGE_NOTE in everything and str(DAMAGE) in everything, name
    for name in ("owner_a", "booker_b"):
        assert f"UID:booking-{scene.booked.id}@" in seen[name]["ics"], name
    for name in ("owner_a", "booker_b", "coordinator"):
        assert str(SHARES[0]) in seen[name]["api trailer"], name
    # The rival sees that the slot is taken, not by whom.
    rival = json.loads(seen["rival_c"]["api grinder"])
    taken = [s for d in rival["week"] for s in d["segments"] if s["kind"] == "booked"]
    assert taken and all(set(s) <= {"starts_at", "ends_at", "kind", "note"} for s in taken)
    assert re.search(r"Beta", seen["rival_c"]["html grinder"]) is None


def test_another_cluster_gets_nothing(client: FlaskClient, session: Session,
                                      scene: Scene) -> None:
    other = scene.world.other_owner
    token = bearer(session, other)
    login(client, other)
    for path in (f"/equipment/{scene.grinder.id}", f"/equipment/{scene.trailer.id}/rotation",
                 f"/equipment/bookings/{scene.booked.id}"):
        assert client.get(path).status_code == 404, path
    for path in (f"/api/v1/equipment/{scene.grinder.id}",
                 f"/api/v1/bookings/{scene.booked.id}"):
        assert client.get(path, headers=token).status_code == 404, path
    listed = client.get("/api/v1/equipment", headers=token).get_json()["machines"]
    assert scene.grinder.id not in {m["id"] for m in listed}


def test_booking_notifications_reach_only_the_bookings_parties(session: Session,
                                                              scene: Scene) -> None:
    """The socket, push and mail copies of a booking notice are built from the stored
    row: its recipients must be the booking's audiences, its payload their fields."""
    from marketplace.equipment.access import owner_shares
    from marketplace.realtime.models import Notification

    rows = [n for n in session.exec(select(Notification)) if n.kind.startswith("booking.")]
    assert rows, "the scene books, checks out, returns and closes: someone was told"
    for row in rows:
        user = session.get(User, row.user_id)
        assert user is not None
        booked = session.get(Booking, row.payload["id"])
        assert booked is not None
        machine = session.get(Equipment, booked.equipment_id)
        assert machine is not None
        on_machine = barrier.machine_audience(
            viewer_member_id=user.member_id, viewer_cluster_id=user.cluster_id,
            machine_cluster_id=machine.cluster_id,
            owners=set(owner_shares(session, machine.id)))  # type: ignore[arg-type]
        audience = booking_audience(on_machine, viewer_member_id=user.member_id,
                                    booker_member_id=booked.member_id)
        assert barrier.may_receive(BOOKING, audience), (row.kind, user.email)
        assert set(row.payload) <= barrier.fields(BOOKING, audience), (row.kind, row.payload)
