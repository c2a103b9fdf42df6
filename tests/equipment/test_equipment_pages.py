"""Equipment pages as each party sees them: forms, refusals, the barrier, photos, .ics."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlmodel import Session, select

from marketplace.clusters.service import update_preferences
from marketplace.db import utcnow
from marketplace.equipment import booking, listings
from marketplace.equipment.models import Booking, Equipment, EquipmentOwner
from marketplace.ledger.models import LedgerEntry
from tests.conftest import World, invite_member, login
from tests.equipment.conftest import anytime_draft as draft

ZONE = "America/Toronto"  # the cluster's, and so the test users', time zone


def _png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (30, 120, 60)).save(buffer, "PNG")
    return buffer.getvalue()


def _tomorrow_local(hour: int) -> str:
    """A datetime-local value tomorrow at `hour` in Toronto (the test users' zone)."""
    from zoneinfo import ZoneInfo

    day = (utcnow().astimezone(ZoneInfo(ZONE)) + timedelta(days=1)).date()
    return f"{day.isoformat()}T{hour:02d}:00"


@pytest.fixture
def machine_id(session: Session, world: World) -> int:
    machine = listings.list_machine(session, world.owner_a, draft(), utcnow())
    assert machine.id is not None
    return machine.id


def test_owner_lists_a_machine_with_photo_and_weekly_hours(client: FlaskClient,
                                                           session: Session,
                                                           world: World) -> None:
    login(client, world.owner_a)
    form = {"name": "Mini excavator", "kind": "mini_excavator", "description": "3.5 t",
            "locality": "East yard", "base_lat": "45.4", "base_lng": "-75.7",
            "hour_rate": "85.50", "day_rate": "520", "granularity_minutes": "30",
            "min_minutes": "60", "max_minutes": "2880", "buffer_minutes": "60",
            "timezone": ZONE, "cancel_cutoff_hours": "24", "cancel_fee": "50",
            "opens-0": "07:00", "closes-0": "18:00", "opens-5": "00:00", "closes-5": "00:00",
            "photo": (io.BytesIO(_png()), "digger.png")}
    response = client.post("/equipment/new", data=form, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)
    machine = session.exec(select(Equipment).where(Equipment.name == "Mini excavator")).one()
    assert (machine.hour_rate_minor, machine.day_rate_minor) == (85_50, 520_00)
    assert [(w.weekday, w.start_minute, w.end_minute)
            for w in listings.hours_of(session, machine.id)] == [(0, 420, 1080), (5, 0, 1440)]
    photo = client.get(f"/equipment/{machine.id}/photo")  # the copy pages show
    assert photo.status_code == 200 and photo.mimetype == "image/webp"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    full = client.get(f"/equipment/{machine.id}/photo?size=full")
    assert full.mimetype == "image/png" and full.get_data() == _png()


def test_bad_listing_input_says_what_to_fix_and_writes_nothing(client: FlaskClient,
                                                               session: Session,
                                                               world: World) -> None:
    login(client, world.owner_a)
    response = client.post("/equipment/new", data={
        "name": "Trencher", "kind": "trencher", "locality": "Yard", "base_lat": "45",
        "base_lng": "-75", "hour_rate": "-5", "day_rate": "0", "granularity_minutes": "30",
        "min_minutes": "60", "max_minutes": "120", "buffer_minutes": "0", "timezone": ZONE,
        "cancel_cutoff_hours": "24", "cancel_fee": "10",
        "photo": (io.BytesIO(b"not an image at all"), "trencher.png")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Rates cannot be negative." in page
    assert "Give the machine at least one bookable period in the week." in page
    assert session.exec(select(Equipment)).all() == []


def test_photo_that_is_not_an_image_is_refused(client: FlaskClient, session: Session,
                                               world: World) -> None:
    login(client, world.owner_a)
    response = client.post("/equipment/new", data={
        "name": "Trencher", "kind": "trencher", "locality": "Yard", "base_lat": "45",
        "base_lng": "-75", "hour_rate": "5", "day_rate": "0", "granularity_minutes": "30",
        "min_minutes": "60", "max_minutes": "120", "buffer_minutes": "0", "timezone": ZONE,
        "cancel_cutoff_hours": "24", "cancel_fee": "10", "opens-1": "08:00",
        "closes-1": "17:00", "photo": (io.BytesIO(b"%PDF-1.4 fake"), "trencher.png")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "That file is not a picture." in response.get_data(as_text=True)
    assert session.exec(select(Equipment)).all() == []


def test_crew_and_coordinator_cannot_list_a_machine_of_their_own(client: FlaskClient,
                                                                 world: World) -> None:
    login(client, world.crew_a)
    assert client.get("/equipment/new").status_code == 403
    login(client, world.coordinator)
    assert client.get("/equipment/new").status_code == 403
    assert client.get("/equipment/co-owned/new").status_code == 200


def test_coordinator_records_a_co_owned_machine_with_shares(client: FlaskClient,
                                                            session: Session,
                                                            world: World) -> None:
    login(client, world.coordinator)
    form = {"name": "Skid steer", "kind": "skid_steer", "locality": "Shed", "base_lat": "45",
            "base_lng": "-75", "hour_rate": "70", "day_rate": "420",
            "granularity_minutes": "60", "min_minutes": "60", "max_minutes": "1440",
            "buffer_minutes": "0", "timezone": ZONE, "cancel_cutoff_hours": "24",
            "cancel_fee": "0", "opens-2": "00:00", "closes-2": "00:00",
            f"share-{world.member_a_id}": "60", f"share-{world.member_b_id}": "30"}
    response = client.post("/equipment/co-owned/new", data=form)
    assert response.status_code == 422
    assert "add up to 10000 basis points" in response.get_data(as_text=True)
    assert session.exec(select(Equipment)).all() == []
    form[f"share-{world.member_b_id}"] = "40"
    assert client.post("/equipment/co-owned/new", data=form).status_code == 302
    session.rollback()  # end the test's read snapshot to see the app's commit
    session.expire_all()
    owners = session.exec(select(EquipmentOwner)).all()
    assert sorted((o.member_id, o.share_bp) for o in owners) == [
        (world.member_a_id, 6000), (world.member_b_id, 4000)]


def test_booking_form_refusal_is_in_the_bookers_language(client: FlaskClient,
                                                         session: Session, world: World,
                                                         machine_id: int) -> None:
    update_preferences(session, world.owner_b, "fr", None, None)
    login(client, world.owner_b)
    response = client.post(f"/equipment/{machine_id}/book", data={
        "starts_at": _tomorrow_local(10), "ends_at": _tomorrow_local(10)})
    assert response.status_code == 422
    assert "La fin doit être après le début." in response.get_data(as_text=True)
    assert session.exec(select(Booking)).all() == []


def test_booking_over_http_then_overlap_is_a_clear_409(client: FlaskClient, session: Session,
                                                       world: World, machine_id: int) -> None:
    login(client, world.owner_b)
    slot = {"starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)}
    created = client.post(f"/equipment/{machine_id}/book", data=slot,
                          headers={"Accept": "application/json"})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["booking"]["price_minor"] == 80_00
    again = client.post(f"/equipment/{machine_id}/book", data={
        "starts_at": _tomorrow_local(11), "ends_at": _tomorrow_local(12)},
        headers={"Accept": "application/json"})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "slot_taken"
    assert "30 minutes" in again.get_json()["error"]["message"]
    entries = session.exec(select(LedgerEntry)).all()
    assert [(e.payer_member_id, e.payee_member_id, e.amount_minor) for e in entries] == [
        (world.member_b_id, world.member_a_id, 80_00)]


def test_third_member_sees_a_slot_is_taken_but_not_by_whom(client: FlaskClient,
                                                           session: Session, world: World,
                                                           machine_id: int) -> None:
    third = invite_member(session, world.coordinator, "Gamma Trees", "g@gamma.test")
    starts = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    made = booking.book(session, world.owner_b, machine_id, starts, starts + timedelta(hours=2),
                        utcnow())
    login(client, third)
    page = client.get(f"/equipment/{machine_id}").get_data(as_text=True)
    assert "booked" in page and "Beta Stone" not in page
    assert f"/equipment/bookings/{made.id}" not in page
    week = client.get(f"/equipment/{machine_id}", headers={"Accept": "application/json"})
    segments = [s for d in week.get_json()["week"] for s in d["segments"]]
    assert any(s["kind"] == "booked" for s in segments)
    assert all("booking_id" not in s for s in segments)  # withheld: absent, not null
    assert client.get(f"/equipment/bookings/{made.id}").status_code == 404
    login(client, world.owner_a)  # the owner sees who booked
    page = client.get(f"/equipment/{machine_id}").get_data(as_text=True)
    assert "Beta Stone" in page and f"/equipment/bookings/{made.id}" in page


def test_rival_cluster_cannot_see_or_book_the_machine(client: FlaskClient, world: World,
                                                      machine_id: int) -> None:
    login(client, world.other_owner)
    assert client.get(f"/equipment/{machine_id}").status_code == 404
    assert client.post(f"/equipment/{machine_id}/book", data={
        "starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)}).status_code == 404
    assert "Vermeer SC30" not in client.get("/equipment").get_data(as_text=True)


def test_owner_approves_a_request_and_booker_walks_it_through(client: FlaskClient,
                                                             session: Session, world: World
                                                             ) -> None:
    machine = listings.list_machine(session, world.owner_a, draft(needs_approval=True),
                                    utcnow())
    starts = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    made = booking.book(session, world.owner_b, machine.id, starts,  # type: ignore[arg-type]
                        starts + timedelta(hours=3), utcnow())
    assert made.status == "requested"
    login(client, world.owner_a)
    assert "Approve" in client.get(f"/equipment/bookings/{made.id}").get_data(as_text=True)
    assert client.post(f"/equipment/bookings/{made.id}/approve").status_code == 302
    login(client, world.owner_b)
    assert client.post(f"/equipment/bookings/{made.id}/check-out", data={
        "meter": "120.5", "note": "Clean", "photo": (io.BytesIO(_png()), "out.png")},
        content_type="multipart/form-data").status_code == 302
    back = client.post(f"/equipment/bookings/{made.id}/return",
                       data={"meter": "100", "note": "Fine"})
    assert back.status_code == 422
    assert "cannot read less than at check-out" in back.get_data(as_text=True)
    assert client.post(f"/equipment/bookings/{made.id}/return",
                       data={"meter": "124", "note": "Fine"}).status_code == 302
    login(client, world.owner_a)
    assert client.get(f"/equipment/bookings/{made.id}/checkout-photo").status_code == 200
    assert client.post(f"/equipment/bookings/{made.id}/close",
                       data={"damage": "35.00", "damage_note": "Bent guard"}).status_code == 302
    session.rollback()  # end the test's read snapshot to see the app's commit
    session.expire_all()
    closed = session.get(Booking, made.id)
    assert closed is not None and closed.status == "closed" and closed.damage_minor == 35_00


def test_member_calendar_feed_is_secret_and_renewable(client: FlaskClient, session: Session,
                                                      world: World, machine_id: int) -> None:
    starts = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    booking.book(session, world.owner_b, machine_id, starts, starts + timedelta(hours=2),
                 utcnow())
    login(client, world.owner_b)
    page = client.get("/equipment/bookings").get_data(as_text=True)
    url = re.search(r"http://localhost(/calendar/[^\"<]+\.ics)", page)
    assert url is not None
    client.post("/logout")
    feed = client.get(url.group(1))
    assert feed.status_code == 200 and feed.mimetype == "text/calendar"
    body = feed.get_data(as_text=True)
    assert "SUMMARY:Booking: Vermeer SC30" in body and body.endswith("END:VCALENDAR\r\n")
    assert starts.strftime("DTSTART:%Y%m%dT%H%M%SZ") in body
    login(client, world.owner_b)
    assert client.post("/equipment/calendar/renew").status_code == 302
    assert client.get(url.group(1)).status_code == 404
    assert client.get("/calendar/not-a-token.ics").status_code == 404


def test_retiring_cancels_future_bookings_and_tells_the_booker(client: FlaskClient,
                                                               session: Session,
                                                               world: World,
                                                               machine_id: int) -> None:
    starts = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    made = booking.book(session, world.owner_b, machine_id, starts,
                        starts + timedelta(hours=2), utcnow())
    login(client, world.owner_a)
    refused = client.post(f"/equipment/{machine_id}/status", data={"status": "retired"})
    assert refused.status_code == 422 and "Say why" in refused.get_data(as_text=True)
    assert client.post(f"/equipment/{machine_id}/status",
                       data={"status": "retired", "reason": "Sold"}).status_code == 302
    session.rollback()  # end the test's read snapshot to see the app's commit
    session.expire_all()
    cancelled = session.get(Booking, made.id)
    assert cancelled is not None and cancelled.status == "cancelled"
    login(client, world.owner_b)
    notes = client.get("/notifications").get_data(as_text=True)
    assert "cancelled by its owners: Sold" in notes
    refused = client.post(f"/equipment/{machine_id}/book", data={
        "starts_at": _tomorrow_local(9), "ends_at": _tomorrow_local(11)},
        headers={"Accept": "application/json"})
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "not_bookable"


def test_a_refused_booking_shows_the_week_it_asked_for(client: FlaskClient, session: Session,
                                                       world: World, machine_id: int) -> None:
    """Three weeks ahead (any weekday today, Sunday included): the page comes back on
    that week, where the booking in the way can be seen, not on this week."""
    from zoneinfo import ZoneInfo

    machine = session.get(Equipment, machine_id)
    assert machine is not None
    day = (utcnow().astimezone(ZoneInfo(machine.timezone)) + timedelta(days=21)).date()
    first = booking.book(session, world.owner_a, machine_id,
                         datetime(day.year, day.month, day.day, 14, tzinfo=UTC),
                         datetime(day.year, day.month, day.day, 18, tzinfo=UTC), utcnow())
    assert first.id is not None
    login(client, world.owner_b)
    refused = client.post(f"/equipment/{machine_id}/book", data={
        "starts_at": f"{day.isoformat()}T10:00", "ends_at": f"{day.isoformat()}T12:00"})
    assert refused.status_code == 409
    shown = re.findall(r'name="week" value="([0-9-]+)"|week=([0-9-]+)',
                       refused.get_data(as_text=True))
    weeks = sorted({d for pair in shown for d in pair if d})
    # previous and next week links, a week apart, around the asked day
    assert weeks and min(weeks) < day.isoformat() < max(weeks), weeks


def _listing(**changes: object) -> dict[str, object]:
    return {"name": "Compact loader", "kind": "skid_steer", "hour_rate": "70",
            "day_rate": "420", "granularity_minutes": "60", "min_minutes": "60",
            "max_minutes": "1440", "buffer_minutes": "0", "timezone": ZONE,
            "cancel_cutoff_hours": "24", "cancel_fee": "0", "opens-2": "07:00",
            "closes-2": "17:00", **changes}


def test_a_machine_is_listed_by_typing_its_town_not_coordinates(client: FlaskClient,
                                                                session: Session,
                                                                world: World) -> None:
    login(client, world.owner_a)
    page = client.get("/equipment/new").get_data(as_text=True)
    base_lat = re.search(r'<input[^>]*name="base_lat"[^>]*>', page)
    assert base_lat is not None and 'type="hidden"' in base_lat.group(0)
    assert "Latitude" not in page and "Longitude" not in page
    response = client.post("/equipment/new", data=_listing(base_place="Gatineau"))
    assert response.status_code == 302, response.get_data(as_text=True)
    machine = session.exec(select(Equipment).where(Equipment.name == "Compact loader")).one()
    assert machine.locality == "Gatineau"  # the town, when no yard name is typed
    assert abs(machine.base_lat - 45.48) < 0.1 and abs(machine.base_lng + 75.70) < 0.1


def test_a_place_nobody_can_find_is_refused_and_lists_nothing(client: FlaskClient,
                                                               session: Session,
                                                               world: World) -> None:
    login(client, world.owner_a)
    response = client.post("/equipment/new", data=_listing(base_place="Xqzzyvillequux"))
    assert response.status_code == 422
    assert "We could not find" in response.get_data(as_text=True)
    assert session.exec(select(Equipment)).all() == []
