"""Turn stored notifications into Socket.IO messages, in the recipient's language.

The same wire shape (realtime/wire.py) serves the live emit after commit, the
replay on reconnect, the notification centre's JSON and Web Push, so a client
sees one shape whichever way a notification reaches it.  A live batch (one event for many
recipients) is rendered once per language, not once per recipient: the text
depends only on the message, its parameters and the locale.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext

from marketplace import events
from marketplace.extensions import socketio
from marketplace.realtime.models import Notification
from marketplace.realtime.rooms import user_room
from marketplace.realtime.wire import wire

log = logging.getLogger(__name__)


def render_notification(row: Notification) -> dict[str, Any]:
    """The wire shape of a notification, its text in the current locale."""
    return wire(row.id, row.seq, row.kind, gettext(row.message, **row.params), row.link,
                row.payload, row.created_at)


def install_publisher(app: Flask) -> None:
    """Emit each committed notification to its recipient's room (via Redis if set)."""
    default_locale = app.config["BABEL_DEFAULT_LOCALE"]

    def publish(batch: events.Batch) -> None:
        texts: dict[str, str] = {}
        with app.app_context():
            for recipient in batch.recipients:
                locale = recipient.locale or default_locale
                if locale not in texts:
                    with force_locale(locale):
                        texts[locale] = gettext(batch.message, **batch.params)
        for recipient in batch.recipients:
            message = wire(
                recipient.notification_id,
                recipient.seq,
                batch.kind,
                texts[recipient.locale or default_locale],
                batch.link,
                batch.payload,
                batch.created_at,
            )
            try:
                socketio.emit(batch.kind, message, to=user_room(recipient.user_id))
            except Exception:  # the row is stored; replay delivers it later
                log.exception("could not deliver notification_id=%s", recipient.notification_id)

    events.set_publisher(publish)
