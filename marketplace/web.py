"""Glue between Flask requests and the services: a session per request, and
domain errors turned into pages or JSON in the viewer's language.

Views stay thin: parse input, call one service, render.  Whatever a service
refuses comes back here as a `DomainError` and leaves as a 4xx that says what
to fix, never as a 500 or a half-written row (the request's session is rolled
back on every error).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import get_locale, gettext
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy.engine import Engine
from sqlmodel import Session
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import IntegerConverter

from marketplace.clusters.models import User
from marketplace.clusters.trades import TRADES
from marketplace.db import MAX_ID, NO_SUCH_ID, ReadersWrite, reading
from marketplace.errors import N_, DomainError, ValidationError
from marketplace.i18n import NonexistentLocalTime, local_to_utc
from marketplace.money import InvalidAmount, parse_minor

log = logging.getLogger(__name__)

class IdConverter(IntegerConverter):
    """`<int:...>` in URLs: an id too large for the database becomes NO_SUCH_ID, so the
    lookup answers the usual 404 instead of a query the database driver refuses.

    (Refusing the match instead, with `max=`, would make werkzeug answer 405 where
    another method shares the path.)"""

    def to_python(self, value: str) -> int:
        number = int(value)
        return number if number <= MAX_ID else NO_SUCH_ID


def _null_characters(value: Any, name: str = "") -> Iterator[str]:
    """The names of the fields (JSON paths) whose text holds a NUL character."""
    if isinstance(value, str):
        if "\x00" in value:
            yield name
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _null_characters(key, name)
            yield from _null_characters(item, f"{name}.{key}".lstrip("."))
    elif isinstance(value, list):
        for item in value:
            yield from _null_characters(item, name)


def _refuse_null_characters() -> None:
    """PostgreSQL cannot store a NUL character in text, and no person types one: a form
    field, query parameter or JSON value carrying one is refused up front with a 422,
    instead of failing at the database as a 500 (on SQLite too, so both answer alike)."""
    found = {name for key, value in [*request.args.items(multi=True),
                                     *request.form.items(multi=True)]
             for name in _null_characters(value, key)}
    if request.is_json:
        try:
            found.update(_null_characters(request.get_json(silent=True)))
        except RecursionError:  # thousands of nested brackets: no request of ours
            raise BadRequest() from None
    if found:
        message = N_("A field holds a null character, which cannot be saved. Remove it and "
                     "send the form again.")
        raise ValidationError("null_character", message,
                              fields={name or "body": message for name in sorted(found)})


#: Requests that are meant to read only: their session reads without queueing for
#: SQLite's write lock (`marketplace.db.reading`).
READ_METHODS = frozenset({"GET", "HEAD"})
_AS_WRITER = "marketplace.as_writer"  # environ: run this read request as a writer
_RETRY = "marketplace.retry_as_writer"  # environ: its read transaction could not write


def db() -> Session:
    """The database session of the current request, opened on first use.

    A GET or HEAD reads (`reading`): on SQLite it neither waits for nor holds the
    write lock.  One that writes all the same is upgraded when it writes, or, when
    the database changed since it read, run again from the start as a writer
    (`_RunAgainAsWriter`)."""
    if "db_session" not in g:
        engine = current_app.extensions["engine"]
        if request.method in READ_METHODS and not request.environ.get(_AS_WRITER):
            engine = _reading_engine()
        g.db_session = Session(engine, expire_on_commit=False)
    return g.db_session


def _reading_engine() -> Engine:
    readers = current_app.extensions.get("reading_engine")
    if readers is None:
        readers = current_app.extensions["reading_engine"] = \
            reading(current_app.extensions["engine"])
    return readers


def _roll_back_refused() -> None:
    """Undo a refused action's writes; what the request does after that (render the
    refusal, which reloads the viewer's language after the rollback) only reads, so it
    does not queue for SQLite's write lock a second time."""
    session = db()
    session.rollback()
    session.bind = _reading_engine()


class _RunAgainAsWriter:
    """WSGI wrapper: a read request whose write SQLite refused (`ReadersWrite`: the
    database changed after it read) is answered by a second run as a writer.

    The first run wrote nothing and sent nothing (its answer is dropped before any
    byte leaves), and a GET has no body to read twice, so running it again is the
    request as if it had come a moment later.
    """

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") not in READ_METHODS:
            return self.wsgi_app(environ, start_response)
        fresh = dict(environ)

        def relay(status: str, headers: Any, exc_info: Any = None) -> Any:
            if environ.get(_RETRY):
                return lambda _data: None
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, relay)
        if not environ.get(_RETRY):
            return body
        if hasattr(body, "close"):
            body.close()
        # (only the path's first segment: a link's path can carry its secret token)
        log.info("read request under /%s wrote after the data changed: run again as a "
                 "writer", (environ.get("PATH_INFO") or "/").split("/")[1])
        return self.wsgi_app({**fresh, _AS_WRITER: True}, start_response)


def _readers_write(_error: ReadersWrite) -> ResponseReturnValue:
    db().rollback()
    request.environ[_RETRY] = True
    return "", 503  # never sent: _RunAgainAsWriter answers with the second run


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def viewer() -> User:
    """The logged-in user as the model the services take."""
    return current_user._get_current_object()


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


def csv_download(rows: Iterable[Sequence[object]], filename: str) -> Response:
    """A CSV file the browser saves as `filename`; cells people typed must already be
    `spreadsheet.spreadsheet_text`."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})


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


#: The refusals a form shows next to its fields: input it can correct (a 422).
SHOWN_ON_FORM: frozenset[int] = frozenset({422})


def submit(form: FlaskForm, action: Callable[[], ResponseReturnValue],
           again: Callable[[], str], *, shown: Collection[int] = SHOWN_ON_FORM,
           rename: Mapping[str, str] | None = None) -> ResponseReturnValue:
    """The one way a form view answers: `action` (call the service, then redirect or
    answer) or, when a service refuses, the form again.

    A refusal undoes the action's writes.  One the form can show (a 422: the viewer
    corrects a field) puts its messages next to the fields and answers the page
    `again()` renders with the refusal's status.  Any other (403, 404, 409 ...) and any
    refusal to a JSON client leave to the app's error answer (error page or JSON
    error), never a form that looks as if it only needed another try.

    `shown` widens what the form shows, for a form that is itself the place to see
    why (booking: the slot someone else holds is on the machine's week).  `rename`
    maps a service's field names to the form's (`base_lat` -> `base_place`); the first
    message for a form field wins.
    """
    try:
        return action()
    except DomainError as error:
        if error.status not in shown or wants_json():
            raise  # `_domain_error` rolls back and answers
        db().rollback()
        for name, field in (rename or {}).items():
            if name in error.fields:
                error.fields.setdefault(field, error.fields.pop(name))
        apply_to_form(form, error)
        return again(), error.status


def _logged_path() -> str:
    """The request's route as logs may show it: the rule with its placeholders
    (`/account/password/reset/<token>`), never the path, which can carry a secret."""
    rule = request.url_rule
    return rule.rule if rule is not None else "(no route)"


def _domain_error(error: DomainError) -> ResponseReturnValue:
    # The refusal is worded in the viewer's language: settle it (Flask-Babel keeps it for
    # the request) before the rollback expires the viewer, which would load them again.
    get_locale()
    _roll_back_refused()
    log.info("refused %s %s: %s", request.method, _logged_path(), error.code)
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
    log.exception("unhandled error on %s %s", request.method, _logged_path())
    db().rollback()
    message = gettext("Something went wrong on our side. Nothing was saved; try again.")
    if wants_json():
        return jsonify({"error": {"code": "server_error", "message": message,
                                  "fields": {}}}), 500
    return render_template("errors/error.html", status=500, message=message), 500


def init_web(app: Flask) -> None:
    """Register the request session, error handlers and the id converter (before any
    route is added)."""
    app.url_map.converters["int"] = IdConverter
    app.before_request(_refuse_null_characters)
    app.teardown_appcontext(_close_session)
    app.jinja_env.globals["refusal_message"] = translate
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(ReadersWrite, _readers_write)
    app.wsgi_app = _RunAgainAsWriter(app.wsgi_app)  # type: ignore[method-assign]  # middleware
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _server_error)
