"""Notification latency: how long a posted job takes to reach every eligible phone.

Why this exists: `job.posted` is the event crews wait for, and it fans out to
every eligible member of a cluster.  The app does real work on that path
(eligibility for every member, one stored notification per recipient written
in the posting transaction; after commit, off the request, the text rendered
once per language and one Socket.IO emit per language to the list of the
recipients' rooms).  This benchmark says what that costs end to end, at 100
and 1 000 connected members, and compares it with the same fan-out done by a
bare python-socketio server in the same run, so the number means something on
whatever machine runs it.  It also answers the two questions of issue 14:

* Does the posting request's time grow with the number of recipients?  The
  same poster's POST is timed in a cluster of SMALL_CLUSTER members, one such
  post after each counted job (same server, same moment), and the p99 of both
  and their ratio are printed.
* How many messages does one post put on the Redis queue?  With
  `--redis-url` the run is repeated with two app instances sharing that Redis
  (and two bare servers with python-socketio's RedisManager), half of the
  clients on each, the posts going to the first; a subscriber on each run's
  channel counts the messages each post published.

What is measured: for each job, `t0 = time.perf_counter()` just before the
HTTP POST is sent; each client stamps `time.perf_counter()` first thing in its
`job.posted` handler.  Latency = receipt - t0, for every expected delivery.
Jobs are posted one after another: the next POST waits until every eligible
client got the previous job (or a per-job timeout passes), so each number is
one fan-out on an otherwise idle server.  One warm-up post per server is not
counted (first-request imports, catalog loading, statement caches).

How it is set up, and why:

* The app is served as production serves it: the web line of docs/Procfile
  (gunicorn, docs/gunicorn.conf.py: one gevent worker loading wsgi.py, Socket.IO
  in async mode "gevent"), with CSRF on.  The bare baseline is loaded by the
  same gunicorn line (`harness.baseline_from_environment`), its Socket.IO
  server in async mode "gevent" too.  `--server threaded` serves both instead
  in child processes behind werkzeug's threaded server with async mode
  "threading", as `tests.live.live_server` does.  The server's CPU time per job
  (its worker's) is read from /proc and printed next to the latencies.
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
  during the app's run) in one emit to the list of one room per client: the
  cheapest fan-out python-socketio has (one encoded packet, one queue message).
  What the ratio then shows is what our app adds: eligibility, the
  notification rows, rendering, the request itself.

Everything stays on 127.0.0.1 and is bounded: at most MAX_CLIENTS clients and
MAX_JOBS jobs, a per-job delivery timeout, and a hard overall timeout after
which the run kills its server process and exits with status 3.

    .venv/bin/python bench/notify_latency.py --smoke
    .venv/bin/python bench/notify_latency.py --clients 100 --jobs 20
    .venv/bin/python bench/notify_latency.py --clients 1000 --jobs 20
    .venv/bin/python bench/notify_latency.py --clients 1000 --jobs 20 \
        --redis-url redis://127.0.0.1:6379/12
    .venv/bin/python bench/notify_latency.py --clients 1000 --jobs 20 --server threaded

Exit status: 0 when every expected delivery arrived, 1 when some did not
(the numbers are printed either way), 2 on bad arguments, 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import harness
import requests
import socketio
from harness import Server, SocketClientPool, Watchdog, percentile

MAX_CLIENTS = 2000  # every client costs threads here and on the server; 2 000 is plenty
MAX_JOBS = 500
PASSWORD = "bench-notify-latency"
JOB_WAIT_S = 30.0  # per job: deliveries later than this count as missing
SMALL_CLUSTER = 10  # the posting request is also timed for this many recipients
#: A smoke run builds two clusters and serves the app and the bare server once each
#: (two gunicorn workers loading them, on a CI machine busy with the test suite).
SMOKE_TIMEOUT_S = 90.0
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
    from marketplace.db import utcnow

    started = time.perf_counter()
    emails = [f"poster.{tag}@bench.test"] + [f"m{i:04d}.{tag}@bench.test" for i in range(members)]
    with harness.world_session(database_url) as session:
        now = utcnow()
        make_eligible = harness.eligible_mower(session, now.date())

        harness.found_cluster(
            session, tag, purpose="Share overflow work fairly.", timezone="America/Toronto",
            members=[(email, "Poster Lawns" if index == 0 else f"Member {index:04d} Mowing")
                     for index, email in enumerate(emails)],
            password=PASSWORD, now=now, prepare=make_eligible)
    return World(emails[0], emails[1:], time.perf_counter() - started)


# ------------------------------------------------------------- the servers


def _bare_app(spec: dict[str, Any]) -> Any:
    """The same fan-out without our app: a room per client, one emit to all the rooms.

    `spec` holds "rooms" (how many clients), "message" (the app's own), "async_mode"
    (the app's under the same server) and, for the scale-out run, "redis_url" and
    "channel" (python-socketio's RedisManager).
    POST /post with the job's sequence number as the body emits `message`
    (the app's own wire message, with the id replaced) to the list of rooms
    user:0..N-1 in one emit, then answers 302 like the app's job form.  No
    database, no eligibility, no translation: what is left is Socket.IO itself on
    the same server stack.
    """
    rooms = [f"user:{room}" for room in range(spec["rooms"])]
    message: dict[str, Any] = spec["message"]
    manager = (socketio.RedisManager(spec["redis_url"], channel=spec["channel"])
               if spec.get("redis_url") else None)
    sio = socketio.Server(async_mode=spec["async_mode"], client_manager=manager)

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
        sio.emit("job.posted", {**message, "data": {**message["data"], "id": seq}}, to=rooms)
        start_response("302 Found", [("Location", f"/jobs/{seq}"), ("Content-Length", "0")])
        return [b""]

    return socketio.WSGIApp(sio, http)


class QueueCounter:
    """Counts the messages published on one Redis pub/sub channel (a subscriber of
    its own, in a thread): what each post put on the queue every instance reads."""

    def __init__(self, redis_url: str, channel: str) -> None:
        import redis

        self._pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self.count = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            if self._pubsub.get_message(timeout=0.1) is not None:
                with self._lock:
                    self.count += 1

    def read(self, settle: float = 0.2) -> int:
        """The count so far, after `settle` s for messages still on their way."""
        time.sleep(settle)
        with self._lock:
            return self.count

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._pubsub.close()


# ------------------------------------------------------------- the clients


def login_cookie(base_url: str, email: str) -> str:
    """Log in over HTTP like a browser; the Cookie header its socket will send."""
    http = harness.log_in(base_url, email, PASSWORD, csrf=True)
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


@dataclass
class Poster:
    """A member who posts jobs: its Cookie header and the job form's CSRF token."""

    cookie: str
    csrf_token: str

    @classmethod
    def log_in(cls, base_url: str, email: str) -> Poster:
        cookie = login_cookie(base_url, email)
        form = requests.get(f"{base_url}/jobs/new", headers={"Cookie": cookie},
                            timeout=JOB_WAIT_S)
        if form.status_code != 200:
            raise RuntimeError(f"job form for {email}: HTTP {form.status_code}")
        return cls(cookie, harness.csrf_token(form.text))


# --------------------------------------------------------------- the runs


@dataclass
class Run:
    """What one configuration did: every latency, the POST round trips, the misses."""

    name: str
    clients: int
    jobs: int
    instances: int = 1
    connect_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    small_post_ms: list[float] = field(default_factory=list)  # SMALL_CLUSTER recipients
    last_ms: list[float] = field(default_factory=list)  # per job: the slowest client
    queue_messages: list[int] = field(default_factory=list)  # per job, when counted
    received: int = 0
    processes: int = 1
    server_cpu_ms: float = math.nan  # server processes' CPU per counted job

    @property
    def expected(self) -> int:
        return self.clients * self.jobs


class Pools:
    """The clients of every instance as one pool (`SocketClientPool` serves one URL)."""

    def __init__(self, pools: list[SocketClientPool]) -> None:
        self.pools = pools
        self.connect_seconds = sum(p.connect_seconds for p in pools)
        self.processes = sum(len(p.conns) for p in pools)

    def wait_for(self, key: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        return sum(p.wait_for(key, max(0.0, deadline - time.monotonic())) for p in self.pools)

    def report(self) -> tuple[dict[int, list[float]], dict[str, Any] | None]:
        times: dict[int, list[float]] = {}
        first = None
        for pool in self.pools:
            part, one = pool.report()
            for key, stamps in part.items():
                times.setdefault(key, []).extend(stamps)
            first = first or one
        return times, first

    def stop(self) -> None:
        for pool in self.pools:
            pool.stop()


def connect_pools(urls: list[str], options: list[dict[str, Any]], watchdog: Watchdog
                  ) -> Pools:
    """Client i on instance i mod len(urls), as a balancer spreads phones."""
    pools: list[SocketClientPool] = []
    try:
        for number, url in enumerate(urls):
            pools.append(SocketClientPool(url, options[number::len(urls)], watchdog))
    except BaseException:
        Pools(pools).stop()
        raise
    return Pools(pools)


def measure(run: Run, servers: list[Server], pool: Pools, post: Callable[[int], int],
            *, small: Callable[[int], None] | None = None, counter: QueueCounter | None = None,
            warmup: int = 1) -> dict[str, Any] | None:
    """Post `warmup + run.jobs` jobs one at a time and turn the stamps into latencies.

    After each counted job, `small(seq)` posts one job in the small cluster (its
    round trip goes to `run.small_post_ms`); `counter` counts what each counted job
    put on the Redis channel.  Returns one `job.posted` message as a client got it.
    """
    run.connect_seconds, run.processes = pool.connect_seconds, pool.processes
    sent: dict[int, float] = {}
    cpu_before = math.nan

    def cpu() -> float:
        return sum(server.cpu_seconds() for server in servers)

    for seq in range(warmup + run.jobs):
        queued = counter.read(0.1) if counter is not None else 0
        t0 = time.perf_counter()
        key = post(seq)
        round_trip = time.perf_counter() - t0
        done = pool.wait_for(key, JOB_WAIT_S)
        say(f"{run.name} job {seq + 1 - warmup}/{run.jobs}{' (warm-up)' if seq < warmup else ''}"
            f": POST {round_trip * 1000:.0f} ms, {done}/{pool.processes} client processes "
            f"complete")
        if seq + 1 == warmup:
            cpu_before = cpu()
        if seq >= warmup:
            sent[key] = t0
            run.post_ms.append(round_trip * 1000)
            if counter is not None:
                run.queue_messages.append(counter.read() - queued)
            if small is not None:
                small(seq)
    run.server_cpu_ms = (cpu() - cpu_before) / run.jobs * 1000
    times, first = pool.report()
    received, latencies, slowest = harness.arrivals(sent, times)
    run.received += received
    run.latencies_ms.extend(latencies)
    run.last_ms.extend(slowest)
    return first


@dataclass
class Setup:
    """How a configuration is served: instances, and the Redis they share (if any)."""

    name: str
    instances: int = 1
    redis_url: str | None = None
    channel: str | None = None

    def counter(self) -> QueueCounter | None:
        if self.redis_url is None or self.channel is None:
            return None
        return QueueCounter(self.redis_url, self.channel)


def app_settings(kind: str, setup: Setup) -> dict[str, str]:
    """The configuration an app instance gets on top of the bench's: the shared Redis
    and its channel, and (production) the scheduler elsewhere, as two instances run."""
    if setup.redis_url is None or setup.channel is None:
        return {}
    settings = {"REDIS_URL": setup.redis_url, "SOCKETIO_CHANNEL": setup.channel}
    if kind == "production":  # an environment variable there, a config value threaded
        settings["SCHEDULER_IN_PROCESS"] = "false"
    return settings


def run_app(world: World, small_world: World, database_url: str, watchdog: Watchdog,
            jobs: int, setup: Setup, kind: str) -> tuple[Run, dict[str, Any], float]:
    """Our app: log every member in, connect a socket each, post jobs over HTTP."""
    from marketplace.db import utcnow

    servers: list[Server] = []
    run = Run(f"app {setup.name}", len(world.member_emails), jobs, setup.instances)
    pool = counter = None
    try:
        for number in range(setup.instances):
            servers.append(harness.serve_app(kind, f"app {number + 1}", database_url, watchdog,
                                             **app_settings(kind, setup)))
        base = servers[0].url
        started = time.perf_counter()
        poster = Poster.log_in(base, world.poster_email)
        small_poster = Poster.log_in(base, small_world.poster_email)
        cookies = harness.in_parallel(lambda email: login_cookie(base, email),
                                      world.member_emails, CONNECT_WORKERS)
        login_seconds = time.perf_counter() - started
        say(f"{len(cookies) + 2} logins in {login_seconds:.1f} s")
        pool = connect_pools([s.url for s in servers],
                             [{"headers": {"Cookie": c}} for c in cookies], watchdog)
        counter = setup.counter()
        http = requests.Session()
        today = utcnow().date().isoformat()

        def post_as(member: Poster, title: str) -> int:
            response = http.post(f"{base}/jobs/new", headers={"Cookie": member.cookie},
                                 data=harness.job_form(title, today,
                                                       csrf_token=member.csrf_token),
                                 allow_redirects=False, timeout=JOB_WAIT_S)
            if response.status_code != 302:
                raise RuntimeError(f"posting a job failed: HTTP {response.status_code}")
            return int(response.headers["Location"].rsplit("/", 1)[1])

        def small(seq: int) -> None:
            t0 = time.perf_counter()
            post_as(small_poster, f"Small bench job {seq}")
            run.small_post_ms.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.1)  # its own fan-out (off the request) is not the next job's cost

        message = measure(run, servers, pool, lambda seq: post_as(poster, f"Bench job {seq}"),
                          small=small, counter=counter)
    finally:
        if counter is not None:
            counter.close()
        if pool is not None:
            pool.stop()
        for server in servers:
            server.stop()
    if message is None:
        raise RuntimeError("no client received any job.posted from the app")
    return run, message, login_seconds


def run_bare(clients_n: int, message: dict[str, Any], watchdog: Watchdog, jobs: int,
             setup: Setup, kind: str) -> Run:
    """The baseline: bare python-socketio servers, same clients, same message, same way."""
    channel = setup.channel and setup.channel + "-bare"
    spec = {"rooms": clients_n, "message": message, "redis_url": setup.redis_url,
            "channel": channel, "async_mode": "gevent" if kind == "production" else "threading"}
    servers: list[Server] = []
    run = Run(f"bare {setup.name}", clients_n, jobs, setup.instances)
    pool = counter = None
    try:
        for number in range(setup.instances):
            servers.append(harness.serve_baseline(kind, f"bare {number + 1}", _bare_app, spec,
                                                  watchdog))
        pool = connect_pools([s.url for s in servers],
                             [{"auth": {"room": i}} for i in range(clients_n)], watchdog)
        if setup.redis_url is not None and channel is not None:
            counter = QueueCounter(setup.redis_url, channel)
        http = requests.Session()

        def post(seq: int) -> int:
            key = 1_000_000 + seq  # never an id the app used
            response = http.post(f"{servers[0].url}/post", data=str(key),
                                 allow_redirects=False, timeout=JOB_WAIT_S)
            if response.status_code != 302:
                raise RuntimeError(f"bare post failed: HTTP {response.status_code}")
            return key

        measure(run, servers, pool, post, counter=counter)
    finally:
        if counter is not None:
            counter.close()
        if pool is not None:
            pool.stop()
        for server in servers:
            server.stop()
    return run


# ----------------------------------------------------------------- report


def report(pairs: list[tuple[Run, Run]], *, database: str, server: str,
           setup: dict[str, float], small: int) -> None:
    """The results block: the numbers someone quotes, with what they were measured on."""
    def row(run: Run) -> str:
        share = run.received / run.expected if run.expected else 0.0
        return (f"{run.name:<18}{percentile(run.latencies_ms, 50):9.1f}"
                f"{percentile(run.latencies_ms, 99):9.1f}{max(run.latencies_ms, default=0):9.1f}"
                f"{percentile(run.last_ms, 50):11.1f}{percentile(run.post_ms, 50):11.1f}"
                f"{run.server_cpu_ms:12.0f}   {run.received}/{run.expected} ({share:.1%})")

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b and not math.isnan(a) else "n/a"

    def per_post(run: Run) -> str:
        if not run.queue_messages:
            return "-"
        return f"{sum(run.queue_messages) / len(run.queue_messages):.1f}"

    app = pairs[0][0]
    lines = [row(run) for pair in pairs for run in pair]
    ratios = []
    for app_run, bare_run in pairs:
        ratios.append(
            f"ratio {app_run.name}/bare: p50 "
            f"{ratio(percentile(app_run.latencies_ms, 50), percentile(bare_run.latencies_ms, 50))}"
            f"  p99 "
            f"{ratio(percentile(app_run.latencies_ms, 99), percentile(bare_run.latencies_ms, 99))}"
            + (f"   Redis messages per post: app {per_post(app_run)}, bare {per_post(bare_run)}"
               if app_run.queue_messages else ""))
    posting = []
    for app_run, _bare in pairs:
        big, little = percentile(app_run.post_ms, 99), percentile(app_run.small_post_ms, 99)
        posting.append(f"{app_run.name:<18}{percentile(app_run.small_post_ms, 50):9.1f}"
                       f"{little:9.1f}{percentile(app_run.post_ms, 50):9.1f}{big:9.1f}"
                       f"   {ratio(big, little)}")
    newline = "\n"
    print(f"""
== notify_latency: POST a job -> job.posted at every eligible client ==
machine   {harness.machine_line("python-socketio", "Flask-SocketIO", "redis")}
database  {database}
server    {harness.served(server)}; Socket.IO async mode \
"{'gevent' if server == 'production' else 'threading'}" in app and bare alike
clients   {app.clients} python-socketio threaded Clients (websocket only), one per member, \
in {app.processes} client process(es), spread evenly over the instances
jobs      {app.jobs} per configuration, posted one at a time (+1 warm-up each, not counted)
setup     world {setup['world']:.1f} s, logins {setup['logins']:.1f} s

ms                     p50      p99      max   last p50    rtt p50  server CPU   deliveries
{newline.join(lines)}
{newline.join(ratios)}
(p50/p99/max: POST sent -> job.posted received, over every delivery; last p50: median
 over jobs of the slowest client; rtt: the POST's own round trip; server CPU: ms of
 CPU per job, all instances together)

posting request, ms  {small:>5} recipients  {app.clients:>5} recipients   p99 ratio
                        p50      p99      p50      p99
{newline.join(posting)}
(the POST's round trip; one post in the small cluster after each counted job)
""", flush=True)


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=100,
                        help=f"connected eligible members (1..{MAX_CLIENTS}; default 100)")
    parser.add_argument("--jobs", type=int, default=20,
                        help=f"jobs posted per server (1..{MAX_JOBS}; default 20)")
    parser.add_argument("--redis-url", default=None,
                        help="a loopback Redis: also run two app instances (and two bare "
                             "servers) sharing it, and count its messages per post")
    harness.add_run_options(
        parser, smoke="20 clients, 3 jobs", timeout="180 + 0.8 s per client + 6 s per job",
        database_url="a loopback PostgreSQL URL (default: a temporary SQLite file)",
        smoke_timeout=SMOKE_TIMEOUT_S)
    harness.add_server_option(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.jobs = 20, 3
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.jobs <= MAX_JOBS:
        parser.error(f"--clients must be 1..{MAX_CLIENTS} and --jobs 1..{MAX_JOBS}")
    if args.redis_url:
        from urllib.parse import urlsplit

        parts = urlsplit(args.redis_url)
        if parts.scheme != "redis" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--redis-url must be redis:// on this machine")
    configurations = 2 if args.redis_url else 1
    harness.check_run_options(
        parser, args, smoke_timeout=SMOKE_TIMEOUT_S * configurations,
        full_timeout=(180 + 0.8 * args.clients + 6 * args.jobs) * configurations)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    setups = [Setup("1 inst")]
    if args.redis_url:
        setups.append(Setup("2 inst+Redis", 2, args.redis_url, f"notify-bench-{tag}"))
    pairs: list[tuple[Run, Run]] = []
    with Watchdog(args.timeout, say, "notify-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        say(f"building {args.clients} + {SMALL_CLUSTER} eligible members through the services")
        world = build_world(database_url, args.clients, tag)
        small_world = build_world(database_url, SMALL_CLUSTER, tag + "s")
        world_seconds = world.seconds + small_world.seconds
        say(f"worlds built in {world_seconds:.1f} s")
        login_seconds = 0.0
        for setup in setups:
            say(f"starting the app: {setup.name}")
            app, message, logins = run_app(world, small_world, database_url, watchdog,
                                           args.jobs, setup, args.server)
            login_seconds += logins
            say(f"starting the bare python-socketio baseline: {setup.name}")
            bare = run_bare(args.clients, message, watchdog, args.jobs, setup, args.server)
            pairs.append((app, bare))
        report(pairs, database=database, server=args.server, setup={"world": world_seconds,
                                                "logins": login_seconds},
               small=SMALL_CLUSTER)
    complete = all(run.received == run.expected for pair in pairs for run in pair)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
