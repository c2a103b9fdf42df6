"""Scale-out: what 1, 2 and 4 app instances behind nginx buy, on PostgreSQL and Redis.

Why this exists: the README's production setup is several one-worker app
instances behind nginx (`docs/nginx.conf`: ip_hash, websocket upgrade)
sharing one PostgreSQL and one Redis, because Flask-SocketIO keeps each
connection in the process that accepted it, so a process is the unit of
scale.  This benchmark says what adding instances buys on the machine it
runs on, for the three things members do most: read the job board, race to
claim a hand-off job, and wait for `job.posted` on their phones.

What is measured, for each N in --instances (N app instances + one nginx):

* board: --concurrency logged-in members GET /jobs (HTML, the board of a
  cluster with BOARD_JOBS open jobs) in a loop for --duration seconds.
  Requests/s = completed requests / (last completion - start); p50/p99/max
  of the round trip.
* bare: the same clients, same nginx config, same duration, against N bare
  Flask instances (one GET /jobs answering a page of the board's size, no
  database, no session) on the same server kind: what the proxy, the server
  stack and the load generator cost on their own, i.e. the ceiling of this
  machine for the app's request shape.
* claims: --concurrency members of another cluster walk the same list of
  open hand-off jobs in the same order, each POSTing /jobs/<id>/claim (CSRF
  token, `Accept: application/json`) for every job, until the list or
  --duration ends: every job is raced by all of them at once.  200 is a win,
  409 `already_claimed` a loss.  Afterwards one SQL query per run checks
  every job: exactly one 200 per claimed job, the job awarded to that
  member, exactly one contract with that member as its only party, and no
  job awarded that nobody won.  Any violation makes the exit status 1.
* notify: --clients python-socketio clients (members of a third cluster,
  all eligible) connected through nginx, spread over the instances; the
  poster POSTs /jobs/new through nginx, and the latency is the time from
  sending that POST to each client's receipt of `job.posted`
  (`harness.SocketClientPool`, as in notify_latency.py).  Jobs go one at a
  time, each waiting for every client; one warm-up job is not counted.
  The event crosses processes through Redis: every emit is published there
  and every instance's listener delivers it to the clients it holds.

How it is set up, and why:

* Each instance is `python wsgi.py` in its own process with the
  production settings that matter here (HOST/PORT, DATABASE_URL,
  REDIS_URL, SECRET_KEY, SCHEDULER_IN_PROCESS=false, TRUSTED_PROXIES=1),
  as tests/realtime/test_two_instances.py starts them; rate limits off and
  cheap password hashing, as every benchmark here.  nginx is Debian's
  /usr/sbin/nginx with docs/nginx.conf filled in (prefix, listen address,
  one `server` line per instance), with worker_connections at least
  WORKER_CONNECTIONS: 1024 would let one nginx worker proxy only about 500
  websockets (each holds a client and an upstream connection).
* nginx balances with ip_hash, and every client here comes from this
  machine.  So each client connects from an address of its own in
  127.0.0.0/8 (Linux routes all of it to lo), picked so that nginx's ip_hash
  (the first three octets, `ip_hash_instance`) puts client i on instance
  i mod N: the clients are spread evenly, as many real clients would be.
  Each instance's CPU is printed, which shows the spread.
* The world is built through the real services (create_cluster,
  publish_agreement, member invites, update_member_profile,
  accept_agreement, post_job) in the PostgreSQL database given with
  --database-url (loopback only; tables created if missing, nothing
  dropped; each run makes its own uniquely named clusters, so use a scratch
  database).  Members log in over HTTP through nginx once (CSRF token from
  GET /login); the cookies are signed with the run's key, which every
  instance shares, so they stay valid across configurations.
* HTTP clients are `requests.Session`s, one thread and one keep-alive
  connection each, in one client process.  Everything shares the machine's
  cores: instances, nginx, PostgreSQL, Redis and the load generator.  The
  CPU seconds per wall second of each are printed, and the machine's busy
  cores (from /proc/stat), so it shows what the cores went to.

Everything stays on this machine and is bounded: at most MAX_INSTANCES
instances, MAX_CONCURRENCY HTTP clients, MAX_CLIENTS socket clients, a
duration of at most MAX_DURATION s per phase, per-request and per-job
timeouts, and a hard overall timeout after which the run kills its child
processes (instances, nginx, clients), removes its temporary files and exits
with status 3.

    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE scalebench'   # once
    .venv/bin/python bench/scale_out.py --smoke
    .venv/bin/python bench/scale_out.py

Exit status: 0 when every claimed job has exactly one winner, no request
failed (5xx, unexpected status, transport error) and every notification
arrived; 1 otherwise (the numbers are printed either way); 2 on bad
arguments; 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import secrets
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import harness
import requests
from harness import ServerProcess, SocketClientPool, Watchdog, percentile

ROOT = Path(__file__).resolve().parents[1]
NGINX = "/usr/sbin/nginx"  # Debian's, as tests/realtime/test_two_instances.py runs it
DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/scalebench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
WORKER_CONNECTIONS = 4096  # 1024 would let nginx proxy only about 500 websockets
MAX_INSTANCES = 8
MAX_CONCURRENCY = 256
MAX_CLIENTS = 2000
MAX_DURATION = 120.0
PASSWORD = "bench-scale-out"
SITE = harness.SITE  # where every job is (members are based 5 km away)
BOARD_JOBS = 20  # open jobs on the board every board client reads
REQUEST_TIMEOUT_S = 30.0
JOB_WAIT_S = 30.0  # per notified job: deliveries later than this count as missing
START_S = 60.0  # an instance or nginx that does not answer by then counts as failed
LOGIN_WORKERS = 8
SMOKE_TIMEOUT_S = 180.0  # a smoke run starts 6 servers and 2 nginx: ~40 s idle, 60+ s loaded
say = harness.Progress("scale_out")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """Three clusters: one whose board is read, one whose jobs are raced, one notified."""

    board_emails: list[str]
    claim_emails: list[str]
    claim_member_ids: list[int]  # aligned with claim_emails
    claim_jobs: list[list[int]]  # one list of open hand-off jobs per configuration
    notify_poster: str
    notify_emails: list[str]
    seconds: float


def _draft(title: str, today: Any) -> Any:
    from marketplace.jobs.service import JobDraft

    return JobDraft(
        title=title, description="Weekly mowing", trades=("mowing",), site_lat=SITE[0],
        site_lng=SITE[1], locality="Annex, Toronto", address="742 Evergreen Terrace",
        customer_name="Bench Customer", customer_contact="555-0199", crew_days=3,
        starts_on=today, ends_on=today, value_minor=123450, mode="handoff")


def build_world(database_url: str, tag: str, *, concurrency: int, clients: int,
                claim_jobs: int, configurations: int) -> World:
    """The three clusters, their members (all eligible for the jobs) and the jobs.

    Eligible means what `marketplace.jobs.eligibility` checks: agreement in
    force accepted, the job's trade (mowing), the site inside the service
    circle, insurance valid through the job.  The board's BOARD_JOBS jobs and
    every configuration's jobs to claim are posted through `post_job`, by a
    poster member of that cluster; there is no publisher in this process, so
    their notifications are stored and not sent.
    """
    from marketplace.db import utcnow
    from marketplace.jobs.service import post_job

    started = time.perf_counter()
    with harness.world_session(database_url) as session:
        now = utcnow()
        today = now.date()
        make_eligible = harness.eligible_mower(session, today)

        def cluster(part: str, members: int) -> list[Any]:
            emails = [f"poster.{part}.{tag}@bench.test"] + \
                [f"m{i:04d}.{part}.{tag}@bench.test" for i in range(members)]
            say(f"cluster {part}: a poster and {members} members")
            return harness.found_cluster(
                session, f"{tag}-{part}", purpose="Share overflow work fairly.",
                timezone="America/Toronto",
                members=[(email, f"{part.title()} {index:04d} Lawns")
                         for index, email in enumerate(emails)],
                password=PASSWORD, now=now, prepare=make_eligible)

        board = cluster("board", concurrency)
        for number in range(BOARD_JOBS):
            post_job(session, board[0], _draft(f"Board job {number}", today), now)
        claim = cluster("claims", concurrency)
        jobs = [[post_job(session, claim[0], _draft(f"Race {c}.{n}", today), now).id or 0
                 for n in range(claim_jobs)] for c in range(configurations)]
        notify = cluster("notify", clients)
    return World(
        board_emails=[u.email for u in board[1:]], claim_emails=[u.email for u in claim[1:]],
        claim_member_ids=[u.member_id for u in claim[1:]], claim_jobs=jobs,
        notify_poster=notify[0].email, notify_emails=[u.email for u in notify[1:]],
        seconds=time.perf_counter() - started)


CLAIMS_SQL = """
SELECT j.id, j.status, j.awarded_member_id, count(DISTINCT c.id), count(p.member_id),
       min(p.member_id)
FROM overflowjob j
LEFT JOIN jobcontract c ON c.job_id = j.id
LEFT JOIN contractparty p ON p.contract_id = c.id
WHERE j.id IN :ids
GROUP BY j.id, j.status, j.awarded_member_id
"""


def check_claims(database_url: str, job_ids: list[int], wins: dict[int, list[int]]
                 ) -> list[str]:
    """What is wrong with the race's outcome, per the database itself (empty: nothing).

    `wins` maps each job to the member ids the clients saw a 200 for.  Straight
    at the database, on a fresh connection, not through the app's own code.
    """
    from sqlalchemy import bindparam, text

    from marketplace.db import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(CLAIMS_SQL).bindparams(bindparam("ids", expanding=True)),
                {"ids": job_ids}).all()
    finally:
        engine.dispose()
    problems = []
    for job_id, status, awarded, contracts, parties, party in rows:
        winners = wins.get(job_id, [])
        if len(winners) > 1:
            problems.append(f"job {job_id}: {len(winners)} clients were told they won")
        if status == "open":
            if winners or contracts:
                problems.append(f"job {job_id}: open, but {len(winners)} wins and "
                                f"{contracts} contracts")
            continue
        if status != "awarded" or len(winners) != 1 or awarded != winners[0] or \
                contracts != 1 or parties != 1 or party != winners[0]:
            problems.append(f"job {job_id}: status {status}, awarded to {awarded}, "
                            f"{contracts} contracts with {parties} parties, clients' "
                            f"winners {winners}")
    if len(rows) != len(job_ids):
        problems.append(f"{len(job_ids) - len(rows)} jobs missing from the database")
    return problems


# ------------------------------------------------------- instances and nginx


def ip_hash_instance(address: str, instances: int) -> int:
    """Which of `instances` equal-weight servers nginx's ip_hash picks for an IPv4 client.

    As ngx_http_upstream_ip_hash_module does it: a hash of the first three
    octets (start 89, then hash = (hash * 113 + octet) % 6271 for each),
    modulo the total weight, in the order of the `server` lines.
    """
    value = 89
    for octet in address.split(".")[:3]:
        value = (value * 113 + int(octet)) % 6271
    return value % instances


def source_addresses(count: int, instances: int) -> list[str]:
    """`count` client addresses in 127.0.0.0/8, each its own /24, such that
    ip_hash sends client i to instance i mod `instances`."""
    candidates: Iterator[str] = (f"127.{a}.{b}.1" for a in range(1, 255) for b in range(256))
    ready: dict[int, deque[str]] = {k: deque() for k in range(instances)}
    chosen = []
    for index in range(count):
        target = index % instances
        while not ready[target]:
            address = next(candidates)
            ready[ip_hash_instance(address, instances)].append(address)
        chosen.append(ready[target].popleft())
    return chosen


def _wait_for(url: str, alive: Callable[[], bool], what: str) -> None:
    """Until `url` answers at all (any status), or fail after START_S."""
    deadline = time.monotonic() + START_S
    while True:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            if time.monotonic() > deadline or not alive():
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


class AppInstance:
    """`python wsgi.py` in its own process, one instance behind the load balancer."""

    def __init__(self, number: int, database_url: str, redis_url: str, tmpdir: str,
                 watchdog: Watchdog) -> None:
        self.port = harness.free_port()
        self.url = f"http://{harness.HOST}:{self.port}"
        self.log = Path(tmpdir) / f"app-{number}.log"
        env = {**os.environ, "HOST": harness.HOST, "PORT": str(self.port),
               "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "SECRET_KEY": harness.SECRET_KEY, "SCHEDULER_IN_PROCESS": "false",
               "TRUSTED_PROXIES": "1", "PUBLIC_URL": f"http://{harness.HOST}",
               "LOG_LEVEL": "WARNING",
               "RATELIMIT_ENABLED": "false", "PASSWORD_HASH_TIME_COST": "1",
               "PASSWORD_HASH_MEMORY_KIB": "1024", "UPLOAD_DIR": f"{tmpdir}/uploads"}
        with self.log.open("wb") as log:
            self.program = watchdog.popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env,
                                          stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.program.pid

    def wait(self) -> None:
        try:
            _wait_for(f"{self.url}/login", lambda: self.program.poll() is None,
                      f"app instance on port {self.port}")
        except RuntimeError:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"app instance on port {self.port} did not start:\n{tail}"
                               ) from None

    def cpu_seconds(self) -> float:
        return harness.cpu_seconds(self.pid)

    def stop(self) -> None:
        harness.stop_program(self.program)


class BareInstance:
    """A bare Flask app (`_bare_app`) in a harness server child: same server kind."""

    def __init__(self, number: int, page_bytes: int, watchdog: Watchdog) -> None:
        self.server = ServerProcess(f"bare-{number}", _bare_app, {"bytes": page_bytes},
                                    watchdog)
        self.url = self.server.url
        assert self.server.process.pid is not None
        self.pid = self.server.process.pid

    def cpu_seconds(self) -> float:
        return self.server.cpu_seconds()

    def stop(self) -> None:
        self.server.stop()


def _bare_app(spec: dict[str, Any]) -> Any:
    """GET /jobs answers a page as long as the app's board: no database, no session."""
    from flask import Flask

    app = Flask("bare")
    page = "<!doctype html>" + "x" * max(0, spec["bytes"] - 15)

    @app.get("/jobs")
    def board() -> str:
        return page

    return app


def render_nginx_conf(prefix: str, listen: str, upstreams: list[str]) -> str:
    """docs/nginx.conf with its placeholders filled in, and at least WORKER_CONNECTIONS
    (the shipped value stands when it is higher: the bench measures what ships)."""
    template = (ROOT / "docs" / "nginx.conf").read_text()
    shipped = re.search(r"worker_connections (\d+);", template)
    if shipped is None:
        raise RuntimeError("docs/nginx.conf has no worker_connections line to check")
    connections = max(int(shipped.group(1)), WORKER_CONNECTIONS)
    servers = "\n".join(f"        server {url.removeprefix('http://')};" for url in upstreams)
    return template.replace("@PREFIX@", prefix).replace("@LISTEN@", listen) \
        .replace("@UPSTREAM_SERVERS@", servers) \
        .replace(shipped.group(0), f"worker_connections {connections};")


class Nginx:
    """Debian's nginx in front of `upstreams`, in a fresh prefix directory."""

    def __init__(self, upstreams: list[str], watchdog: Watchdog) -> None:
        prefix = watchdog.temp_dir()
        port = harness.free_port()
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(render_nginx_conf(prefix, f"{harness.HOST}:{port}", upstreams))
        self.program = watchdog.popen([NGINX, "-p", prefix, "-c", str(conf),
                                       "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://{harness.HOST}:{port}"
        try:
            _wait_for(f"{self.url}/jobs", lambda: self.program.poll() is None, "nginx")
        except RuntimeError:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        """The master's and its worker's CPU: every process of its group (it leads one)."""
        total = 0.0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == self.program.pid:
                    total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        harness.stop_program(self.program)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine spent not idle so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------- the clients


@dataclass
class Client:
    """What one HTTP client needs to act as its member: cookies, a form token, an address."""

    index: int
    cookies: dict[str, str]
    csrf_token: str
    source: str


class _SourceAdapter(requests.adapters.HTTPAdapter):
    """Connections from one source address (see `source_addresses`)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(pool_connections=1, pool_maxsize=1)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block,
                                 source_address=(self.source, 0), **kwargs)


def _session(client: Client) -> requests.Session:
    http = requests.Session()
    http.mount("http://", _SourceAdapter(client.source))
    http.cookies.update(client.cookies)
    return http


Row = tuple[int, str, float, float, int]  # client, outcome, latency ms, done at, job id


def _outcome(response: requests.Response) -> str:
    if response.status_code in (409, 422):
        try:
            return f"{response.status_code}:{response.json()['error']['code']}"
        except (ValueError, KeyError, TypeError):
            return f"{response.status_code}:?"
    return str(response.status_code)


def _read_board(url: str, client: Client, start_at: float, deadline: float,
                out: list[Row]) -> None:
    """One client: GET the board until the deadline."""
    http = _session(client)
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < deadline:
        t0 = time.perf_counter()
        try:
            outcome = str(http.get(url, timeout=REQUEST_TIMEOUT_S).status_code)
        except requests.RequestException as error:
            outcome = f"transport:{type(error).__name__}"
        out.append((client.index, outcome, (time.perf_counter() - t0) * 1000, time.time(), 0))


def _race(base_url: str, client: Client, job_ids: list[int], start_at: float,
          deadline: float, out: list[Row]) -> None:
    """One client: claim every job of the list in order, until the list or the time ends."""
    http = _session(client)
    http.headers["Accept"] = "application/json"
    time.sleep(max(0.0, start_at - time.time()))
    for job_id in job_ids:
        if time.time() >= deadline:
            break
        t0 = time.perf_counter()
        try:
            outcome = _outcome(http.post(f"{base_url}/jobs/{job_id}/claim",
                                         data={"csrf_token": client.csrf_token},
                                         allow_redirects=False, timeout=REQUEST_TIMEOUT_S))
        except requests.RequestException as error:
            outcome = f"transport:{type(error).__name__}"
        out.append((client.index, outcome, (time.perf_counter() - t0) * 1000, time.time(),
                    job_id))


def _clients(command: tuple[Any, ...]) -> list[tuple[Callable[..., None], tuple[Any, ...]]]:
    """The clients one command asks for: board readers, or claimers racing for jobs."""
    kind, url, clients, job_ids, start_at, deadline = command
    return [(_read_board, (url, client, start_at, deadline)) if kind == "board"
            else (_race, (url, client, job_ids, start_at, deadline)) for client in clients]


def _http_worker(conn: Connection) -> None:
    """Child process: run its share of the HTTP clients as threads whenever told to."""
    harness.serve_client_commands(conn, _clients)


class HttpClients:
    """One client process running every HTTP client as a thread (see the module doc)."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.conn, self.process = watchdog.spawn("http-clients", _http_worker)

    def run(self, kind: str, url: str, clients: list[Client], job_ids: list[int],
            duration: float) -> tuple[list[Row], float, float]:
        """Every request of every client, the common start time, the clients' CPU s."""
        start_at = time.time() + 1.0  # time for every thread to be waiting at the line
        self.conn.send((kind, url, clients, job_ids, start_at, start_at + duration))
        if not self.conn.poll(duration + REQUEST_TIMEOUT_S + 30):
            raise RuntimeError("the client process did not report")
        _kind, rows, cpu = self.conn.recv()
        return rows, start_at, cpu

    def stop(self) -> None:
        harness.stop_children([self.conn], [self.process], ("stop",))


# --------------------------------------------------------------- the runs


@dataclass
class Phase:
    """One measured phase on one configuration: its requests and what the CPUs did."""

    name: str
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed: float = math.nan
    instance_cpu: list[float] = field(default_factory=list)  # CPU s per wall s, each
    nginx_cpu: float = math.nan
    client_cpu: float = math.nan
    machine_busy: float = math.nan  # busy cores
    ok: tuple[str, ...] = ("200",)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def errors(self) -> int:
        return self.requests - sum(self.outcomes[o] for o in self.ok)

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


class Meter:
    """CPU seconds of the instances, nginx, and the machine, from a starting point."""

    def __init__(self, instances: list[Any], nginx: Nginx) -> None:
        self.instances, self.nginx = instances, nginx
        self.start = time.perf_counter()
        self.inst0 = [i.cpu_seconds() for i in instances]
        self.nginx0 = nginx.cpu_seconds()
        self.busy0 = machine_busy_seconds()

    def into(self, phase: Phase, wall: float | None = None) -> None:
        wall = wall or time.perf_counter() - self.start
        phase.instance_cpu = [(i.cpu_seconds() - c0) / wall
                              for i, c0 in zip(self.instances, self.inst0, strict=True)]
        phase.nginx_cpu = (self.nginx.cpu_seconds() - self.nginx0) / wall
        phase.machine_busy = (machine_busy_seconds() - self.busy0) / wall


def hammer(phase: Phase, kind: str, url: str, clients: list[Client], job_ids: list[int],
           pool: HttpClients, instances: list[Any], nginx: Nginx, duration: float
           ) -> list[Row]:
    """Run every HTTP client against `url` through nginx; fill in `phase`."""
    say(f"N={len(instances)} {phase.name}: {len(clients)} clients for up to {duration:.0f} s")
    meter = Meter(instances, nginx)
    rows, start_at, client_cpu = pool.run(kind, url, clients, job_ids, duration)
    wall = time.perf_counter() - meter.start
    meter.into(phase, wall)
    phase.client_cpu = client_cpu / wall
    for _client, outcome, latency, _done, _job in rows:
        phase.outcomes[outcome] += 1
        phase.latencies_ms.append(latency)
    phase.elapsed = max((done for _c, _o, _l, done, _j in rows), default=start_at) - start_at
    say(f"N={len(instances)} {phase.name}: {phase.requests} requests, "
        f"{dict(phase.outcomes.most_common())}, {phase.rps:.1f}/s")
    return rows


@dataclass
class Notify:
    """The notification phase on one configuration."""

    clients: int
    jobs: int
    latencies_ms: list[float] = field(default_factory=list)
    last_ms: list[float] = field(default_factory=list)
    post_ms: list[float] = field(default_factory=list)
    received: int = 0
    connect_seconds: float = math.nan
    processes: int = 0
    instance_cpu_ms: list[float] = field(default_factory=list)  # per counted job, each
    machine_busy: float = math.nan

    @property
    def expected(self) -> int:
        return self.clients * self.jobs


def notify_phase(world: World, cookies: dict[str, str], instances: list[AppInstance],
                 nginx: Nginx, watchdog: Watchdog, jobs: int) -> Notify:
    """Every notify member's socket through nginx; post jobs one at a time through nginx."""
    from marketplace.db import utcnow

    emails = world.notify_emails
    run = Notify(len(emails), jobs)
    sources = source_addresses(len(emails), len(instances))
    say(f"N={len(instances)} notify: connecting {len(emails)} Socket.IO clients through nginx")
    pool = SocketClientPool(nginx.url, [
        {"headers": {"Cookie": cookies[email]}, "source_address": source}
        for email, source in zip(emails, sources, strict=True)], watchdog)
    run.connect_seconds, run.processes = pool.connect_seconds, len(pool.conns)
    try:
        http = requests.Session()
        http.headers["Cookie"] = cookies[world.notify_poster]
        token = harness.csrf_token(http.get(f"{nginx.url}/jobs/new",
                                            timeout=REQUEST_TIMEOUT_S).text)
        today = utcnow().date().isoformat()
        sent: dict[int, float] = {}
        cpu_before: list[float] = []
        busy_before = wall_before = math.nan
        for seq in range(1 + jobs):
            t0 = time.perf_counter()
            response = http.post(f"{nginx.url}/jobs/new",
                                 data=harness.job_form(f"Notify job {seq}", today,
                                                       csrf_token=token),
                                 allow_redirects=False, timeout=JOB_WAIT_S)
            round_trip = time.perf_counter() - t0
            if response.status_code != 302:
                raise RuntimeError(f"posting a job failed: HTTP {response.status_code}")
            key = int(response.headers["Location"].rsplit("/", 1)[1])
            done = pool.wait_for(key, JOB_WAIT_S)
            say(f"N={len(instances)} notify job {seq}/{jobs}{' (warm-up)' if seq == 0 else ''}: "
                f"POST {round_trip * 1000:.0f} ms, {done}/{len(pool.conns)} client processes "
                f"complete")
            if seq == 0:
                cpu_before = [i.cpu_seconds() for i in instances]
                busy_before, wall_before = machine_busy_seconds(), time.perf_counter()
            else:
                sent[key] = t0
                run.post_ms.append(round_trip * 1000)
        run.instance_cpu_ms = [(i.cpu_seconds() - c0) / jobs * 1000
                               for i, c0 in zip(instances, cpu_before, strict=True)]
        run.machine_busy = (machine_busy_seconds() - busy_before) / \
            (time.perf_counter() - wall_before)
        times, _first = pool.report()
    finally:
        pool.stop()
    received, latencies, slowest = harness.arrivals(sent, times)
    run.received += received
    run.latencies_ms.extend(latencies)
    run.last_ms.extend(slowest)
    return run


@dataclass
class Configuration:
    """Everything measured with N instances."""

    instances: int
    board: Phase
    bare: Phase
    claims: Phase
    notify: Notify | None
    problems: list[str]


def log_in_all(url: str, emails: list[str]) -> dict[str, str]:
    """Every member logged in through nginx: email -> the Cookie header of its session."""
    def one(email: str) -> str:
        http = harness.log_in(url, email, PASSWORD, csrf=True)
        return "; ".join(f"{c.name}={c.value}" for c in http.cookies)

    return dict(zip(emails, harness.in_parallel(one, emails, LOGIN_WORKERS), strict=True))


def http_clients(emails: list[str], cookies: dict[str, str], tokens: dict[str, str],
                 instances: int) -> list[Client]:
    """The HTTP clients of `emails`, client i coming in on instance i mod `instances`."""
    sources = source_addresses(len(emails), instances)
    return [Client(index, dict(part.split("=", 1) for part in cookies[email].split("; ")),
                   tokens[email], source)
            for index, (email, source) in enumerate(zip(emails, sources, strict=True))]


def run_configuration(n: int, number: int, world: World, args: argparse.Namespace,
                      state: dict[str, Any], pool: HttpClients, watchdog: Watchdog
                      ) -> Configuration:
    """Start N instances and nginx; board, claims, notify; then N bare instances: board."""
    tmpdir = state["tmpdir"]
    say(f"N={n}: starting {n} app instance(s) and nginx")
    instances = [AppInstance(i, args.database_url, args.redis_url, tmpdir, watchdog)
                 for i in range(n)]
    nginx = None
    try:
        for instance in instances:
            instance.wait()
        nginx = Nginx([i.url for i in instances], watchdog)
        if "cookies" not in state:  # once: the cookies stay valid on every instance
            started = time.perf_counter()
            emails = [*world.board_emails, *world.claim_emails, world.notify_poster,
                      *world.notify_emails]
            state["cookies"] = log_in_all(nginx.url, emails)
            tokens = {}
            for email in [*world.board_emails, *world.claim_emails]:
                page = requests.get(f"{nginx.url}/jobs", timeout=REQUEST_TIMEOUT_S,
                                    headers={"Cookie": state["cookies"][email]})
                tokens[email] = harness.csrf_token(page.text)
            board = requests.get(f"{nginx.url}/jobs", timeout=REQUEST_TIMEOUT_S, headers={
                "Cookie": state["cookies"][world.board_emails[0]], "Accept": "application/json"})
            if len(board.json()["jobs"]) != BOARD_JOBS:
                raise RuntimeError(f"the board shows {len(board.json()['jobs'])} jobs, "
                                   f"not the {BOARD_JOBS} posted")
            state["page_bytes"] = len(requests.get(
                f"{nginx.url}/jobs", timeout=REQUEST_TIMEOUT_S,
                headers={"Cookie": state["cookies"][world.board_emails[0]]}).content)
            state["tokens"] = tokens
            state["login_seconds"] = time.perf_counter() - started
            say(f"{len(emails)} logins through nginx in {state['login_seconds']:.1f} s; "
                f"board page {state['page_bytes']} bytes")
        cookies, tokens = state["cookies"], state["tokens"]
        board_clients = http_clients(world.board_emails, cookies, tokens, n)
        warm = Phase("warm-up")
        hammer(warm, "board", f"{nginx.url}/jobs", board_clients, [], pool, instances, nginx,
               1.0)
        board = Phase("board")
        hammer(board, "board", f"{nginx.url}/jobs", board_clients, [], pool, instances,
               nginx, args.duration)

        claims = Phase("claims", ok=("200", "409:already_claimed"))
        job_ids = world.claim_jobs[number]
        rows = hammer(claims, "claims", nginx.url,
                      http_clients(world.claim_emails, cookies, tokens, n), job_ids, pool,
                      instances, nginx, args.duration)
        wins: dict[int, list[int]] = {}
        for client, outcome, _latency, _done, job_id in rows:
            if outcome == "200":
                wins.setdefault(job_id, []).append(world.claim_member_ids[client])
        claims.extra = {"won": sum(len(w) for w in wins.values()),
                        "raced": len({job for *_rest, job in rows})}
        problems = check_claims(args.database_url, job_ids, wins)
        say(f"N={n} claims: {claims.extra['won']} jobs won of {claims.extra['raced']} raced; "
            f"{len(problems)} problems")

        notify = None
        if n in args.notify_instances:
            notify = notify_phase(world, cookies, instances, nginx, watchdog, args.notify_jobs)
    finally:
        if nginx is not None:
            nginx.stop()
        for instance in instances:
            instance.stop()

    say(f"N={n}: starting {n} bare instance(s) and nginx")
    bares = [BareInstance(i, state["page_bytes"], watchdog) for i in range(n)]
    nginx = None
    try:
        nginx = Nginx([b.url for b in bares], watchdog)
        bare = Phase("bare")
        hammer(Phase("warm-up"), "board", f"{nginx.url}/jobs", board_clients, [], pool, bares,
               nginx, 1.0)
        hammer(bare, "board", f"{nginx.url}/jobs", board_clients, [], pool, bares, nginx,
               args.duration)
    finally:
        if nginx is not None:
            nginx.stop()
        for server in bares:
            server.stop()
    return Configuration(n, board, bare, claims, notify, problems)


# ----------------------------------------------------------------- report


def _ms_per(cpu_per_s: float, rps: float) -> str:
    return f"{cpu_per_s / rps * 1000:.1f} ms" if rps and rps > 0 else "n/a"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and not math.isnan(a) and not math.isnan(b) else "n/a"


def report(configurations: list[Configuration], world: World, args: argparse.Namespace,
           setup: dict[str, float]) -> None:
    """The results block: per N, then the scaling from each N to the next."""
    nproc = len(os.sched_getaffinity(0))
    lines = [
        "",
        "== scale_out: N app instances behind nginx (ip_hash) on PostgreSQL + Redis ==",
        f"machine   {harness.machine_line('Flask', 'Flask-SocketIO', 'psycopg')}",
        f"database  {args.database_url.split('@')[-1]} (PostgreSQL); message queue "
        f"{args.redis_url}",
        "instances `python wsgi.py` each (gevent's server, Socket.IO async_mode gevent: "
        "the embedded default), one process each",
        f"nginx     {NGINX} with docs/nginx.conf (worker_processes 1, ip_hash), "
        f"worker_connections at least {WORKER_CONNECTIONS}",
        f"load      on this machine, client i from its own 127.x.y.1 so ip_hash puts it "
        f"on instance i mod N; board: {args.concurrency} members GET /jobs ({BOARD_JOBS} open "
        f"jobs) for {args.duration:.0f} s; bare: the same against a bare Flask GET of the "
        f"same size; claims: {args.concurrency} members race through "
        f"{len(world.claim_jobs[0])} open hand-off jobs in order (up to {args.duration:.0f} "
        f"s); notify: {args.clients} Socket.IO clients, {args.notify_jobs} jobs "
        f"(+1 warm-up) posted through nginx",
        f"setup     world {setup['world']:.1f} s ({len(world.board_emails)} + "
        f"{len(world.claim_emails)} + {len(world.notify_emails)} members, 3 posters), "
        f"logins {setup['logins']:.1f} s",
    ]
    for c in configurations:
        lines += ["", f"-- N = {c.instances} instance(s) --",
                  f"{'':14}{'req/s':>8}{'reqs':>7}{'err':>5}{'p50 ms':>9}{'p99 ms':>9}"
                  f"{'max ms':>9}   CPU s/s: each instance | nginx | clients | rest | machine"]
        for phase in (c.board, c.bare, c.claims):
            each = " ".join(f"{v:.2f}" for v in phase.instance_cpu)
            rest = phase.machine_busy - sum(phase.instance_cpu) - phase.nginx_cpu - \
                phase.client_cpu
            lines.append(
                f"{phase.name:<14}{phase.rps:8.1f}{phase.requests:7d}{phase.errors:5d}"
                f"{phase.p(50):9.1f}{phase.p(99):9.1f}{max(phase.latencies_ms, default=0):9.1f}"
                f"   {each} | {phase.nginx_cpu:.2f} | {phase.client_cpu:.2f} | {rest:.2f} | "
                f"{phase.machine_busy:.2f}")
        lines.append(f"server CPU    per request: board "
                     f"{_ms_per(sum(c.board.instance_cpu), c.board.rps)}, bare "
                     f"{_ms_per(sum(c.bare.instance_cpu), c.bare.rps)}, claims "
                     f"{_ms_per(sum(c.claims.instance_cpu), c.claims.rps)} of instance CPU")
        won, raced = c.claims.extra.get("won", 0), c.claims.extra.get("raced", 0)
        lines.append(f"claims        {won} jobs won of {raced} raced "
                     f"({won / c.claims.elapsed if c.claims.elapsed else math.nan:.1f} won/s); "
                     f"answers {dict(c.claims.outcomes.most_common())}; "
                     f"one winner per job: {'yes' if not c.problems else 'NO'}")
        for problem in c.problems[:5]:
            lines.append(f"  ! {problem}")
        lines.append(f"board/bare    req/s {_ratio(c.board.rps, c.bare.rps)}, "
                     f"p99 {_ratio(c.board.p(99), c.bare.p(99))}")
        if c.notify is not None:
            n = c.notify
            lines.append(
                f"notify        p50 {percentile(n.latencies_ms, 50):.1f}  p99 "
                f"{percentile(n.latencies_ms, 99):.1f}  max {max(n.latencies_ms, default=0):.1f}"
                f"  last p50 {percentile(n.last_ms, 50):.1f}  POST rtt p50 "
                f"{percentile(n.post_ms, 50):.1f} ms; {n.received}/{n.expected} delivered; "
                f"instance CPU ms/job "
                f"{' '.join(f'{v:.0f}' for v in n.instance_cpu_ms)}; machine "
                f"{n.machine_busy:.2f} busy cores; {n.clients} clients in {n.processes} "
                f"processes, connected in {n.connect_seconds:.1f} s")
        else:
            lines.append("notify        not run for this N (--notify-instances)")

    lines += ["", "Summary (req/s, p99 ms; notify: ms from POST sent to job.posted received)",
              f"{'N':>2}{'board/s':>9}{'p99':>8}{'bare/s':>9}{'p99':>8}{'claims/s':>10}"
              f"{'won/s':>7}{'p99':>8}{'notify p50':>12}{'p99':>8}   busy cores board/claims"]
    for c in configurations:
        n = c.notify
        won = c.claims.extra.get("won", 0) / c.claims.elapsed if c.claims.elapsed else math.nan
        lines.append(
            f"{c.instances:>2}{c.board.rps:9.1f}{c.board.p(99):8.0f}{c.bare.rps:9.1f}"
            f"{c.bare.p(99):8.0f}{c.claims.rps:10.1f}{won:7.1f}{c.claims.p(99):8.0f}"
            f"{percentile(n.latencies_ms, 50) if n else math.nan:12.0f}"
            f"{percentile(n.latencies_ms, 99) if n else math.nan:8.0f}"
            f"   {c.board.machine_busy:.2f} / {c.claims.machine_busy:.2f}")
    lines.append("")
    for before, after in zip(configurations, configurations[1:], strict=False):
        step = f"N {before.instances} -> {after.instances}"
        parts = [f"board req/s {_ratio(after.board.rps, before.board.rps)}",
                 f"bare req/s {_ratio(after.bare.rps, before.bare.rps)}",
                 f"claims/s {_ratio(after.claims.rps, before.claims.rps)}",
                 f"board p99 {_ratio(after.board.p(99), before.board.p(99))}",
                 f"claims p99 {_ratio(after.claims.p(99), before.claims.p(99))}"]
        if before.notify and after.notify:
            parts.append("notify p99 " + _ratio(percentile(after.notify.latencies_ms, 99),
                                                 percentile(before.notify.latencies_ms, 99)))
        lines.append(f"scaling {step}: " + ", ".join(parts))
        for name, a, b in (("board", before.board, after.board),
                           ("claims", before.claims, after.claims)):
            cores = b.machine_busy - a.machine_busy
            lines.append(
                f"  {name}: busy cores {a.machine_busy:.2f} -> {b.machine_busy:.2f}, "
                + (f"+{(b.rps - a.rps) / cores:.0f} req/s per added busy core"
                   if cores > 0.2 else
                   f"busy cores grew only {cores:+.2f} (on {nproc} cores), req/s "
                   f"{b.rps - a.rps:+.1f}"))
    per_core = [f"N={c.instances} {c.board.rps / c.board.machine_busy:.0f}"
                for c in configurations if c.board.machine_busy > 0]
    lines += [
        f"board req/s per busy core (all processes: instances, nginx, PostgreSQL, Redis, "
        f"clients): {', '.join(per_core)}",
        f"This machine has nproc={nproc}: an instance is one process with one GIL, so at most "
        f"{nproc} instance(s) can run Python at once, and on {nproc} cores shared with nginx, "
        f"PostgreSQL and the load generator more instances cannot add cores: ideal N -> 2N "
        f"scaling (2.00x) needs a free core per added instance.",
        "(req/s: completed requests / (last completion - start); p50/p99/max: round trip of "
        "every request; CPU s/s: CPU seconds per wall second; machine: busy cores from "
        "/proc/stat, everything included; rest: machine minus the columns before it, i.e. "
        "PostgreSQL, Redis, the kernel and anything else running; claims/s: claim requests "
        "answered, won/s: jobs claimed)",
        ""]
    print("\n".join(lines), flush=True)


# ------------------------------------------------------------------- main


def _instance_list(parser: argparse.ArgumentParser, text: str, option: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        parser.error(f"{option} must be a comma-separated list of numbers, e.g. 1,2,4")
    if not values or not all(1 <= v <= MAX_INSTANCES for v in values):
        parser.error(f"{option} must list numbers of instances from 1 to {MAX_INSTANCES}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--instances", default="1,2,4",
                        help="numbers of app instances to measure, in order (default 1,2,4)")
    parser.add_argument("--duration", type=float, default=15.0,
                        help=f"seconds per board, bare and claims phase (1..{MAX_DURATION:.0f};"
                             " default 15)")
    parser.add_argument("--concurrency", type=int, default=32,
                        help=f"HTTP clients, one member each, for the board and the claims "
                             f"(1..{MAX_CONCURRENCY}; default 32)")
    parser.add_argument("--clients", type=int, default=1000,
                        help=f"connected Socket.IO clients for the notification phase "
                             f"(1..{MAX_CLIENTS}; default 1000)")
    parser.add_argument("--notify-jobs", type=int, default=5,
                        help="jobs posted per notification phase, +1 warm-up (default 5)")
    parser.add_argument("--notify-instances", default=None,
                        help="the N of --instances that run the notification phase "
                             "(default: all of them)")
    parser.add_argument("--claim-jobs", type=int, default=None,
                        help="open hand-off jobs raced per N (default 8 per second of "
                             "--duration)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS,
                        help=f"loopback Redis for the message queue (default {DEFAULT_REDIS})")
    harness.add_run_options(
        parser, smoke="1 and 2 instances, 4 HTTP clients, 10 sockets, 2 s phases",
        timeout="300 + per N (4 x duration + 0.15 s per socket client + 60)",
        database_url=f"a loopback PostgreSQL URL (default {DEFAULT_DATABASE})",
        smoke_timeout=SMOKE_TIMEOUT_S)
    args = parser.parse_args(argv)
    if args.smoke:
        args.instances, args.duration, args.concurrency = "1,2", 2.0, 4
        args.clients, args.notify_jobs, args.claim_jobs = 10, 2, 10
        args.notify_instances = None
    args.database_url = args.database_url or DEFAULT_DATABASE
    args.instances = _instance_list(parser, args.instances, "--instances")
    args.notify_instances = args.instances if args.notify_instances is None else \
        _instance_list(parser, args.notify_instances, "--notify-instances")
    if not 1 <= args.duration <= MAX_DURATION or not 1 <= args.concurrency <= MAX_CONCURRENCY \
            or not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.notify_jobs <= 100:
        parser.error(f"--duration must be 1..{MAX_DURATION:.0f}, --concurrency "
                     f"1..{MAX_CONCURRENCY}, --clients 1..{MAX_CLIENTS}, --notify-jobs 1..100")
    if args.claim_jobs is None:
        args.claim_jobs = max(10, int(8 * args.duration))
    if not 1 <= args.claim_jobs <= 5000:
        parser.error("--claim-jobs must be 1..5000")
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be PostgreSQL: several instances share it")
    redis = urlsplit(args.redis_url)
    if redis.scheme != "redis" or redis.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--redis-url must be redis://127.0.0.1:<port>/<db> (this machine)")
    if not Path(NGINX).exists():
        parser.error(f"{NGINX} is missing: install Debian's nginx-light")
    per_n = 4 * args.duration + 0.15 * args.clients + 60
    harness.check_run_options(parser, args, full_timeout=300 + len(args.instances) * per_n,
                              smoke_timeout=SMOKE_TIMEOUT_S)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "scale-bench") as watchdog:
        state: dict[str, Any] = {"tmpdir": watchdog.temp_dir()}
        say(f"building the world in {args.database_url.split('@')[-1]}")
        try:
            world = build_world(args.database_url, tag, concurrency=args.concurrency,
                                clients=args.clients, claim_jobs=args.claim_jobs,
                                configurations=len(args.instances))
        except Exception as error:  # most often: the database is missing
            say(f"could not build the world: {error}")
            say("create the database first: psql -h 127.0.0.1 -U postgres -c "
                "'CREATE DATABASE scalebench'")
            return 1
        say(f"world built in {world.seconds:.1f} s")
        pool = HttpClients(watchdog)
        configurations = []
        try:
            for number, n in enumerate(args.instances):
                configurations.append(run_configuration(n, number, world, args, state, pool,
                                                        watchdog))
        finally:
            pool.stop()
        report(configurations, world, args,
               {"world": world.seconds, "logins": state.get("login_seconds", math.nan)})
    ok = all(not c.problems and c.board.errors == 0 and c.bare.errors == 0
             and c.claims.errors == 0
             and (c.notify is None or c.notify.received == c.notify.expected)
             for c in configurations)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
