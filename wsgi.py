"""Entry point: `gunicorn wsgi:app` in production, `python wsgi.py` for development.

Importing this module starts nothing in the background: `python wsgi.py`
(the embedded default) runs the scheduler in-process, production runs it as
its own `flask --app wsgi scheduler` process.
"""

import gc
import os

from marketplace import create_app
from marketplace.config import require_message_queue
from marketplace.extensions import socketio

app = create_app()
if not app.config["SCHEDULER_IN_PROCESS"]:
    # The scheduler runs in a process of its own: what it does (a bid window closing,
    # a hand-over) reaches this instance's phones only through the message queue.
    require_message_queue(app.config, "A web instance whose scheduler runs elsewhere")
# Everything loaded at start-up lives as long as the process: keep the cyclic garbage
# collector from walking those ~200 000 objects on every full collection (a 100 ms
# pause inside whichever request triggers it, measured by bench/push_fanout.py).
gc.freeze()

if __name__ == "__main__":
    from marketplace.scheduling.runner import start_in_process

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if app.config["SCHEDULER_IN_PROCESS"]:
        start_in_process(app)
    print(f"marketplace running at http://{host}:{port}/  (Ctrl-C stops it)", flush=True)
    socketio.run(app, host=host, port=port, allow_unsafe_werkzeug=True)
