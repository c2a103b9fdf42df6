"""Deliver Stripe webhook events to the app the way Stripe does: signed, and at times
again (a retry: the same id) or out of order (an older state arriving late).

The events come from FakeStripe's state-change methods (`pay`, `refund_in_dashboard`,
`update_account`...) or are hand-made; either way they are signed with the real
library's `WebhookSignature.generate_signature_header`, so the app verifies them
exactly as it verifies Stripe's.
"""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Mapping
from typing import Any

import stripe
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

WEBHOOK_SECRET = "whsec_test_secret"
WEBHOOK_PATH = "/stripe/webhook"

Event = dict[str, Any]


def signed(event: Mapping[str, Any], secret: str = WEBHOOK_SECRET,
           timestamp: int | None = None) -> tuple[str, str]:
    """(payload, Stripe-Signature header) for the event; `timestamp` defaults to now
    (an old one tests the app's replay tolerance)."""
    payload = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(payload, secret,
                                                               timestamp=timestamp)
    return payload, header


def post_event(client: FlaskClient, event: Mapping[str, Any],
               secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> TestResponse:
    """POST the signed event to the app's webhook endpoint; the app's response."""
    payload, header = signed(event, secret, timestamp)
    return client.post(WEBHOOK_PATH, data=payload, content_type="application/json",
                       headers={"Stripe-Signature": header})


def replayed(event: Mapping[str, Any]) -> Event:
    """The same event delivered again, as Stripe retries it: same id, same content."""
    return copy.deepcopy(dict(event))


def event_like(event: Mapping[str, Any], *, object_changes: Mapping[str, Any] | None = None,
               **changes: Any) -> Event:
    """A different event (new id) built from `event`: `changes` replace top-level fields
    (`created=...`, `type=...`), `object_changes` fields of data.object.

    E.g. an older account.updated arriving after a newer one:
    `event_like(newer, created=newer["created"] - 60,
                object_changes={"payouts_enabled": False})`.
    """
    other = copy.deepcopy(dict(event))
    other["id"] = f"evt_{secrets.token_hex(12)}"
    other.update(copy.deepcopy(changes))
    if object_changes:
        other["data"]["object"].update(copy.deepcopy(dict(object_changes)))
    return other
