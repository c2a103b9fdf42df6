"""Entry point: `gunicorn wsgi:app` in production, `python wsgi.py` for development.

Importing this module starts nothing in the background: `python wsgi.py`
(the embedded default) runs the scheduler in-process, production runs it as
its own `flask --app wsgi scheduler` process.
"""

import os

from marketplace import create_app
from marketplace.extensions import socketio

app = create_app()

if __name__ == "__main__":
    from marketplace.scheduling.runner import start_in_process

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if app.config["SCHEDULER_IN_PROCESS"]:
        start_in_process(app)
    print(f"marketplace running at http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True)
