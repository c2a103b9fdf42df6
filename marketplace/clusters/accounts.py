"""Passwords, log-in checks and password-reset tokens.

argon2 because it is memory-hard (a leaked table stays expensive to crack);
reset tokens are signed and embed a fingerprint of the current hash, so a
token stops working the moment it has been used (the hash changes) and no
token table is needed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func
from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.errors import N_, Gone, ValidationError
from marketplace.scope import Slot

log = logging.getLogger(__name__)
#: The app's argon2 hasher (its cost), lent to its sessions (marketplace/scope.py).
PASSWORDS: Slot[PasswordHasher] = Slot("passwords")
#: The hasher of code that runs outside any app (a script, a benchmark); no app sets it.
_hasher = PasswordHasher()


def _in_caller(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args)


#: Where this process runs argon2 (see `run_hashing_in`).  Process-wide on purpose:
#: whether a hash must leave the caller's thread depends on whether gevent patched the
#: process, which is true or false for every app in it alike.
_run: Callable[..., Any] = _in_caller
MIN_PASSWORD_LENGTH = 10
_RESET_SALT = "password-reset"


def make_hasher(time_cost: int, memory_cost_kib: int) -> PasswordHasher:
    """An argon2 hasher at this cost (tests use a cheap one; production the default).

    Existing hashes keep verifying whatever the setting: argon2 stores its own
    parameters, and `authenticate` rehashes on the next login when they differ.
    """
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib)


def configure_hashing(time_cost: int, memory_cost_kib: int) -> None:
    """Set the argon2 cost of code that runs outside any app (a script, a benchmark).
    An app never calls this: its sessions hash with the app's own hasher (`PASSWORDS`)."""
    global _hasher
    _hasher = make_hasher(time_cost, memory_cost_kib)


def run_hashing_in(runner: Callable[..., Any]) -> None:
    """Where argon2 runs: `runner(function, *args)`.  By default in the caller; under
    gevent in a native thread of a pool bounded to the cores (marketplace/serving.py),
    because one hash is ~0.2 s of CPU in C that would otherwise hold every page and
    phone of the process; not gevent's shared pool, which also resolves host names."""
    global _run
    _run = runner


def hasher_of(session: Session) -> PasswordHasher:
    """The hasher of the session's app (outside any app, the process's own)."""
    return PASSWORDS.of(session) or _hasher


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """Hash a new password after checking it is long enough to be useful; services pass
    `hasher_of(session)`, so the password gets its app's cost."""
    check_password_strength(password)
    return str(_run((hasher or _hasher).hash, password))


def check_password_strength(password: str) -> None:
    """Refuse passwords too short to survive a guessing attack."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            "password_too_short",
            N_("Use at least %(count)d characters for your password."),
            fields={"password": N_("Use at least %(count)d characters for your password.")},
            params={"count": MIN_PASSWORD_LENGTH},
        )


def normalise_email(email: str) -> str:
    """E-mail addresses compare case-insensitively and without stray spaces."""
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user with this e-mail address, if any."""
    return session.exec(
        select(User).where(func.lower(User.email) == normalise_email(email))
    ).first()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with these credentials, or None.  Same answer for every failure."""
    hasher = hasher_of(session)
    user = find_user_by_email(session, email)
    if user is None or not user.active:
        _run(hasher.hash, password)  # spend the same time so timing does not reveal accounts
        return None
    try:
        _run(hasher.verify, user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = str(_run(hasher.hash, password))
        session.add(user)
        session.commit()
    return user


def _fingerprint(user: User) -> str:
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def make_reset_token(secret_key: str, user: User) -> str:
    """A signed token that resets this user's password until it is used."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    return serializer.dumps({"u": user.id, "f": _fingerprint(user)})


def _invalid_reset_link() -> Gone:
    return Gone(
        "reset_link_invalid",
        N_("This password reset link is invalid, expired or already used. Ask for a new one."),
    )


def reset_password(
    session: Session,
    secret_key: str,
    token: str,
    new_password: str,
    max_age_seconds: int,
    now: datetime,
) -> User:
    """Set a new password from a reset token; the token is spent by doing so."""
    serializer = URLSafeTimedSerializer(secret_key, salt=_RESET_SALT)
    try:
        data = serializer.loads(token, max_age=max_age_seconds)
    except (SignatureExpired, BadSignature):
        raise _invalid_reset_link() from None
    user = session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or not user.active or data.get("f") != _fingerprint(user):
        raise _invalid_reset_link()
    user.password_hash = hash_password(new_password, hasher_of(session))
    session.add(user)
    session.commit()
    log.info("password reset for user_id=%s at %s", user.id, now.isoformat())
    return user
