"""Push subscriptions from the browser.

These endpoints speak JSON (the browser's `PushSubscription` arrives as JSON
from static/js/push.js) and, like every write, need the CSRF token (sent as
X-CSRFToken).  The person's push choices are a plain form on the account page
(clusters/views.py), so they work without JavaScript too.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from marketplace.db import utcnow
from marketplace.delivery import subscriptions
from marketplace.delivery.runner import push_channel
from marketplace.errors import N_, DomainError, ValidationError
from marketplace.web import db, viewer

bp = Blueprint("push", __name__)


@bp.before_request
@login_required
def _logged_in() -> None:
    """Every route here acts for the logged-in person."""


def _subscription_json() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        message = N_("Send the browser's push subscription as JSON.")
        raise ValidationError("bad_subscription", message, fields={"body": message})
    return body


@bp.route("/push/subscriptions", methods=["POST"])
def subscribe() -> ResponseReturnValue:
    channel = push_channel()
    if channel is None:
        raise DomainError("push_off", N_("Push notifications are switched off on this site."),
                          status=409)
    body = _subscription_json()
    keys = body.get("keys")
    if not isinstance(keys, dict):
        keys = {}
    row = subscriptions.subscribe(
        db(), viewer(), body.get("endpoint"), keys.get("p256dh"), keys.get("auth"),
        request.headers.get("User-Agent", ""), utcnow(), channel.allowed_hosts)
    return jsonify({"id": row.id}), 201


@bp.route("/push/subscriptions/remove", methods=["POST"])
def unsubscribe() -> ResponseReturnValue:
    removed = subscriptions.unsubscribe(db(), viewer(), _subscription_json().get("endpoint"),
                                        utcnow())
    return jsonify({"removed": removed})
