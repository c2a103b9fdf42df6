"""How a web process serves its phones: one gevent loop, or one thread per connection.

Why this module exists: each open phone is a Socket.IO connection that lasts
for hours.  Under threads (werkzeug, gunicorn's gthread worker) every one of
them holds about four threads, so a 50-thread worker held 50 phones and
stopped answering pages.  Under gevent an idle connection is a couple of
greenlets and a socket, so one process holds thousands; both the production
command (`gunicorn -c docs/gunicorn.conf.py wsgi:app`) and the embedded
default (`python wsgi.py`) serve that way.  The test suite keeps threads
(werkzeug in a thread of the test process): the app's config says which,
never what happens to be importable.

A gevent loop has one rule: nothing may wait without yielding to it, or
every phone and page of the process waits too.  Monkey-patching makes
sockets, locks, sleeps and `select` cooperative, which covers Redis and the
HTTP clients; but it only reaches code that looks those up *after* the
patch.  Two parts need more than the patch:

* psycopg 3 picks its wait function when `psycopg.waiting` is first
  imported: the C `wait_c` (which blocks the whole process) unless gevent
  has already patched `select`.  `check_cooperative` refuses to serve if
  the pick went wrong, i.e. if psycopg was imported before the patch.
* SQLite waits for its write lock inside C (`busy_timeout`), where no
  greenlet can run, and a transaction may yield while it holds that lock (a
  Redis call, a push sent from a scheduler task).  marketplace/db.py queues
  a process's writers on `threading` locks made when the engine is made, so
  here, after the patch, waiting for a turn yields to the loop and the
  holder can finish.  (A *different* process writing the same file still
  meets SQLite's busy handler in C; in the embedded default every writer,
  the scheduler included, lives in the one process, and production runs
  PostgreSQL.)

Waiting is not the only way to hold the loop: argon2 spends ~0.2 s of CPU
in C per login, during which no other greenlet runs.  argon2-cffi releases
the GIL, so `prepare_gevent` sends password hashing to native threads: a
login then costs the phones nothing but a core's share.  Those threads are a
pool of their own, one per core, not the hub's shared pool: the hub's ten
threads are also gevent's DNS resolver (every Redis or PostgreSQL reconnect,
push and e-mail looks a name up there), and a burst of logins would fill all
ten with 64 MiB hashes of four lanes each (640 MiB, 40 native threads on two
cores) and queue every lookup behind them.  Bounded to the cores, a burst
waits its turn in the hashing pool, where it costs no more than the cores can
do anyway, and the resolver stays free.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from marketplace.clusters.accounts import run_hashing_in
from marketplace.config import ConfigurationError

GEVENT = "gevent"
THREADING = "threading"

#: What `gevent.monkey.patch_all()` must have replaced for a request to never
#: stall the loop: network and TLS (Redis, PostgreSQL's connect, outgoing HTTP),
#: `select`/`selectors` (psycopg's waits), locks and threads (APScheduler, thread
#: pools, SQLAlchemy's pool), sleeps and queues.
PATCHED_MODULES = ("socket", "ssl", "select", "selectors", "threading", "time", "queue")


def gevent_patched() -> bool:
    """True when gevent has monkey-patched this process (the gevent worker or
    `python wsgi.py` did, before importing the app)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def async_mode() -> str:
    """The Socket.IO async mode matching how this process serves: "gevent" when
    gevent patched it, else "threading" (gunicorn's gthread worker, werkzeug)."""
    return GEVENT if gevent_patched() else THREADING


def check_cooperative() -> None:
    """Refuse to serve under gevent with a part that would block the loop.

    Raises ConfigurationError naming the part and the cause, at start-up,
    instead of a server that freezes whenever one query waits.
    """
    from gevent import monkey

    missing = [name for name in PATCHED_MODULES if not monkey.is_module_patched(name)]
    if missing:
        raise ConfigurationError(
            f"gevent has not patched {', '.join(missing)}: call gevent.monkey.patch_all() "
            "before anything else is imported (the gevent worker and `python wsgi.py` do)")
    from psycopg import waiting

    if waiting.wait is getattr(waiting, "wait_c", None):
        raise ConfigurationError(
            "psycopg was imported before gevent patched the standard library, so every "
            "PostgreSQL query would block all connections of this process: do not import "
            "the app (or psycopg) in gunicorn's master (no preload_app, nothing in the "
            "config file), or patch first")


# Process-wide on purpose, unlike everything an app configures (marketplace/scope.py):
# the pool holds OS threads, one per core of the machine, and every app of a patched
# process needs the same off-loop hashing; what differs per app is only the argon2
# cost, which each app's sessions carry (clusters/accounts.PASSWORDS).
_hashing_pool: Any = None  # gevent.threadpool.ThreadPool, made on first use by this process
_hashing_pool_pid = 0


def hashing_pool() -> Any:
    """This process's pool of native threads for password hashing: as many threads as
    cores (more would only add memory and switching, not hashes per second), made on
    first use, i.e. after gevent patched the process and, under gunicorn, in the
    worker rather than a master that forks it."""
    global _hashing_pool, _hashing_pool_pid
    if _hashing_pool is None or _hashing_pool_pid != os.getpid():
        from gevent.threadpool import ThreadPool

        _hashing_pool = ThreadPool(maxsize=os.cpu_count() or 2)
        _hashing_pool_pid = os.getpid()
    return _hashing_pool


def in_native_thread(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in one of the hashing pool's native threads; this greenlet
    waits (in line when every thread is busy), the loop runs on.  For CPU work in C
    that releases the GIL (argon2); never the hub's pool, which resolves names."""
    return hashing_pool().apply(function, args)


def prepare_gevent() -> None:
    """Everything a gevent process needs before it builds the app: refuse a part that
    would block the loop, and hash passwords off the loop."""
    check_cooperative()
    run_hashing_in(in_native_thread)
