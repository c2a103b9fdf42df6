"""Turn stored notifications into Socket.IO messages, in the recipient's language.

The same rendering serves the live emit after commit, the replay on
reconnect and the notification centre's JSON, so a client sees one shape
whichever way a notification reaches it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import force_locale, gettext

from marketplace import events
from marketplace.extensions import socketio
from marketplace.realtime.models import Notification
from marketplace.realtime.rooms import user_room


def render_notification(row: Notification) -> dict[str, Any]:
    """The wire shape of a notification, its text in the current locale."""
    return {
        "id": row.id, "kind": row.kind, "text": gettext(row.message, **row.params),
        "link": row.link, "data": row.payload,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def install_publisher(app: Flask) -> None:
    """Emit each committed notification to its recipient's room (via Redis if set)."""
    default_locale = app.config["BABEL_DEFAULT_LOCALE"]

    def publish(row: Notification, locale: str | None) -> None:
        with app.app_context(), force_locale(locale or default_locale):
            message = render_notification(row)
        socketio.emit(row.kind, message, to=user_room(row.user_id))

    events.set_publisher(publish)
