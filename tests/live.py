"""A real HTTP + Socket.IO server on a free loopback port, for real clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import requests
import socketio
from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    """Serve `app` (Socket.IO included) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def logged_in_cookie(base_url: str, email: str, password: str) -> str:
    """Log in over HTTP like a browser and return the Cookie header to reuse."""
    http = requests.Session()
    response = http.post(f"{base_url}/login", data={"email": email, "password": password},
                         allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def socket_client(base_url: str, cookie: str | None) -> socketio.Client:
    """A python-socketio client connected with the given login cookie (websocket only)."""
    client = socketio.Client(reconnection=False)
    client.connect(base_url, headers={"Cookie": cookie} if cookie else {},
                   transports=["websocket"], wait_timeout=5)
    return client
