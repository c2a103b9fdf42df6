"""Socket.IO event handlers: the login session decides who may connect and where.

A client cannot pick its rooms; the server joins it to exactly the rooms its
login entitles it to.  Anonymous connections are refused outright.
"""

from __future__ import annotations

import logging
from typing import Any

from flask_login import current_user
from flask_socketio import join_room

from marketplace.extensions import socketio
from marketplace.realtime.rooms import rooms_for

log = logging.getLogger(__name__)


@socketio.on("connect")
def on_connect(_auth: Any = None) -> bool:
    """Accept logged-in people only and put them in their rooms."""
    if not current_user.is_authenticated:
        log.info("socket refused: not logged in")
        return False
    for room in rooms_for(current_user.id, current_user.member_id, current_user.cluster_id,
                          current_user.is_coordinator):
        join_room(room)
    return True
