"""What the benchmarks in bench/ share: how they serve, log in, time out and clean up.

Why this module exists: every benchmark here measures our app against a bare
baseline served the same way in the same run, and the ratio only means
something if both sides really are served, logged into and stopped alike.
Those mechanics were copied from script to script; a fix made in one copy (a
child process left behind on timeout, a remote database accepted, a login
that no longer works with CSRF on) would silently be missing in the other.
So they live here once.  What a benchmark measures, its clients and its
report stay in its own script.

What is here:

* `Progress`: the timestamped progress lines on stderr.
* `add_run_options`, `check_run_options`: --smoke, --database-url (loopback
  only, else exit status 2) and --timeout, the options every benchmark has.
* `Watchdog`: the hard overall timeout (exit status 3), and the owner of every
  child process and temporary directory a run makes, so that a timeout kills
  and removes all of them; `stop_children` stops them on a normal run.
* `ServerProcess`: our app or a baseline, each in its own "spawn" process
  behind werkzeug's threaded server on a free loopback port, as
  `tests.live.live_server` serves it; `app_config` is the app's config there.
* `log_in` and `csrf_token`: a login over HTTP as a browser does it;
  `in_parallel` for doing many of them.
* `choose_database`, `world_session` and `found_cluster`: the database (a
  temporary SQLite file or a loopback `--database-url`) and the cluster every
  benchmark world starts from, built through the real services
  (`coordinator_email` names its coordinator).
* `percentile`, `machine_line`: the pieces of the printed results both use.

The scripts are run as files (`python bench/x.py`), so bench/ is on sys.path
and they `import harness`; "spawn" children get the same sys.path, which is
how they find `_serve` here.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from types import TracebackType

    from sqlmodel import Session

    from marketplace.clusters.models import User

HOST = "127.0.0.1"  # everything a benchmark talks to is on this machine
LOGIN_TIMEOUT_S = 30.0
SECRET_KEY = secrets.token_urlsafe(32)  # per run; a server child gets it in its config
SMOKE_TIMEOUT_S = 30.0  # the default --timeout with --smoke
SERVER_START_S = 60.0  # a server child that has no port by then counts as failed
_CSRF_INPUT = re.compile(r'<input[^>]*\bname="csrf_token"[^>]*>')
_VALUE = re.compile(r'\bvalue="([^"]*)"')

Process = multiprocessing.process.BaseProcess
AppFactory = Callable[[dict[str, Any]], Any]
"""Builds a WSGI app from a picklable spec, inside the server child."""


# ------------------------------------------------------------------ progress


class Progress:
    """Progress on stderr with the elapsed time, so a slow phase shows itself.

    stdout is kept for the results block alone, so it can be piped or pasted.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._start = time.perf_counter()

    def __call__(self, text: str) -> None:
        print(f"{self.name} [{time.perf_counter() - self._start:6.1f} s] {text}",
              file=sys.stderr, flush=True)


# -------------------------------------------------------------------- safety


class Watchdog:
    """The hard overall timeout: kill our child processes, clean up, exit 3.

    A benchmark left hanging on a CI machine costs more than a failed one, so
    the bound is enforced from a timer thread with `os._exit`, which works even
    when the main thread is stuck inside a socket call.  For that it has to
    know every child process and temporary directory of the run, so those are
    made through it (`spawn`, `temp_dir`); it names them after `slug`.  Used
    as a context manager, it also removes the temporary directories on a
    normal exit.
    """

    def __init__(self, seconds: float, say: Progress, slug: str) -> None:
        self.say = say
        self.slug = slug
        self.processes: list[Process] = []
        self.cleanup: list[Callable[[], None]] = []
        self._expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire, args=(seconds,))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, seconds: float) -> None:
        self._expired.set()
        print(f"{self.say.name}: hard timeout of {seconds:.0f} s reached; stopping",
              file=sys.stderr, flush=True)
        for process in self.processes:
            if process.is_alive():
                process.kill()
        self._clean_up()
        os._exit(3)

    def _clean_up(self) -> None:
        for step in self.cleanup:
            try:
                step()
            except Exception:  # exiting anyway; a leftover temp dir is not worth a trace
                pass

    def cancel(self) -> None:
        self._timer.cancel()

    def wait_if_expiring(self) -> None:
        """Once the timeout has fired, block until it ends the process with status 3.

        Its killing a child makes the main thread see that child fail; call this
        before reporting such a failure, so the run ends as a timeout (3) and not
        as a crash (1) with a misleading traceback.
        """
        if self._expired.is_set():
            time.sleep(60)  # os._exit(3) comes within moments

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.cancel()
        self._clean_up()

    def spawn(self, role: str, target: Callable[..., None], args: tuple[Any, ...] = ()
              ) -> tuple[Connection, Process]:
        """Start `target(*args, conn)` in a "spawn" daemon process; our end of its pipe.

        "spawn", not fork: the child starts clean, without the parent's
        threads, sockets and SQLAlchemy pools.
        """
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe()
        process = context.Process(target=target, args=(*args, child_conn), daemon=True,
                                  name=f"{self.slug}-{role}")
        self.processes.append(process)
        process.start()
        return parent_conn, process

    def temp_dir(self) -> str:
        """A fresh temporary directory, removed on exit and on the hard timeout."""
        path = tempfile.mkdtemp(prefix=f"{self.slug}-")
        self.cleanup.append(lambda: shutil.rmtree(path, ignore_errors=True))
        return path


def stop_children(conns: Iterable[Connection], processes: Iterable[Process],
                  message: Any) -> None:
    """Ask child processes to stop with `message`; kill any still alive after 10 s.

    A child that hangs in its own shutdown must not keep the benchmark (or
    the machine's ports and cores) busy.
    """
    for conn in conns:
        try:
            conn.send(message)
        except OSError:  # BrokenPipeError included: that child is gone already
            pass
    for process in processes:
        process.join(10)
        if process.is_alive():
            process.kill()
            process.join(5)


def loopback_only(url: str) -> str | None:
    """Why a database URL is refused (the bench talks to this machine only), or None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as error:
        return str(error)
    if parsed.get_backend_name() != "sqlite" and parsed.host not in (
            None, "", "127.0.0.1", "localhost", "::1"):
        return f"--database-url must point at this machine, not {parsed.host!r}"
    return None


def add_run_options(parser: argparse.ArgumentParser, *, smoke: str, database_url: str,
                    timeout: str) -> None:
    """--smoke, --database-url and --timeout, which every benchmark has and means alike.

    `smoke` says what a smoke run is made of, `timeout` how the default
    timeout grows without --smoke, `database_url` what the database may be;
    the rest of the help text is common.  `check_run_options` then applies
    the common rules.
    """
    parser.add_argument("--smoke", action="store_true",
                        help=f"{smoke}, {SMOKE_TIMEOUT_S:.0f} s hard timeout: "
                             "a quick check for CI")
    parser.add_argument("--database-url", default=None, help=database_url)
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"hard overall timeout in seconds (default: "
                             f"{SMOKE_TIMEOUT_S:.0f} for --smoke, else {timeout})")


def check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                      full_timeout: float) -> None:
    """Refuse a non-loopback --database-url; fill in the default --timeout.

    The benchmarks write into the database they are given and load the
    machine heavily, so pointing one at a shared server by mistake must fail
    before anything happens: the argparse way, with the usage and exit status
    2.  The timeout defaults to SMOKE_TIMEOUT_S with --smoke (a CI step must
    stay short), else to `full_timeout`, which the script sizes to its run.
    """
    refusal = loopback_only(args.database_url) if args.database_url else None
    if refusal:
        parser.error(refusal)
    if args.timeout is None:
        args.timeout = SMOKE_TIMEOUT_S if args.smoke else full_timeout


def choose_database(database_url: str | None, tmpdir: str | None) -> tuple[str, str]:
    """The database URL to use and how the report names it.

    `--database-url` when given, else a SQLite file in `tmpdir` (which must
    then be set): a fresh database per run, gone when the run ends.
    """
    if database_url:
        return database_url, f"{database_url.split(':', 1)[0].split('+', 1)[0]} (--database-url)"
    assert tmpdir is not None
    return f"sqlite:///{tmpdir}/bench.db", "SQLite (temporary file)"


# -------------------------------------------------------------------- the world


@contextmanager
def world_session(database_url: str) -> Iterator[Session]:
    """A session on `database_url` with the tables created if missing; nothing is dropped.

    Password hashing is set to the cheap argon2 the tests use: the login cost
    is not what any benchmark measures.  The session does not expire objects
    on commit, because each service commits its own transaction, as it would
    in the app, and the world's builder keeps using what they returned.
    """
    from sqlmodel import Session, SQLModel

    from marketplace.clusters.accounts import configure_hashing
    from marketplace.db import make_engine
    from marketplace.models import import_all_models

    configure_hashing(1, 1024)
    import_all_models()
    engine = make_engine(database_url)
    SQLModel.metadata.create_all(engine)
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
    finally:
        engine.dispose()


def coordinator_email(tag: str) -> str:
    """The e-mail of the coordinator `found_cluster` makes for `tag` (to find or log in as)."""
    return f"coord.{tag}@bench.test"


def found_cluster(session: Session, tag: str, *, purpose: str, timezone: str,
                  members: Sequence[tuple[str, str]], password: str, now: datetime,
                  prepare: Callable[[User, str], None] | None = None) -> list[User]:
    """A cluster named after `tag`, its agreement in force, and one owner per member.

    `members` are (email, business name); each is invited, signs up with
    `password`, goes through `prepare(owner, business)` (e.g. a profile that
    makes it eligible) and accepts the agreement.  Returns the owners in that order.
    Each run's cluster is new and uniquely named, so a scratch database can
    take many runs.
    """
    from marketplace.clusters import agreements, invites
    from marketplace.clusters.service import ClusterSettings, create_cluster

    _cluster, coordinator = create_cluster(
        session, ClusterSettings(name=f"Bench {tag}", currency="CAD",
                                 default_locale="en_CA", timezone=timezone),
        "Bench coordinator", coordinator_email(tag), password, now)
    terms = agreements.AgreementTerms(
        purpose=purpose, scope_overflow_jobs=True,
        scope_equipment=True, scope_joint_bids=True, referral_fee_bp=500,
        platform_fee_bp=100, sunset_on=now.date() + timedelta(days=730),
        exit_notice_days=30, information_rules="No bid prices across the barrier.")
    agreement = agreements.publish_agreement(session, coordinator, terms, now)
    owners = []
    for email, business in members:
        invite = invites.create_member_invite(session, coordinator, email, business, now, 7)
        owner = invites.accept_invite(session, SECRET_KEY,
                                      invites.invite_token(SECRET_KEY, invite),
                                      f"{business} owner", password, now)
        if prepare is not None:
            prepare(owner, business)
        agreements.accept_agreement(session, owner, agreement.version, now)
        owners.append(owner)
    return owners


# ------------------------------------------------------------------ the servers


def app_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Our app's config in a server child: the run's database and key, cheap hashing,
    no Redis, quiet logs.  `overrides` adds what one benchmark needs on top."""
    return {
        "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY,
        "PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 1024, "REDIS_URL": None,
        "LOG_LEVEL": "WARNING", "PUBLIC_URL": f"http://{HOST}", **overrides,
    }


def marketplace_app(spec: dict[str, Any]) -> Any:
    """The `AppFactory` of our app: `create_app(spec)` (runs in the server child)."""
    os.environ["SECRET_KEY"] = spec["SECRET_KEY"]  # so load_config writes no key file
    from marketplace import create_app

    return create_app(spec)


def _serve(factory: AppFactory, spec: dict[str, Any], conn: Connection) -> None:
    """Child process: serve `factory(spec)` until the parent says stop (or dies)."""
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.WARNING)
    # No line per request, and none for the websocket close frames werkzeug reads as a
    # "bad request" after simple-websocket hands the connection back at disconnect.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    wsgi_app = factory(spec)
    server = make_server(HOST, 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    conn.send(server.server_port)
    try:
        conn.recv()  # "stop", or EOFError when the parent died
    except EOFError:
        pass
    server.shutdown()


class ServerProcess:
    """One server child on a free loopback port; `stop()` ends it (kill if it hangs).

    Its own process, so the server's CPU can be read apart from the clients'
    (`cpu_seconds`) and its GIL is not shared with them.  `factory` must be a
    module-level function (it is pickled into the child).
    """

    def __init__(self, kind: str, factory: AppFactory, spec: dict[str, Any],
                 watchdog: Watchdog) -> None:
        self._conn, self.process = watchdog.spawn(kind, _serve, (factory, spec))
        if not self._conn.poll(SERVER_START_S):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start within {SERVER_START_S:.0f} s")
        self.url = f"http://{HOST}:{self._conn.recv()}"
        watchdog.say(f"{kind} server listening at {self.url}")

    def cpu_seconds(self) -> float:
        """CPU time the server process used so far (Linux /proc; NaN elsewhere)."""
        try:
            with open(f"/proc/{self.process.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return math.nan
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_children([self._conn], [self.process], "stop")


# ------------------------------------------------------------------ the clients


def in_parallel(work: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """`work` over `items` in `workers` threads, results in order (setup, e.g. logins)."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(work, items))


def csrf_token(html: str) -> str:
    """The value of the page's `csrf_token` input, as a browser would submit it."""
    tag = _CSRF_INPUT.search(html)
    value = _VALUE.search(tag.group(0)) if tag else None
    if value is None:
        raise RuntimeError("no csrf_token input on the page")
    return value.group(1)


def log_in(base_url: str, email: str, password: str, *, csrf: bool) -> requests.Session:
    """Log in over HTTP like a browser; the session then holds the login cookie.

    With `csrf` the app checks CSRF tokens, so the token comes from GET /login
    first, as a browser gets it from the form.  Raises unless the app answers
    the POST with its redirect.
    """
    http = requests.Session()
    data = {"email": email, "password": password}
    if csrf:
        page = http.get(f"{base_url}/login", timeout=LOGIN_TIMEOUT_S)
        data["csrf_token"] = csrf_token(page.text)
    response = http.post(f"{base_url}/login", data=data, allow_redirects=False,
                         timeout=LOGIN_TIMEOUT_S)
    if response.status_code != 302:
        raise RuntimeError(f"login as {email} failed: HTTP {response.status_code}")
    return http


# ---------------------------------------------------------------------- report


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every number printed was observed)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def version(package: str) -> str:
    """The installed version of `package`, or "?"."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(package)
    except PackageNotFoundError:
        return "?"


def machine_line(*packages: str) -> str:
    """What the numbers were measured on: usable CPUs, OS, Python and `packages`' versions.

    Printed with every result, because the numbers mean nothing without it.
    """
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "  ".join([f"nproc={nproc}", f"{platform.system()} {platform.machine()}",
                      f"Python {platform.python_version()}",
                      *(f"{package} {version(package)}" for package in packages)])
