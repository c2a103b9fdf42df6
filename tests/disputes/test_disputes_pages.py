"""Disputes on the pages and over the API: a party opens one from its booking, the
parties exchange messages and a photo (served without its EXIF), the coordinator decides;
a rival, a member with no part in it and a missing id all get the same 404."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.disputes.models import DisputeMessage, MemberDispute
from marketplace.equipment.photos import carries_metadata
from marketplace.ledger.models import EntrySource, LedgerEntry
from tests.api.conftest import bearer
from tests.conftest import login
from tests.disputes.conftest import DAMAGE, closed_at, damaged_booking
from tests.equipment.test_photo_metadata import MAKER, jpeg_with_gps
from tests.ledger.conftest import Ledger

WHEN = closed_at() + timedelta(days=2)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The pages' and the API's clock reads two days after the booking closed."""
    from marketplace.api import disputes as api_disputes
    from marketplace.disputes import views

    monkeypatch.setattr(views, "utcnow", lambda: WHEN)
    monkeypatch.setattr(api_disputes, "utcnow", lambda: WHEN)
    yield


def _client(app: Flask, user) -> FlaskClient:  # type: ignore[no-untyped-def]
    client = app.test_client()
    login(client, user)
    return client


def test_a_party_opens_talks_with_a_photo_and_the_coordinator_decides(
        app: Flask, session: Session, lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    if True:
        booker = _client(app, lw.owner_c)
        shown = booker.get(f"/equipment/bookings/{made.id}").get_data(as_text=True)
        assert f"/disputes/new/booking/{made.id}" in shown  # the booking's own button
        form = booker.get(f"/disputes/new/booking/{made.id}")
        assert form.status_code == 200
        assert 'value="damage_fee"' in form.get_data(as_text=True)
        refused = booker.post(f"/disputes/new/booking/{made.id}",
                              data={"source": "damage_fee", "reason": ""})
        assert refused.status_code == 422 and session.exec(select(MemberDispute)).all() == []
        session.close()  # read what the app commits next, not this snapshot
        opened = booker.post(f"/disputes/new/booking/{made.id}",
                             data={"source": "damage_fee", "reason": "Cracked before"})
        assert opened.status_code == 302, opened.get_data(as_text=True)
        assert opened.location.startswith("/disputes/"), opened.location
        dispute = session.exec(select(MemberDispute)).one()
        page = f"/disputes/{dispute.id}"
        posted = booker.post(f"{page}/messages", data={
            "body": "At check-out", "request_key": "k1",
            "photo": (io.BytesIO(jpeg_with_gps()), "light.jpg")},
            content_type="multipart/form-data")
        assert posted.status_code == 302, posted.get_data(as_text=True)
        again = booker.post(f"{page}/messages", data={"body": "At check-out",
                                                       "request_key": "k1"})
        assert again.status_code == 302
        session.close()
        [message] = session.exec(select(DisputeMessage)).all()  # the double tap: once
        assert message.photo is not None
        owner = _client(app, lw.world.owner_a)
        shown = owner.get(page).get_data(as_text=True)
        assert "At check-out" in shown and "Cracked before" in shown
        full = owner.get(f"/disputes/photos/{message.id}?size=full")
        assert full.status_code == 200
        assert MAKER.encode() not in full.data
        assert not carries_metadata(full.data, message.photo.rpartition(".")[2])
        # Nobody else: a member with no part, a rival, and a missing id answer alike.
        for outsider in (lw.owner_d, lw.world.other_owner):
            other = _client(app, outsider)
            for url in (page, f"/disputes/photos/{message.id}", "/disputes/999999",
                        "/disputes/photos/999999"):
                answer = other.get(url)
                assert answer.status_code == 404
                assert b"Cracked before" not in answer.data
            assert other.post(f"{page}/messages", data={"body": "peek"}).status_code == 404
            assert b"Shared dump trailer" not in other.get("/disputes/").data
        # A party may not decide; the coordinator decides once.
        assert owner.post(f"{page}/decide", data={"outcome": "cancel",
                                                   "note": "mine"}).status_code == 403
        coordinator = _client(app, lw.coordinator)
        bad = coordinator.post(f"{page}/decide", data={"outcome": "split",
                                                        "split_percent": "150", "note": "x"})
        assert bad.status_code == 422
        done = coordinator.post(f"{page}/decide", data={
            "outcome": "adjust", "amount": "50.00", "note": "Half the light was old"})
        assert done.status_code == 302, done.get_data(as_text=True)
        twice = coordinator.post(f"{page}/decide", data={"outcome": "cancel", "note": "x"})
        assert twice.status_code == 409
    session.close()
    settled = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.MEMBER_DISPUTE_SETTLED.value)).all()
    assert sum(e.amount_minor for e in settled) == 5_000 < DAMAGE


def test_the_api_opens_reads_posts_and_decides_under_the_same_barrier(
        app: Flask, session: Session, lw: Ledger) -> None:
    made = damaged_booking(session, lw)
    client = app.test_client()
    if True:
        opened = client.post("/api/v1/disputes", headers=bearer(session, lw.owner_c), json={
            "subject": "booking", "subject_id": made.id, "source": "damage_fee",
            "reason": "Cracked before"})
        assert opened.status_code == 201, opened.get_json()
        dispute_id = opened.get_json()["id"]
        assert opened.get_json()["disputed_minor"] == DAMAGE
        twice = client.post("/api/v1/disputes", headers=bearer(session, lw.world.owner_a),
                            json={"subject": "booking", "subject_id": made.id,
                                  "source": "damage_fee", "reason": "Mine too"})
        assert twice.status_code == 409
        said = client.post(f"/api/v1/disputes/{dispute_id}/messages",
                           headers=bearer(session, lw.world.owner_b), json={"body": "Hm"})
        assert said.status_code == 201
        for outsider in (lw.owner_d, lw.world.other_owner):
            headers = bearer(session, outsider)
            for url in (f"/api/v1/disputes/{dispute_id}", "/api/v1/disputes/999999"):
                assert client.get(url, headers=headers).status_code == 404
            assert client.get("/api/v1/disputes", headers=headers).get_json() == {
                "disputes": []}
        decided = client.post(f"/api/v1/disputes/{dispute_id}/decision",
                              headers=bearer(session, lw.coordinator),
                              json={"outcome": "split", "split_bp": 5_000, "note": "Half"})
        assert decided.status_code == 200, decided.get_json()
        body = decided.get_json()
        assert body["decided_minor"] == 5_001 and body["status"] == "decided"
        assert body["decided_by"] == lw.coordinator.name
        assert [m["body"] for m in body["messages"]] == ["Hm"]


def test_a_confirmed_jobs_parties_see_the_button_and_nobody_else(
        app: Flask, session: Session, lw: Ledger) -> None:
    from tests.ledger.conftest import handoff_job

    job = handoff_job(session, lw)  # A posted, B did it, A confirmed
    for user, shown in ((lw.world.owner_a, True), (lw.world.owner_b, True),
                        (lw.owner_d, False), (lw.coordinator, False)):
        page = _client(app, user).get(f"/jobs/{job.id}").get_data(as_text=True)
        assert (f"/disputes/new/job/{job.id}" in page) is shown, user.email


def test_a_card_paid_job_says_why_it_cannot_be_disputed_and_whom_to_ask(
        app: Flask, session: Session, lw: Ledger) -> None:
    from tests.ledger.conftest import joint_job

    job = joint_job(session, lw, paid_by_card=True)
    page = _client(app, lw.owner_d).get(f"/disputes/new/job/{job.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "paid by card through the platform" in text and "Ask the coordinator" in text
    assert "once the job is confirmed complete" not in text  # it is confirmed
    assert 'name="source"' not in text  # nothing offered to hold
