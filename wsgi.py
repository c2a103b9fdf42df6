"""Entry point: `gunicorn wsgi:app` in production, `python wsgi.py` for development.

Importing this module starts nothing in the background: the scheduler runs
in `flask serve` / `python wsgi.py` (embedded default) or as its own
`flask scheduler` process (production).
"""

from marketplace import create_app
from marketplace.extensions import socketio

app = create_app()

if __name__ == "__main__":
    from marketplace.scheduling.runner import start_in_process

    if app.config["SCHEDULER_IN_PROCESS"]:
        start_in_process(app)
    socketio.run(app, host="127.0.0.1", port=5000, allow_unsafe_werkzeug=True)
