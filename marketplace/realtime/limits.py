"""The size limit on Socket.IO long-polling POSTs, applied before Engine.IO sees them.

Engine.IO (python-engineio 4.x) answers a POST larger than `max_http_buffer_size` by
closing the session and waiting until the client collects the close packet with its
next poll.  A client that never polls again keeps that server thread (or greenlet)
waiting forever: a few such requests and the workers are gone.  Refused here, the
request ends at once with a 413 and the session simply times out like any idle one.
Messages over an open websocket are checked by Engine.IO itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PollingBodyLimit:
    """WSGI middleware: a POST under `path` announcing more than `limit` bytes gets a
    413 without its body being read."""

    def __init__(self, app: WSGIApp, path: str, limit: int) -> None:
        self.app = app
        self.path = "/" + path.strip("/") + "/"
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if (environ.get("REQUEST_METHOD") == "POST"
                and environ.get("PATH_INFO", "").startswith(self.path)
                and self._announced(environ) > self.limit):
            start_response("413 Payload Too Large", [("Content-Type", "text/plain"),
                                                     ("Connection", "close")])
            return [b"Payload too large"]
        return self.app(environ, start_response)

    @staticmethod
    def _announced(environ: dict[str, Any]) -> int:
        try:
            return int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0
