"""Entry point: `gunicorn wsgi:app` in production, `python wsgi.py` for development."""

from marketplace import create_app
from marketplace.extensions import socketio

app = create_app()

if __name__ == "__main__":
    socketio.run(app, host="127.0.0.1", port=5000, allow_unsafe_werkzeug=True)
