"""The Flask extension objects, created unbound and wired in `create_app`.

Socket.IO is the exception: each app gets a `SocketIO` of its own (`socketio_of`).
Flask-SocketIO dispatches events, joins rooms and emits through the one server of
its object, which `init_app` replaces, so a shared object served only the last app
built: another app's sockets had their events ignored and their rooms joined on the
wrong server."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)


def socketio_of(app: Flask) -> SocketIO:
    """The app's own Socket.IO (Flask-SocketIO keeps it in app.extensions)."""
    found = app.extensions["socketio"]
    assert isinstance(found, SocketIO)
    return found
