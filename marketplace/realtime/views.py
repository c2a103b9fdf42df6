"""The notification centre: every stored notification, in pages, with an unread count.

Reading the page changes nothing (a GET never writes: a prefetch, a crawler or a
second tab must not mark anything read).  The person marks what they have seen
read with a POST, up to the newest notification the page showed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from marketplace import events
from marketplace.db import parse_id, utcnow
from marketplace.i18n import ago, notification_text, when
from marketplace.realtime.models import Notification
from marketplace.realtime.wire import wire
from marketplace.web import READ_METHODS, db, wants_json

bp = Blueprint("notifications", __name__)

#: Notifications per page of the centre: a few phone screens; older ones one tap away.
PAGE_SIZE = 30


@bp.app_context_processor
def _unread() -> dict[str, object]:
    """The unread count for the navigation badge and the delivery cursor the page
    reflects, where live.js starts its replay (both 0 for anonymous visitors)."""
    def unread_count() -> int:
        if not current_user.is_authenticated:
            return 0
        return events.unread_count(db(), current_user.id, g.get("notification_cursor"))

    def notification_cursor() -> int:
        return int(g.get("notification_cursor", 0))

    def notification_cursor_at() -> str:
        """When the cursor was read: live.js holds a shared live message of an event
        from before then until a sync says whether the page already has it."""
        read_at = g.get("notification_cursor_at")
        return read_at.isoformat() if read_at is not None else ""
    return {"unread_count": unread_count, "notification_cursor": notification_cursor,
            "notification_cursor_at": notification_cursor_at}


@bp.before_app_request
def _cursor_first() -> None:
    """Read the person's delivery cursor before the view reads anything else.

    On PostgreSQL every statement sees what was committed when it started: a
    cursor read at the end of rendering could count a notification that committed
    after the page's data was read, and the page's connection would then never be
    sent it.  Read first, the cursor can only be too low, and what comes twice is
    dropped by id.

    Not for a script's POST (it wants JSON, and renders no page to hold a cursor): a
    crew lead's phone booking or bidding saves the query on every tap."""
    if (current_user.is_authenticated and request.endpoint not in ("static", "vendor")
            and not request.path.startswith(("/api/", "/socket.io"))
            and not (request.method not in READ_METHODS and wants_json())):
        g.notification_cursor = events.cursor_of(db(), current_user.id)
        g.notification_cursor_at = utcnow()


def shown(row: Notification) -> dict[str, Any]:
    """A notification as the centre shows it: the wire shape every channel uses (its
    text in the reader's language, months by name), plus when it happened as the
    reader reads it ("3 min ago", or the date and time in their zone)."""
    item = wire(row.id, row.seq, row.kind, notification_text(row.message, row.params),
                row.link, row.payload, row.created_at)
    item["when"] = ago(row.created_at)
    item["at"] = when(row.created_at)
    return item


@bp.route("/notifications")
@login_required
def centre() -> ResponseReturnValue:
    before = parse_id(request.args.get("before"))
    # The newest position this person has been shown, on any page.  What the page
    # lists and counts ends there, like its badge (what came after comes live), and
    # marking read never reaches past it, so a notification arriving meanwhile stays
    # unread.
    through = g.get("notification_cursor", 0)
    rows = events.recent(db(), current_user.id, limit=PAGE_SIZE + 1, before=before,
                         through=through)
    more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    unread = events.unread_count(db(), current_user.id, through)
    items = [shown(row) for row in rows]
    older = url_for("notifications.centre", before=rows[-1].seq) if more else None
    if wants_json():
        return jsonify({"unread": unread, "notifications": items, "older": older,
                        "through": through})
    return render_template("notifications/centre.html", items=items, unread=unread,
                           unread_ids={r.id for r in rows if r.read_at is None},
                           older=older, newer=before is not None, through=through)


@bp.route("/notifications/read", methods=["POST"])
@login_required
def mark_read() -> ResponseReturnValue:
    """Mark read everything up to the position the page showed (`through`), or all."""
    through = parse_id(request.form.get("through"))
    marked = events.mark_all_read(db(), current_user.id, utcnow(), through)
    if wants_json():
        return jsonify({"marked": marked, "unread": events.unread_count(db(), current_user.id)})
    back = request.form.get("next") or ""
    # Only a path on this site is followed after marking read (no open redirect).
    local = back.startswith("/") and not back.startswith(("//", "/\\"))
    return redirect(back if local else url_for("notifications.centre"))
