"""Listing machines and their photos: who may, what is checked, nothing half-written."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import Session

from marketplace.equipment import access, booking, listings, photos
from marketplace.equipment.listings import WeeklyHours
from marketplace.equipment.models import (
    AvailabilityWindow,
    Equipment,
    EquipmentOwner,
    ListingStatus,
)
from marketplace.errors import Conflict, DomainError, Forbidden, NotFound, ValidationError
from tests.conftest import NOW
from tests.equipment.conftest import NEXT_MONDAY, Equip, at, co_draft, count, draft


def nothing_listed(session: Session, call: Callable[[], object]) -> DomainError:
    session.rollback()
    with pytest.raises(DomainError) as refused:
        call()
    session.rollback()
    assert count(session, Equipment) == 0
    assert count(session, EquipmentOwner) == 0
    assert count(session, AvailabilityWindow) == 0
    return refused.value


def test_owner_lists_a_machine_it_owns_outright(session: Session, eq: Equip) -> None:
    world = eq.world
    listed = listings.list_machine(session, world.owner_a, draft(name="  Kubota  "), NOW,
                                   photo="a" * 32 + ".png")
    session.expire_all()
    stored = session.get(Equipment, listed.id)
    assert stored is not None
    assert stored.name == "Kubota" and stored.status == ListingStatus.ACTIVE
    assert stored.currency == "CAD" and stored.cluster_id == world.cluster.id
    assert stored.photo == "a" * 32 + ".png" and stored.listed_by_id == world.owner_a.id
    assert access.owner_shares(session, listed.id) == {world.member_a_id: 10_000}  # type: ignore[arg-type]
    assert [(w.weekday, w.start_minute, w.end_minute)
            for w in listings.hours_of(session, listed.id)] == [  # type: ignore[arg-type]
        (d, 420, 1080) for d in range(5)]
    assert [m.id for m in listings.machines(session, world.owner_b)] == [listed.id]
    assert listings.machines(session, world.other_owner) == []


@pytest.mark.parametrize("changes, field", [
    ({"hour_rate_minor": -1}, "hour_rate"),
    ({"day_rate_minor": -100}, "day_rate"),
    ({"name": "  "}, "name"),
    ({"kind": "spaceship"}, "kind"),
    ({"granularity_minutes": 20}, "granularity_minutes"),
    ({"min_minutes": 45}, "min_minutes"),
    ({"max_minutes": 30}, "max_minutes"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"cancel_fee_bp": 10_001}, "cancel_fee"),
    ({"base_lat": 91.0}, "base_lat"),
    ({"hours": ()}, "hours"),
    ({"hours": (WeeklyHours(0, 600, 540),)}, "hours"),
    ({"hours": (WeeklyHours(0, 425, 1080),)}, "hours"),  # 07:05 is off the 30-minute steps
    ({"buffer_minutes": -5}, "buffer_minutes"),
])
def test_bad_listing_says_which_field_and_writes_nothing(session: Session, eq: Equip,
                                                         changes: dict[str, object],
                                                         field: str) -> None:
    error = nothing_listed(session, lambda: listings.list_machine(
        session, eq.world.owner_a, draft(**changes), NOW))
    assert isinstance(error, ValidationError) and error.code == "invalid_listing"
    assert field in error.fields


def test_only_a_business_owner_lists(session: Session, eq: Equip) -> None:
    world = eq.world
    error = nothing_listed(session, lambda: listings.list_machine(session, world.crew_a,
                                                                  draft(), NOW))
    assert isinstance(error, Forbidden) and error.code == "owner_role_only"
    error = nothing_listed(session, lambda: listings.list_machine(session, world.coordinator,
                                                                  draft(), NOW))
    assert isinstance(error, Forbidden)


def test_coordinator_records_a_co_owned_machine(session: Session, eq: Equip) -> None:
    world = eq.world
    shares = {world.member_a_id: 6_000, world.member_b_id: 2_500, eq.member_c_id: 1_500}
    made = listings.record_co_owned(session, world.coordinator, co_draft(), shares, NOW)
    assert access.owner_shares(session, made.id) == shares  # type: ignore[arg-type]
    assert [m.name for m in access.owners(session, made.id)] == [  # type: ignore[arg-type]
        "Alpha Lawns", "Beta Stone", "Gamma Trees"]
    assert access.can_manage(session, world.coordinator, made)
    assert access.can_manage(session, world.owner_b, made)
    assert not access.can_manage(session, world.crew_a, made)
    assert not access.can_manage(session, world.other_coordinator, made)


@pytest.mark.parametrize("shares", [
    {"a": 6_000, "b": 3_000},  # 90 %
    {"a": 6_000, "b": 4_001},  # 100.01 %
    {"a": 10_000, "b": 0},  # a zero share
    {"a": 11_000, "b": -1_000},  # negative
    {"a": 10_000},  # one owner is not co-ownership
    {"a": 6_000, "rival": 4_000},  # not a member of this cluster
])
def test_shares_must_be_positive_members_summing_to_10000(session: Session, eq: Equip,
                                                          shares: dict[str, int]) -> None:
    world = eq.world
    ids = {"a": world.member_a_id, "b": world.member_b_id,
           "rival": world.other_owner.member_id}
    by_id = {ids[k]: v for k, v in shares.items()}
    error = nothing_listed(session, lambda: listings.record_co_owned(
        session, world.coordinator, co_draft(), by_id, NOW))  # type: ignore[arg-type]
    assert isinstance(error, ValidationError) and "shares" in error.fields


def test_co_owned_errors_are_reported_together(session: Session, eq: Equip) -> None:
    world = eq.world
    error = nothing_listed(session, lambda: listings.record_co_owned(
        session, world.coordinator, co_draft(hour_rate_minor=-5),
        {world.member_a_id: 5_000, world.member_b_id: 4_000}, NOW))
    assert {"hour_rate", "shares"} <= set(error.fields)
    error = nothing_listed(session, lambda: listings.record_co_owned(
        session, world.owner_a, co_draft(), {world.member_a_id: 5_000,
                                             world.member_b_id: 5_000}, NOW))
    assert isinstance(error, Forbidden)


def test_update_keeps_existing_bookings_terms(session: Session, eq: Equip,
                                              machine: Equipment) -> None:
    world = eq.world
    tuesday = NEXT_MONDAY + timedelta(days=1)
    made = booking.book(session, world.owner_b, machine.id, at(tuesday, 9), at(tuesday, 11),  # type: ignore[arg-type]
                        NOW)
    listings.update_listing(session, world.owner_a, machine.id, draft(  # type: ignore[arg-type]
        hour_rate_minor=9_000, hours=(WeeklyHours(1, 8 * 60, 12 * 60),)))
    session.expire_all()
    assert session.get(type(made), made.id).price_minor == 8_000  # type: ignore[union-attr]
    assert [(w.weekday, w.start_minute, w.end_minute)
            for w in listings.hours_of(session, machine.id)] == [(1, 480, 720)]  # type: ignore[arg-type]
    later = booking.book(session, eq.owner_c, machine.id, at(tuesday + timedelta(days=7), 8),  # type: ignore[arg-type]
                         at(tuesday + timedelta(days=7), 10), NOW)
    assert later.price_minor == 18_000
    with pytest.raises(Forbidden):
        listings.update_listing(session, world.owner_b, machine.id, draft())  # type: ignore[arg-type]
    session.rollback()
    listings.set_status(session, world.owner_a, machine.id, "retired", "Sold", NOW)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as retired:
        listings.update_listing(session, world.owner_a, machine.id, draft())  # type: ignore[arg-type]
    assert retired.value.code == "retired"
    session.rollback()
    assert listings.machines(session, world.owner_b) == []


def test_bad_update_changes_nothing(session: Session, eq: Equip, machine: Equipment) -> None:
    with pytest.raises(ValidationError):
        listings.update_listing(session, eq.world.owner_a, machine.id,  # type: ignore[arg-type]
                                draft(name="New name", hour_rate_minor=-1, hours=()))
    session.rollback()
    session.expire_all()
    stored = session.get(Equipment, machine.id)
    assert stored is not None and stored.name == "Kubota KX040 excavator"
    assert stored.hour_rate_minor == 4_000
    assert len(listings.hours_of(session, machine.id)) == 5  # type: ignore[arg-type]


def test_rival_cluster_cannot_see_or_change_the_machine(session: Session, eq: Equip,
                                                        machine: Equipment) -> None:
    world = eq.world
    for rival in (world.other_owner, world.other_coordinator):
        with pytest.raises(NotFound):
            access.get_equipment(session, rival, machine.id)  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            listings.set_status(session, rival, machine.id, "paused", "Mine", NOW)  # type: ignore[arg-type]
        session.rollback()
    assert session.get(Equipment, machine.id).status == "active"  # type: ignore[union-attr]


# --- photos ---------------------------------------------------------------------------


def _image(kind: str, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 60)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.mark.parametrize("kind, extension", [("PNG", "png"), ("JPEG", "jpg"),
                                             ("WEBP", "webp")])
def test_real_images_are_accepted(kind: str, extension: str) -> None:
    assert photos.image_extension(_image(kind)) == extension


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"just some text, not a picture\n", "not a picture"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a picture"),  # a PNG signature and nothing else
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not a picture"),
])
def test_files_that_are_not_photos_are_refused(data: bytes, why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        photos.image_extension(data)
    assert refused.value.code == "invalid_photo" and "photo" in refused.value.fields
    assert why in refused.value.message


def test_gif_and_truncated_images_are_refused() -> None:
    for data in (_image("GIF"), _image("PNG")[:60]):
        with pytest.raises(ValidationError) as refused:
            photos.image_extension(data)
        assert refused.value.code == "invalid_photo"


def test_photo_over_five_megabytes_is_refused() -> None:
    big = _image("PNG") + b"\0" * (photos.MAX_PHOTO_BYTES)
    with pytest.raises(ValidationError) as refused:
        photos.image_extension(big)
    assert "larger than 5 MB" in refused.value.message
    # Exactly at the limit the size is fine (then the content is judged).
    at_limit = _image("PNG")
    assert photos.image_extension(at_limit.ljust(photos.MAX_PHOTO_BYTES, b"\0")) == "png"


def test_stored_photo_gets_a_random_safe_name(tmp_path: Path) -> None:
    first = photos.store_photo(_image("PNG"), tmp_path / "photos")
    second = photos.store_photo(_image("PNG"), tmp_path / "photos")
    assert first != second and first.endswith(".png")
    assert photos.is_stored_name(first)
    assert (tmp_path / "photos" / first).read_bytes() == _image("PNG")
    with pytest.raises(ValidationError):
        photos.store_photo(b"text", tmp_path / "photos")
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == sorted([first, second])
    for bad in ("../etc/passwd", "a" * 32 + ".svg", "A" * 32 + ".png", "x.png", ""):
        assert not photos.is_stored_name(bad)



def test_rates_above_the_cap_are_refused_so_prices_fit_the_money_columns(
        session: Session, eq: Equip) -> None:
    from marketplace.equipment.listings import MAX_DAY_RATE_MINOR, MAX_HOUR_RATE_MINOR

    with pytest.raises(ValidationError) as refused:
        listings.list_machine(session, eq.world.owner_a, draft(
            hour_rate_minor=MAX_HOUR_RATE_MINOR + 1, day_rate_minor=MAX_DAY_RATE_MINOR + 1),
            NOW)
    assert set(refused.value.fields) == {"hour_rate", "day_rate"}
    session.rollback()
    assert count(session, Equipment) == 0
