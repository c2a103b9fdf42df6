"""Wire the push channel into an app, and run the delivery worker as a scheduled task.

This is the edge of the delivery package: it reads the app's settings, renders
texts with Flask-Babel in each recipient's language, and hands the flask-free
worker (delivery/worker.py) a sender and a renderer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from flask_babel import force_locale, gettext
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.delivery.preferences import CATEGORY_TITLES, category_of
from marketplace.delivery.vapid import VapidSigner, instance_private_key, load_key, public_key
from marketplace.delivery.webpush import WebPushSender
from marketplace.delivery.worker import Round, Sender, WorkerSettings, send_due
from marketplace.i18n import notification_text
from marketplace.realtime.models import Notification

EXTENSION = "marketplace.push"
log = logging.getLogger(__name__)


@dataclass
class PushChannel:
    """Everything the worker needs to send this app's pushes."""

    public_key: str
    sender: Sender
    settings: WorkerSettings
    allowed_hosts: tuple[str, ...]


def init_push(app: Flask) -> None:
    """Load (or generate) the VAPID key and keep the channel on the app."""

    @app.context_processor
    def _vapid() -> dict[str, object]:
        channel = app.extensions.get(EXTENSION)
        return {"vapid_public_key": lambda: channel.public_key if channel else ""}

    if not app.config["PUSH_ENABLED"]:
        app.extensions[EXTENSION] = None
        return
    if not app.config["VAPID_PRIVATE_KEY"] and app.config["REDIS_URL"]:
        log.warning("VAPID_PRIVATE_KEY is not set: this process signs pushes with the key in "
                    "%s; processes on other machines must share it, or push services will "
                    "refuse their pushes", app.config["INSTANCE_DIR"])
    private = app.config["VAPID_PRIVATE_KEY"] or instance_private_key(
        Path(app.config["INSTANCE_DIR"]))
    vapid = load_key(private)
    app.extensions[EXTENSION] = PushChannel(
        public_key=public_key(vapid),
        sender=WebPushSender(VapidSigner(vapid, app.config["VAPID_SUBJECT"]),
                             timeout=app.config["PUSH_TIMEOUT_SECONDS"],
                             pool=app.config["PUSH_CONCURRENCY"]),
        settings=WorkerSettings(concurrency=app.config["PUSH_CONCURRENCY"],
                                lease=timedelta(seconds=app.config["PUSH_LEASE_SECONDS"]),
                                ttl_seconds=app.config["PUSH_TTL_SECONDS"],
                                default_locale=app.config["BABEL_DEFAULT_LOCALE"]),
        allowed_hosts=tuple(app.config["PUSH_SERVICE_HOSTS"]))


def push_channel(app: Flask | None = None) -> PushChannel | None:
    return (app or current_app).extensions.get(EXTENSION)


def render_push(notification: Notification, locale: str, cluster_name: str) -> tuple[str, str]:
    """Title and text of a push, in the recipient's language (needs an app context)."""
    with force_locale(locale):
        title = gettext(CATEGORY_TITLES[category_of(notification.kind)])
        return f"{title} · {cluster_name}", notification_text(notification.message,
                                                              notification.params)


def send_due_pushes(session: Session, now: datetime) -> Round | None:
    """The scheduled task: send what is due with the current app's channel."""
    channel = push_channel()
    if channel is None:
        return None
    return send_due(session, now, channel.sender, render_push, channel.settings, clock=utcnow)
