"""The fake Web Push service must be trustworthy: it accepts what real pywebpush sends,
decrypts it to what was sent, and refuses (with the status a real service uses) every
thing a real service or browser would refuse.  Known-answer vectors from RFC 8291 and
RFC 8292 show the checks are the standards', not merely pywebpush's mirror image.

The harness is imported as the sibling module `push_service` (tests/ is on sys.path in
this layout) rather than `tests.push_service`, so this file also runs under the bare
`pytest` entry point, not only `python -m pytest`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec
from push_service import (
    FakePushService,
    Refusal,
    Subscriber,
    b64url_decode,
    b64url_encode,
    raw_public_key,
    verify_vapid,
)
from py_vapid import Vapid  # type: ignore[import-untyped]
from pywebpush import WebPusher, WebPushException, webpush  # type: ignore[import-untyped]

CONTACT = "mailto:ops@example.test"
PAYLOAD = {"title": "New overflow job", "url": "/jobs/1", "n": 3, "ok": True}


@pytest.fixture(scope="module")
def vapid() -> Vapid:
    key = Vapid()
    key.generate_keys()
    return key


@pytest.fixture
def push(vapid: Vapid) -> Iterator[FakePushService]:
    with FakePushService(vapid_public_key=b64url_encode(raw_public_key(vapid.private_key))) as svc:
        yield svc


@pytest.fixture
def sub(push: FakePushService) -> Subscriber:
    return push.subscriber()


def send(sub: Subscriber, vapid: Vapid, data: Any = PAYLOAD, **kwargs: Any) -> requests.Response:
    """What the app does: pywebpush's one-call API, claims fresh each time."""
    kwargs.setdefault("ttl", 60)
    return webpush(
        sub.info(),
        data if isinstance(data, str) else json.dumps(data),
        vapid_private_key=vapid,
        vapid_claims={"sub": CONTACT},
        timeout=kwargs.pop("timeout", 5),
        **kwargs,
    )


def post(
    sub: Subscriber,
    vapid: Vapid,
    *,
    claims: dict[str, Any] | None = None,
    body: bytes | None = None,
    **headers: str,
) -> requests.Response:
    """A hand-built request (pywebpush's encryption and signing, our claims and tweaks)."""
    aud = sub.endpoint.split("/push/")[0]
    signed = vapid.sign({"sub": CONTACT, "aud": aud, **(claims or {})})
    if body is None:
        body = WebPusher(sub.info()).encode(json.dumps(PAYLOAD).encode())["body"]
    sent = {"TTL": "60", "Content-Encoding": "aes128gcm", **signed}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.post(sub.endpoint, data=body, headers=sent, timeout=5)


def refused(push: FakePushService, status: int) -> str:
    """The one refusal recorded, with the expected status; its reason."""
    [(_, got, reason)] = push.rejected
    assert got == status, reason
    assert push.received == []
    return reason


# -- accepted --------------------------------------------------------------------------


def test_pywebpush_message_is_accepted_and_decrypted(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    response = send(sub, vapid, headers={"Topic": "job-1", "Urgency": "high"})

    assert response.status_code == 201
    assert response.headers["Location"].startswith(f"{push.base}/message/")
    [msg] = push.wait_for(1)
    assert msg.token == sub.token
    assert msg.payload == PAYLOAD
    assert json.loads(msg.body) == PAYLOAD
    assert (msg.ttl, msg.topic, msg.urgency) == (60, "job-1", "high")
    assert msg.jwt_claims["aud"] == push.base
    assert msg.jwt_claims["sub"] == CONTACT
    assert time.time() < msg.jwt_claims["exp"] <= time.time() + 24 * 3600
    assert b64url_decode(msg.vapid_key) == raw_public_key(vapid.private_key)
    assert push.for_token(sub.token) == [msg]
    assert push.rejected == []


def test_subscription_info_has_the_browser_shape(push: FakePushService) -> None:
    info = push.subscriber().info()
    assert set(info) == {"endpoint", "expirationTime", "keys"}
    assert info["endpoint"].startswith(f"{push.base}/push/")
    assert len(b64url_decode(info["keys"]["p256dh"])) == 65
    assert b64url_decode(info["keys"]["p256dh"])[0] == 4
    assert len(b64url_decode(info["keys"]["auth"])) == 16
    assert "=" not in info["keys"]["p256dh"] + info["keys"]["auth"]


def test_any_key_is_accepted_and_recorded_when_none_is_configured(vapid: Vapid) -> None:
    other = Vapid()
    other.generate_keys()
    with FakePushService() as push:
        sub = push.subscriber()
        send(sub, vapid)
        send(sub, other)
        keys = [b64url_decode(m.vapid_key) for m in push.wait_for(2)]
    assert keys == [raw_public_key(vapid.private_key), raw_public_key(other.private_key)]


def test_non_json_payload_is_kept_as_text(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    send(sub, vapid, "plain words")
    assert push.wait_for(1)[0].payload == {"_text": "plain words"}


def test_rfc8291_known_answer_decrypts(push: FakePushService, vapid: Vapid) -> None:
    """RFC 8291 Appendix A: a body encrypted by someone else's implementation."""
    ua_private = ec.derive_private_key(
        int.from_bytes(b64url_decode("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"), "big"),
        ec.SECP256R1(),
    )
    sub = push.subscriber(private_key=ua_private, auth=b64url_decode("BTBZMqHH6r4Tts7J_aSIgg"))
    assert sub.p256dh == (
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    )
    body = b64url_decode(
        "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInm"
        "YWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQe"
        "xSgSxsj_Qulcy4a-fN"
    )
    assert post(sub, vapid, body=body).status_code == 201
    assert push.wait_for(1)[0].payload == {"_text": "When I grow up, I want to be a watermelon"}


def test_rfc8292_example_token_verifies() -> None:
    """RFC 8292 §2.4's example header (note the space after the comma) at its own time."""
    header = (
        "vapid t=eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZ"
        "XQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDqu"
        "ptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA, "
        "k=BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
    )
    claims, _ = verify_vapid(header, origin="https://push.example.net", now=1453523768 - 3600)
    assert claims == {
        "aud": "https://push.example.net",
        "exp": 1453523768,
        "sub": "mailto:push@example.com",
    }
    with pytest.raises(Refusal) as late:
        verify_vapid(header, origin="https://push.example.net", now=1453523768 + 1)
    assert late.value.status == 403
    with pytest.raises(Refusal) as forged:  # one signature byte changed
        verify_vapid(
            header.replace("i3CYb7", "i3CYb8"),
            origin="https://push.example.net",
            now=1453523768 - 3600,
        )
    assert forged.value.status == 403


# -- refused: VAPID ----------------------------------------------------------------------


def test_wrong_application_server_key_is_403(vapid: Vapid) -> None:
    other = Vapid()
    other.generate_keys()
    with FakePushService(vapid_public_key=b64url_encode(raw_public_key(other.private_key))) as push:
        with pytest.raises(WebPushException) as caught:
            send(push.subscriber(), vapid)
        assert caught.value.status_code == 403
        assert "not the application server key" in refused(push, 403)


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"exp": int(time.time()) + 25 * 3600}, "more than 24 h"),
        ({"aud": "https://push.example.test"}, "origin"),
    ],
)
def test_bad_claims_are_403(
    push: FakePushService, sub: Subscriber, vapid: Vapid, claims: dict[str, Any], why: str
) -> None:
    assert post(sub, vapid, claims=claims).status_code == 403
    assert why in refused(push, 403)


def test_sub_must_be_a_contact() -> None:
    lax = Vapid()
    lax.generate_keys()
    lax.conf = {"no-strict": True}  # py_vapid itself refuses to sign this
    with FakePushService(vapid_public_key=b64url_encode(raw_public_key(lax.private_key))) as svc:
        response = post(svc.subscriber(), lax, claims={"sub": "ops@example.test"})
        assert response.status_code == 403
        assert "sub" in refused(svc, 403)


def test_signature_must_verify_with_k(push: FakePushService, sub: Subscriber, vapid: Vapid) -> None:
    """A token signed by another key, presented with the expected `k`: forged."""
    forger = Vapid()
    forger.generate_keys()
    token = forger.sign({"sub": CONTACT, "aud": push.base})["Authorization"].split(",")[0]
    k = b64url_encode(raw_public_key(vapid.private_key))
    assert post(sub, vapid, Authorization=f"{token},k={k}").status_code == 403
    assert "does not verify" in refused(push, 403)


def test_alg_must_be_es256(push: FakePushService, sub: Subscriber, vapid: Vapid) -> None:
    """A valid ES256 signature, but the header claims another algorithm."""
    header = b64url_encode(b'{"typ":"JWT","alg":"ES384"}')
    claims = {"sub": CONTACT, "aud": push.base, "exp": int(time.time()) + 60}
    resigned = sign_raw(f"{header}.{b64url_encode(json.dumps(claims).encode())}", vapid.private_key)
    k = b64url_encode(raw_public_key(vapid.private_key))
    assert post(sub, vapid, Authorization=f"vapid t={resigned},k={k}").status_code == 403
    assert "ES256" in refused(push, 403)


def sign_raw(signing_input: str, key: ec.EllipticCurvePrivateKey) -> str:
    """JWS ES256 over an arbitrary header.claims, for tokens py_vapid won't make."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "WebPush eyJ0eXAi.eyJhdWQi.c2ln",  # the pre-RFC 8292 scheme
        "vapid t=abc",
        "vapid k=BA1Hxzyi",
        "vapid t=a.b.c,k=not-a-point",
    ],
)
def test_missing_or_malformed_authorization_is_401(
    push: FakePushService, sub: Subscriber, vapid: Vapid, authorization: str | None
) -> None:
    body = WebPusher(sub.info()).encode(b"{}")["body"]
    headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = requests.post(sub.endpoint, data=body, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "vapid"
    refused(push, 401)


def test_spaces_and_order_in_authorization_are_tolerated(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    signed = vapid.sign({"sub": CONTACT, "aud": push.base})["Authorization"]
    t, k = signed.removeprefix("vapid ").split(",")
    assert post(sub, vapid, Authorization=f"vapid {k} ,  {t}").status_code == 201


# -- refused: message --------------------------------------------------------------------


def test_tampered_body_is_400(push: FakePushService, sub: Subscriber, vapid: Vapid) -> None:
    body = bytearray(WebPusher(sub.info()).encode(json.dumps(PAYLOAD).encode())["body"])
    body[-1] ^= 1
    assert post(sub, vapid, body=bytes(body)).status_code == 400
    assert "decrypt" in refused(push, 400)


def test_body_for_another_subscriber_is_400(push: FakePushService, vapid: Vapid) -> None:
    sub, other = push.subscriber(), push.subscriber()
    body = WebPusher(other.info()).encode(b"{}")["body"]
    assert post(sub, vapid, body=body).status_code == 400
    refused(push, 400)


def test_legacy_aesgcm_encoding_is_400(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    with pytest.raises(WebPushException) as caught:
        send(sub, vapid, content_encoding="aesgcm")
    assert caught.value.status_code == 400
    assert "aes128gcm" in refused(push, 400)


def test_oversized_payload_is_413(push: FakePushService, sub: Subscriber, vapid: Vapid) -> None:
    with pytest.raises(WebPushException) as caught:
        send(sub, vapid, "x" * 4000)  # + 86 header + 17 overhead > 4096
    assert caught.value.status_code == 413
    refused(push, 413)
    send(sub, vapid, "x" * 3993)  # exactly 4096 bytes of body
    assert len(push.wait_for(1)[0].body) == 3993


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"TTL": None}, "TTL"),
        ({"TTL": "soon"}, "TTL"),
        ({"Topic": "t" * 33}, "Topic"),
        ({"Topic": "job 1"}, "Topic"),
        ({"Urgency": "urgent"}, "Urgency"),
    ],
)
def test_bad_headers_are_400(
    push: FakePushService, sub: Subscriber, vapid: Vapid, headers: dict[str, Any], why: str
) -> None:
    body = WebPusher(sub.info()).encode(b"{}")["body"]
    sent = {"TTL": "60", "Content-Encoding": "aes128gcm"}
    sent.update(vapid.sign({"sub": CONTACT, "aud": push.base}))
    sent.update(headers)
    response = requests.post(
        sub.endpoint, data=body, headers={k: v for k, v in sent.items() if v}, timeout=5
    )
    assert response.status_code == 400
    assert why in refused(push, 400)


# -- endpoints ---------------------------------------------------------------------------


def test_unknown_endpoint_is_404(push: FakePushService, sub: Subscriber, vapid: Vapid) -> None:
    stray = Subscriber("nope", f"{push.base}/push/nope", sub.p256dh, sub.auth)
    with pytest.raises(WebPushException) as caught:
        send(stray, vapid)
    assert caught.value.status_code == 404
    assert push.rejected == [("nope", 404, "unknown push endpoint /push/nope")]


def test_gone_subscription_is_410_forever(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    send(sub, vapid)
    push.gone(sub.token)
    for _ in range(2):
        with pytest.raises(WebPushException) as caught:
            send(sub, vapid)
        assert caught.value.status_code == 410
    assert len(push.received) == 1
    assert [status for _, status, _ in push.rejected] == [410, 410]


# -- scripted answers and holds --------------------------------------------------------


def test_scripted_429_carries_retry_after_then_default(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    push.answer(sub.token, 429, retry_after=7)
    with pytest.raises(WebPushException) as caught:
        send(sub, vapid)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == "7"
    assert push.received == []
    assert push.rejected == [(sub.token, 429, "scripted answer")]

    assert send(sub, vapid).status_code == 201
    assert [m.payload for m in push.wait_for(1)] == [PAYLOAD]


def test_scripted_statuses_apply_in_order_to_valid_requests_only(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    push.answer(sub.token, 503, 202, 404)
    assert post(sub, vapid, TTL="never").status_code == 400  # refused, script untouched
    statuses = []
    for _ in range(4):
        try:
            statuses.append(send(sub, vapid).status_code)
        except WebPushException as exc:
            statuses.append(exc.status_code)
            assert exc.retry_after is None  # not given
    assert statuses == [503, 202, 404, 201]
    assert [m.status for m in push.received] == [202, 201]


def test_answer_for_unknown_token_fails_loudly(push: FakePushService) -> None:
    with pytest.raises(KeyError):
        push.answer("typo", 429)


def test_hold_blocks_until_released_without_accepting(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    push.hold(after=1)
    send(sub, vapid)
    outcome: list[BaseException] = []

    def second() -> None:
        try:
            send(sub, vapid, {"n": 2}, timeout=0.3)
        except BaseException as exc:  # the client's timeout is the expected outcome
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    wait_until(lambda: push.held_count == 1)
    thread.join(timeout=5)
    assert outcome and isinstance(outcome[0], requests.exceptions.Timeout)
    push.release(accept=False)
    wait_until(lambda: push.held_count == 0 and len(push.rejected) == 1)
    assert [m.payload for m in push.received] == [PAYLOAD]
    [(token, status, _)] = push.rejected
    assert (token, status) == (sub.token, 0)
    assert send(sub, vapid, {"n": 3}).status_code == 201  # the hold is over


def test_held_request_is_accepted_on_release_accept(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    push.hold(after=0)
    responses: list[requests.Response] = []
    thread = threading.Thread(target=lambda: responses.append(send(sub, vapid, {"n": 1})))
    thread.start()
    wait_until(lambda: push.held_count == 1)
    assert push.received == []
    push.release(accept=True)
    thread.join(timeout=5)
    assert [r.status_code for r in responses] == [201]
    assert [m.payload for m in push.received] == [{"n": 1}]


def test_held_request_dropped_on_release_without_accept(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    push.hold(after=0)
    errors: list[BaseException] = []

    def held() -> None:
        try:
            send(sub, vapid)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=held)
    thread.start()
    wait_until(lambda: push.held_count == 1)
    push.release(accept=False)
    thread.join(timeout=5)
    assert errors and isinstance(errors[0], requests.exceptions.ConnectionError)
    assert push.received == []


def test_wait_for_times_out_with_the_reasons(
    push: FakePushService, sub: Subscriber, vapid: Vapid
) -> None:
    post(sub, vapid, TTL="")
    with pytest.raises(AssertionError, match=r"0 of 1 .*TTL"):
        push.wait_for(1, timeout=0.05)


def wait_until(condition: Any, timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)
