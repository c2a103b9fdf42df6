"""Idle phones per instance: how many open Socket.IO connections one production
instance holds while its pages stay fast, and what each one costs.

Crews keep the app open on their phones all day; each phone is a Socket.IO
connection that mostly sits idle.  The question is whether one instance, run
with the production command, holds a season's morning of them (2 000) while
`/login` and the job board keep answering in under 250 ms at p99, and how much
memory each held phone costs.

What it runs, in one run:

* **production**: the web line of docs/Procfile (`gunicorn -c
  docs/gunicorn.conf.py ...`: one gevent worker), exactly as written there
  except the listen address.  First the pages are timed with no phone
  connected (the baseline), then N phones connect and the pages are timed
  again while every phone is held.
* **old gthread**: the command production used before,
  `gunicorn --worker-class gthread --threads 50 --workers 1`, with the same N
  phones and the same page load.  Each Socket.IO connection holds threads
  there, so it is expected to connect about 50 phones and stop answering pages.
  Connects and requests that do not finish in time count as failures; the
  phase is bounded.  `--no-baseline` skips it.

How:

* The world is built through the real services (bench/board.py's cluster:
  --users members whose owners log in, --jobs open jobs on the board) in a
  temporary SQLite file, or with --database-url (loopback only) in PostgreSQL;
  --redis-url gives the instances a Redis message queue (then the scheduler is
  "elsewhere", SCHEDULER_IN_PROCESS=false, as in production).
* The users log in over HTTP once (CSRF token from GET /login); phones are
  spread over their cookies (N / --users phones per person).
* Phones are python-socketio asyncio clients (websocket transport), up to
  PHONES_PER_PROCESS per client process: an idle asyncio client costs the
  client side next to nothing, so the server is what is measured.
* The page load is --http-clients threads, each alternating GET /login
  (anonymous) and GET /jobs (the board, logged in), for --duration seconds.
* Of the server's worker process it reads threads and resident memory
  (/proc) before and after the phones connect: RSS per phone is the growth
  divided by the phones connected.  Phones still connected at the end are
  counted (the engine.io pings kept them alive).

    .venv/bin/python bench/idle_phones.py --smoke
    .venv/bin/python bench/idle_phones.py                      # 2 000 phones, SQLite
    .venv/bin/python bench/idle_phones.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/idlebench \\
        --redis-url redis://127.0.0.1:6379/10

Exit status: 0 when the production command connected every phone, kept them
and answered every page (the numbers are printed either way, and whether the
250 ms target was met); 1 otherwise; 2 on bad arguments; 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import resource
import shlex
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import board
import harness
import requests
from harness import Watchdog, percentile

PHONES_PER_PROCESS = 1000
CONNECTS_AT_ONCE = 200  # per client process
TARGET_P99_S = 0.250
TARGET_PHONES = 2000
OLD_COMMAND = ["--worker-class", "gthread", "--threads", "50", "--workers", "1"]
MAX_PHONES = 10_000
say = harness.Progress("idle_phones")


# ---------------------------------------------------------------- the servers


def old_command(bind: str) -> list[str]:
    return [harness.gunicorn(), *OLD_COMMAND, "-b", bind, "wsgi:app"]


def _status(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/status") as status:
            return dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return {}


class Instance(harness.GunicornServer):
    """One gunicorn master and its single worker, and what an idle phone costs it."""

    def threads_and_rss(self) -> tuple[int, float]:
        """The worker's threads and resident memory in MiB."""
        status = _status(self.worker())
        return (int(status.get("Threads", "0")),
                int(status.get("VmRSS", "0 kB").split()[0]) / 1024)

    def idle_cores(self, seconds: float) -> float:
        """The worker's CPU seconds per wall second over `seconds` with no page load."""
        worker = self.worker()
        before, started = harness.cpu_seconds(worker), time.perf_counter()
        time.sleep(seconds)
        return (harness.cpu_seconds(worker) - before) / (time.perf_counter() - started)


# ----------------------------------------------------------------- the phones


def _phone_worker(base_url: str, cookies: list[str], connect_timeout: float,
                  conn: Connection) -> None:
    """Child process: connect one asyncio Socket.IO client per cookie and hold them.

    Reports ("connected", count, failures, first errors) once every connect ended
    (connected, refused or timed out); answers "count" with how many are still
    connected; ends on "stop" with `os._exit`, its sockets closing with it.
    """
    import socketio

    logging.basicConfig(level=logging.CRITICAL)  # engineio's per-client warnings
    _raise_open_files(len(cookies) + 256)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
        clients: list[Any] = []
        errors: list[str] = []

        async def connect(cookie: str) -> None:
            async with gate:
                client = socketio.AsyncClient(reconnection=False)
                try:
                    await asyncio.wait_for(
                        client.connect(base_url, headers={"Cookie": cookie},
                                       transports=["websocket"],
                                       wait_timeout=connect_timeout),
                        connect_timeout)
                    clients.append(client)
                except Exception as error:  # TimeoutError included
                    errors.append(f"{type(error).__name__}: {error}"[:200])
                    try:
                        await asyncio.wait_for(client.disconnect(), 1)
                    except Exception:
                        pass

        await asyncio.gather(*(connect(cookie) for cookie in cookies))
        conn.send(("connected", len(clients), len(errors), errors[:3]))
        while True:
            try:
                command = await loop.run_in_executor(None, conn.recv)
            except EOFError:
                break
            if command == "count":
                conn.send(("count", sum(1 for client in clients if client.connected)))
            else:
                break

    asyncio.run(main())
    conn.close()
    os._exit(0)


class Phones:
    """N idle phones over client processes of at most PHONES_PER_PROCESS."""

    def __init__(self, base_url: str, cookies: list[str], connect_timeout: float,
                 watchdog: Watchdog) -> None:
        shares = max(1, math.ceil(len(cookies) / PHONES_PER_PROCESS))
        self.conns: list[Connection] = []
        self.processes: list[Any] = []
        started = time.perf_counter()
        for number in range(shares):
            conn, process = watchdog.spawn(f"phones-{number}", _phone_worker,
                                           (base_url, cookies[number::shares], connect_timeout))
            self.conns.append(conn)
            self.processes.append(process)
        self.connected = self.failed = 0
        self.errors: list[str] = []
        for conn in self.conns:
            _kind, connected, failed, errors = self._expect(conn, "connected",
                                                            connect_timeout * 20 + 60)
            self.connected += connected
            self.failed += failed
            self.errors += errors
        self.connect_seconds = time.perf_counter() - started
        say(f"{self.connected} of {len(cookies)} phones connected in "
            f"{self.connect_seconds:.1f} s" + (f"; e.g. {self.errors[0]}" if self.errors else ""))

    @staticmethod
    def _expect(conn: Connection, kind: str, timeout: float) -> Any:
        if not conn.poll(timeout):
            raise RuntimeError(f"a phone process sent no {kind!r} within {timeout:.0f} s")
        message = conn.recv()
        if message[0] != kind:
            raise RuntimeError(f"a phone process sent {message[0]!r}, not {kind!r}")
        return message

    def still_connected(self) -> int:
        total = 0
        for conn in self.conns:
            conn.send("count")
            total += self._expect(conn, "count", 60)[1]
        return total

    def stop(self) -> None:
        harness.stop_children(self.conns, self.processes, "stop")


def _raise_open_files(wanted: int) -> None:
    """Raise this process's soft open-files limit towards `wanted` (up to the hard limit);
    children inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (
            wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard))


# ------------------------------------------------------------------ the pages


@dataclass
class Pages:
    """Latencies of GET /login and GET /jobs under the page load, and the failures."""

    login: list[float] = field(default_factory=list)
    board: list[float] = field(default_factory=list)
    failures: int = 0
    first_failure: str = ""

    def row(self) -> str:
        def cell(values: list[float]) -> str:
            if not values:
                return "-"
            return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 99) * 1000:.0f}"
        return f"{cell(self.login):>13}  {cell(self.board):>13}  {self.failures:>8}"

    def p99_within(self, limit: float) -> bool:
        return bool(self.login and self.board) and self.failures == 0 and \
            percentile(self.login, 99) < limit and percentile(self.board, 99) < limit


def time_pages(base_url: str, cookies: list[str], clients: int, duration: float,
               timeout: float) -> Pages:
    """`clients` threads alternating GET /login (anonymous) and GET /jobs (logged in,
    each thread as another user) for `duration` s."""
    pages = Pages()
    lock = threading.Lock()
    deadline = time.monotonic() + duration

    def one(http: requests.Session, url: str, into: list[float]) -> None:
        started = time.perf_counter()
        try:
            response = http.get(url, timeout=timeout, allow_redirects=False)
            ok = response.status_code == 200
            why = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            ok, why = False, type(error).__name__
        elapsed = time.perf_counter() - started
        with lock:
            if ok:
                into.append(elapsed)
            else:
                pages.failures += 1
                pages.first_failure = pages.first_failure or f"{url}: {why}"

    def loop(number: int) -> None:
        anonymous, member = requests.Session(), requests.Session()
        member.headers["Cookie"] = cookies[number % len(cookies)]
        while time.monotonic() < deadline:
            one(anonymous, f"{base_url}/login", pages.login)
            one(member, f"{base_url}/jobs", pages.board)

    threads = [threading.Thread(target=loop, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + timeout + 10)
    return pages


# ------------------------------------------------------------------- the world


def post_handoffs(session: Any, world: board.World, count: int) -> None:
    """`count` open hand-off jobs through `post_job`, every member but the partner posting
    in turn, each one the partner (the board's reader) is eligible for."""
    from datetime import timedelta

    from marketplace.clusters.models import User
    from marketplace.db import utcnow
    from marketplace.jobs.models import JobMode
    from marketplace.jobs.service import JobDraft, post_job

    posters = [session.get(User, user_id) for member_id, user_id in sorted(world.owners.items())
               if member_id != world.partner_member_id] or \
        [session.get(User, world.partner_id)]
    for number in range(count):
        now = utcnow()
        starts = now.date() + timedelta(days=2 + number % 30)
        post_job(session, posters[number % len(posters)], JobDraft(
            title=f"Spring clean-up #{number}", description="Crew of three, own equipment.",
            trades=board.PARTNER_TRADES[:1], site_lat=board.CENTER[0],
            site_lng=board.CENTER[1], locality="Annex", address=f"{number} Bench Street",
            customer_name="Bench Customer", customer_contact="555-0100", crew_days=3,
            starts_on=starts, ends_on=starts + timedelta(days=2),
            value_minor=250_000, mode=JobMode.HANDOFF.value, closes_at=None), now)


# ------------------------------------------------------------------- the runs


@dataclass
class Result:
    name: str
    phones: str
    threads: int
    rss_mib: float
    per_phone_kib: float | None
    pages: Pages
    kept: str = ""
    idle_cores: float = math.nan  # the worker's CPU per wall second with no page load

    def line(self) -> str:
        per_phone = "-" if self.per_phone_kib is None else f"{self.per_phone_kib:.0f}"
        return (f"{self.name:<36} {self.phones:>11} {self.kept:>6} {self.threads:>7} "
                f"{self.rss_mib:>8.0f} {per_phone:>9} {self.idle_cores:>9.3f}  "
                f"{self.pages.row()}")


def measure(instance: Instance, cookies: list[str], phones: int, args: argparse.Namespace,
            watchdog: Watchdog, *, idle_first: bool, connect_timeout: float,
            page_timeout: float) -> list[Result]:
    """Pages with no phone (when `idle_first`), then with `phones` phones held; stops
    `instance` (started) at the end."""
    results = []
    try:
        threads, rss = instance.threads_and_rss()
        idle = instance.idle_cores(args.idle)
        if idle_first:
            say(f"{instance.name}: pages with no phone for {args.duration:.0f} s")
            pages = time_pages(instance.url, cookies, args.http_clients, args.duration,
                               page_timeout)
            threads, rss = instance.threads_and_rss()
            results.append(Result(f"{instance.name}, no phone", "0", threads, rss, None, pages,
                                  idle_cores=idle))
        say(f"{instance.name}: connecting {phones} phones")
        held = Phones(instance.url, [cookies[i % len(cookies)] for i in range(phones)],
                      connect_timeout, watchdog)
        try:
            time.sleep(1.0)  # let the last connects settle
            threads_with, rss_with = instance.threads_and_rss()
            idle_with = instance.idle_cores(args.idle)
            say(f"{instance.name}: pages with {held.connected} phones held for "
                f"{args.duration:.0f} s")
            pages = time_pages(instance.url, cookies, args.http_clients, args.duration,
                               page_timeout)
            kept = held.still_connected()
        finally:
            held.stop()
        per_phone = (rss_with - rss) * 1024 / held.connected if held.connected else None
        results.append(Result(f"{instance.name}, phones held", f"{held.connected}/{phones}",
                              threads_with, rss_with, per_phone, pages, kept=str(kept),
                              idle_cores=idle_with))
    finally:
        instance.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=TARGET_PHONES)
    parser.add_argument("--users", type=int, default=None,
                        help="members who log in; phones are spread over them "
                             "(default: one per 10 phones, at most 200)")
    parser.add_argument("--jobs", type=int, default=20, help="open jobs on the board")
    parser.add_argument("--duration", type=float, default=15.0,
                        help="seconds of page load per phase")
    parser.add_argument("--http-clients", type=int, default=4)
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of no page load over which the worker's idle CPU is read")
    parser.add_argument("--redis-url", default=None,
                        help="a Redis for the instances (loopback); sets "
                             "SCHEDULER_IN_PROCESS=false as in production")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the old gthread command")
    harness.add_run_options(
        parser, smoke="30 phones, 5 users, 3 jobs, 2 s phases",
        database_url="PostgreSQL URL on this machine (default: a temporary SQLite file)",
        timeout="10 min", smoke_timeout=120.0)
    args = parser.parse_args()
    harness.check_run_options(parser, args, full_timeout=600.0, smoke_timeout=120.0)
    if args.redis_url and urlsplit(args.redis_url).hostname not in ("127.0.0.1", "localhost",
                                                                     "::1"):
        parser.error("--redis-url must point at this machine")
    if args.smoke:
        args.phones, args.users, args.jobs, args.duration, args.idle = 30, 5, 3, 2.0, 1.0
    if not 1 <= args.phones <= MAX_PHONES:
        parser.error(f"--phones must be between 1 and {MAX_PHONES}")
    args.users = args.users or min(200, max(1, args.phones // 10))

    _raise_open_files(args.phones * 2 + 1024)  # the gthread instance inherits it
    with Watchdog(args.timeout, say, "idle-phones") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database_name = harness.choose_database(args.database_url, tmpdir)
        say(f"world: {args.users} members, {args.jobs} open jobs ({database_name})")
        started = time.perf_counter()
        with harness.world_session(database_url) as session:
            from marketplace.clusters.models import User

            world = board.found(session, f"idle{os.getpid()}x{int(time.time())}", args.users,
                                seed=14)
            post_handoffs(session, world, args.jobs)
            emails = [session.get(User, user_id).email  # type: ignore[union-attr]
                      for _member, user_id in sorted(world.owners.items())]
        say(f"world built in {time.perf_counter() - started:.1f} s")

        logs = Path(watchdog.temp_dir())
        env = harness.production_env(database_url, args.redis_url)
        production = Instance("production (gevent)", harness.production_command(
            f"{harness.HOST}:{harness.free_port()}"), env, watchdog, logs / "production.log")
        production.start()
        sessions = harness.in_parallel(
            lambda email: harness.log_in(production.url, email, board.PASSWORD, csrf=True),
            emails, 8)
        cookies = ["; ".join(f"{c.name}={c.value}" for c in http.cookies) for http in sessions]
        say(f"{len(cookies)} members logged in")

        results = measure(production, cookies, args.phones, args, watchdog, idle_first=True,
                          connect_timeout=60.0, page_timeout=30.0)
        if not args.no_baseline:
            old = Instance("old gthread --threads 50", old_command(
                f"{harness.HOST}:{harness.free_port()}"), env, watchdog, logs / "old.log")
            old.start()
            results += measure(old, cookies, args.phones, args, watchdog, idle_first=False,
                               connect_timeout=5.0 if args.smoke else 10.0, page_timeout=5.0)
    watchdog.cancel()

    print(f"idle phones per instance: {args.phones} phones over {args.users} members, "
          f"board of {args.jobs} open jobs, {args.http_clients} page clients x "
          f"{args.duration:.0f} s per phase")
    print(f"database  {database_name}; Redis {'yes' if args.redis_url else 'no'}")
    print(f"machine   {harness.machine_line('gunicorn', 'gevent', 'Flask-SocketIO')}")
    print(f"command   {shlex.join(harness.production_command('ADDRESS')[1:])}")
    print()
    print(f"{'server':<36} {'connected':>11} {'kept':>6} {'threads':>7} {'RSS MiB':>8} "
          f"{'KiB/phone':>9} {'idle CPU':>9}  {'/login p50/p99':>13}  {'board p50/p99':>13}"
          "  failures")
    for result in results:
        print(result.line())
    for result in results:
        if result.pages.first_failure:
            print(f"  {result.name}: first failure {result.pages.first_failure}")
    held = results[1]
    met = held.pages.p99_within(TARGET_P99_S) and held.phones == f"{args.phones}/{args.phones}"
    print()
    print(f"target (>= {TARGET_PHONES} phones held, /login and board p99 < "
          f"{TARGET_P99_S * 1000:.0f} ms): "
          + ("met" if met and args.phones >= TARGET_PHONES else
             "met at this size" if met else "NOT met"))
    ok = (held.phones == f"{args.phones}/{args.phones}" and held.kept == str(args.phones)
          and results[0].pages.failures == 0 and held.pages.failures == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
