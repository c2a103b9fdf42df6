"""Booking contention: throughput and correctness when many members want the same week.

Why this exists: a shared machine's good week is exactly what everybody books
at once, and the promise is "no double booking, ever" (DESIGN rule 6: on
PostgreSQL a row lock plus an exclusion constraint, on SQLite a BEGIN
IMMEDIATE write transaction that checks and inserts).  This benchmark hammers
one machine's week over HTTP with N logged-in members for D seconds and then
asks the database itself whether any two slot-holding bookings overlap.  It
also says what that costs: requests/s and latency of the real booking request,
next to a bare Flask endpoint served the same way in the same run, so the
numbers mean something on whatever machine runs them.

What is measured: every client loops until the deadline: pick a random slot in
the target week (start on the machine's 30-minute grid, length 1 to 4 hours,
inside the week), POST it to /equipment/<id>/book with `Accept:
application/json` and the form's CSRF token, and time the round trip with
`time.perf_counter()`.  201 is a booking, 409 `slot_taken` a refused overlap,
422 a refused slot; anything else (5xx, another code, a transport error) is
an error.  Requests/s = completed requests / (last completion - start).
Afterwards ONE SQL query counts the pairs of slot-holding bookings of the
machine whose blocked ranges [starts_at, blocked_until) overlap (the buffer
included, which is what the app promises); it must be 0.  The same query also
counts the holding bookings, which must equal the 201s the clients saw.

How it is set up, and why:

* The world is built through the real services (create_cluster,
  publish_agreement, member invites, accept_agreement, list_machine) in a
  temporary SQLite file or the database given with `--database-url`
  (loopback only; tables are created with SQLModel.metadata.create_all if
  missing, which on PostgreSQL also creates btree_gist and the exclusion
  constraint; nothing is dropped; each run makes its own cluster and
  machine, and counts only that machine's bookings).  One member lists the
  machine (24/7 weekly hours, 30-minute steps, 1-4 h bookings, 30-minute
  buffer, hour and day rates, no approval needed); N other member
  businesses, each with its owner user who accepted the agreement, book it.
* The app is served as production serves it: the web line of docs/Procfile
  (gunicorn, docs/gunicorn.conf.py: one gevent worker loading wsgi.py), with
  CSRF on; the server's CPU is its worker's.  `--server threaded` serves it
  instead in a child process behind werkzeug's threaded server, as
  `tests.live.live_server` does (one thread per connection: with 50 clients
  about 1 ms more CPU per request than with 5, spent switching threads for the
  interpreter lock and SQLite's writer queue).  Each client logs in over HTTP
  like a browser (GET /login for the token, POST /login), then reads the
  booking form's CSRF token from GET /equipment/<id> with its session cookie.
* The baseline is a bare Flask app with one POST endpoint that parses the
  same two form fields and answers 201 with a small JSON body: no database,
  no session, no CSRF.  Same server kind (the same gunicorn line, loading
  it through `harness.baseline_from_environment`), same clients, same
  request bodies, same duration.
* Clients are `requests.Session`s (one keep-alive connection each), one
  thread per client, all in one client process by default
  (`--client-processes` spreads them over more).  Measured on 2 cores, the
  client's GIL does not cap the numbers: the bare baseline did 635-772 req/s
  from one client process (using 0.6-0.9 CPU s per s, under one core) and
  347-670 req/s from 2 or 4 (more runnable processes on the server's cores);
  the app's req/s did not change beyond noise.  The clients' CPU is printed
  next to the server's.  They share the machine's cores with the server;
  that cost is the same for both servers, so the ratio is the fairer number.

Everything stays on 127.0.0.1 and is bounded: at most MAX_CLIENTS clients, a
duration of at most MAX_DURATION s, a 30 s timeout per request, and a hard
overall timeout after which the run kills its child processes, removes its
temporary files and exits with status 3.

    .venv/bin/python bench/booking_contention.py --smoke
    .venv/bin/python bench/booking_contention.py
    .venv/bin/python bench/booking_contention.py --server threaded
    .venv/bin/python bench/booking_contention.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/benchscratch

Exit status: 0 when no two holding bookings overlap, the bookings in the
database match the 201s, and no request failed (5xx, unexpected status or
transport error) on either server; 1 otherwise (the numbers are printed
either way); 2 on bad arguments; 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from zoneinfo import ZoneInfo

import harness
import requests
from harness import Watchdog, percentile

MAX_CLIENTS = 500
MAX_DURATION = 600.0
PASSWORD = "bench-booking-contention"
TIMEZONE = "America/Toronto"  # the cluster's, so every member's wall clock
STEP_MINUTES = 30
MIN_STEPS, MAX_STEPS = 2, 8  # 1 to 4 hours
BUFFER_MINUTES = 30
REQUEST_TIMEOUT_S = 30.0
#: --smoke's hard timeout: two gunicorn workers load an app each (a few seconds on a
#: CI machine busy with the test suite) around two 3 s runs.
SMOKE_TIMEOUT_S = 90.0
LOGIN_WORKERS = 8
#: Issue 14: booking under 50 clients keeps this share of the bare endpoint's req/s ...
RPS_TARGET = 0.4
#: ... and this p99, on SQLite and PostgreSQL alike.
P99_TARGET_MS = 500.0
say = harness.Progress("booking_contention")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """The machine everybody wants, the week they want, and who wants it."""

    equipment_id: int
    member_emails: list[str]
    week_start: datetime  # local midnight, Monday, in TIMEZONE (aware)
    seconds: float


def target_week(now: datetime) -> datetime:
    """Monday 00:00 local of the first whole week starting tomorrow or later with no
    clock change in it (a skipped or repeated hour would make some slots 422s)."""
    zone = ZoneInfo(TIMEZONE)
    day = now.astimezone(zone).date() + timedelta(days=1)
    day += timedelta(days=(7 - day.weekday()) % 7)
    while True:
        start = datetime.combine(day, datetime.min.time(), tzinfo=zone)
        end = datetime.combine(day + timedelta(days=7), datetime.min.time(), tzinfo=zone)
        if start.utcoffset() == end.utcoffset() and \
                (end.astimezone(UTC) - start.astimezone(UTC)) == timedelta(days=7):
            return start
        day += timedelta(days=7)


def build_world(database_url: str, members: int, tag: str) -> World:
    """A cluster, its agreement, a lister with one machine and `members` bookers.

    Everything goes through the services, each committing its own transaction
    as it would in the app.  The lister is a business of its own, so every
    booking is a paid one between two members (fee split, ledger rows,
    notification to the owner), the common case.
    """
    from marketplace.db import utcnow
    from marketplace.equipment.listings import ListingDraft, WeeklyHours, list_machine

    started = time.perf_counter()
    emails = [f"lister.{tag}@bench.test"] + [f"b{i:04d}.{tag}@bench.test" for i in range(members)]
    with harness.world_session(database_url) as session:
        now = utcnow()
        owners = harness.found_cluster(
            session, tag, purpose="Share machines fairly.", timezone=TIMEZONE,
            members=[(email, "Lister Rentals" if index == 0 else f"Booker {index:04d} Lawns")
                     for index, email in enumerate(emails)],
            password=PASSWORD, now=now)
        machine = list_machine(session, owners[0], ListingDraft(
            name=f"Skid steer {tag}", kind="skid_steer", description="Contended.",
            locality="Toronto yard", base_lat=43.65, base_lng=-79.38,
            hour_rate_minor=4500, day_rate_minor=30000, min_minutes=MIN_STEPS * STEP_MINUTES,
            max_minutes=MAX_STEPS * STEP_MINUTES, buffer_minutes=BUFFER_MINUTES,
            granularity_minutes=STEP_MINUTES, timezone=TIMEZONE, needs_approval=False,
            cancel_cutoff_hours=24, cancel_fee_bp=0,
            hours=tuple(WeeklyHours(day, 0, 1440) for day in range(7))), now)
        assert machine.id is not None
    return World(machine.id, emails[1:], target_week(now), time.perf_counter() - started)


OVERLAP_SQL = """
SELECT
  (SELECT count(*) FROM booking
    WHERE equipment_id = :eq AND status IN ('requested', 'confirmed', 'checked_out')),
  count(a.id),
  coalesce(sum(CASE WHEN a.starts_at < b.ends_at AND b.starts_at < a.ends_at
                    THEN 1 ELSE 0 END), 0)
FROM booking a JOIN booking b
  ON b.equipment_id = a.equipment_id AND a.id < b.id
 AND a.starts_at < b.blocked_until AND b.starts_at < a.blocked_until
WHERE a.equipment_id = :eq
  AND a.status IN ('requested', 'confirmed', 'checked_out')
  AND b.status IN ('requested', 'confirmed', 'checked_out')
"""


def count_overlaps(database_url: str, equipment_id: int) -> tuple[int, int, int]:
    """(holding bookings, pairs overlapping incl. buffer, pairs overlapping the slots).

    One query, straight at the database, on a fresh connection after the
    server has stopped: the app's own code is not asked whether it kept its
    promise.  The status list is HOLDING_STATUSES (checked below).
    """
    from sqlalchemy import text

    from marketplace.db import make_engine
    from marketplace.equipment.models import HOLDING_STATUSES

    assert set(HOLDING_STATUSES) == {"requested", "confirmed", "checked_out"}
    engine = make_engine(database_url, lock_on_begin=False)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(OVERLAP_SQL), {"eq": equipment_id}).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1]), int(row[2])


# ------------------------------------------------------------- the servers


def _bare_app(spec: dict[str, Any]) -> Any:
    """One endpoint doing trivial work: parse the two times, answer 201 with JSON."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post("/equipment/<int:equipment_id>/book")
    def book(equipment_id: int) -> Any:
        starts = datetime.strptime(request.form["starts_at"], "%Y-%m-%dT%H:%M")
        ends = datetime.strptime(request.form["ends_at"], "%Y-%m-%dT%H:%M")
        return jsonify({"ok": True, "booking": {"equipment_id": equipment_id,
                                                "starts_at": starts.isoformat(),
                                                "ends_at": ends.isoformat()}}), 201

    return app


# ------------------------------------------------------------- the clients


@dataclass
class Login:
    """What one client needs to act as its user: its cookies and a form token."""

    cookies: dict[str, str]
    csrf_token: str


def log_in(base_url: str, email: str, equipment_id: int) -> Login:
    """Log in like a browser (CSRF on), then read the booking form's token."""
    http = harness.log_in(base_url, email, PASSWORD, csrf=True)
    page = http.get(f"{base_url}/equipment/{equipment_id}", timeout=REQUEST_TIMEOUT_S)
    if page.status_code != 200:
        raise RuntimeError(f"machine page for {email}: HTTP {page.status_code}")
    return Login({c.name: c.value or "" for c in http.cookies}, harness.csrf_token(page.text))


def random_slot(rng: random.Random, week_start: datetime) -> tuple[str, str]:
    """A random slot inside the week: start on the grid, 1-4 h long, as local strings."""
    steps = rng.randint(MIN_STEPS, MAX_STEPS)
    first = rng.randrange(0, 7 * 24 * 60 // STEP_MINUTES - steps + 1)
    starts = week_start + timedelta(minutes=first * STEP_MINUTES)
    ends = starts + timedelta(minutes=steps * STEP_MINUTES)
    return starts.strftime("%Y-%m-%dT%H:%M"), ends.strftime("%Y-%m-%dT%H:%M")


def _hammer(url: str, login: Login, week_start: datetime, start_at: float, deadline: float,
            seed: int, out: list[tuple[str, float, float]]) -> None:
    """One client: POST random slots until the deadline; (outcome, latency ms, done at)."""
    rng = random.Random(seed)
    http = requests.Session()
    http.cookies.update(login.cookies)
    http.headers["Accept"] = "application/json"
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    while time.time() < deadline:
        starts_at, ends_at = random_slot(rng, week_start)
        data = {"starts_at": starts_at, "ends_at": ends_at, "csrf_token": login.csrf_token}
        t0 = time.perf_counter()
        try:
            response = http.post(url, data=data, allow_redirects=False,
                                 timeout=REQUEST_TIMEOUT_S)
            latency = (time.perf_counter() - t0) * 1000
            outcome = str(response.status_code)
            if response.status_code in (409, 422):
                try:
                    outcome += ":" + str(response.json()["error"]["code"])
                except (ValueError, KeyError, TypeError):
                    outcome += ":?"
        except requests.RequestException as error:
            latency = (time.perf_counter() - t0) * 1000
            outcome = f"transport:{type(error).__name__}"
        out.append((outcome, latency, time.time()))


def _clients(command: tuple[Any, ...]) -> list[tuple[Callable[..., None], tuple[Any, ...]]]:
    """The clients one "run" command asks a client process for: one `_hammer` each."""
    _kind, url, logins, week_start, start_at, deadline, seed = command
    return [(_hammer, (url, login, week_start, start_at, deadline, seed + index))
            for index, login in enumerate(logins)]


def _client_worker(conn: Connection) -> None:
    """Child process: run its share of the clients as threads whenever told to."""
    harness.serve_client_commands(conn, _clients)


class ClientPool:
    """`processes` client processes, each running its share of the clients as threads."""

    def __init__(self, processes: int, watchdog: Watchdog) -> None:
        self.conns: list[Connection] = []
        self.processes: list[harness.Process] = []
        for number in range(processes):
            parent_conn, process = watchdog.spawn(f"clients-{number}", _client_worker)
            self.conns.append(parent_conn)
            self.processes.append(process)

    def run(self, url: str, logins: list[Login], week_start: datetime, duration: float
            ) -> tuple[list[tuple[str, float, float]], float, list[float]]:
        """Every request of every client, the common start time, CPU s per process."""
        start_at = time.time() + 1.0  # time for every thread to be waiting at the line
        deadline = start_at + duration
        shares = len(self.conns)
        for number, conn in enumerate(self.conns):
            conn.send(("run", url, logins[number::shares], week_start, start_at, deadline,
                       number * 100_003 + secrets.randbelow(1_000_000)))
        results: list[tuple[str, float, float]] = []
        cpu: list[float] = []
        for conn in self.conns:
            if not conn.poll(duration + REQUEST_TIMEOUT_S + 30):
                raise RuntimeError("a client process did not report")
            _kind, rows, seconds = conn.recv()
            results.extend(rows)
            cpu.append(seconds)
        return results, start_at, cpu

    def stop(self) -> None:
        harness.stop_children(self.conns, self.processes, ("stop",))


# --------------------------------------------------------------- the runs


@dataclass
class Run:
    """What one server did under the hammer."""

    name: str
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    by_outcome: dict[str, list[float]] = field(default_factory=dict)
    last_201: float = math.nan  # seconds after the start: when the week was (nearly) full
    elapsed: float = math.nan
    server_cpu: float = math.nan
    client_cpu: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed > 0 else math.nan

    def count(self, prefix: str) -> int:
        return sum(n for outcome, n in self.outcomes.items()
                   if outcome == prefix or outcome.startswith(prefix + ":"))

    @property
    def errors(self) -> int:
        """Anything that is not a 201, a 409 slot_taken or a 422."""
        return self.requests - self.count("201") - self.outcomes["409:slot_taken"] - \
            self.count("422")


def hammer(name: str, server: harness.Server, pool: ClientPool, path: str,
           logins: list[Login], week_start: datetime, duration: float) -> Run:
    """Run every client against one server for `duration` seconds."""
    run = Run(name)
    cpu_before = server.cpu_seconds()
    say(f"{name}: {len(logins)} clients for {duration:.0f} s")
    rows, start_at, run.client_cpu = pool.run(server.url + path, logins, week_start, duration)
    run.server_cpu = server.cpu_seconds() - cpu_before
    for outcome, latency, done in rows:
        run.outcomes[outcome] += 1
        run.latencies_ms.append(latency)
        run.by_outcome.setdefault(outcome, []).append(latency)
        if outcome == "201":
            run.last_201 = max(done - start_at, 0.0 if math.isnan(run.last_201) else run.last_201)
    run.elapsed = max((done for _o, _l, done in rows), default=start_at) - start_at
    say(f"{name}: {run.requests} requests, {dict(run.outcomes.most_common())}")
    return run


def run_app(world: World, database_url: str, upload_dir: str, pool: ClientPool,
            watchdog: Watchdog, duration: float, kind: str) -> tuple[Run, list[Login], float]:
    """Our app: log every member in over HTTP, then hammer the machine's week."""
    server = harness.serve_app(kind, "app", database_url, watchdog, UPLOAD_DIR=upload_dir)
    try:
        started = time.perf_counter()
        logins = harness.in_parallel(lambda email: log_in(server.url, email, world.equipment_id),
                              world.member_emails, LOGIN_WORKERS)
        login_seconds = time.perf_counter() - started
        say(f"{len(logins)} logins (and booking-form tokens) in {login_seconds:.1f} s")
        run = hammer("app", server, pool, f"/equipment/{world.equipment_id}/book", logins,
                     world.week_start, duration)
    finally:
        server.stop()
    return run, logins, login_seconds


def run_bare(world: World, logins: list[Login], pool: ClientPool, watchdog: Watchdog,
             duration: float, kind: str) -> Run:
    """The baseline: a bare Flask endpoint, same server kind, same clients and bodies."""
    server = harness.serve_baseline(kind, "bare", _bare_app, {}, watchdog)
    try:
        path = f"/equipment/{world.equipment_id}/book"
        warm = requests.post(server.url + path, data={"starts_at": "2030-01-07T08:00",
                                                      "ends_at": "2030-01-07T09:00"}, timeout=10)
        if warm.status_code != 201:
            raise RuntimeError(f"bare warm-up failed: HTTP {warm.status_code}")
        return hammer("bare", server, pool, path, logins, world.week_start, duration)
    finally:
        server.stop()


# ----------------------------------------------------------------- report

def report(app: Run, bare: Run, *, world: World, database: str, server: str, clients: int,
           processes: int, duration: float, counts: tuple[int, int, int],
           setup: dict[str, float]) -> None:
    """The results block: the numbers someone quotes, with what they were measured on."""
    holding, overlaps, slot_overlaps = counts

    def row(run: Run) -> str:
        return (f"{run.name:<6}{run.rps:9.1f}{run.requests:9d}{run.count('201'):7d}"
                f"{run.outcomes['409:slot_taken']:7d}{run.count('422'):6d}{run.errors:6d}"
                f"{percentile(run.latencies_ms, 50):9.1f}{percentile(run.latencies_ms, 99):9.1f}"
                f"{max(run.latencies_ms, default=math.nan):9.1f}"
                f"{run.server_cpu / run.elapsed:8.2f}"
                f"{sum(run.client_cpu) / run.elapsed:8.2f}")

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.3f}" if b and not math.isnan(b) else "n/a"

    def met(held: bool) -> str:
        return "met" if held else "NOT met"

    def split(run: Run) -> str:
        return ", ".join(f"{outcome} p50 {percentile(values, 50):.1f} / p99 "
                         f"{percentile(values, 99):.1f} ms"
                         for outcome, values in sorted(run.by_outcome.items()))

    others = Counter({k: v for k, v in app.outcomes.items()
                      if not (k == "201" or k == "409:slot_taken" or k.startswith("422"))})
    week_end = world.week_start + timedelta(days=7)
    print(f"""
== booking_contention: {clients} clients booking one machine's week over HTTP ==
machine   {harness.machine_line("Flask", "SQLAlchemy", "gunicorn", "gevent")}
database  {database}
server    {harness.served(server)}, CSRF on
clients   {clients} logged-in members (one requests.Session thread each) in {processes} \
client process(es); {duration:.0f} s per server
week      {world.week_start:%a %Y-%m-%d} to {week_end:%a %Y-%m-%d} {TIMEZONE}, \
{STEP_MINUTES}-min grid, {MIN_STEPS * STEP_MINUTES // 60}-{MAX_STEPS * STEP_MINUTES // 60} h \
slots, {BUFFER_MINUTES}-min buffer
setup     world {setup['world']:.1f} s, logins {setup['logins']:.1f} s

         req/s     reqs    201    409   422   err   p50 ms   p99 ms   max ms  srvCPU  cliCPU
{row(app)}
{row(bare)}
ratio app/bare: req/s {ratio(app.rps, bare.rps)}  \
p99 {ratio(percentile(app.latencies_ms, 99), percentile(bare.latencies_ms, 99))}
targets   req/s >= {RPS_TARGET} x bare: {met(app.rps >= RPS_TARGET * bare.rps)}; app p99 <= \
{P99_TARGET_MS:.0f} ms: {met(percentile(app.latencies_ms, 99) <= P99_TARGET_MS)}; \
0 overlaps: {met(overlaps == 0)}
app latency by answer: {split(app)}; last 201 at {app.last_201:.1f} s
app errors: {dict(others) or "none"}
overlaps  {overlaps} pairs of holding bookings overlapping (buffer included; \
{slot_overlaps} overlapping the slots themselves); must be 0
bookings  {holding} holding bookings in the database, {app.count("201")} answered 201
(req/s: completed requests / (last completion - start); p50/p99/max: POST round trip over
 every request; srvCPU/cliCPU: CPU seconds per wall second of the server process and of all
 client processes together; bare 201s are not bookings)
""", flush=True)


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=30.0,
                        help=f"seconds of hammering per server (1..{MAX_DURATION:.0f}; "
                             "default 30)")
    parser.add_argument("--clients", type=int, default=50,
                        help=f"concurrent logged-in clients, one member each "
                             f"(1..{MAX_CLIENTS}; default 50)")
    parser.add_argument("--client-processes", type=int, default=1,
                        help="processes the client threads are spread over (default 1)")
    harness.add_server_option(parser)
    harness.add_run_options(
        parser, smoke="5 clients, 3 s", smoke_timeout=SMOKE_TIMEOUT_S,
        timeout="120 + 2 x duration + 1 s per client",
        database_url="a loopback database URL, e.g. a scratch PostgreSQL database "
                     "(default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.clients, args.duration = 5, 3.0
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--clients must be 1..{MAX_CLIENTS} and --duration 1..{MAX_DURATION:.0f}")
    if not 1 <= args.client_processes <= 32:
        parser.error("--client-processes must be 1..32")
    args.client_processes = min(args.client_processes, args.clients)
    harness.check_run_options(parser, args, smoke_timeout=SMOKE_TIMEOUT_S,
                              full_timeout=120 + 2 * args.duration + args.clients)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "booking-bench") as watchdog:
        tmpdir = watchdog.temp_dir()  # the app's uploads, and the SQLite file if any
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        pool = None
        try:
            say(f"building a machine and {args.clients} booking members through the services")
            world = build_world(database_url, args.clients, tag)
            say(f"world built in {world.seconds:.1f} s; machine {world.equipment_id}, week of "
                f"{world.week_start:%Y-%m-%d}")
            pool = ClientPool(args.client_processes, watchdog)
            app, logins, login_seconds = run_app(world, database_url, f"{tmpdir}/uploads", pool,
                                                 watchdog, args.duration, args.server)
            counts = count_overlaps(database_url, world.equipment_id)
            bare = run_bare(world, logins, pool, watchdog, args.duration, args.server)
            report(app, bare, world=world, database=database, server=args.server,
                   clients=args.clients,
                   processes=args.client_processes, duration=args.duration, counts=counts,
                   setup={"world": world.seconds, "logins": login_seconds})
        finally:
            if pool is not None:
                pool.stop()
    holding, overlaps, _slot_overlaps = counts
    correct = overlaps == 0 and holding == app.count("201")
    return 0 if correct and app.errors == 0 and bare.errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
