"""A dispute's photos over the API (#20): a party sends a photo with a message, as base64
like an insurance certificate, checked by the same rules as the page's upload; the
parties and the coordinator read it back without its metadata; the panel, a member with
no part in it and a rival cluster get the 404 a missing photo gets.  A refused photo
writes nothing: no row, no file."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.models import Agreement
from marketplace.disputes import service as disputes
from marketplace.disputes.models import DisputeMessage, MemberDispute
from marketplace.equipment.photos import carries_metadata
from tests.api.conftest import bearer
from tests.disputes.conftest import closed_at, damaged_booking
from tests.equipment.test_photo_metadata import MAKER, PLACE, jpeg_with_gps
from tests.ledger.conftest import Ledger, co_owned, eq, lw  # noqa: F401 - fixtures

WHEN = closed_at() + timedelta(days=2)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The API's clock reads two days after the booking closed."""
    from marketplace.api import disputes as api_disputes

    monkeypatch.setattr(api_disputes, "utcnow", lambda: WHEN)
    yield


def _open(session: Session, lw: Ledger) -> MemberDispute:  # noqa: F811
    """C, which booked the trailer, disputes the damage fee it owes A and B."""
    made = damaged_booking(session, lw)
    assert made.id is not None
    return disputes.open_dispute(session, lw.owner_c, "booking", made.id, "damage_fee",
                                 "Cracked before", closed_at() + timedelta(days=1))


def _files(app: Flask) -> list[Path]:
    folder = Path(app.config["UPLOAD_DIR"]) / "disputes"
    return sorted(folder.rglob("*")) if folder.exists() else []


def _messages(session: Session) -> list[tuple[int | None, str, str | None]]:
    session.close()  # read what the app committed, not this snapshot
    return [(m.id, m.body, m.photo) for m in session.exec(select(DisputeMessage))]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_party_sends_a_photo_and_the_readers_get_it_back_without_its_metadata(
        app: Flask, session: Session, lw: Ledger) -> None:  # noqa: F811
    dispute = _open(session, lw)
    client = app.test_client()
    url = f"/api/v1/disputes/{dispute.id}/messages"
    posted = client.post(url, headers=bearer(session, lw.owner_c), json={
        "body": "At check-out", "photo_base64": _b64(jpeg_with_gps()), "request_key": "k1"})
    assert posted.status_code == 201, posted.get_json()
    said = posted.get_json()
    assert said["has_photo"] is True and said["body"] == "At check-out"
    # The same message sent twice is stored once; a photo alone is a message too.
    again = client.post(url, headers=bearer(session, lw.owner_c), json={
        "body": "At check-out", "photo_base64": _b64(jpeg_with_gps()), "request_key": "k1"})
    assert again.status_code == 201 and again.get_json()["id"] == said["id"]
    alone = client.post(url, headers=bearer(session, lw.world.owner_a),
                        json={"photo_base64": _b64(jpeg_with_gps())})
    assert alone.status_code == 201, alone.get_json()
    assert alone.get_json()["has_photo"] is True and alone.get_json()["body"] == ""
    assert len(_messages(session)) == 2
    stored = [p for p in _files(app) if p.parent.name == "disputes"]
    assert len(stored) == 2 and all(MAKER.encode() not in p.read_bytes() for p in stored)
    detail = client.get(f"/api/v1/disputes/{dispute.id}",
                        headers=bearer(session, lw.coordinator)).get_json()
    assert [m["has_photo"] for m in detail["messages"]] == [True, True]

    photo = f"{url}/{said['id']}/photo"
    for reader in (lw.owner_c, lw.world.owner_a, lw.world.owner_b, lw.coordinator):
        headers = bearer(session, reader)
        full = client.get(f"{photo}?size=full", headers=headers)
        assert full.status_code == 200, full.get_json()
        got = full.get_json()
        data = base64.b64decode(got["photo_base64"], validate=True)
        assert got["message_id"] == said["id"] and got["media_type"] == "image/jpeg"
        assert (got["width"], got["height"]) == (240, 320)  # turned upright
        assert data.startswith(b"\xff\xd8")
        assert MAKER.encode() not in data and PLACE.encode() not in data
        assert not carries_metadata(data, "jpg")
        shown = client.get(photo, headers=headers).get_json()  # the smaller copy pages show
        assert shown["media_type"] == "image/webp"
        assert base64.b64decode(shown["photo_base64"]).startswith(b"RIFF")


def test_nobody_else_reads_a_photo_and_a_wrong_pairing_is_missing(
        app: Flask, session: Session, lw: Ledger) -> None:  # noqa: F811
    dispute = _open(session, lw)
    client = app.test_client()
    url = f"/api/v1/disputes/{dispute.id}/messages"
    with_photo = client.post(url, headers=bearer(session, lw.owner_c), json={
        "body": "Look", "photo_base64": _b64(jpeg_with_gps())}).get_json()["id"]
    text_only = client.post(url, headers=bearer(session, lw.owner_c),
                            json={"body": "No picture"}).get_json()["id"]
    missing = client.get(f"{url}/999999/photo", headers=bearer(session, lw.owner_c))
    assert missing.status_code == 404
    # A message without a photo, a message id under another dispute's id: missing too.
    for path in (f"{url}/{text_only}/photo", f"/api/v1/disputes/999999/messages/"
                 f"{with_photo}/photo"):
        answer = client.get(path, headers=bearer(session, lw.owner_c))
        assert answer.status_code == 404 and answer.get_json() == missing.get_json()
    # D (no part in it) and a rival cluster's people: the same 404, none of the photo.
    for outsider in (lw.owner_d, lw.world.other_owner, lw.world.other_coordinator):
        answer = client.get(f"{url}/{with_photo}/photo?size=full",
                            headers=bearer(session, outsider))
        assert answer.status_code == 404 and answer.get_json() == missing.get_json()
        assert "photo_base64" not in answer.get_data(as_text=True)


def test_a_panellist_decides_but_never_reads_the_parties_photo(
        app: Flask, session: Session, lw: Ledger) -> None:  # noqa: F811
    for agreement in session.exec(select(Agreement)).all():
        agreement.dispute_resolver = "panel"
        session.add(agreement)
    session.commit()
    dispute = _open(session, lw)
    assert dispute.resolver == "panel"
    client = app.test_client()
    url = f"/api/v1/disputes/{dispute.id}/messages"
    said = client.post(url, headers=bearer(session, lw.owner_c), json={
        "body": "Secret", "photo_base64": _b64(jpeg_with_gps())}).get_json()["id"]
    panellist = bearer(session, lw.owner_d)  # D, the only business on no side
    assert client.get(f"/api/v1/disputes/{dispute.id}", headers=panellist).status_code == 200
    for size in ("", "?size=full"):
        assert client.get(f"{url}/{said}/photo{size}", headers=panellist).status_code == 404
    before = _messages(session), _files(app)
    for photo in (_b64(jpeg_with_gps()), "not base64!"):  # as if there were no talk
        sent = client.post(url, headers=panellist, json={"photo_base64": photo})
        assert sent.status_code == 404
    assert (_messages(session), _files(app)) == before


@pytest.mark.parametrize(("photo", "says"), [
    ("not base64!", "base64"),
    (_b64(b"%PDF-1.4 not a picture"), "not a picture"),
    (_b64(b"\xff\xd8\xff" + b"\0" * 64), "not a picture"),
], ids=["not-base64", "a-pdf", "a-broken-jpeg"])
def test_a_bad_photo_is_a_422_on_its_field_and_writes_nothing(
        app: Flask, session: Session, lw: Ledger, photo: str, says: str) -> None:  # noqa: F811
    dispute = _open(session, lw)
    client = app.test_client()
    headers = bearer(session, lw.owner_c)
    url = f"/api/v1/disputes/{dispute.id}/messages"
    before = _messages(session), _files(app)
    refused = client.post(url, headers=headers, json={"body": "Look", "photo_base64": photo,
                                                       "request_key": "k1"})
    assert refused.status_code == 422, refused.get_json()
    error = refused.get_json()["error"]
    assert set(error["fields"]) == {"photo_base64"} and says in error["fields"]["photo_base64"]
    assert (_messages(session), _files(app)) == before
    # Fixed, the same key posts it: the refusal kept nothing that could answer for it.
    fixed = client.post(url, headers=headers, json={
        "body": "Look", "photo_base64": _b64(jpeg_with_gps()), "request_key": "k1"})
    assert fixed.status_code == 201 and fixed.get_json()["has_photo"] is True


def test_neither_text_nor_photo_and_a_decided_dispute_are_refused_and_write_nothing(
        app: Flask, session: Session, lw: Ledger) -> None:  # noqa: F811
    dispute = _open(session, lw)
    client = app.test_client()
    headers = bearer(session, lw.owner_c)
    url = f"/api/v1/disputes/{dispute.id}/messages"
    empty = client.post(url, headers=headers, json={"body": "  "})
    assert empty.status_code == 422
    assert "photo" in empty.get_json()["error"]["fields"]["body"]
    too_big = client.post(url, headers=headers, json={
        "photo_base64": _b64(b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024))})
    assert too_big.status_code == 422
    assert "5 MB" in too_big.get_json()["error"]["fields"]["photo_base64"]
    decided = client.post(f"/api/v1/disputes/{dispute.id}/decision",
                          headers=bearer(session, lw.coordinator),
                          json={"outcome": "cancel", "note": "Not due"})
    assert decided.status_code == 200, decided.get_json()
    before = _messages(session), _files(app)
    late = client.post(url, headers=headers, json={"photo_base64": _b64(jpeg_with_gps())})
    assert late.status_code == 409
    assert (_messages(session), _files(app)) == before == ([], [])
