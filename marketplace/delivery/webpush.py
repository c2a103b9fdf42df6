"""Send one encrypted push message to one push service, at the wire.

`pywebpush` does the RFC 8291 encryption (aes128gcm); the VAPID header comes
from our own signer (one signature per push service, not per message).  The
push service's answer is returned, never raised, so the worker decides what
each status means for the delivery row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from pywebpush import WebPusher
from requests.adapters import HTTPAdapter

from marketplace.delivery.vapid import VapidSigner


@dataclass(frozen=True)
class PushMessage:
    endpoint: str
    p256dh: str
    auth: str
    body: bytes
    ttl: int
    topic: str
    urgency: str


@dataclass(frozen=True)
class PushAnswer:
    """What the push service said: a status (None when it could not be reached),
    how long it asked us to wait, and a short reason for the log."""

    status: int | None
    retry_after: float | None = None
    reason: str = ""


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class WebPushSender:
    """Thread-safe: one HTTP connection pool shared by the worker's sending threads."""

    def __init__(self, signer: VapidSigner, *, timeout: float = 10.0, pool: int = 16) -> None:
        self.signer = signer
        self.timeout = timeout
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
        self.http.mount("https://", adapter)
        self.http.mount("http://", adapter)

    def send(self, message: PushMessage) -> PushAnswer:
        parts = urlsplit(message.endpoint)
        headers = {**self.signer.headers(f"{parts.scheme}://{parts.netloc}"),
                   "Topic": message.topic, "Urgency": message.urgency}
        info = {"endpoint": message.endpoint,
                "keys": {"p256dh": message.p256dh, "auth": message.auth}}
        try:
            response = WebPusher(info, requests_session=self.http).send(
                message.body, headers, ttl=message.ttl, content_encoding="aes128gcm",
                timeout=self.timeout)
        except requests.RequestException as error:
            return PushAnswer(None, None, f"unreachable: {type(error).__name__}")
        assert isinstance(response, requests.Response)
        reason = "" if response.status_code < 300 else response.text[:200]
        return PushAnswer(response.status_code,
                          retry_after_seconds(response.headers.get("Retry-After")), reason)
