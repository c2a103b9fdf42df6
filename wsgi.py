"""Entry point: gunicorn in production, `python wsgi.py` for the embedded default.

Both serve under gevent, so one process holds thousands of idle phones
(marketplace/serving.py says why and what that requires):

* production: `gunicorn -c docs/gunicorn.conf.py -b ADDRESS wsgi:app`; the
  gevent worker monkey-patches the standard library, then imports this module;
* embedded: `python wsgi.py` patches on the first lines below, before anything
  imports socket or threading.  `EMBEDDED_SERVER=threading` runs werkzeug's
  threaded server instead (a debugger, or a platform without gevent).

Importing this module without gevent (`flask --app wsgi scheduler`, the old
gthread worker, the tests) serves with threads, exactly as before.

Importing this module starts nothing in the background: `python wsgi.py`
runs the scheduler in-process, production runs it as its own
`flask --app wsgi scheduler` process.
"""

import os

EMBEDDED_SERVERS = ("gevent", "threading")
if __name__ == "__main__":
    _server = os.environ.get("EMBEDDED_SERVER") or "gevent"
    if _server not in EMBEDDED_SERVERS:
        raise SystemExit(f"EMBEDDED_SERVER={_server!r}: use one of {', '.join(EMBEDDED_SERVERS)}")
    if _server == "gevent":
        from gevent import monkey

        monkey.patch_all()  # first: every later import must see cooperative sockets and locks

import gc  # noqa: E402 - after the patch, on purpose

from marketplace import create_app  # noqa: E402
from marketplace.config import require_message_queue  # noqa: E402
from marketplace.extensions import socketio_of  # noqa: E402
from marketplace.serving import GEVENT, async_mode, prepare_gevent  # noqa: E402

ASYNC_MODE = async_mode()
if ASYNC_MODE == GEVENT:
    prepare_gevent()  # refuse a loop that one query could stall; argon2 off the loop
app = create_app({"SOCKETIO_ASYNC_MODE": ASYNC_MODE})
if not app.config["SCHEDULER_IN_PROCESS"]:
    # The scheduler runs in a process of its own: what it does (a bid window closing,
    # a hand-over) reaches this instance's phones only through the message queue.
    require_message_queue(app.config, "A web instance whose scheduler runs elsewhere")
# Everything loaded at start-up lives as long as the process: keep the cyclic garbage
# collector from walking those ~200 000 objects on every full collection (a 100 ms
# pause inside whichever request triggers it, measured by bench/push_fanout.py).
# Under gunicorn this runs in the worker, after the patch and after loading the app.
gc.freeze()

if __name__ == "__main__":
    from marketplace.scheduling.runner import start_in_process

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    if app.config["SCHEDULER_IN_PROCESS"]:
        start_in_process(app)
    print(f"marketplace running at http://{host}:{port}/ ({ASYNC_MODE})  (Ctrl-C stops it)",
          flush=True)
    socketio_of(app).run(app, host=host, port=port, allow_unsafe_werkzeug=True)
