"""The API's one declaration per operation: path, input schema, output schema.

`operation` registers a Flask route under /api/v1 *and* records the same
pydantic models it validates with, so the OpenAPI document (`openapi()`) is
generated from exactly the schemas that check requests and shape responses: the
two cannot drift.  Request bodies are JSON objects; unknown fields are refused,
because a misspelt field silently ignored is a bug report waiting to happen.
Responses are validated on the way out, so a response that would break the
published schema fails loudly in tests instead of reaching a client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError
from pydantic.json_schema import models_json_schema

from marketplace.db import MAX_ID
from marketplace.errors import N_, ValidationError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

_PATH_VARIABLE = re.compile(r"{(\w+)}")


class RequestModel(BaseModel):
    """A request body or query: strict about unknown fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ResponseModel(BaseModel):
    """A response object, built from our rows or dicts."""

    model_config = ConfigDict(from_attributes=True)


class ErrorDetail(ResponseModel):
    code: str
    message: str
    fields: dict[str, str]


class ErrorBody(ResponseModel):
    """Every refusal: a stable code, a message in the caller's language, one per field."""

    error: ErrorDetail


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    endpoint: str
    summary: str
    tag: str
    body: type[RequestModel] | None
    query: type[RequestModel] | None
    response: type[ResponseModel] | None
    status: int
    string_params: tuple[str, ...]


OPERATIONS: list[Operation] = []

_MESSAGES = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not part of the request; remove it."),
    "string_too_short": N_("This text is too short."),
    "string_too_long": N_("This text is too long."),
    "greater_than_equal": N_("This number is too small."),
    "greater_than": N_("This number is too small."),
    "less_than_equal": N_("This number is too large."),
    "less_than": N_("This number is too large."),
    "literal_error": N_("Choose one of the allowed values."),
    "enum": N_("Choose one of the allowed values."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_type": N_("Enter a date as YYYY-MM-DD."),
    "datetime_parsing": N_("Enter a date and time with its UTC offset, such as "
                           "2026-05-04T08:00:00+02:00."),
    "datetime_from_date_parsing": N_("Enter a date and time with its UTC offset, such as "
                                     "2026-05-04T08:00:00+02:00."),
    "timezone_aware": N_("Enter a date and time with its UTC offset, such as "
                         "2026-05-04T08:00:00+02:00."),
    "datetime_type": N_("Enter a date and time with its UTC offset, such as "
                        "2026-05-04T08:00:00+02:00."),
    "int_type": N_("Enter a whole number."),
    "int_parsing": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "float_type": N_("Enter a number."),
    "float_parsing": N_("Enter a number."),
    "finite_number": N_("Enter a number."),
    "bool_type": N_("Enter true or false."),
    "bool_parsing": N_("Enter true or false."),
    "string_type": N_("Enter text."),
    "list_type": N_("Enter a list."),
    "dict_type": N_("Enter an object."),
    "model_type": N_("Enter an object."),
    "too_short": N_("Enter at least one value."),
    "too_long": N_("Too many values."),
}
_FALLBACK = N_("This value is not valid.")


def refusal_of(error: PydanticError) -> ValidationError:
    """A pydantic refusal as our own 422: one message per field, translatable."""
    fields: dict[str, str] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        fields.setdefault(name, _MESSAGES.get(item["type"], _FALLBACK))
    return ValidationError("invalid_request", N_("Some fields need your attention."),
                           fields=fields)


def _parsed_body(model: type[RequestModel]) -> RequestModel:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        message = N_("Send a JSON object with Content-Type: application/json.")
        raise ValidationError("invalid_json", message, fields={"body": message})
    try:
        return model.model_validate(data)
    except PydanticError as error:
        raise refusal_of(error) from None


def _parsed_query(model: type[RequestModel]) -> RequestModel:
    try:
        return model.model_validate(request.args.to_dict())
    except PydanticError as error:
        raise refusal_of(error) from None


def _flask_rule(path: str, string_params: tuple[str, ...]) -> str:
    def converter(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"<{name}>" if name in string_params else f"<int:{name}>"
    return _PATH_VARIABLE.sub(converter, path)


def document(response: type[BaseModel], result: Any) -> dict[str, Any]:
    """`result` (a row, a dict or a read model) in the JSON shape of `response`: the one
    shape the API and a page's JSON both answer with.  Fields `result` does not carry
    (those the barrier withheld) stay absent, never null."""
    return response.model_validate(result).model_dump(mode="json", exclude_unset=True)


def operation(method: str, path: str, *, summary: str, tag: str,
              body: type[RequestModel] | None = None, query: type[RequestModel] | None = None,
              response: type[ResponseModel] | None = None, status: int | None = None,
              string_params: tuple[str, ...] = (),
              limit: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
              ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `method path` (OpenAPI notation, ids as {name}) and its schemas.

    The decorated function gets the path variables, plus `body` and/or `query` as
    validated models, and returns what `response` is built from (a row, a dict or
    a model); None means 204 No Content.  `limit` is a rate limit of
    `marketplace.ratelimits`, shared with the page doing the same thing.
    """
    success = status or (200 if response is not None else 204)

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        def view(**path_args: Any) -> ResponseReturnValue:
            inputs: dict[str, Any] = {}
            if body is not None:
                inputs["body"] = _parsed_body(body)
            if query is not None:
                inputs["query"] = _parsed_query(query)
            result = handler(**path_args, **inputs)
            if response is None:
                return "", 204
            return jsonify(document(response, result)), success

        endpoint = handler.__name__
        view.__name__ = endpoint  # rate limits and logs name the operation
        bp.add_url_rule(_flask_rule(path, string_params), endpoint,
                        limit(view) if limit else view, methods=[method])
        OPERATIONS.append(Operation(method, path, endpoint, summary, tag, body, query,
                                    response, success, string_params))
        return handler
    return decorate


def _parameters(op: Operation, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = []
    for name in _PATH_VARIABLE.findall(op.path):
        schema = ({"type": "string", "pattern": r"^\d{4}-\d{2}$"} if name == "month" else
                  {"type": "string"} if name in op.string_params else
                  {"type": "integer", "minimum": 0, "maximum": MAX_ID})
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        query_schema = schemas[op.query.__name__]
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "schema": schema})
    return parameters


_ERROR_STATUSES = {
    "400": "The request could not be read.",
    "401": "No valid session or API token.",
    "403": "The caller may not do this.",
    "404": "Not found, or not visible to the caller.",
    "409": "The object is not in a state that allows this.",
    "422": "Input refused; `fields` says what to fix.",
    "429": "Too many requests; wait and retry.",
}


def openapi(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every registered operation."""
    models: set[type[BaseModel]] = {ErrorBody}
    for op in OPERATIONS:
        models.update(m for m in (op.body, op.query, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _keys, definitions = models_json_schema(
        [(m, "validation" if issubclass(m, RequestModel) else "serialization")
         for m in ordered], ref_template="#/components/schemas/{model}")
    schemas = definitions.get("$defs", {})
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        responses: dict[str, Any] = {
            code: {"description": text, "content": {"application/json": {"schema": error_ref}}}
            for code, text in _ERROR_STATUSES.items()}
        if op.response is None:
            responses[str(op.status)] = {"description": "Done."}
        else:
            responses[str(op.status)] = {"description": "OK", "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{op.response.__name__}"}}}}
        entry: dict[str, Any] = {"operationId": op.endpoint, "summary": op.summary,
                                 "tags": [op.tag], "parameters": _parameters(op, schemas),
                                 "responses": responses}
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}}
        paths.setdefault("/api/v1" + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Coopetition marketplace API", "version": version,
                 "description": "Every action a member can take in the pages, as JSON. "
                                "Amounts are integers in minor units of the cluster's "
                                "currency; times are ISO 8601 with a UTC offset."},
        "servers": [{"url": "/"}],
        "security": [{"bearerToken": []}, {"sessionCookie": []}],
        "components": {"schemas": schemas, "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "A personal API token from your profile page."},
            "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                              "description": "The browser session; writes then also need "
                                             "the X-CSRFToken header."}}},
        "paths": paths,
    }
