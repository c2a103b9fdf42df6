"""The Socket.IO message queue on Redis, with time limits on publishing.

One background task publishes every live message of a process
(realtime/background.py).  python-socketio's RedisManager opens its Redis client
without any socket timeout, so a Redis that stops answering (a network partition,
a stopped server) would leave that task waiting for a reply forever, and every
later live message of the process would wait behind it.  With a timeout the
publish fails, python-socketio logs "giving up", and the task goes on; the
notifications are stored rows and pages catch up by replay.

Only the publishing client gets the read timeout: the subscriber that receives
the other instances' messages reads on a connection that is silent for as long
as nothing happens, and a read timeout there would make it drop and re-subscribe
(losing what is published meanwhile) every few seconds.  It gets TCP keepalive
instead, so a dead Redis is still noticed.
"""

from __future__ import annotations

from typing import Any

import socketio

#: Seconds a publish may wait for Redis (connecting or answering) before giving up.
PUBLISH_TIMEOUT = 5.0


class TimedRedisManager(socketio.RedisManager):
    """RedisManager whose publishing client times out; its subscriber does not."""

    def __init__(self, url: str, *, channel: str, timeout: float = PUBLISH_TIMEOUT,
                 **kwargs: Any) -> None:
        self.timeout = timeout
        super().__init__(url, channel=channel, redis_options={
            "socket_connect_timeout": timeout, "socket_keepalive": True}, **kwargs)

    def _redis_connect(self) -> None:
        super()._redis_connect()  # self.redis and self.pubsub, without read timeout
        if "sentinel" in self.redis_url.split(":", 1)[0]:
            return  # Sentinel URLs keep python-socketio's one client
        listening: Any = self.pubsub  # type: ignore[has-type]  # set by the base class
        module = self._get_redis_module()
        self.redis = module.Redis.from_url(self.redis_url, socket_timeout=self.timeout,
                                           **self.redis_options)
        self.pubsub = listening


def message_queue(url: str | None, channel: str) -> TimedRedisManager | None:
    """The client manager for Flask-SocketIO when a Redis URL is set (None: in-process)."""
    if not url:
        return None
    return TimedRedisManager(url, channel=channel)
