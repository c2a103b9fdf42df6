"""Create, list, revoke and check per-user API tokens.

A token is 32 random bytes (URL-safe text, prefixed "cm_" so leaked ones are
easy to spot).  Only its SHA-256 is stored: a fast hash is right here because
the secret has 256 bits of entropy, so there is nothing to brute-force, and the
lookup must be one indexed query per API call.  A revoked token, or one whose
person was deactivated, authenticates nobody.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from marketplace.api.models import ApiToken
from marketplace.clusters.models import User
from marketplace.errors import N_, ValidationError, not_found
from marketplace.persisted import id_of

SECRET_PREFIX = "cm_"
MAX_ACTIVE_TOKENS = 20
# Writing last_used_at on every call would turn reads into writes; once a minute is enough
# for a person to see which token is still in use.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A new token and its secret, which exists only in this object."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def active_tokens(session: Session, user: User) -> list[ApiToken]:
    """The person's tokens that still work, newest first."""
    return list(session.exec(
        select(ApiToken).where(ApiToken.user_id == user.id, col(ApiToken.revoked_at).is_(None))
        .order_by(col(ApiToken.id).desc())))


def create_token(session: Session, user: User, name: str, now: datetime) -> IssuedToken:
    """Issue a named token for `user`; the secret is returned once and never stored."""
    name = name.strip()
    if not name or len(name) > 80:
        message = N_("Give the token a name of 1 to 80 characters, such as the app that "
                     "will use it.")
        raise ValidationError("invalid_token_name", message, fields={"name": message})
    if len(active_tokens(session, user)) >= MAX_ACTIVE_TOKENS:
        message = N_("You already have %(limit)s tokens. Revoke one you no longer use first.")
        raise ValidationError("too_many_tokens", message, fields={"name": message},
                              params={"limit": MAX_ACTIVE_TOKENS})
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=id_of(user), name=name, prefix=secret[:10],
                     secret_hash=_digest(secret), created_at=now)
    session.add(token)
    session.commit()
    return IssuedToken(token, secret)


def revoke_token(session: Session, user: User, token_id: int, now: datetime) -> ApiToken:
    """Stop a token from working.  Someone else's token looks like a missing one."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise not_found()
    token.revoked_at = now
    session.add(token)
    session.commit()
    return token


def user_for_secret(session: Session, secret: str, now: datetime) -> User | None:
    """The active person a presented secret belongs to, or None."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    token = session.exec(select(ApiToken).where(ApiToken.secret_hash == _digest(secret))).first()
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return user
