"""Who is calling the API: a personal token (Bearer) or the browser's session.

A token request is authenticated by the token alone and is exempt from CSRF
(a browser never attaches an Authorization header by itself, so a forged form
cannot use it).  A session request is the page's own JavaScript: its writes
must carry the CSRF token in the X-CSRFToken header, exactly like forms.
Nobody gets a login redirect here: an API caller without credentials gets a
401 it can act on.
"""

from __future__ import annotations

from flask import Request, g, request
from flask_login import current_user

from marketplace.api import tokens
from marketplace.clusters.models import User
from marketplace.db import utcnow
from marketplace.errors import N_, DomainError
from marketplace.extensions import csrf, login_manager
from marketplace.web import db

API_PREFIX = "/api/"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bearer_secret(req: Request) -> str | None:
    scheme, _, secret = req.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def _user_from_token(req: Request) -> User | None:
    """Flask-Login's request loader: a Bearer token, on API paths only."""
    secret = _bearer_secret(req) if req.path.startswith(API_PREFIX) else None
    user = tokens.user_for_secret(db(), secret, utcnow()) if secret else None
    if user is not None:
        g.api_token_user_id = user.id
    return user


def require_caller() -> None:
    """Before every API call but the OpenAPI document: a known, active caller.

    With a Bearer header the token decides; a session cookie sent along with it
    does not stand in for a bad token, nor for another person's.
    """
    secret = _bearer_secret(request)
    authenticated = current_user.is_authenticated  # runs the loaders first
    if secret is not None:
        # Flask-Login asks the request loader only when no session names a user; with a
        # cookie sent along, the token is checked here and must name that same person.
        token_user_id = g.get("api_token_user_id")
        if token_user_id is None:
            token_user = tokens.user_for_secret(db(), secret, utcnow())
            token_user_id = token_user.id if token_user is not None else None
        if token_user_id is None or not authenticated or token_user_id != current_user.id:
            raise DomainError("invalid_token", N_(
                "That API token is not valid (mistyped or revoked). Create a new one under "
                "Your account."), status=401)
        return
    if not authenticated:
        raise DomainError("unauthenticated", N_(
            "Log in, or send a personal API token (see Your account) as "
            "\"Authorization: Bearer <token>\"."), status=401)
    if request.method not in _SAFE_METHODS:
        csrf.protect()


def init_api_auth() -> None:
    """Tokens authenticate API calls; the API checks CSRF itself (sessions only)."""
    from marketplace.api.spec import bp

    login_manager.request_loader(_user_from_token)
    csrf.exempt(bp)
