"""An owner's script uploads its certificate through the API: the same checks as the page
(decoded, size-capped, a photo's metadata stripped), nothing stored when refused, and
only the business's own owners may upload."""

from __future__ import annotations

import base64
import io
from datetime import date, timedelta

from flask.testing import FlaskClient
from PIL import Image
from sqlmodel import Session, func, select

from marketplace.clusters.models import InsuranceCertificate
from tests.api.conftest import bearer
from tests.conftest import World
from tests.insurance.conftest import PDF, jpeg_with_exif

UNTIL = date.today() + timedelta(days=400)


def _body(document: bytes, **changes: object) -> dict[str, object]:
    return {"insurer": "Valley Mutual", "policy_number": "VM-9",
            "coverage_minor": 2_000_000_00, "expires_on": UNTIL.isoformat(),
            "document_base64": base64.b64encode(document).decode(), **changes}


def _stored(session: Session) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(InsuranceCertificate)).one()


def test_an_owner_uploads_a_photo_and_its_metadata_is_gone(
    client: FlaskClient, session: Session, world: World
) -> None:
    url = f"/api/v1/members/{world.member_b_id}/insurance"
    made = client.post(url, headers=bearer(session, world.owner_b), json=_body(jpeg_with_exif()))
    assert made.status_code == 201, made.get_json()
    shown = made.get_json()
    assert (shown["status"], shown["has_document"], shown["coverage_minor"]) == (
        "pending", True, 2_000_000_00)
    stored = session.get(InsuranceCertificate, shown["id"])
    assert stored is not None and stored.document is not None
    kept = Image.open(io.BytesIO(stored.document))
    assert not kept.getexif(), "the camera and GPS position must not be kept"
    pending = client.get("/api/v1/insurance/pending",
                         headers=bearer(session, world.coordinator)).get_json()
    assert [c["id"] for c in pending["certificates"]] == [shown["id"]]


def test_a_refused_upload_says_what_to_send_and_stores_nothing(
    client: FlaskClient, session: Session, world: World
) -> None:
    url = f"/api/v1/members/{world.member_b_id}/insurance"
    owner = bearer(session, world.owner_b)
    for body in (_body(b"not a document"), _body(PDF[:40]),
                 {**_body(PDF), "document_base64": "%%% not base64 %%%"}):
        refused = client.post(url, headers=owner, json=body)
        assert refused.status_code == 422, refused.get_json()
        assert refused.get_json()["error"]["fields"]["document_base64"]
    client.application.config["INSURANCE_MAX_BYTES"] = 1024
    big = client.post(url, headers=owner, json=_body(PDF + b"%" * 2048))
    assert big.status_code == 422 and "MB" in big.get_json()["error"]["fields"]["document_base64"]
    assert _stored(session) == 0


def test_only_the_business_s_own_owners_upload(
    client: FlaskClient, session: Session, world: World
) -> None:
    url = f"/api/v1/members/{world.member_b_id}/insurance"
    for user, status in ((world.owner_a, 403), (world.coordinator, 403),
                         (world.other_owner, 404)):
        refused = client.post(url, headers=bearer(session, user), json=_body(PDF))
        assert refused.status_code == status, (user.email, refused.get_json())
    assert _stored(session) == 0
