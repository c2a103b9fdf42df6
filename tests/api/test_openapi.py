"""The published OpenAPI document against the running API, with schemathesis.

Every operation is called with generated input — valid by the schema and
deliberately invalid — by a member's token in a small real cluster: no answer
may be a 5xx, none may contradict the document (status, content type, body
schema), schema-invalid input must be refused, and a refusal writes nothing
(every table compared before and after).  The examples per operation
are bounded so the suite stays fast, and derandomized in CI so a red run
reproduces.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlmodel import Session

from marketplace.api.spec import OPERATIONS
from marketplace.api.views import API_VERSION
from tests.api.conftest import bearer
from tests.conftest import IN_CI, World
from tests.matrix_world import table_digest

EXAMPLES = 12
# "Schema-valid input must be accepted" cannot hold for a service with rules the schema
# cannot state (a time zone must exist, a booking must fit the opening hours): those
# answer 422 with fields, which the other checks still hold to the documented shape.


@pytest.fixture
def token_headers(session: Session, jobs_world: World) -> dict[str, str]:
    return bearer(session, jobs_world.owner_a)


def test_the_document_is_openapi_3_1_and_covers_every_api_route(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0" and document["info"]["version"] == API_VERSION
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    routed = {(op.method, "/api/v1" + op.path) for op in OPERATIONS}
    assert documented == routed
    flask_rules = {rule.rule for rule in app.url_map.iter_rules()
                   if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi_document"}
    assert len(flask_rules) == len({path for _m, path in routed})


# schemathesis' own pytest plugin (`from_fixture`) does not run under pytest 9, so each
# operation is a plain parametrized test driving schemathesis' hypothesis strategy.
@pytest.mark.parametrize("method,path", [(op.method, op.path) for op in OPERATIONS],
                         ids=[op.endpoint for op in OPERATIONS])
def test_api_answers_generated_calls_within_its_schema(
        app: Flask, session: Session, token_headers: dict[str, str], method: str, path: str
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema["/api/v1" + path][method]

    assert app.test_client().get("/api/v1/me", headers=token_headers).status_code == 200

    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    if operation.body or operation.query or len(operation.path_parameters):
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=IN_CI, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case: Any) -> None:
        before = table_digest(session)
        response = case.call_and_validate(headers=token_headers, excluded_checks=[
            positive_data_acceptance])
        if response.status_code >= 400:
            assert table_digest(session) == before, "a refused call wrote something"

    call()
