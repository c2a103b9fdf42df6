"""The app's VAPID key pair (RFC 8292): how push services know pushes come from us.

Like the session secret, the embedded default generates the private key once
into `instance/` and keeps it, because every browser subscribed with the public
key: a new key would silently cut every phone off.  Production sets
VAPID_PRIVATE_KEY (PEM, or the raw key as URL-safe base64) instead.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from threading import Lock

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid

#: how long a signed VAPID token is used before a fresh one is signed (a push
#: service refuses tokens that expire more than 24 hours ahead)
TOKEN_SECONDS = 12 * 3600


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def instance_private_key(folder: Path) -> str:
    """The PEM of the key kept in `folder`, generated on first use (mode 0600).

    Two processes starting at once (web and scheduler) must end up with one key:
    the new key is written to a file of its own and linked into place, which
    fails for the second one, who then reads the first one's key."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "vapid_private.pem"
    if not key_file.exists():
        vapid = Vapid()
        vapid.generate_keys()
        draft = folder / f".vapid_private.{os.getpid()}.pem"
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(vapid.private_pem())
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text()


def load_key(private_key: str) -> Vapid:
    """A key from PEM text or raw URL-safe base64."""
    text = private_key.strip()
    if text.startswith("-----BEGIN"):
        return Vapid.from_pem(text.encode())
    return Vapid.from_string(text)


def public_key(vapid: Vapid) -> str:
    """The public key as browsers want it for `applicationServerKey`."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                        serialization.PublicFormat.UncompressedPoint)
    return b64url(raw)


class VapidSigner:
    """Signed `Authorization` headers per push-service origin, reused until close to
    expiry: signing costs an ECDSA operation, and a post can reach a thousand
    phones on the same service."""

    def __init__(self, vapid: Vapid, subject: str) -> None:
        self.vapid = vapid
        self.subject = subject
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = Lock()

    def headers(self, audience: str, now: float | None = None) -> dict[str, str]:
        now = time.time() if now is None else now
        with self._lock:
            cached = self._cache.get(audience)
            if cached and cached[0] - now > 3600:
                return cached[1]
            expires = int(now) + TOKEN_SECONDS
            signed = self.vapid.sign({"sub": self.subject, "aud": audience, "exp": expires})
            self._cache[audience] = (expires, signed)
            return signed
