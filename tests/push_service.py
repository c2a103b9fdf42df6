"""A local Web Push service (RFC 8030) that also plays the receiving browser.

Tests point the app's real Web Push client (pywebpush, its own HTTP and crypto,
nothing patched) at this server.  Each POST to a subscription endpoint is checked
the way a real push service checks it -- VAPID (RFC 8292) signature, key and
claims, the TTL / Topic / Urgency headers of RFC 8030 -- and then decrypted the way
the subscribing browser would (RFC 8291, "aes128gcm" of RFC 8188) with the private
key and auth secret that only the "browser" holds.  So a test sees the payload the
user's service worker would see, or a refusal with the reason, never a message the
app merely *meant* to send.

Tests can also script the service's answers (429 with Retry-After, 5xx, 410 for an
expired subscription) and stall it (``hold`` / ``release``) to exercise retries,
pruning and timeouts.

Usage::

    with FakePushService(vapid_public_key=app_public_key) as push:
        sub = push.subscriber()
        ...  # store sub.info() as the browser would, make the app send
        [msg] = push.wait_for(1)
        assert msg.payload["title"] == "New job"
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import select
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

import http_ece  # type: ignore[import-untyped]
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

#: RFC 8291 §4: a push service must accept at least 4096 octets of payload body,
#: and the common services refuse anything longer (413), so an app that passes
#: here also passes there.
MAX_BODY = 4096
#: RFC 8292 §2: "exp" must not be more than 24 hours after the request.
MAX_EXP_AHEAD = 24 * 60 * 60
#: RFC 8030 §5.3.
URGENCIES = ("very-low", "low", "normal", "high")
#: RFC 8030 §5.4: a topic is at most 32 characters of the URL-safe base64 alphabet.
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_DIGITS = re.compile(r"[0-9]+")
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_PUSH_PATH = re.compile(r"/push/([^/?#]+)")
#: aes128gcm header: salt(16) | rs(4) | idlen(1) | keyid(idlen) -- RFC 8188 §2.1.
_ECE_HEADER = 21
_P256_POINT = 65  # uncompressed point: 0x04 | X(32) | Y(32)
_GCM_TAG = 16
#: How often a held request looks whether its client has hung up.
_POLL = 0.02
#: A body larger than this is not even read; the connection is closed after the 413.
_READ_LIMIT = 1 << 20


class Refusal(Exception):
    """Why the service refuses a request: the HTTP status it answers and a reason.

    The reason goes into the response body (pywebpush puts it in the exception text)
    and into ``FakePushService.rejected`` so a failing test says what was wrong.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def b64url_decode(text: str) -> bytes:
    """Strict base64url (RFC 4648 §5) decoding, padding optional.

    Stricter than ``base64.urlsafe_b64decode``, which silently skips characters
    outside the alphabet (e.g. ``+`` or ``/`` from standard base64), so a key an app
    mangled would otherwise still "work" here and fail at a real service.
    """
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    stripped = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def b64url_encode(data: bytes) -> str:
    """base64url without padding, the form Web Push uses for keys and secrets."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_public_key(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed P-256 point (X9.62), as VAPID `k` and p256dh carry it."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _p256_point(raw: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(raw) != _P256_POINT or raw[0] != 0x04:
        raise ValueError(f"{what} is {len(raw)} bytes, not a 65-byte uncompressed P-256 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def parse_vapid_authorization(header: str | None) -> tuple[str, str]:
    """`Authorization: vapid t=<JWT>, k=<key>` -> (t, k); RFC 8292 §3.

    Parameters may come in any order, with optional spaces around the comma and
    optionally quoted (RFC 7235 auth-param).  Anything else is a 401, as is the
    pre-RFC "WebPush <JWT>" + Crypto-Key scheme that real services no longer take.
    """
    if not header:
        raise Refusal(401, "no Authorization header (VAPID is required)")
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise Refusal(401, f"Authorization scheme {scheme!r} is not 'vapid' (RFC 8292 §3)")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        name, value = name.strip().lower(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not sep or not name or not value or name in params:
            raise Refusal(401, f"malformed vapid Authorization parameter {part.strip()!r}")
        params[name] = value
    if "t" not in params or "k" not in params:
        raise Refusal(401, "vapid Authorization needs both t= (JWT) and k= (public key)")
    return params["t"], params["k"]


def verify_vapid(
    authorization: str | None,
    *,
    origin: str,
    expected_key: bytes | None = None,
    now: float | None = None,
) -> tuple[dict[str, Any], str]:
    """Check a VAPID Authorization header as a push service does; (claims, k) if good.

    401 when the header is missing or malformed, 403 when it is well formed but not
    acceptable: another key than the subscription was made with, a JWT that is not
    ES256 or whose signature (JWS raw r||s, RFC 7518 §3.4) does not verify with `k`,
    or claims that are wrong (`aud` not this origin, `exp` past or more than 24 h
    ahead, `sub` not a mailto:/https: contact).
    """
    now = time.time() if now is None else now
    token, key_text = parse_vapid_authorization(authorization)
    try:
        key_raw = b64url_decode(key_text)
        public_key = _p256_point(key_raw, "vapid k")
    except ValueError as exc:
        raise Refusal(401, f"vapid k is not a P-256 public key: {exc}") from exc
    if expected_key is not None and key_raw != expected_key:
        raise Refusal(
            403,
            f"vapid k={key_text} is not the application server key this service expects "
            f"({b64url_encode(expected_key)})",
        )
    pieces = token.split(".")
    if len(pieces) != 3:
        raise Refusal(401, f"vapid t is not a JWS compact token ({len(pieces)} parts, not 3)")
    try:
        jose = json.loads(b64url_decode(pieces[0]))
        claims = json.loads(b64url_decode(pieces[1]))
        signature = b64url_decode(pieces[2])
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError included
        raise Refusal(401, f"vapid t is not a readable JWT: {exc}") from exc
    if not isinstance(jose, dict) or not isinstance(claims, dict):
        raise Refusal(401, "vapid JWT header and claims must be JSON objects")
    if jose.get("alg") != "ES256":
        raise Refusal(403, f"vapid JWT alg is {jose.get('alg')!r}, not 'ES256' (RFC 8292 §2)")
    if len(signature) != 64:
        raise Refusal(403, f"vapid JWT signature is {len(signature)} bytes, not raw r||s (64, JWS)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(
            der, f"{pieces[0]}.{pieces[1]}".encode("ascii"), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as exc:
        raise Refusal(403, "vapid JWT signature does not verify with k") from exc
    _check_claims(claims, origin=origin, now=now)
    return claims, key_text


def _check_claims(claims: dict[str, Any], *, origin: str, now: float) -> None:
    aud = claims.get("aud")
    if aud != origin:
        raise Refusal(403, f"vapid aud {aud!r} is not this push service's origin {origin!r}")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise Refusal(403, f"vapid exp {exp!r} is not a NumericDate")
    if exp <= now:
        raise Refusal(403, f"vapid JWT expired {now - exp:.0f} s ago (exp={exp})")
    if exp > now + MAX_EXP_AHEAD:
        raise Refusal(403, f"vapid exp is {exp - now:.0f} s ahead, more than 24 h (RFC 8292 §2)")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.lower().startswith(("mailto:", "https:")):
        raise Refusal(403, f"vapid sub {sub!r} is not a mailto: or https: contact")


def decrypt_message(body: bytes, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """Decrypt an RFC 8291 message body as the subscribing browser does.

    Besides http_ece's own checks, refuses what RFC 8291 §4 forbids and browsers
    reject: a keyid that is not the sender's 65-byte ECDH key, more than one record,
    or no record at all (http_ece would "decrypt" a bare header to b"").
    """
    if len(body) < _ECE_HEADER:
        raise Refusal(400, f"body of {len(body)} bytes is shorter than an aes128gcm header")
    (record_size,) = struct.unpack("!L", body[16:20])
    id_len = body[20]
    if id_len != _P256_POINT:
        raise Refusal(400, f"aes128gcm keyid is {id_len} bytes, not the sender's 65-byte key")
    records = len(body) - _ECE_HEADER - id_len
    if records < _GCM_TAG + 1:
        raise Refusal(400, "aes128gcm body holds no (complete) record")
    if records > record_size:
        raise Refusal(
            400,
            f"{records} bytes of records exceed rs={record_size}: RFC 8291 "
            "allows a single record only",
        )
    try:
        return cast(
            bytes,
            http_ece.decrypt(body, private_key=private_key, auth_secret=auth, version="aes128gcm"),
        )
    except Exception as exc:  # ECEException, ValueError for a bad point, ...
        reason = getattr(exc, "message", None) or repr(exc)
        raise Refusal(400, f"cannot decrypt the body with the subscription keys: {reason}") from exc


@dataclass(frozen=True)
class Subscriber:
    """One browser's push subscription: what the page hands the app.

    The matching private key and auth secret stay inside the service, as they stay
    inside a browser, so only a correctly encrypted message decrypts.
    """

    token: str
    endpoint: str
    p256dh: str
    auth: str

    def info(self) -> dict[str, Any]:
        """The subscription as `PushSubscription.toJSON()` gives it to the page."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
        }


@dataclass(frozen=True)
class Received:
    """A push message the service accepted (answered 2xx), as the browser decrypted it."""

    token: str
    payload: dict[str, Any]
    body: bytes
    ttl: int | None
    topic: str | None
    urgency: str | None
    jwt_claims: dict[str, Any]
    received_at: float
    #: the VAPID `k` the message was signed with (urlsafe base64, as sent)
    vapid_key: str = ""
    status: int = 201


@dataclass
class _Endpoint:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    gone: bool = False
    #: scripted answers: (status, Retry-After or None), consumed in order
    script: list[tuple[int, int | None]] = field(default_factory=list)


@dataclass(eq=False)
class _Held:
    token: str
    released: threading.Event = field(default_factory=threading.Event)
    accept: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, service: FakePushService) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.service = service


class _Handler(BaseHTTPRequestHandler):
    """One connection; keep-alive as a real service offers, every answer sized."""

    protocol_version = "HTTP/1.1"
    server_version = "FakePushService/1"
    timeout = 30  # idle keep-alive connections end eventually

    @property
    def service(self) -> FakePushService:
        return cast(_Server, self.server).service

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the outcome of every request is in `received` / `rejected`."""

    def do_POST(self) -> None:
        length_text = self.headers.get("Content-Length")
        if length_text is None or not _DIGITS.fullmatch(length_text.strip()):
            self.close_connection = True
            self._refuse("", Refusal(411, "POST without a Content-Length"))
            return
        length = int(length_text)
        if length > _READ_LIMIT:
            self.close_connection = True
            self._refuse("", Refusal(413, f"body of {length} bytes (limit {MAX_BODY})"))
            return
        body = self.rfile.read(length)
        match = _PUSH_PATH.fullmatch(self.path)
        token = match.group(1) if match else ""
        try:
            if not match:
                raise Refusal(404, f"no push resource at {self.path}")
            self._deliver(token, body)
        except Refusal as refusal:
            self._refuse(token, refusal)
        except Exception as exc:  # a harness bug: answer and record it, never hang the test
            self._refuse(token, Refusal(500, f"FakePushService failed: {exc!r}"))

    def do_GET(self) -> None:
        self._refuse("", Refusal(405, f"{self.command} {self.path}: only POST is served"))

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _deliver(self, token: str, body: bytes) -> None:
        service = self.service
        endpoint = service._endpoint(token)
        claims, key_text = verify_vapid(
            self.headers.get("Authorization"),
            origin=service.base,
            expected_key=service._expected_key,
        )
        ttl = self._ttl()
        topic = self.headers.get("Topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise Refusal(
                400, f"Topic {topic!r}: at most 32 URL-safe base64 characters (RFC 8030 §5.4)"
            )
        urgency = self.headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise Refusal(400, f"Urgency {urgency!r} is not one of {URGENCIES} (RFC 8030 §5.3)")
        encoding = self.headers.get("Content-Encoding")
        if (encoding or "").strip().lower() != "aes128gcm":
            raise Refusal(
                400, f"Content-Encoding {encoding!r}: only aes128gcm (RFC 8291) is accepted"
            )
        if len(body) > MAX_BODY:
            raise Refusal(413, f"body of {len(body)} bytes is over {MAX_BODY} (RFC 8291 §4)")
        plaintext = decrypt_message(body, endpoint.private_key, endpoint.auth)
        message = Received(
            token=token,
            payload=_parse_payload(plaintext),
            body=plaintext,
            ttl=ttl,
            topic=topic,
            urgency=urgency,
            jwt_claims=claims,
            received_at=0.0,
            vapid_key=key_text,
        )
        status, retry_after, held = service._route(token)
        if held is not None and not self._wait(held):
            return
        if not 200 <= status < 300:
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            raise _ScriptedRefusal(status, "scripted answer", headers)
        service._accept(message, status)
        self._send(
            status,
            {"Location": f"{service.base}/message/{uuid.uuid4().hex}", "TTL": str(ttl)},
            b"",
        )

    def _ttl(self) -> int:
        text = self.headers.get("TTL")
        if text is None:
            raise Refusal(400, "no TTL header (RFC 8030 §5.2 requires it)")
        if not _DIGITS.fullmatch(text.strip()):
            raise Refusal(400, f"TTL {text!r} is not a non-negative integer")
        return int(text)

    def _wait(self, held: _Held) -> bool:
        """Block with no answer until release(); True if this request is then accepted.

        A client that hangs up meanwhile (e.g. its timeout fired) loses the message,
        as with a real service that never acknowledged it.  release(accept=False)
        closes the connection without an answer: the message is lost in flight.
        """
        service = self.service
        while not held.released.wait(_POLL):
            if self._client_gone() and service._unhold(held):
                service._reject(held.token, 0, "client disconnected while held")
                self.close_connection = True
                return False
        if self._client_gone():
            service._reject(held.token, 0, "client disconnected while held")
        elif not held.accept:
            service._reject(
                held.token,
                0,
                "held, then released with accept=False: connection closed without an answer",
            )
        else:
            return True
        self.close_connection = True
        return False

    def _client_gone(self) -> bool:
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _refuse(self, token: str, refusal: Refusal) -> None:
        self.service._reject(token, refusal.status, refusal.reason)
        body = json.dumps(
            {
                "code": refusal.status,
                "error": self.responses.get(refusal.status, ("",))[0],
                "message": refusal.reason,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if isinstance(refusal, _ScriptedRefusal):
            headers.update(refusal.headers)
        if refusal.status == 401:
            headers["WWW-Authenticate"] = "vapid"
        self._send(refusal.status, headers, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client hung up; nothing more to tell it
            self.close_connection = True


class _ScriptedRefusal(Refusal):
    def __init__(self, status: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(status, reason)
        self.headers = headers


def _parse_payload(plaintext: bytes) -> dict[str, Any]:
    """The decrypted body as a JSON object; anything else kept as {"_text": ...}."""
    text = plaintext.decode("utf-8", errors="replace")
    try:
        value = json.loads(text)
    except ValueError:
        return {"_text": text}
    return value if isinstance(value, dict) else {"_text": text}


class FakePushService:
    """The push service plus every subscribed browser; use as a context manager.

    ``vapid_public_key`` is the application server key the subscriptions were made
    with (``applicationServerKey``); messages signed with any other key get 403.
    ``None`` accepts any valid key and records it in ``Received.vapid_key``.
    """

    default_status: int = 201

    def __init__(self, vapid_public_key: str | None = None) -> None:
        self._expected_key: bytes | None = None
        if vapid_public_key is not None:
            self._expected_key = b64url_decode(vapid_public_key)
            _p256_point(self._expected_key, "vapid_public_key")  # fail early, not per request
        self._lock = threading.Condition()
        self._endpoints: dict[str, _Endpoint] = {}
        self._received: list[Received] = []
        self._rejected: list[tuple[str, int, str]] = []
        self._held: list[_Held] = []
        self._hold_after: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> FakePushService:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-push-service",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release(accept=False)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def base(self) -> str:
        """`http://127.0.0.1:PORT`: the endpoints' origin, and so the VAPID `aud`."""
        if self._server is None:
            raise RuntimeError("FakePushService is not running; use it as `with ...:`")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- the browser side ------------------------------------------------------------

    def subscriber(
        self,
        *,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        auth: bytes | None = None,
    ) -> Subscriber:
        """Subscribe a new browser: fresh P-256 key pair and 16-byte auth secret.

        `private_key` / `auth` fix the keys instead, for known-answer tests (RFC 8291
        Appendix A); normal tests leave them out.
        """
        key = private_key or ec.generate_private_key(ec.SECP256R1())
        secret = auth if auth is not None else uuid.uuid4().bytes
        if len(secret) != 16:
            raise ValueError("the auth secret is 16 bytes (RFC 8291 §3.2)")
        token = uuid.uuid4().hex
        with self._lock:
            self._endpoints[token] = _Endpoint(private_key=key, auth=secret)
        return Subscriber(
            token=token,
            endpoint=f"{self.base}/push/{token}",
            p256dh=b64url_encode(raw_public_key(key)),
            auth=b64url_encode(secret),
        )

    # -- scripting -------------------------------------------------------------------

    def answer(self, token: str, *statuses: int, retry_after: int | None = None) -> None:
        """Answer the next valid requests to `token` with `statuses`, in order.

        Only requests that pass every check consume a scripted status.  429 and 5xx
        carry `Retry-After` when given; 2xx are accepted; after the queue, the default.
        """
        for status in statuses:
            if not 200 <= status <= 599:
                raise ValueError(f"{status} is not a final HTTP status")
        with self._lock:
            script = self._endpoint_locked(token).script
            for status in statuses:
                carries = retry_after is not None and (status == 429 or status >= 500)
                script.append((status, retry_after if carries else None))

    def gone(self, token: str) -> None:
        """The subscription expired or was revoked: 410 from now on (RFC 8030 §7.3)."""
        with self._lock:
            self._endpoint_locked(token).gone = True

    def hold(self, after: int) -> None:
        """Accept `after` more messages, then answer nothing until `release()`."""
        if after < 0:
            raise ValueError("after must be >= 0")
        with self._lock:
            self._hold_after = after

    def release(self, accept: bool = False) -> None:
        """End the hold; the requests held now are accepted, or dropped unanswered."""
        with self._lock:
            self._hold_after = None
            held, self._held = self._held, []
            for request in held:
                request.accept = accept
                request.released.set()
            self._lock.notify_all()

    # -- what happened ---------------------------------------------------------------

    @property
    def received(self) -> list[Received]:
        """Accepted messages in order (a copy, safe while the server runs)."""
        with self._lock:
            return list(self._received)

    @property
    def rejected(self) -> list[tuple[str, int, str]]:
        """(token, status, reason) of every refused request; status 0 = never answered."""
        with self._lock:
            return list(self._rejected)

    @property
    def held_count(self) -> int:
        """Requests blocked by `hold()` right now."""
        with self._lock:
            return len(self._held)

    def for_token(self, token: str) -> list[Received]:
        """Accepted messages to one subscription, in order."""
        with self._lock:
            return [m for m in self._received if m.token == token]

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """Wait until at least `count` messages were accepted; a copy of all of them."""
        with self._lock:
            if self._lock.wait_for(lambda: len(self._received) >= count, timeout):
                return list(self._received)
            raise AssertionError(
                f"FakePushService: {len(self._received)} of {count} push messages accepted "
                f"within {timeout} s; held now: {len(self._held)}; "
                f"refused: {self._rejected or 'none'}"
            )

    # -- used by the handler ---------------------------------------------------------

    def _endpoint_locked(self, token: str) -> _Endpoint:
        try:
            return self._endpoints[token]
        except KeyError:
            raise KeyError(f"no subscriber with token {token!r} on this service") from None

    def _endpoint(self, token: str) -> _Endpoint:
        with self._lock:
            endpoint = self._endpoints.get(token)
        if endpoint is None:
            raise Refusal(404, f"unknown push endpoint /push/{token}")
        if endpoint.gone:
            raise Refusal(410, f"subscription /push/{token} is gone")
        return endpoint

    def _route(self, token: str) -> tuple[int, int | None, _Held | None]:
        """For a valid request: (status, Retry-After, hold ticket or None)."""
        with self._lock:
            script = self._endpoints[token].script
            if script:
                status, retry_after = script.pop(0)
                if 200 <= status < 300 and self._hold_after:
                    self._hold_after -= 1
                return status, retry_after, None
            if self._hold_after is None:
                return self.default_status, None, None
            if self._hold_after > 0:
                self._hold_after -= 1
                return self.default_status, None, None
            held = _Held(token)
            self._held.append(held)
            return self.default_status, None, held

    def _unhold(self, held: _Held) -> bool:
        """Take a held request out of the hold; False if release() already took it."""
        with self._lock:
            if held in self._held:
                self._held.remove(held)
                return True
            return False

    def _accept(self, message: Received, status: int) -> None:
        with self._lock:
            self._received.append(replace(message, received_at=time.monotonic(), status=status))
            self._lock.notify_all()

    def _reject(self, token: str, status: int, reason: str) -> None:
        with self._lock:
            self._rejected.append((token, status, reason))
            self._lock.notify_all()
