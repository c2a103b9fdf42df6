"""Devices that opted in to Web Push: subscribe, turn off, list.

A subscription's endpoint is where our worker will POST, so it is checked as
carefully as any URL we fetch ourselves: HTTPS to a push service on the
allowed list (PUSH_SERVICE_HOSTS), never an address of our own network.  Its
keys must be what a browser hands out (a P-256 point and a 16-byte secret), so
a bad subscription is refused at the door instead of failing in the worker.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from marketplace.clusters.models import User
from marketplace.delivery.models import PushSubscription
from marketplace.errors import N_, ValidationError

MOST_DEVICES = 10
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _decode(text: object) -> bytes | None:
    if not isinstance(text, str) or not 0 < len(text) <= 200:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def _is_p256_point(key: bytes | None) -> bool:
    """An uncompressed point on P-256, as a browser's subscription key is: anything
    else would only fail later in the worker, retried for hours."""
    if key is None or len(key) != 65 or key[0] != 4:
        return False
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
    except ValueError:
        return False
    return True


def host_allowed(endpoint: str, allowed: Sequence[str]) -> bool:
    """HTTPS to an allowed push service (a host or a parent domain of it); plain
    HTTP only to a loopback host that is itself on the list (a local test service)."""
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    listed = any(host == name or host.endswith("." + name) for name in allowed)
    if parts.scheme == "https":
        return listed and parts.username is None
    return parts.scheme == "http" and host in _LOOPBACK and listed


def subscribe(session: Session, user: User, endpoint: object, p256dh: object, auth: object,
              device: str, now: datetime, allowed_hosts: Sequence[str]) -> PushSubscription:
    """Store (or revive) this device's subscription for `user`.

    The same browser subscribing for another person (a shared tablet) moves the
    subscription to whoever subscribed last: a device shows one person's pushes.
    """
    fields: dict[str, str] = {}
    if not isinstance(endpoint, str) or len(endpoint) > 1000 or not host_allowed(
            endpoint, allowed_hosts):
        fields["endpoint"] = N_("This browser's push service is not one we can send to.")
    if not _is_p256_point(_decode(p256dh)):
        fields["keys.p256dh"] = N_("The browser sent no usable encryption key.")
    secret = _decode(auth)
    if secret is None or len(secret) != 16:
        fields["keys.auth"] = N_("The browser sent no usable authentication secret.")
    if fields:
        raise ValidationError("bad_subscription", N_(
            "Notifications could not be turned on for this browser. Try again, or use "
            "another browser."), fields=fields)
    assert isinstance(endpoint, str) and isinstance(p256dh, str) and isinstance(auth, str)
    try:
        return _store(session, user, endpoint, p256dh, auth, device, now)
    except IntegrityError:  # the same browser's second "turn on" committed first
        session.rollback()
        return _store(session, user, endpoint, p256dh, auth, device, now)


def _store(session: Session, user: User, endpoint: str, p256dh: str, auth: str, device: str,
           now: datetime) -> PushSubscription:
    assert user.id is not None
    row = session.exec(select(PushSubscription).where(
        PushSubscription.endpoint == endpoint)).first()
    if row is None:
        row = PushSubscription(user_id=user.id, endpoint=endpoint, p256dh=p256dh, auth=auth,
                               device=device[:200], created_at=now)
    else:
        row.user_id, row.p256dh, row.auth, row.device = user.id, p256dh, auth, device[:200]
        row.removed_at, row.removed_reason = None, None
    session.add(row)
    session.flush()
    _keep_newest(session, user.id, now)
    session.commit()
    return row


def _keep_newest(session: Session, user_id: int, now: datetime) -> None:
    """A person with more devices than anyone has is forgetting old browsers: the
    oldest beyond MOST_DEVICES are turned off."""
    active = list(session.exec(select(PushSubscription).where(
        PushSubscription.user_id == user_id, col(PushSubscription.removed_at).is_(None))
        .order_by(col(PushSubscription.id).desc())))
    for old in active[MOST_DEVICES:]:
        old.removed_at, old.removed_reason = now, "replaced"
        session.add(old)


def unsubscribe(session: Session, user: User, endpoint: object, now: datetime) -> bool:
    """Turn this device off for `user`; whether it was on."""
    if not isinstance(endpoint, str) or len(endpoint) > 1000:
        raise ValidationError("bad_subscription", N_("Say which browser to turn off."),
                              fields={"endpoint": N_("Say which browser to turn off.")})
    row = session.exec(select(PushSubscription).where(
        PushSubscription.endpoint == endpoint, PushSubscription.user_id == user.id,
        col(PushSubscription.removed_at).is_(None))).first()
    if row is None:
        session.rollback()
        return False
    row.removed_at, row.removed_reason = now, "turned off"
    session.add(row)
    session.commit()
    return True


def devices(session: Session, user_id: int) -> list[PushSubscription]:
    """The person's devices that receive pushes, newest first."""
    return list(session.exec(select(PushSubscription).where(
        PushSubscription.user_id == user_id, col(PushSubscription.removed_at).is_(None))
        .order_by(col(PushSubscription.id).desc())))
