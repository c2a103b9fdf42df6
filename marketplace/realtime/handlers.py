"""Socket.IO event handlers: the login session decides who may connect and where.

A client cannot pick its rooms; the server joins it to exactly the rooms its
login entitles it to.  Anonymous connections are refused outright.  On
connect a client says its delivery cursor: the highest position of the
person's notification sequence up to which it has everything.  Everything
after it is replayed, so a phone that lost the network misses nothing; the
client drops by id what it then also receives live.

A live message is one per language, shared by everyone of that language
(realtime/publisher.py), so it carries no sequence number, only the event's
`batch` key, so the page sends the keys it
holds without a number ("have") with its cursor.  The rows after the cursor
whose key it has are not sent again: a "sync" event answers with their numbers
(`matched`: [seq, key] pairs) and with the keys no row after the cursor has
(`unknown`, once the whole range was read), and the page moves its cursor over
them.  Only a request that sent keys gets a "sync"; every other row is replayed
as before.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import request
from flask_login import current_user
from flask_socketio import SocketIO, emit, join_room

from marketplace import events
from marketplace.clusters.exit.access import viewer_is_former_member
from marketplace.realtime.publisher import render_notification
from marketplace.realtime.rooms import rooms_for
from marketplace.realtime.wire import batch_key
from marketplace.web import db

log = logging.getLogger(__name__)


REPLAY_PAGE = 200
REPLAY_MOST = 2000  # a phone away for weeks reloads instead (the page shows the state)
HAVE_MOST = 200  # keys a page may say it holds without a number (live.js sends <= 100)
_KEY = re.compile(r"[0-9a-f]{16}")


def _cursor(data: Any) -> int | None:
    """The client's delivery cursor, if it sent a sane one."""
    if not isinstance(data, dict):
        return None
    value = data.get("cursor")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62:
        return value
    return None


def _have(data: Any) -> frozenset[str]:
    """The batch keys the page holds without a number; anything malformed counts as
    none (everything after the cursor is then replayed, and the page drops repeats)."""
    keys = data.get("have") if isinstance(data, dict) else None
    if (not isinstance(keys, list) or len(keys) > HAVE_MOST
            or not all(isinstance(k, str) and _KEY.fullmatch(k) for k in keys)):
        return frozenset()
    return frozenset(keys)


def _replay(cursor: int, have: frozenset[str] = frozenset()) -> int:
    """Send everything after `cursor`, in sequence order, a page at a time, except the
    rows whose batch key is in `have`: those are named in one "sync" at the end."""
    sid: str = request.sid  # type: ignore[attr-defined]  # Flask-SocketIO sets it
    sent = walked = 0
    matched: list[list[Any]] = []
    complete = False
    while walked < REPLAY_MOST:
        missed = events.missed_since(db(), current_user.id, cursor, REPLAY_PAGE)
        db().rollback()  # end each read transaction at once
        for row in missed:
            key = batch_key(row.kind, row.link, row.payload, row.created_at) if have else None
            if key in have:
                matched.append([row.seq, key])
            else:
                emit(row.kind, render_notification(row), to=sid)
                sent += 1
        walked += len(missed)
        if len(missed) < REPLAY_PAGE:
            complete = True
            break
        cursor = missed[-1].seq
    if have:
        found = {key for _seq, key in matched}
        emit("sync", {"matched": matched,
                      "unknown": sorted(have - found) if complete else []},
             to=sid)
    return sent


def on_connect(auth: Any = None) -> bool:
    """Accept logged-in people of a current member business (or the coordinator), put
    them in their rooms, replay what they missed."""
    if not current_user.is_authenticated:
        log.info("socket refused: not logged in")
        return False
    if viewer_is_former_member():  # the pages' gate does not see socket events
        log.info("socket refused: user %s's business has left", current_user.id)
        db().rollback()
        return False
    for room in rooms_for(current_user.id, current_user.member_id, current_user.cluster_id,
                          current_user.is_coordinator):
        join_room(room)
    cursor = _cursor(auth)
    if cursor is not None:
        _replay(cursor, _have(auth))
    db().rollback()
    return True


def on_replay(data: Any = None, *_extra: Any) -> dict[str, Any]:
    """Explicit catch-up: {"cursor": n} -> every later notification, then the count.
    With {"cursor": n, "have": [key, ...]} the rows of those keys come as one "sync".

    Any other first argument is refused with a hint; further arguments are ignored
    (a client decides how many it sends, and a handler that cannot take them would
    fail instead of answering)."""
    cursor = _cursor(data)
    if not current_user.is_authenticated or cursor is None:
        return {"error": "send {\"cursor\": <int>}"}
    if viewer_is_former_member():  # the pages' gate does not see socket events
        db().rollback()
        return {"error": "former_member"}
    return {"replayed": _replay(cursor, _have(data))}


def on_error(error: BaseException) -> dict[str, str]:
    """A handler that failed all the same: logged and rolled back, and the client gets
    an answer instead of silence (the socket counterpart of the 500 page)."""
    log.exception("socket event failed: %s", error)
    db().rollback()
    return {"error": "server_error"}


def register_handlers(socketio: SocketIO) -> None:
    """Put these handlers on an app's own Socket.IO (extensions.py says why one each)."""
    socketio.on("connect")(on_connect)
    socketio.on("replay")(on_replay)
    socketio.on_error_default(on_error)
