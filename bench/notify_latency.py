"""Notification latency: how long a posted job takes to reach every eligible phone.

Why this exists: `job.posted` is the event crews wait for, and it fans out to
every eligible member of a cluster.  The app does real work on that path
(eligibility for every member, one stored notification per recipient written
in the posting transaction, rendering each in the recipient's language, then
one Socket.IO emit per recipient room after commit).  This benchmark says what
that costs end to end, at 100 and 1 000 connected members, and compares it
with the same fan-out done by a bare python-socketio server in the same run,
so the number means something on whatever machine runs it.

What is measured: for each job, `t0 = time.perf_counter()` just before the
HTTP POST is sent; each client stamps `time.perf_counter()` first thing in its
`job.posted` handler.  Latency = receipt - t0, for every expected delivery.
Jobs are posted one after another: the next POST waits until every eligible
client got the previous job (or a per-job timeout passes), so each number is
one fan-out on an otherwise idle server.  One warm-up post per server is not
counted (first-request imports, catalog loading, statement caches).

How it is set up, and why:

* The server (our app, then the bare baseline) runs in its own process,
  started with `multiprocessing` "spawn", behind werkzeug's threaded server with
  async mode "threading", exactly as `tests.live.live_server` serves it.  Its
  CPU time per job is read from /proc and printed next to the latencies.
* Clients are python-socketio `Client`s (threads + websocket-client, websocket
  transport only), at most `harness.CLIENTS_PER_PROCESS` per client process: one
  process with 1 000 threaded clients burned most of both cores fighting over its
  GIL and starved the server it was timing (see `harness.SocketClientPool`).
  `AsyncClient` would need aiohttp, which the project does not install.  The stamps of all
  client processes are comparable: on Linux `perf_counter` is CLOCK_MONOTONIC,
  one clock for the machine, and every client process's first stamp is
  checked against the parent's before anything is measured.  A threaded client
  still runs each received event in a fresh thread, so part of every latency
  is client-side; it is the same for both servers, so the ratio is fair.
* The world is built through the real services (create_cluster,
  publish_agreement, member invites, update_member_profile, accept_agreement)
  in a temporary SQLite file, or the PostgreSQL database given with
  `--database-url` (loopback only; tables are created if missing, nothing is
  dropped; each run makes its own uniquely named cluster).
* The bare server emits the very message the app sent (captured by a client
  during the app's run) to one room per client, one emit per room, like the
  app's publisher does.  What the ratio then shows is what our app adds:
  eligibility, the notification rows, rendering, the request itself.

Everything stays on 127.0.0.1 and is bounded: at most MAX_CLIENTS clients and
MAX_JOBS jobs, a per-job delivery timeout, and a hard overall timeout after
which the run kills its server process and exits with status 3.

    .venv/bin/python bench/notify_latency.py --smoke
    .venv/bin/python bench/notify_latency.py --clients 100 --jobs 20
    .venv/bin/python bench/notify_latency.py --clients 1000 --jobs 20

Exit status: 0 when every expected delivery arrived, 1 when some did not
(the numbers are printed either way), 2 on bad arguments, 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import harness
import requests
import socketio
from harness import ServerProcess, SocketClientPool, Watchdog, percentile

MAX_CLIENTS = 2000  # every client costs threads here and on the server; 2 000 is plenty
MAX_JOBS = 500
PASSWORD = "bench-notify-latency"
SITE = (43.6532, -79.3832)  # downtown Toronto, where every job is
NEAR = (43.7000, -79.4000)  # about 5 km away: every member's base
JOB_WAIT_S = 30.0  # per job: deliveries later than this count as missing
CONNECT_WORKERS = 8  # parallel logins in setup
say = harness.Progress("notify_latency")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """Who posts and who should receive: the emails the clients log in with."""

    poster_email: str
    member_emails: list[str]
    seconds: float


def build_world(database_url: str, members: int, tag: str) -> World:
    """A cluster, its agreement, a poster and `members` eligible partners, via the services.

    Eligible means what `marketplace.jobs.eligibility` checks: agreement in
    force accepted, the job's trade (mowing), the site inside the service
    circle, insurance valid through the job.  One session is reused for all
    of it; each service commits its own transaction, as it would in the app.
    """
    from marketplace.clusters.service import MemberProfile, update_member_profile
    from marketplace.db import utcnow

    started = time.perf_counter()
    emails = [f"poster.{tag}@bench.test"] + [f"m{i:04d}.{tag}@bench.test" for i in range(members)]
    with harness.world_session(database_url) as session:
        now = utcnow()
        today = now.date()

        def make_eligible(owner: Any, business: str) -> None:
            assert owner.member_id is not None
            update_member_profile(session, owner, owner.member_id, MemberProfile(
                name=business, trades=("mowing", "planting"),
                base_lat=NEAR[0], base_lng=NEAR[1], service_radius_km=50.0,
                insurance_expires_on=today + timedelta(days=365), certifications=""))

        harness.found_cluster(
            session, tag, purpose="Share overflow work fairly.", timezone="America/Toronto",
            members=[(email, "Poster Lawns" if index == 0 else f"Member {index:04d} Mowing")
                     for index, email in enumerate(emails)],
            password=PASSWORD, now=now, prepare=make_eligible)
    return World(emails[0], emails[1:], time.perf_counter() - started)


# ------------------------------------------------------------- the servers


def _bare_app(spec: dict[str, Any]) -> Any:
    """The same fan-out without our app: a room per client, one emit per room.

    `spec` holds "rooms" (how many clients) and "message" (the app's own).
    POST /post with the job's sequence number as the body emits `message`
    (the app's own wire message, with the id replaced) to rooms user:0..N-1,
    then answers 302 like the app's job form.  No database, no eligibility,
    no translation: what is left is Socket.IO itself on the same server stack.
    """
    rooms: int = spec["rooms"]
    message: dict[str, Any] = spec["message"]
    sio = socketio.Server(async_mode="threading")

    @sio.event
    def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        room = auth.get("room") if isinstance(auth, dict) else None
        if not isinstance(room, int):
            return False
        sio.enter_room(sid, f"user:{room}")
        return True

    def http(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO") != "/post":
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        seq = int(environ["wsgi.input"].read(length) or b"0")
        for room in range(rooms):
            sio.emit("job.posted", {**message, "id": seq, "data": {**message["data"], "id": seq}},
                     to=f"user:{room}")
        start_response("302 Found", [("Location", f"/jobs/{seq}"), ("Content-Length", "0")])
        return [b""]

    return socketio.WSGIApp(sio, http)


# ------------------------------------------------------------- the clients


def login_cookie(base_url: str, email: str) -> str:
    """Log in over HTTP like a browser; the Cookie header its socket will send."""
    http = harness.log_in(base_url, email, PASSWORD, csrf=False)
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


# --------------------------------------------------------------- the runs


@dataclass
class Run:
    """What one server did: every latency, the POST round trips, the misses."""

    name: str
    clients: int
    jobs: int
    connect_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    last_ms: list[float] = field(default_factory=list)  # per job: the slowest client
    received: int = 0
    processes: int = 1
    server_cpu_ms: float = math.nan  # server process CPU per counted job

    @property
    def expected(self) -> int:
        return self.clients * self.jobs


def measure(run: Run, server: ServerProcess, pool: SocketClientPool, post: Callable[[int], int],
            warmup: int = 1) -> dict[str, Any] | None:
    """Post `warmup + run.jobs` jobs one at a time and turn the stamps into latencies.

    Returns one `job.posted` message as a client received it.
    """
    run.connect_seconds, run.processes = pool.connect_seconds, len(pool.conns)
    sent: dict[int, float] = {}
    cpu_before = math.nan
    for seq in range(warmup + run.jobs):
        t0 = time.perf_counter()
        key = post(seq)
        round_trip = time.perf_counter() - t0
        done = pool.wait_for(key, JOB_WAIT_S)
        say(f"{run.name} job {seq + 1 - warmup}/{run.jobs}{' (warm-up)' if seq < warmup else ''}"
            f": POST {round_trip * 1000:.0f} ms, {done}/{len(pool.conns)} client processes "
            f"complete")
        if seq + 1 == warmup:
            cpu_before = server.cpu_seconds()
        if seq >= warmup:
            sent[key] = t0
            run.post_ms.append(round_trip * 1000)
    run.server_cpu_ms = (server.cpu_seconds() - cpu_before) / run.jobs * 1000
    times, first = pool.report()
    for key, t0 in sent.items():
        stamps = [(t - t0) * 1000 for t in times.get(key, [])]
        run.received += len(stamps)
        run.latencies_ms.extend(stamps)
        if stamps:
            run.last_ms.append(max(stamps))
    return first


def run_app(world: World, database_url: str, watchdog: Watchdog, jobs: int
            ) -> tuple[Run, dict[str, Any], float]:
    """Our app: log every member in, connect a socket each, post jobs over HTTP."""
    from marketplace.db import utcnow

    server = ServerProcess("app", harness.marketplace_app,
                           harness.app_config(database_url, WTF_CSRF_ENABLED=False), watchdog)
    run = Run("app", len(world.member_emails), jobs)
    pool = None
    try:
        started = time.perf_counter()
        poster = login_cookie(server.url, world.poster_email)
        cookies = harness.in_parallel(lambda email: login_cookie(server.url, email),
                               world.member_emails, CONNECT_WORKERS)
        login_seconds = time.perf_counter() - started
        say(f"{len(cookies) + 1} logins in {login_seconds:.1f} s")
        pool = SocketClientPool(server.url, [{"headers": {"Cookie": c}} for c in cookies],
                                watchdog)
        http = requests.Session()
        today = utcnow().date().isoformat()

        def post(seq: int) -> int:
            response = http.post(f"{server.url}/jobs/new", headers={"Cookie": poster}, data={
                "title": f"Bench job {seq}", "description": "Weekly mowing",
                "trades": ["mowing"], "locality": "Annex, Toronto", "site_lat": str(SITE[0]),
                "site_lng": str(SITE[1]), "address": "742 Evergreen Terrace",
                "customer_name": "Bench Customer", "customer_contact": "555-0199",
                "crew_days": "3", "starts_on": today, "ends_on": today, "value": "1234.50",
                "mode": "handoff",
            }, allow_redirects=False, timeout=JOB_WAIT_S)
            if response.status_code != 302:
                raise RuntimeError(f"posting a job failed: HTTP {response.status_code}")
            return int(response.headers["Location"].rsplit("/", 1)[1])

        message = measure(run, server, pool, post)
    finally:
        if pool is not None:
            pool.stop()
        server.stop()
    if message is None:
        raise RuntimeError("no client received any job.posted from the app")
    return run, message, login_seconds


def run_bare(clients_n: int, message: dict[str, Any], watchdog: Watchdog, jobs: int) -> Run:
    """The baseline: a bare python-socketio server, same clients, same message, same way."""
    server = ServerProcess("bare", _bare_app, {"rooms": clients_n, "message": message},
                           watchdog)
    run = Run("bare", clients_n, jobs)
    pool = None
    try:
        pool = SocketClientPool(server.url, [{"auth": {"room": i}} for i in range(clients_n)],
                          watchdog)
        http = requests.Session()

        def post(seq: int) -> int:
            key = 1_000_000 + seq  # never an id the app used
            response = http.post(f"{server.url}/post", data=str(key), allow_redirects=False,
                                 timeout=JOB_WAIT_S)
            if response.status_code != 302:
                raise RuntimeError(f"bare post failed: HTTP {response.status_code}")
            return key

        measure(run, server, pool, post)
    finally:
        if pool is not None:
            pool.stop()
        server.stop()
    return run


# ----------------------------------------------------------------- report


def report(app: Run, bare: Run, *, database: str, setup: dict[str, float]) -> None:
    """The results block: the numbers someone quotes, with what they were measured on."""
    def row(run: Run) -> str:
        share = run.received / run.expected if run.expected else 0.0
        return (f"{run.name:<6}{percentile(run.latencies_ms, 50):9.1f}"
                f"{percentile(run.latencies_ms, 99):9.1f}{max(run.latencies_ms, default=0):9.1f}"
                f"{percentile(run.last_ms, 50):11.1f}{percentile(run.post_ms, 50):11.1f}"
                f"{run.server_cpu_ms:12.0f}   {run.received}/{run.expected} ({share:.1%})")

    def ratio(p: float) -> str:
        bare_value = percentile(bare.latencies_ms, p)
        return f"{percentile(app.latencies_ms, p) / bare_value:.2f}x" if bare_value else "n/a"

    print(f"""
== notify_latency: POST a job -> job.posted at every eligible client ==
machine   {harness.machine_line("python-socketio", "Flask-SocketIO")}
database  {database}
server    its own process: werkzeug threaded server, Socket.IO async_mode "threading"
clients   {app.clients} python-socketio threaded Clients (websocket only), one per member, \
in {app.processes} client process(es)
jobs      {app.jobs} per server, posted one at a time (+1 warm-up each, not counted)
setup     world {setup['world']:.1f} s, logins {setup['logins']:.1f} s, \
connect app {app.connect_seconds:.1f} s, connect bare {bare.connect_seconds:.1f} s

ms       p50      p99      max   last p50    rtt p50  server CPU   deliveries
{row(app)}
{row(bare)}
ratio app/bare: p50 {ratio(50)}  p99 {ratio(99)}
(p50/p99/max: POST sent -> job.posted received, over every delivery; last p50: median
 over jobs of the slowest client; rtt: the POST's own round trip; server CPU: ms of
 server-process CPU per job)
""", flush=True)


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=100,
                        help=f"connected eligible members (1..{MAX_CLIENTS}; default 100)")
    parser.add_argument("--jobs", type=int, default=20,
                        help=f"jobs posted per server (1..{MAX_JOBS}; default 20)")
    harness.add_run_options(
        parser, smoke="20 clients, 3 jobs", timeout="120 + 0.4 s per client + 3 s per job",
        database_url="a loopback PostgreSQL URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.jobs = 20, 3
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.jobs <= MAX_JOBS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS} and --jobs 1..{MAX_JOBS}")
    harness.check_run_options(parser, args,
                              full_timeout=120 + 0.4 * args.clients + 3 * args.jobs)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "notify-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        say(f"building {args.clients} eligible members through the services")
        world = build_world(database_url, args.clients, tag)
        say(f"world built in {world.seconds:.1f} s; starting the app")
        app, message, login_seconds = run_app(world, database_url, watchdog, args.jobs)
        say("starting the bare python-socketio baseline")
        bare = run_bare(args.clients, message, watchdog, args.jobs)
        report(app, bare, database=database,
               setup={"world": world.seconds, "logins": login_seconds})
    complete = app.received == app.expected and bare.received == bare.expected
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
