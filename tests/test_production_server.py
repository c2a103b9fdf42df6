"""The production command and the embedded default serve under gevent, and nothing
they do stalls the loop: a query waiting on PostgreSQL leaves every other page and
phone answering, a login's password hashing runs off the loop, the scheduler runs,
and a process set up wrong refuses to start instead of freezing.  (SQLite writers
taking turns under gevent is tests/test_sqlite_writers.py's.)

The commands are the documented ones: the web line of docs/Procfile and
`python wsgi.py`, in real processes, with real HTTP and Socket.IO clients.
"""

from __future__ import annotations

import os
import runpy
import shlex
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, text
from sqlmodel import Session

from marketplace.serving import THREADING, async_mode
from tests.conftest import SECRET, World
from tests.live import socket_client
from tests.realtime.test_two_instances import _browser_login, _free_port

ROOT = Path(__file__).resolve().parents[1]
BLOCKED = "appears to be blocked"  # what gevent's monitor thread reports about a stalled loop
#: The stall gevent's monitor thread reports (GEVENT_MAX_BLOCKING_TIME).  It checks once per
#: this period, so a stall is reported within two periods of its start.  Only reports made
#: during a test's measured window count: start-up (cold templates, the catalog, the
#: scheduler's first sweep) is slow on a loaded machine and is not what these tests prove.
MAX_BLOCKING_S = 3.0
MONITOR = {"GEVENT_MONITOR_THREAD_ENABLE": "true", "GEVENT_MAX_BLOCKING_TIME": str(MAX_BLOCKING_S)}


def production_command(bind: str) -> list[str]:
    """The web line of docs/Procfile, listening on `bind`, with this venv's gunicorn."""
    line = next(entry for entry in (ROOT / "docs" / "Procfile").read_text().splitlines()
                if entry.startswith("web1:"))
    args = shlex.split(line.split(":", 1)[1])
    args[args.index("-b") + 1] = bind
    assert args[0].endswith("gunicorn"), args
    args[0] = str(Path(sys.executable).parent / "gunicorn")
    return args


class Server:
    """A server process and what it wrote (stdout and stderr, read after it stopped)."""

    def __init__(self, base: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def mark(self) -> int:
        """Where the output stands now; `output_between` reads what came after."""
        return self.log.stat().st_size

    def output_between(self, start: int, end: int) -> str:
        return self.log.read_bytes()[start:end].decode(errors="replace")


@contextmanager
def serving(command: list[str], port: int, tmp_path: Path, **env: str) -> Iterator[Server]:
    """Run `command` (from the repository root) with the app's settings in `env`; stop it
    with SIGTERM, as a process manager would."""
    log = tmp_path / f"server-{port}.log"
    environment = {**os.environ, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": "false",
                   "LOG_LEVEL": "WARNING", "PUBLIC_URL": f"http://127.0.0.1:{port}",
                   "REDIS_URL": "", "SCHEDULER_IN_PROCESS": "true", **env}
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, env=environment,
                                   stdout=stderr, stderr=stderr)
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_serving(server: Server) -> None:
    """Until the server answers a page.  gunicorn's master listens before its worker has
    loaded the app: connections are accepted early and answered later."""
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{server.base}/login", timeout=5)
            return
        except requests.RequestException:
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise AssertionError(f"the server did not start: {server.output()[-3000:]}") \
                    from None
            time.sleep(0.2)


def _cookie(http: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def test_the_tests_and_processes_without_gevent_keep_threads(app: Flask) -> None:
    """gevent is installed, yet an app built without it patching the process (the test
    suite, `flask scheduler`, the gthread worker) serves Socket.IO with threads: the
    config decides, not what happens to be importable."""
    assert async_mode() == THREADING
    assert app.extensions["socketio"].server.eio.async_mode == THREADING


def test_the_gunicorn_config_imports_nothing_of_the_app() -> None:
    """gunicorn's master runs docs/gunicorn.conf.py before forking the worker that patches;
    anything it imported would keep blocking sockets (psycopg would pick its C wait)."""
    probe = textwrap.dedent("""
        import runpy, sys
        settings = runpy.run_path("docs/gunicorn.conf.py")
        loaded = sorted(name for name in ("marketplace", "psycopg", "redis", "sqlalchemy",
                                          "flask", "gevent") if name in sys.modules)
        print(settings["worker_class"], settings["workers"], settings["preload_app"], loaded)
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.split() == ["gevent", "1", "False", "[]"]
    assert runpy.run_path(str(ROOT / "docs" / "gunicorn.conf.py"))["worker_connections"] >= 2000


def test_a_process_that_imported_psycopg_before_the_patch_refuses_to_serve() -> None:
    check = ("from marketplace.serving import check_cooperative; check_cooperative(); "
             "print('cooperative')")
    patch = "from gevent import monkey; monkey.patch_all(); "
    late = subprocess.run([sys.executable, "-c", "import psycopg; " + patch + check],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert late.returncode != 0
    assert "psycopg was imported before gevent patched" in late.stderr
    early = subprocess.run([sys.executable, "-c", patch + check], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert early.stdout.strip() == "cooperative", early.stderr


_HASHING = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import json, sys, time
    import gevent
    from marketplace.clusters.accounts import configure_hashing, hash_password
    from marketplace.serving import prepare_gevent

    if sys.argv[1] == "prepared":
        prepare_gevent()  # as wsgi.py does under gevent
    configure_hashing(3, 65536)  # the production cost
    gaps = []
    def tick():
        last = time.perf_counter()
        while True:
            gevent.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
    ticker = gevent.spawn(tick)
    gevent.sleep(0.05)
    started = time.perf_counter()
    gevent.spawn(hash_password, "correct horse battery").join()
    hashing = time.perf_counter() - started
    gevent.sleep(0.05)  # the ticker's first tick after the hash records its gap
    ticker.kill()
    print(json.dumps({"hash_s": hashing, "longest_gap": max(gaps)}))
""")


@pytest.mark.parametrize("mode", ["prepared", "control"])
def test_password_hashing_under_gevent_leaves_the_loop_running(mode: str) -> None:
    """A login's argon2 (~0.2 s of CPU in C) runs in a native thread: the loop keeps
    ticking meanwhile.  The control, hashing on the loop, shows the stall it avoids."""
    import json

    done = subprocess.run([sys.executable, "-c", _HASHING, mode], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["hash_s"] > 0.05, outcome
    if mode == "prepared":
        assert outcome["longest_gap"] < outcome["hash_s"] / 2, outcome
    else:
        assert outcome["longest_gap"] >= outcome["hash_s"] * 0.8, outcome


_BURST = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import json, os, socket, sys, time
    import gevent
    from argon2 import PasswordHasher
    from marketplace.clusters import accounts
    from marketplace.serving import hashing_pool, prepare_gevent

    prepare_gevent()  # as wsgi.py does under gevent
    spans = []  # (start, end, native thread) of every hash, recorded in its thread
    native_ident = monkey.get_original("_thread", "get_ident")

    class Recording(PasswordHasher):
        def hash(self, password, *, salt=None):
            started = time.perf_counter()
            try:
                return super().hash(password, salt=salt)
            finally:
                spans.append((started, time.perf_counter(), native_ident()))

    accounts._hasher = Recording(time_cost=3, memory_cost=16384)
    logins = int(sys.argv[1])
    burst = [gevent.spawn(accounts.hash_password, "correct horse battery")
             for _ in range(logins)]
    gevent.sleep(0.05)  # every login has reached its hash
    asked = time.perf_counter()
    socket.getaddrinfo("localhost", 80)  # gevent's resolver: the hub's thread pool
    answered = time.perf_counter()
    gevent.joinall(burst, raise_error=True)
    events = sorted([(start, 1) for start, _, _ in spans] + [(end, -1) for _, end, _ in spans])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    print(json.dumps({
        "maxsize": hashing_pool().maxsize, "cpus": os.cpu_count(), "most_at_once": most,
        "threads": len({thread for _, _, thread in spans}),
        "hashed_before_dns": sum(end <= answered for _, end, _ in spans),
        "dns_s": answered - asked, "hash_s": min(end - start for start, end, _ in spans)}))
""")


def test_a_burst_of_logins_hashes_a_core_at_a_time_and_leaves_the_resolver_free() -> None:
    """Twenty logins at once (more than the hub's ten threads): never more hashes at once
    than the process has cores (each is 64 MiB and four lanes in production), and a host
    name lookup, which gevent resolves in the hub's own thread pool, answers while the
    burst is still hashing instead of queueing behind it."""
    import json

    logins = 20
    done = subprocess.run([sys.executable, "-c", _BURST, str(logins)], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["maxsize"] == (outcome["cpus"] or 2), outcome
    assert outcome["most_at_once"] <= outcome["maxsize"], outcome
    assert outcome["threads"] <= outcome["maxsize"], outcome
    assert outcome["hashed_before_dns"] < logins // 4, outcome


def test_the_production_command_serves_pages_and_phones(
        session: Session, world: World, database_url: str, tmp_path: Path) -> None:
    """The Procfile's web line: pages, a login, the board and a phone, on either database."""
    port = _free_port()
    with serving(production_command(f"127.0.0.1:{port}"), port, tmp_path,
                 DATABASE_URL=database_url) as server:
        http = _browser_login(server.base, world.owner_b.email)
        assert http.get(f"{server.base}/jobs", timeout=10).status_code == 200
        phone = socket_client(server.base, _cookie(http))
        assert phone.connected
        phone.disconnect()
    assert "Using worker: gevent" in server.output()


def test_the_production_command_answers_while_a_postgresql_query_waits(
        session: Session, world: World, database_url: str, tmp_path: Path) -> None:
    """One request waits on a table lock held by another connection; meanwhile other pages,
    the health check (its own queries), a new phone's connect and an open phone all
    answer, and gevent's monitor thread reports no stall of the loop.  With psycopg's C
    wait (what importing it before the patch gives) the waiting request would hold the
    whole process; the server refuses to start that way (test above)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a lock wait inside PostgreSQL; set TEST_DATABASE_URL")
    port = _free_port()
    with serving(production_command(f"127.0.0.1:{port}"), port, tmp_path,
                 DATABASE_URL=database_url, **MONITOR) as server:
        http = _browser_login(server.base, world.owner_b.email)
        assert http.get(f"{server.base}/jobs", timeout=10).status_code == 200  # warm
        phone = socket_client(server.base, _cookie(http))
        locker = create_engine(database_url)
        board: dict[str, object] = {}

        def read_board() -> None:
            board["status"] = http.get(f"{server.base}/jobs", timeout=30).status_code
            board["at"] = time.perf_counter()

        try:
            with locker.connect() as conn:
                conn.execute(text("LOCK TABLE overflowjob IN ACCESS EXCLUSIVE MODE"))
                watched_from = server.mark()
                waiting = threading.Thread(target=read_board)
                waiting.start()
                locked = time.perf_counter()
                time.sleep(1.0)
                assert "status" not in board, "the board did not wait for the lock"
                # Everything below answers while the board still waits for the lock
                # (checked after): a loop stalled by the waiting query would answer none.
                anonymous = requests.Session()
                assert anonymous.get(f"{server.base}/login", timeout=10).status_code == 200
                health = anonymous.get(f"{server.base}/healthz", timeout=10)
                assert health.json()["database"]["ok"], health.text
                second_phone = socket_client(server.base, _cookie(http))
                assert phone.connected and second_phone.connected
                # Held long enough for the monitor to report a loop stalled since the wait
                # began (two of its periods), before the lock goes.
                time.sleep(max(0.0, locked + 2 * MAX_BLOCKING_S + 0.5 - time.perf_counter()))
                assert "status" not in board, "the lock was let go early: nothing proven"
                released = time.perf_counter()
                conn.rollback()  # lets the board's query go
            waiting.join(timeout=15)
            watched = server.output_between(watched_from, server.mark())
            assert board.get("status") == 200
            assert float(board["at"]) > released  # type: ignore[arg-type]
            phone.disconnect()
            second_phone.disconnect()
        finally:
            locker.dispose()
    assert BLOCKED not in watched, watched[-3000:]


def test_the_embedded_default_serves_under_gevent_with_its_scheduler(
        session: Session, world: World, database_url: str, tmp_path: Path) -> None:
    """`python wsgi.py`: gevent, the in-process APScheduler leads (the health check
    turns 200), pages and a phone answer; once warm, serving them and holding a phone
    open while the scheduler runs never stalls the loop."""
    port = _free_port()
    with serving([sys.executable, "wsgi.py"], port, tmp_path, DATABASE_URL=database_url,
                 HOST="127.0.0.1", PORT=str(port), **MONITOR) as server:
        deadline = time.monotonic() + 20
        while (health := requests.get(f"{server.base}/healthz", timeout=10)).status_code != 200:
            assert time.monotonic() < deadline, health.text
            time.sleep(0.5)
        assert health.json()["scheduler"]["ok"]
        http = _browser_login(server.base, world.owner_b.email)
        assert http.get(f"{server.base}/jobs", timeout=10).status_code == 200  # warm
        watched_from = server.mark()
        started = time.perf_counter()
        assert http.get(f"{server.base}/jobs", timeout=10).status_code == 200
        phone = socket_client(server.base, _cookie(http))
        assert phone.connected
        # Open long enough for the monitor to report a stall begun above (two periods).
        time.sleep(max(0.0, started + 2 * MAX_BLOCKING_S + 0.5 - time.perf_counter()))
        assert phone.connected
        phone.disconnect()
        watched = server.output_between(watched_from, server.mark())
    assert "(gevent)" in server.output()
    assert BLOCKED not in watched, watched[-3000:]


def test_the_embedded_default_can_still_run_threads(
        session: Session, world: World, database_url: str, tmp_path: Path) -> None:
    port = _free_port()
    with serving([sys.executable, "wsgi.py"], port, tmp_path, DATABASE_URL=database_url,
                 HOST="127.0.0.1", PORT=str(port), EMBEDDED_SERVER="threading") as server:
        http = _browser_login(server.base, world.owner_b.email)
        phone = socket_client(server.base, _cookie(http))
        assert phone.connected
        phone.disconnect()
    assert "(threading)" in server.output()
