"""Verified insurance on the pages and the API: uploads checked by decoding (nothing
stored when refused), EXIF gone, the coordinator's queue, the agreement's minimums, the
download door, and a profile that no longer takes an expiry."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlmodel import Session, func, select

from marketplace.clusters import agreements
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.documents import check_document
from marketplace.clusters.models import CertificateStatus, InsuranceCertificate, Member
from marketplace.errors import ValidationError
from tests.api.conftest import bearer
from tests.conftest import AGREEMENT_FORM, World, login
from tests.insurance.conftest import PDF, jpeg_with_exif, png
from tests.jobs.conftest import add_partner

TODAY = date.today()
UNTIL = TODAY + timedelta(days=400)


def form(document: bytes, filename: str = "certificate.jpg", **changes: str) -> dict:
    return {
        "document": (io.BytesIO(document), filename),
        "insurer": "Valley Mutual",
        "policy_number": "VM-77",
        "coverage": "2000000.00",
        "expires_on": UNTIL.isoformat(),
        **changes,
    }


def stored(session: Session) -> list[InsuranceCertificate]:
    session.rollback()
    return list(session.exec(select(InsuranceCertificate).order_by(InsuranceCertificate.id)))  # type: ignore[arg-type]


def upload(client: FlaskClient, member_id: int, data: dict) -> tuple[int, str]:
    response = client.post(
        f"/members/{member_id}/insurance", data=data, content_type="multipart/form-data"
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_renamed_file_that_is_no_picture_is_refused_and_nothing_is_stored(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.owner_b)
    for junk, name in (
        (b"MZ\x90\x00 not a picture at all" * 20, "certificate.jpg"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "scan.jpg"),
        (b"%PDF-1.4\nnothing else", "policy.pdf"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "c.gif"),
        (b"", "empty.png"),
    ):
        status, body = upload(client, world.member_b_id, form(junk, name))
        assert status == 422, name
        assert "Send the certificate as a PDF" in body or "The file is empty" in body
    assert stored(session) == []


def test_an_oversized_file_is_refused_with_the_limit(
    app: Flask, client: FlaskClient, session: Session, world: World
) -> None:
    app.config["INSURANCE_MAX_BYTES"] = 1024 * 1024
    login(client, world.owner_b)
    big = PDF.replace(b"%%EOF", b"%" + b"x" * (1024 * 1024) + b"\n%%EOF")
    status, body = upload(client, world.member_b_id, form(big, "big.pdf"))
    assert status == 422
    assert "larger than 1 MB" in body
    assert stored(session) == []


def test_a_photo_is_stored_upright_without_its_exif(
    client: FlaskClient, session: Session, world: World
) -> None:
    original = jpeg_with_exif()
    assert b"PhoneMaker" in original
    login(client, world.owner_b)
    status, _body = upload(client, world.member_b_id, form(original))
    assert status == 302
    [certificate] = stored(session)
    assert certificate.document is not None and certificate.media_type == "image/jpeg"
    assert b"PhoneMaker" not in certificate.document and b"Exif" not in certificate.document
    with Image.open(io.BytesIO(certificate.document)) as image:
        assert dict(image.getexif()) == {}
        assert image.size == (48, 64)  # turned as the EXIF said, before it was dropped
    assert (certificate.insurer, certificate.coverage_minor, certificate.expires_on) == (
        "Valley Mutual",
        2_000_000_00,
        UNTIL,
    )


def test_a_pdf_is_accepted_but_not_one_that_runs_scripts() -> None:
    assert check_document(PDF).media_type == "application/pdf"
    scripted = PDF.replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction << /JS (x) >>")
    with pytest.raises(ValidationError):
        check_document(scripted)


def test_the_coordinator_verifies_from_the_queue(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.owner_b)
    assert upload(client, world.member_b_id, form(png(), "c.png"))[0] == 302
    [certificate] = stored(session)
    for who in (world.owner_a, world.owner_b, world.crew_a):
        other = client.application.test_client()
        login(other, who)
        assert other.get("/insurance/pending").status_code == 403
        assert (
            other.post(
                f"/insurance/{certificate.id}/verify",
                data={"coverage": "2000000", "expires_on": UNTIL.isoformat()},
            ).status_code
            == 403
        )
    assert stored(session)[0].status == CertificateStatus.PENDING
    coordinator = client.application.test_client()
    login(coordinator, world.coordinator)
    page = coordinator.get("/insurance/pending").get_data(as_text=True)
    assert "Beta Stone" in page and "VM-77" in page
    refused = coordinator.post(
        f"/insurance/{certificate.id}/verify",
        data={"coverage": "-5", "expires_on": UNTIL.isoformat()},
    )
    assert refused.status_code == 422
    assert stored(session)[0].status == CertificateStatus.PENDING
    done = coordinator.post(
        f"/insurance/{certificate.id}/verify",
        data={"coverage": "1500000", "expires_on": UNTIL.isoformat()},
    )
    assert done.status_code == 302
    session.rollback()  # a new read transaction: SQLite's snapshot is taken at its start
    member = session.get(Member, world.member_b_id)
    assert member is not None
    session.refresh(member)
    assert (member.insurance_expires_on, member.insurance_coverage_minor) == (UNTIL, 1_500_000_00)
    again = coordinator.post(f"/insurance/{certificate.id}/reject", data={"reason": "x"})
    assert again.status_code == 409


def test_downloads_go_to_the_business_the_coordinator_and_job_partners_only(
    client: FlaskClient, session: Session, world: World
) -> None:
    from datetime import UTC, datetime

    from marketplace.jobs import service as jobs
    from tests.jobs.conftest import give_profile, job_draft

    now = datetime.now(UTC)
    certificate = insurance.submit_certificate(
        session,
        world.owner_b,
        world.member_b_id,
        insurance.Statement("Valley Mutual", "VM-1", 2_000_000_00, UNTIL),
        check_document(PDF),
        now,
    )
    assert certificate.id is not None
    insurance.verify_certificate(
        session, world.coordinator, certificate.id, 2_000_000_00, UNTIL, now
    )
    bystander = add_partner(session, world, "Zeta Gardens", "z@zeta.test")
    url = f"/insurance/{certificate.id}/document"

    def status(who: object) -> int:
        visitor = client.application.test_client()
        login(visitor, who)  # type: ignore[arg-type]
        return visitor.get(url).status_code

    assert status(world.owner_b) == status(world.coordinator) == 200
    assert status(world.owner_a) == status(bystander) == status(world.other_owner) == 404
    give_profile(session, world.owner_a, insurance=UNTIL)
    give_profile(session, world.owner_b, insurance=UNTIL)
    start = TODAY + timedelta(days=3)
    job = jobs.post_job(session, world.owner_a, job_draft(starts_on=start, ends_on=start), now)
    jobs.claim_job(session, world.owner_b, job.id, now)  # type: ignore[arg-type]
    visitor = client.application.test_client()
    login(visitor, world.owner_a)
    response = visitor.get(url)
    assert response.status_code == 200
    assert response.data == PDF and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Download the certificate" in visitor.get(f"/members/{world.member_b_id}").get_data(
        as_text=True
    )
    assert status(world.crew_a) == 200
    assert status(bystander) == status(world.other_owner) == status(world.other_coordinator) == 404
    # A rival probing ids learns nothing: ours and a missing one answer alike.
    rival = client.application.test_client()
    login(rival, world.other_owner)
    ours, missing = rival.get(url), rival.get(f"/insurance/{10**6}/document")
    assert ours.status_code == missing.status_code == 404
    assert not any(
        mark in ours.get_data(as_text=True) for mark in ("Beta Stone", "Valley Mutual", "VM-1")
    )


def test_the_profile_no_longer_takes_an_expiry(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.owner_b)
    page = client.get(f"/members/{world.member_b_id}/edit").get_data(as_text=True)
    assert 'name="insurance_expires_on"' not in page
    client.post(
        f"/members/{world.member_b_id}/edit",
        data={"name": "Beta Stone", "insurance_expires_on": UNTIL.isoformat()},
    )
    session.rollback()
    member = session.get(Member, world.member_b_id)
    assert member is not None
    session.refresh(member)
    assert member.insurance_expires_on is None
    api = client.application.test_client()
    headers = bearer(session, world.owner_b)
    refused = api.put(
        f"/api/v1/members/{world.member_b_id}",
        headers=headers,
        json={"name": "Beta Stone", "trades": [], "insurance_expires_on": UNTIL.isoformat()},
    )
    assert refused.status_code == 422
    session.rollback()
    session.refresh(member)
    assert member.insurance_expires_on is None
    shown = api.get(f"/api/v1/members/{world.member_b_id}", headers=headers).get_json()
    assert shown["insurance_expires_on"] is None and shown["insurance_coverage_minor"] is None


def test_the_coordinator_sets_a_minimum_coverage_per_trade(
    client: FlaskClient, session: Session, world: World
) -> None:
    login(client, world.other_coordinator)  # a charter no member has signed yet
    page = client.get("/agreement/edit").get_data(as_text=True)
    assert 'name="min_coverage-tree_work"' in page
    base = AGREEMENT_FORM
    refused = client.post("/agreement/edit", data={**base, "min_coverage-tree_work": "lots"})
    assert refused.status_code == 422
    assert 'value="lots"' in refused.get_data(as_text=True)
    assert "or leave it empty: Tree work." in refused.get_data(as_text=True)
    done = client.post(
        "/agreement/edit",
        data={**base, "min_coverage-tree_work": "5000000", "min_coverage-mowing": ""},
    )
    assert done.status_code == 302
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None and current.min_coverage == {"tree_work": 5_000_000_00}
    assert 'value="5000000.00"' in client.get("/agreement/edit").get_data(as_text=True)
    member = client.application.test_client()
    login(member, world.other_owner)
    shown = member.get("/agreement").get_data(as_text=True)
    assert "Tree work: at least $5,000,000.00 of liability coverage" in shown
    count = session.exec(select(func.count()).select_from(InsuranceCertificate)).one()
    assert count == 0


def test_the_api_lists_and_decides_certificates(
    client: FlaskClient, session: Session, world: World
) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    certificate = insurance.submit_certificate(
        session,
        world.owner_b,
        world.member_b_id,
        insurance.Statement("Valley Mutual", "VM-9", 2_000_000_00, UNTIL),
        check_document(png()),
        now,
    )
    owner, coordinator = bearer(session, world.owner_b), bearer(session, world.coordinator)
    rival = bearer(session, world.other_coordinator)
    listed = client.get(f"/api/v1/members/{world.member_b_id}/insurance", headers=owner)
    assert listed.status_code == 200
    [shown] = listed.get_json()["certificates"]
    assert (shown["status"], shown["insurer"], shown["has_document"]) == (
        "pending",
        "Valley Mutual",
        True,
    )
    assert (
        client.get(
            f"/api/v1/members/{world.member_b_id}/insurance", headers=bearer(session, world.owner_a)
        ).status_code
        == 403
    )
    assert client.get("/api/v1/insurance/pending", headers=owner).status_code == 403
    waiting = client.get("/api/v1/insurance/pending", headers=coordinator).get_json()
    assert [c["id"] for c in waiting["certificates"]] == [certificate.id]
    body = {"coverage_minor": 1_000_000_00, "expires_on": UNTIL.isoformat()}
    url = f"/api/v1/insurance/{certificate.id}/verify"
    assert client.post(url, headers=owner, json=body).status_code == 403
    assert client.post(url, headers=rival, json=body).status_code == 404
    assert (
        client.post(f"/api/v1/insurance/{10**6}/verify", headers=rival, json=body).status_code
        == 404
    )
    done = client.post(url, headers=coordinator, json=body)
    assert done.status_code == 200 and done.get_json()["status"] == "verified"
    assert client.post(url, headers=coordinator, json=body).status_code == 409
    shown = client.get(f"/api/v1/members/{world.member_b_id}", headers=owner).get_json()
    assert (shown["insurance_expires_on"], shown["insurance_coverage_minor"]) == (
        UNTIL.isoformat(),
        1_000_000_00,
    )
