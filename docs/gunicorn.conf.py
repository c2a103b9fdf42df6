"""gunicorn settings for one web instance of the marketplace.

    .venv/bin/gunicorn -c docs/gunicorn.conf.py -b 127.0.0.1:8001 wsgi:app

* One gevent worker: Flask-SocketIO keeps each connection in the process that
  accepted it, so a process is the unit of scale (run several instances behind
  nginx, see docs/nginx.conf); within it, gevent holds thousands of idle
  phones where the old `--worker-class gthread --threads 50` held 50.
* The worker monkey-patches the standard library when it starts, and only then
  imports wsgi.py (which checks the patch took: marketplace/serving.py).  So
  this file, which gunicorn's master runs, imports nothing of the app, and the
  app is not preloaded: psycopg imported before the patch would block the
  whole process on every query.
* Every connection is a file descriptor: the open-files limit is raised to
  what the connections need (systemd's default soft limit is 1024).

WEB_CONNECTIONS (default 10000) caps the connections the worker serves at
once, phones and page requests together; more wait in the listen backlog.
"""

import os
import resource

worker_class = "gevent"
workers = 1
worker_connections = int(os.environ.get("WEB_CONNECTIONS") or 10000)
preload_app = False  # the app must be imported after the worker's monkey-patch
backlog = 2048
# No control socket: its default path is one per user, so a second instance on the
# machine would take over the first one's; nothing here uses `gunicornc`.
control_socket_disable = True
# A restart lets open phones go after 10 s: their clients reconnect to the new worker.
graceful_timeout = 10
# Files the worker has open besides its connections: the listener, logs, the database.
_SPARE_FILES = 256


def on_starting(server):  # type: ignore[no-untyped-def]
    """Raise the soft open-files limit (inherited by the worker) to fit the connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = worker_connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        soft = new
    if soft != resource.RLIM_INFINITY and soft < wanted:
        server.log.warning("open files limited to %d (hard limit): fewer than the %d "
                           "connections WEB_CONNECTIONS allows; raise LimitNOFILE", soft,
                           worker_connections)
