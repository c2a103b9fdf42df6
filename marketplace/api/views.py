"""The /api/v1 blueprint: its operations, its caller check, and its OpenAPI document."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from marketplace.api import (  # noqa: F401 - they register
    clusters,
    disputes,
    equipment,
    exit,
    governance,
    jobs,
    ledger,
    reviews,
)
from marketplace.api.auth import require_caller
from marketplace.api.spec import bp, openapi

API_VERSION = "1.0.0"


@bp.before_request
def _authenticate() -> None:
    if request.endpoint != "api.openapi_document":
        require_caller()


@bp.route("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """Public, so client generators and schemathesis can read it without a token."""
    return jsonify(openapi(API_VERSION))
