"""Who may use the API: the page matrix's world, every API operation, every outsider.

The API calls the same services as the pages, so the per-role policy (crew,
owner, partner, coordinator) is the one tests/test_authorization_matrix.py
pins down route by route.  What the API adds is its own door and its own
bodies, checked here for every operation:

- no credentials: 401 with a message that says what to send, and none of our data;
- a rival cluster's owner and coordinator, with a token of their own, aimed at our
  objects (path ids, and ids inside otherwise valid bodies): refused with 403 or 404
  — the same answer as for ids that exist nowhere — never a byte of ours, and not
  one row of any table changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from sqlmodel import Session

from marketplace.api import tokens
from marketplace.api.spec import OPERATIONS, Operation
from marketplace.api.views import API_VERSION  # noqa: F401 - registers every operation
from marketplace.db import utcnow
from tests.api.conftest import bearer
from tests.conftest import World
from tests.matrix_world import MatrixWorld, build_world, table_digest

#: Where each path variable and body id of an operation points: one of our objects.
TARGETS = {"job_id": "open_job", "bid_id": "joint_bid", "equipment_id": "machine",
           "booking_id": "booking", "blackout_id": "blackout", "custody_id": "custody",
           "swap_id": "swap", "member_id": "member_a", "ratee_member_id": "member_a",
           "offered_id": "their_period", "wanted_id": "their_period", "month": "month",
           "token_id": "token", "certificate_id": "pending_certificate",
           "dispute_id": "dispute", "message_id": "dispute_photo", "proposal_id": "proposal",
           "review_id": "review"}
RIVALS = ("other_owner", "other_coordinator")
OUR_MARKERS = ("Alpha Lawns", "Beta Stone", "Zelda Quackenbush", "Evergreen", "Kubota",
               "Bobcat")
EXAMPLES = 4


def _path_names(op: Operation) -> list[str]:
    return [part[1:-1] for part in op.path.split("/") if part.startswith("{")]


def _reaches_us(op: Operation) -> bool:
    body_ids = set(op.body.model_fields) & set(TARGETS) if op.body else set()
    return bool(set(_path_names(op)) - {"month"} or body_ids)


@pytest.fixture
def our_world(app: Flask, session: Session, world: World) -> MatrixWorld:
    built = build_world(session, world, Path(app.config["UPLOAD_DIR"]))
    built.ids["token"] = tokens.create_token(session, world.owner_a, "ours", utcnow()).token.id
    return built


@pytest.mark.parametrize("op", OPERATIONS, ids=[op.endpoint for op in OPERATIONS])
def test_no_credentials_get_a_401_and_nothing_of_ours(app: Flask, our_world: MatrixWorld,
                                                       op: Operation) -> None:
    path = "/api/v1" + op.path.format(**{name: our_world.ids[TARGETS[name]]
                                         for name in _path_names(op)})
    response = app.test_client().open(path, method=op.method, json={})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"]
    assert not any(m in response.get_data(as_text=True) for m in OUR_MARKERS)


@pytest.mark.parametrize("rival", RIVALS)
@pytest.mark.parametrize("op", [op for op in OPERATIONS if _reaches_us(op)],
                         ids=[op.endpoint for op in OPERATIONS if _reaches_us(op)])
def test_a_rival_aimed_at_our_objects_is_refused_and_writes_nothing(
        app: Flask, session: Session, our_world: MatrixWorld, rival: str, op: Operation
) -> None:
    headers = bearer(session, getattr(our_world.world, rival))
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200
    session.rollback()  # the token's first use is recorded before the digest, not during
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[
        "/api/v1" + op.path][op.method]
    ours = {name: our_world.ids[target] for name, target in TARGETS.items()}
    missing = {name: (10**6 + n if isinstance(value, int) else value)
               for n, (name, value) in enumerate(ours.items())}
    before = table_digest(session)
    seen: list[tuple[int, int]] = []

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def aim(case: Any) -> None:
        statuses = []
        for ids in (ours, missing):
            case.path_parameters = {name: ids[name] for name in _path_names(op)}
            if isinstance(case.body, dict):
                case.body = {**case.body, **{k: ids[k] for k in case.body if k in ids}}
            response = case.call(headers=headers)
            assert not any(m in response.text for m in OUR_MARKERS), response.text
            statuses.append(response.status_code)
        seen.append((statuses[0], statuses[1]))

    aim()
    assert table_digest(session) == before, "a rival's call changed our tables"
    for status_ours, status_missing in seen:
        # 422: the generated body was refused before any id was looked at, for both.
        assert status_ours in (403, 404, 422), seen
        assert status_ours == status_missing, seen
    assert any(status != 422 for status, _m in seen), f"no call reached the lookup: {seen}"
