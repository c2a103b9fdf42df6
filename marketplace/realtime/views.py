"""The notification centre: every stored notification, with an unread count."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from marketplace import events
from marketplace.db import utcnow
from marketplace.realtime.publisher import render_notification
from marketplace.web import db

bp = Blueprint("notifications", __name__)


@bp.app_context_processor
def _unread() -> dict[str, object]:
    """The unread count for the navigation badge and the delivery cursor the page
    reflects, where live.js starts its replay (both 0 for anonymous visitors)."""
    def unread_count() -> int:
        if not current_user.is_authenticated:
            return 0
        return events.unread_count(db(), current_user.id)

    def notification_cursor() -> int:
        return int(g.get("notification_cursor", 0))
    return {"unread_count": unread_count, "notification_cursor": notification_cursor}


@bp.before_app_request
def _cursor_first() -> None:
    """Read the person's delivery cursor before the view reads anything else.

    On PostgreSQL every statement sees what was committed when it started: a
    cursor read at the end of rendering could count a notification that committed
    after the page's data was read, and the page's connection would then never be
    sent it.  Read first, the cursor can only be too low, and what comes twice is
    dropped by id."""
    if (current_user.is_authenticated and request.endpoint not in ("static", "vendor")
            and not request.path.startswith(("/api/", "/socket.io"))):
        g.notification_cursor = events.cursor_of(db(), current_user.id)


@bp.route("/notifications")
@login_required
def centre() -> ResponseReturnValue:
    rows = events.recent(db(), current_user.id)
    unread = events.unread_count(db(), current_user.id)
    items = [render_notification(row) for row in rows]
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"unread": unread, "notifications": items})
    response = render_template("notifications/centre.html", items=items, unread=unread,
                               unread_ids={r.id for r in rows if r.read_at is None})
    events.mark_all_read(db(), current_user.id, utcnow())
    return response
