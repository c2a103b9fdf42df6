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
  `Watchdog.popen` for a child that is a program (nginx, `python wsgi.py`),
  `cpu_seconds` for any child's CPU time.
* `GunicornServer` with `production_command` and `production_env`: an app (or
  a baseline) served by the web line of docs/Procfile, as production serves it.
* `SocketClientPool`: many python-socketio clients spread over client
  processes, stamping each `job.posted` they receive (notification latency).
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
import importlib
import inspect
import json
import logging
import math
import multiprocessing
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from types import TracebackType

    from sqlmodel import Session

    from marketplace.clusters.models import User

HOST = "127.0.0.1"  # everything a benchmark talks to is on this machine
LOGIN_TIMEOUT_S = 30.0
SECRET_KEY = secrets.token_urlsafe(32)  # per run; a server child gets it in its config
#: A prepared member's verified insurance: a year, two million in cents.
INSURED_DAYS = 365
INSURED_COVERAGE = 2_000_000_00
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
        self.programs: list[subprocess.Popen[bytes]] = []
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
        for program in self.programs:
            _kill_group(program)
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
        for program in self.programs:  # left running by a failed run: stop it anyway
            stop_program(program)
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

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a program (nginx, `python wsgi.py`) as a child the timeout will kill.

        It gets a session and process group of its own, so the timeout kills
        whatever it forked too (nginx's worker), by that group's id.
        """
        program = subprocess.Popen(list(args), start_new_session=True, **kwargs)
        self.programs.append(program)
        return program

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


def _kill_group(program: subprocess.Popen[bytes]) -> None:
    """SIGKILL a `Watchdog.popen` child's process group (it leads its own)."""
    if program.poll() is None:
        try:
            os.killpg(program.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_program(program: subprocess.Popen[bytes]) -> None:
    """SIGTERM a `Watchdog.popen` child, then kill its group if it is still there
    after 10 s (nginx's master stops its worker on SIGTERM; SIGKILL would orphan it)."""
    if program.poll() is None:
        program.terminate()
        try:
            program.wait(10)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(program)
    try:
        program.wait(5)
    except subprocess.TimeoutExpired:
        pass


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` used so far (Linux /proc; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
                    timeout: str, smoke_timeout: float = SMOKE_TIMEOUT_S) -> None:
    """--smoke, --database-url and --timeout, which every benchmark has and means alike.

    `smoke` says what a smoke run is made of, `timeout` how the default
    timeout grows without --smoke, `database_url` what the database may be;
    the rest of the help text is common.  `check_run_options` then applies
    the common rules.  `smoke_timeout` is for a smoke run that cannot fit in
    SMOKE_TIMEOUT_S (one that starts many servers); pass the same to both.
    """
    parser.add_argument("--smoke", action="store_true",
                        help=f"{smoke}, {smoke_timeout:.0f} s hard timeout: "
                             "a quick check for CI")
    parser.add_argument("--database-url", default=None, help=database_url)
    parser.add_argument("--timeout", type=float, default=None,
                        help=f"hard overall timeout in seconds (default: "
                             f"{smoke_timeout:.0f} for --smoke, else {timeout})")


def check_run_options(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                      full_timeout: float, smoke_timeout: float = SMOKE_TIMEOUT_S) -> None:
    """Refuse a non-loopback --database-url; fill in the default --timeout.

    The benchmarks write into the database they are given and load the
    machine heavily, so pointing one at a shared server by mistake must fail
    before anything happens: the argparse way, with the usage and exit status
    2.  The timeout defaults to `smoke_timeout` with --smoke (a CI step must
    stay short), else to `full_timeout`, which the script sizes to its run.
    """
    refusal = loopback_only(args.database_url) if args.database_url else None
    if refusal:
        parser.error(refusal)
    if args.timeout is None:
        args.timeout = smoke_timeout if args.smoke else full_timeout


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


#: Where every bench job is (downtown Toronto) and every member's base (about 5 km away).
SITE = (43.6532, -79.3832)
NEAR = (43.7000, -79.4000)


def eligible_mower(session: Session, today: date) -> Callable[[User, str], None]:
    """A `prepare` for `found_cluster` that makes each member eligible for every bench
    job: it mows and plants, from a base at NEAR within 50 km of SITE, insured for a
    year.  (Three benchmarks post such jobs; one definition keeps them measuring the
    same eligibility work.)"""
    from marketplace.clusters.service import MemberProfile, update_member_profile

    def prepare(owner: User, business: str) -> None:
        assert owner.member_id is not None
        update_member_profile(session, owner, owner.member_id, MemberProfile(
            name=business, trades=("mowing", "planting"),
            base_lat=NEAR[0], base_lng=NEAR[1], service_radius_km=50.0, certifications=""))

    return prepare


def insure(session: Session, owner: User, coordinator: User, expires_on: date) -> None:
    """The owner's business uploads a certificate of insurance (a small picture) and the
    coordinator verifies it, as members do: eligibility counts verified insurance only."""
    from io import BytesIO

    from PIL import Image

    from marketplace.clusters.insurance import service as insurance
    from marketplace.clusters.insurance.documents import check_document

    assert owner.member_id is not None
    picture = BytesIO()
    Image.new("RGB", (60, 80), (250, 250, 245)).save(picture, "PNG")
    certificate = insurance.submit_certificate(
        session, owner, owner.member_id, insurance.Statement(
            insurer="Bench Mutual", policy_number=f"BM-{owner.member_id:06d}",
            coverage_minor=INSURED_COVERAGE, expires_on=expires_on),
        check_document(picture.getvalue()), owner.created_at)
    assert certificate.id is not None
    insurance.verify_certificate(session, coordinator, certificate.id, INSURED_COVERAGE,
                                 expires_on, owner.created_at)


def coordinator_email(tag: str) -> str:
    """The e-mail of the coordinator `found_cluster` makes for `tag` (to find or log in as)."""
    return f"coord.{tag}@bench.test"


def found_cluster(session: Session, tag: str, *, purpose: str, timezone: str,
                  members: Sequence[tuple[str, str]], password: str, now: datetime,
                  prepare: Callable[[User, str], None] | None = None) -> list[User]:
    """A cluster named after `tag`, its agreement in force, and one owner per member.

    `members` are (email, business name); each is invited, signs up with
    `password`, goes through `prepare(owner, business)` (e.g. a profile that
    makes it eligible) and then, insured for a year (`insure`), accepts the
    agreement.  Returns the owners in that order.
    Each run's cluster is new and uniquely named, so a scratch database can
    take many runs.
    """
    from marketplace.clusters import agreements, invites
    from marketplace.clusters.service import ClusterSettings, create_cluster
    from marketplace.db import utcnow

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
            # A year from today, also for a cluster founded in the past (bench/board.py).
            insure(session, owner, coordinator,
                   max(now, utcnow()).date() + timedelta(days=INSURED_DAYS))
        agreements.accept_agreement(session, owner, agreement.version, now)
        owners.append(owner)
    return owners


# ------------------------------------------------------------------ the servers


def app_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Our app's config in a server child: the run's database and key, cheap hashing,
    no Redis, no rate limits (hundreds of logins come from one address), quiet logs.
    `overrides` adds what one benchmark needs on top."""
    return {
        "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY, "RATELIMIT_ENABLED": False,
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
        assert self.process.pid is not None
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        stop_children([self._conn], [self.process], "stop")


# ------------------------------------------------- the production command

ROOT = Path(__file__).resolve().parent.parent


def gunicorn() -> str:
    """This venv's gunicorn."""
    return str(Path(sys.executable).parent / "gunicorn")


def free_port() -> int:
    """A loopback port nobody listens on right now (for a program told its -b)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def production_command(bind: str, wsgi_app: str = "wsgi:app") -> list[str]:
    """The web line of docs/Procfile (one gevent worker, docs/gunicorn.conf.py),
    listening on `bind`, with this venv's gunicorn.  `wsgi_app` replaces the app
    it loads: a baseline served by the very same worker and settings."""
    line = next(entry for entry in (ROOT / "docs" / "Procfile").read_text().splitlines()
                if entry.startswith("web1:"))
    args = shlex.split(line.split(":", 1)[1])
    args[args.index("-b") + 1] = bind
    args[-1] = wsgi_app
    return [gunicorn(), *args[1:]]


def production_env(database_url: str, redis_url: str | None = None,
                   **extra: str) -> dict[str, str]:
    """The environment a production web instance of a benchmark gets: the run's
    database and key, cheap hashing (the world's hashes stay cheap, no rehash at
    login), no rate limits (hundreds of logins come from one address), quiet logs; a
    Redis puts the scheduler "elsewhere", as in production."""
    return {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET_KEY,
            "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
            "PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "1024",
            "REDIS_URL": redis_url or "",
            "SCHEDULER_IN_PROCESS": "false" if redis_url else "true", **extra}


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


@dataclass
class GunicornServer:
    """One gunicorn master and its single worker, started as a program (the
    production command, or another gunicorn line to compare it with).

    Its `url`, `cpu_seconds` and `stop` are those of `ServerProcess`, so a benchmark
    runs either the same way; the CPU read is the worker's, where requests run."""

    name: str
    command: list[str]
    env: dict[str, str]
    watchdog: Watchdog
    log: Path
    ready_path: str = "/login"
    url: str = ""
    program: Any = None

    def start(self) -> GunicornServer:
        port = int(self.command[self.command.index("-b") + 1].rsplit(":", 1)[1])
        self.url = f"http://{HOST}:{port}"
        with self.log.open("wb") as log:
            self.program = self.watchdog.popen(self.command, cwd=ROOT, stdout=log, stderr=log,
                                               env={**self.env, "PUBLIC_URL": self.url})
        deadline = time.monotonic() + SERVER_START_S
        while True:  # the master listens before its worker has loaded the app
            try:
                requests.get(f"{self.url}{self.ready_path}", timeout=5)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or self.program.poll() is not None:
                    raise RuntimeError(f"{self.name} did not start: "
                                       f"{self.log.read_text(errors='replace')[-2000:]}") from None
                time.sleep(0.2)
        self.watchdog.say(f"{self.name} listening at {self.url}: {shlex.join(self.command)}")
        return self

    def worker(self) -> int:
        workers = _children(self.program.pid)
        if len(workers) != 1:
            raise RuntimeError(f"{self.name}: expected one worker, found {workers}")
        return workers[0]

    def cpu_seconds(self) -> float:
        """CPU time the worker used so far (Linux /proc; NaN elsewhere)."""
        return cpu_seconds(self.worker())

    def stop(self) -> None:
        if self.program is not None:
            stop_program(self.program)


Server = ServerProcess | GunicornServer
#: How a benchmark serves the app and its baselines (`--server`): the production
#: command, or werkzeug's threaded server in a child process, as the tests serve.
SERVER_KINDS = ("production", "threaded")


def served(kind: str) -> str:
    """How `kind` serves, as a report says it."""
    if kind == "production":
        return ("the production command, one gevent worker each: "
                + shlex.join(production_command("ADDRESS")[1:]))
    return "werkzeug's threaded server in its own process (as the tests serve)"


_BASELINE_FACTORY = "BENCH_BASELINE_FACTORY"
_BASELINE_SPEC = "BENCH_BASELINE_SPEC"


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """--server: how app and baselines are served (both alike, in every run)."""
    parser.add_argument("--server", choices=SERVER_KINDS, default="production",
                        help="the production command (docs/Procfile: gunicorn, one gevent "
                             "worker; the default) or werkzeug's threaded server, as the "
                             "tests serve")


def serve_app(kind: str, name: str, database_url: str, watchdog: Watchdog,
              **settings: str) -> Server:
    """Our app served as `kind` says; `settings` are configuration by the names of
    its environment variables (marketplace/config.py), e.g. UPLOAD_DIR."""
    if kind == "production":
        return GunicornServer(name, production_command(f"{HOST}:{free_port()}"),
                              production_env(database_url, **settings), watchdog,
                              Path(watchdog.temp_dir()) / "server.log").start()
    return ServerProcess(name, marketplace_app, app_config(
        database_url, WTF_CSRF_ENABLED=True, **settings), watchdog)


def serve_baseline(kind: str, name: str, factory: AppFactory, spec: dict[str, Any],
                   watchdog: Watchdog, ready_path: str = "/") -> Server:
    """A baseline served exactly as `serve_app` serves the app: `factory(spec)` in
    werkzeug's threaded server, or loaded by the same gunicorn line
    (`baseline_from_environment`; `spec` travels as JSON)."""
    if kind == "production":
        module = Path(inspect.getfile(factory)).stem  # a bench script, run as __main__
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"),
                                                            os.environ.get("PYTHONPATH")])),
               _BASELINE_FACTORY: f"{module}:{factory.__name__}",
               _BASELINE_SPEC: json.dumps(spec)}
        return GunicornServer(name, production_command(
            f"{HOST}:{free_port()}", "harness:baseline_from_environment()"), env, watchdog,
            Path(watchdog.temp_dir()) / "server.log", ready_path=ready_path).start()
    return ServerProcess(name, factory, spec, watchdog)


def baseline_from_environment() -> Any:
    """What gunicorn loads for a baseline: the factory `serve_baseline` named, called
    with its spec."""
    module, factory = os.environ[_BASELINE_FACTORY].split(":")
    return getattr(importlib.import_module(module), factory)(
        json.loads(os.environ[_BASELINE_SPEC]))


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


def bound_socket(base_url: str, source_address: str) -> socket.socket:
    """A TCP connection to `base_url`'s host and port from `source_address` (any of
    127.0.0.0/8 on Linux): how a client on this machine looks like a client from
    elsewhere to a proxy that balances by address (nginx `ip_hash`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    sock = socket.create_connection((parts.hostname or HOST, parts.port or 80),
                                    timeout=LOGIN_TIMEOUT_S,
                                    source_address=(source_address, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


SOCKET_CONNECT_WORKERS = 8  # socket connects in parallel per client process, in setup
CLIENTS_PER_PROCESS = 125  # see SocketClientPool


def _socket_client_worker(base_url: str, entries: list[tuple[int, dict[str, Any]]],
                          conn: Connection) -> None:
    """Child process: connect a share of the clients, stamp every `job.posted` they get.

    Each entry is (client index, keyword arguments of `Client.connect`), plus
    an optional "source_address" the client's connection is made from
    (`bound_socket`).  Tells the parent ("done", key) once all of its clients
    have job `key`, and on "report" sends every stamp.  It ends with
    `os._exit`: its sockets close with it, and nobody waits for
    websocket-client's close handshake (3 s per client).
    """
    import socketio

    logging.basicConfig(level=logging.CRITICAL)  # engineio's per-client warnings at teardown
    conn.send(("clock", time.perf_counter()))
    times: dict[int, dict[int, float]] = {}  # job key -> client index -> first receipt
    first: list[dict[str, Any]] = []
    lock = threading.Lock()

    def handler(index: int) -> Callable[[dict[str, Any]], None]:
        def on_posted(message: dict[str, Any]) -> None:
            received = time.perf_counter()  # first thing: everything after is client overhead
            key = int(message["data"]["id"])
            with lock:
                got = times.setdefault(key, {})
                if index in got:
                    return
                got[index] = received
                if not first:
                    first.append(message)
                if len(got) == len(entries):
                    conn.send(("done", key))
        return on_posted

    def connect(entry: tuple[int, dict[str, Any]]) -> str | None:
        index, options = entry
        options = dict(options)
        source = options.pop("source_address", None)
        try:
            extra = {} if source is None else {
                "websocket_extra_options": {"socket": bound_socket(base_url, source)}}
            client = socketio.Client(reconnection=False, **extra)
            client.on("job.posted", handler(index))
            client.connect(base_url, transports=["websocket"], wait_timeout=30, **options)
        except Exception as error:  # reported, and the run stops: a partial world lies
            return f"client {index}: {error}"
        clients.append(client)
        return None

    clients: list[Any] = []
    errors = [e for e in in_parallel(connect, entries, SOCKET_CONNECT_WORKERS) if e]
    with lock:
        conn.send(("connected", len(clients), errors[:3]))
    while True:
        try:
            command = conn.recv()
        except EOFError:
            break
        if command == "report":
            with lock:
                conn.send(("report", times, first[0] if first else None))
        else:
            break
    conn.close()
    os._exit(0)


def run_client_threads(calls: Sequence[tuple[Callable[..., None], tuple[Any, ...]]]
                       ) -> tuple[list[Any], float]:
    """Run each `(target, args)` in a thread of its own, `target(*args, rows)` appending
    its results to a list of its own; every row, and the CPU seconds this process spent.

    The HTTP client processes of the benchmarks run their share of clients this way
    (threads, not processes: a client mostly waits on its socket)."""
    results: list[list[Any]] = [[] for _ in calls]
    cpu0 = time.process_time()
    threads = [threading.Thread(target=target, args=(*args, rows), daemon=True)
               for (target, args), rows in zip(calls, results, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [row for rows in results for row in rows], time.process_time() - cpu0


def serve_client_commands(conn: Connection,
                          clients_for: Callable[[tuple[Any, ...]],
                                                Sequence[tuple[Callable[..., None],
                                                               tuple[Any, ...]]]]) -> None:
    """Body of an HTTP client process: for each command from the parent, run the
    clients `clients_for(command)` names as threads (`run_client_threads`) and send back
    ("done", rows, cpu seconds); end on "stop" or when the parent is gone."""
    logging.basicConfig(level=logging.CRITICAL)
    while True:
        try:
            command = conn.recv()
        except EOFError:
            break
        if command[0] == "stop":
            break
        conn.send(("done", *run_client_threads(clients_for(command))))
    conn.close()
    os._exit(0)


def job_form(title: str, today: str, **extra: str) -> dict[str, Any]:
    """The job form a bench poster sends: a mowing hand-off at SITE, today (ISO date),
    that every `eligible_mower` member may take."""
    return {"title": title, "description": "Weekly mowing", "trades": ["mowing"],
            "locality": "Annex, Toronto", "site_lat": str(SITE[0]), "site_lng": str(SITE[1]),
            "address": "742 Evergreen Terrace", "customer_name": "Bench Customer",
            "customer_contact": "555-0199", "crew_days": "3", "starts_on": today,
            "ends_on": today, "value": "1234.50", "mode": "handoff", **extra}


def arrivals(sent: dict[int, float], times: dict[int, list[float]]
             ) -> tuple[int, list[float], list[float]]:
    """Match receipt stamps (`SocketClientPool.report`) to the moment each job was sent:
    how many messages arrived, every latency in ms, and each job's slowest client."""
    received, latencies, slowest = 0, [], []
    for key, t0 in sent.items():
        stamps = [(t - t0) * 1000 for t in times.get(key, [])]
        received += len(stamps)
        latencies.extend(stamps)
        if stamps:
            slowest.append(max(stamps))
    return received, latencies, slowest


class SocketClientPool:
    """N python-socketio clients (websocket only), spread over client processes of
    CLIENTS_PER_PROCESS, each stamping `time.perf_counter()` first thing when a
    `job.posted` reaches it; jobs are told apart by their id (`message.data.id`).

    Why several processes: one process holding 1 000 threaded clients spends
    most of its CPU fighting over its GIL (we measured about 8 ms of CPU per
    delivered message, three quarters of it in the kernel), so it starved the
    server it was meant to time.  Receipt stamps stay comparable across
    processes because `time.perf_counter` is CLOCK_MONOTONIC, one clock for the
    whole machine on Linux; each worker's first stamp is checked to fall
    inside the parent's own window before anything is measured.
    `options` are per client (see `_socket_client_worker`).
    """

    def __init__(self, base_url: str, options: list[dict[str, Any]],
                 watchdog: Watchdog) -> None:
        entries = list(enumerate(options))
        shares = max(1, math.ceil(len(entries) / CLIENTS_PER_PROCESS))
        self.size = len(entries)
        self.conns: list[Connection] = []
        self.processes: list[Process] = []
        self.done: dict[int, set[int]] = {}
        started = time.perf_counter()
        for number in range(shares):
            parent_conn, process = watchdog.spawn(f"clients-{number}", _socket_client_worker,
                                                  (base_url, entries[number::shares]))
            self.conns.append(parent_conn)
            self.processes.append(process)
        try:
            for conn in self.conns:
                kind, stamp = self._expect(conn, "clock", 60)
                if not started <= stamp <= time.perf_counter():
                    raise RuntimeError("perf_counter differs between processes on this "
                                       "platform; latencies could not be compared")
            connected = 0
            for conn in self.conns:
                _kind, count, errors = self._expect(conn, "connected", 300)
                connected += count
                if errors:
                    raise RuntimeError(f"clients failed to connect: {errors}")
        except BaseException:
            self.stop()
            raise
        self.connect_seconds = time.perf_counter() - started
        watchdog.say(f"{connected} clients connected from {shares} client process(es) "
                     f"in {self.connect_seconds:.1f} s")

    def _expect(self, conn: Connection, kind: str, timeout: float) -> Any:
        """The next message of `kind` from one worker, noting any "done" on the way."""
        deadline = time.monotonic() + timeout
        while conn.poll(max(0.0, deadline - time.monotonic())):
            message = conn.recv()
            if message[0] == "done":
                self.done.setdefault(message[1], set()).add(self.conns.index(conn))
            elif message[0] == kind:
                return message
        raise RuntimeError(f"a client process sent no {kind!r} within {timeout:.0f} s")

    def wait_for(self, key: int, timeout: float) -> int:
        """Wait until every worker has job `key` at all its clients; how many did."""
        deadline = time.monotonic() + timeout
        while len(self.done.get(key, ())) < len(self.conns):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready = wait(self.conns, left)
            for number, conn in enumerate(self.conns):
                if conn in ready:
                    message = conn.recv()
                    if message[0] == "done":
                        self.done.setdefault(message[1], set()).add(number)
        return len(self.done.get(key, ()))

    def report(self) -> tuple[dict[int, list[float]], dict[str, Any] | None]:
        """Every receipt stamp per job key, and one message as the clients saw it."""
        times: dict[int, list[float]] = {}
        first = None
        for conn in self.conns:
            conn.send("report")
            _kind, worker_times, worker_first = self._expect(conn, "report", 60)
            for key, stamps in worker_times.items():
                times.setdefault(key, []).extend(stamps.values())
            first = first or worker_first
        return times, first

    def stop(self) -> None:
        stop_children(self.conns, self.processes, "stop")


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
