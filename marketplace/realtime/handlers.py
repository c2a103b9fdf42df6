"""Socket.IO event handlers: the login session decides who may connect and where.

A client cannot pick its rooms; the server joins it to exactly the rooms its
login entitles it to.  Anonymous connections are refused outright.  On
connect a client says its delivery cursor: the highest position of the
person's notification sequence up to which it has everything.  Everything
after it is replayed, so a phone that lost the network misses nothing; the
client drops by id what it then also receives live.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import emit, join_room

from marketplace import events
from marketplace.extensions import socketio
from marketplace.realtime.publisher import render_notification
from marketplace.realtime.rooms import rooms_for
from marketplace.web import db

log = logging.getLogger(__name__)


REPLAY_PAGE = 200
REPLAY_MOST = 2000  # a phone away for weeks reloads instead (the page shows the state)


def _cursor(data: Any) -> int | None:
    """The client's delivery cursor, if it sent a sane one."""
    if not isinstance(data, dict):
        return None
    value = data.get("cursor")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62:
        return value
    return None


def _replay(cursor: int) -> int:
    """Send everything after `cursor`, in sequence order, a page at a time."""
    sent = 0
    while sent < REPLAY_MOST:
        missed = events.missed_since(db(), current_user.id, cursor, REPLAY_PAGE)
        db().rollback()  # end each read transaction at once
        for row in missed:
            emit(row.kind, render_notification(row), to=request.sid)  # type: ignore[attr-defined]
        sent += len(missed)
        if len(missed) < REPLAY_PAGE:
            break
        cursor = missed[-1].seq
    return sent


@socketio.on("connect")
def on_connect(auth: Any = None) -> bool:
    """Accept logged-in people only, put them in their rooms, replay what they missed."""
    if not current_user.is_authenticated:
        log.info("socket refused: not logged in")
        return False
    for room in rooms_for(current_user.id, current_user.member_id, current_user.cluster_id,
                          current_user.is_coordinator):
        join_room(room)
    cursor = _cursor(auth)
    if cursor is not None:
        _replay(cursor)
    db().rollback()
    return True


@socketio.on("replay")
def on_replay(data: Any = None, *_extra: Any) -> dict[str, Any]:
    """Explicit catch-up: {"cursor": n} -> every later notification, then the count.

    Any other first argument is refused with a hint; further arguments are ignored
    (a client decides how many it sends, and a handler that cannot take them would
    fail instead of answering)."""
    cursor = _cursor(data)
    if not current_user.is_authenticated or cursor is None:
        return {"error": "send {\"cursor\": <int>}"}
    return {"replayed": _replay(cursor)}


@socketio.on_error_default
def on_error(error: Exception) -> dict[str, str]:
    """A handler that failed all the same: logged and rolled back, and the client gets
    an answer instead of silence (the socket counterpart of the 500 page)."""
    log.exception("socket event failed: %s", error)
    db().rollback()
    return {"error": "server_error"}
