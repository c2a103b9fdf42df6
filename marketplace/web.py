"""Glue between Flask requests and the services: a session per request, and
domain errors turned into pages or JSON in the viewer's language.

Views stay thin: parse input, call one service, render.  Whatever a service
refuses comes back here as a `DomainError` and leaves as a 4xx that says what
to fix, never as a 500 or a half-written row (the request's session is rolled
back on every error).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlmodel import Session
from werkzeug.exceptions import HTTPException

from marketplace.clusters.models import User
from marketplace.clusters.trades import TRADES
from marketplace.errors import N_, DomainError, ValidationError
from marketplace.i18n import NonexistentLocalTime, local_to_utc
from marketplace.money import InvalidAmount, parse_minor

log = logging.getLogger(__name__)


def db() -> Session:
    """The database session of the current request, opened on first use."""
    if "db_session" not in g:
        g.db_session = Session(current_app.extensions["engine"], expire_on_commit=False)
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def viewer() -> User:
    """The logged-in user as the model the services take."""
    return current_user._get_current_object()  # type: ignore[attr-defined, no-any-return]


def money_from_form(text: str, field: str, currency: str) -> int:
    """An amount typed the viewer's way ("1 234,56" in French) in minor units, or a 422."""
    try:
        return parse_minor(text, currency, str(get_locale() or "en"))
    except (InvalidAmount, TypeError):
        message = N_("Enter an amount such as 1234.56, written the way your language "
                     "writes numbers.")
        raise ValidationError("invalid_amount", message, fields={field: message}) from None


def utc_from_form(local: datetime, field: str, timezone: str | None = None) -> datetime:
    """A wall-clock time typed in a form as UTC; a time the clocks skip is a 422."""
    try:
        return local_to_utc(local, timezone)
    except NonexistentLocalTime:
        message = N_("That time does not exist on that day (the clocks change). "
                     "Choose another time.")
        raise ValidationError("nonexistent_time", message, fields={field: message}) from None


def translate(error: DomainError, message: str | None = None) -> str:
    """The error's message (or one of its field messages) in the viewer's language.

    A list parameter holds codes (trades); each is shown by its translated label.
    """
    params = {name: ", ".join(gettext(TRADES[c]) if c in TRADES else str(c) for c in value)
              if isinstance(value, list) else value for name, value in error.params.items()}
    return gettext(message or error.message, **params)


def wants_json() -> bool:
    """API calls and clients that prefer JSON get JSON errors."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_payload(error: DomainError) -> dict[str, Any]:
    """The JSON body of a refusal: stable code, message, and a message per field."""
    return {"error": {
        "code": error.code,
        "message": translate(error),
        "fields": {name: translate(error, text) for name, text in error.fields.items()},
    }}


def apply_to_form(form: FlaskForm, error: DomainError) -> None:
    """Show a service's per-field refusals next to the form fields they concern."""
    unplaced = []
    for name, text in error.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, translate(error, text)]
        else:  # e.g. weekly hours or shares, entered in inputs that are not form fields
            unplaced.append(translate(error, text))
    if not error.fields or not any(hasattr(form, name) for name in error.fields):
        form.form_errors.append(translate(error))
    form.form_errors.extend(unplaced)


def _domain_error(error: DomainError) -> ResponseReturnValue:
    db().rollback()
    log.info("refused %s %s: %s", request.method, request.path, error.code)
    if wants_json():
        return jsonify(error_payload(error)), error.status
    return render_template("errors/error.html", status=error.status,
                           message=translate(error), fields=error.fields), error.status


def _http_error(error: HTTPException) -> ResponseReturnValue:
    status = error.code or 500
    messages = {
        400: gettext("The request was not understood. Reload the page and try again."),
        403: gettext("You do not have access to this page."),
        404: gettext("We could not find that page. Check the link or go back."),
        405: gettext("This address does not accept that kind of request."),
        413: gettext("The upload is too large. Choose a smaller file."),
        429: gettext("Too many attempts. Wait a minute and try again."),
    }
    message = messages.get(status, gettext("Something went wrong. Try again."))
    if isinstance(error, CSRFError):
        message = gettext("Your form expired. Reload the page and submit it again.")
    if wants_json():
        return jsonify({"error": {"code": f"http_{status}", "message": message,
                                  "fields": {}}}), status
    return render_template("errors/error.html", status=status, message=message), status


def _server_error(error: Exception) -> ResponseReturnValue:
    log.exception("unhandled error on %s %s", request.method, request.path)
    db().rollback()
    message = gettext("Something went wrong on our side. Nothing was saved; try again.")
    if wants_json():
        return jsonify({"error": {"code": "server_error", "message": message,
                                  "fields": {}}}), 500
    return render_template("errors/error.html", status=500, message=message), 500


def init_web(app: Flask) -> None:
    """Register the request session and error handlers."""
    app.teardown_appcontext(_close_session)
    app.jinja_env.globals["refusal_message"] = translate
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
