"""Domain errors: a stable code, a translatable message and per-field details.

Services raise these without knowing about HTTP or languages (no flask here);
the web layer translates the message into the user's language and maps the
error to a status code.  Messages are marked with `N_` so Babel extracts them
while the text stays an untranslated msgid until it reaches a viewer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def N_(message: str) -> str:  # noqa: N802 - the conventional gettext marker name
    """Mark a string for extraction; translation happens at the edge."""
    return message


class DomainError(Exception):
    """A refusal the user can act on: what went wrong and what to do."""

    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.params = dict(params or {})
        if status is not None:
            self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r})"


class ValidationError(DomainError):
    """Input that cannot be accepted as given (HTTP 422 for JSON, form errors)."""

    status = 422


class NotFound(DomainError):
    """Missing or outside the viewer's cluster: the two look the same on purpose."""

    status = 404


class Forbidden(DomainError):
    """The viewer is known but may not do this."""

    status = 403


class Conflict(DomainError):
    """The thing changed under the user (already claimed, already used)."""

    status = 409


class Gone(DomainError):
    """A link or window that has expired."""

    status = 410


def not_found() -> NotFound:
    """The one refusal for anything the viewer may not know exists."""
    return NotFound("not_found", N_("We could not find that page. Check the link or go back."))
