"""Push fan-out: what Web Push adds to posting a job, and how fast the pushes go out.

Why this exists: since push delivery rows are written in the posting
transaction (`events._write_pending` -> `delivery.planner.plan_deliveries`),
a job posted to 1 000 eligible members who all subscribed writes 1 000 more
rows in that transaction.  (In production that transaction now runs after the
post's commit, in the app's fan-out runner, marketplace/fanout.py; this bench
runs it in the request, FANOUT_IN_BACKGROUND off, so each post's writes can be
timed.)  Sending is off the request path (the scheduler's `send_due_pushes`,
every second).  This benchmark says, in one run on one cluster:

1. what the posting request costs with push on (every member has one push
   subscription) against push off (the same members, their subscriptions
   removed): p50/p90/p99 of the POST round trip and the ratio on/off (the
   target is at most 1.1 at p99), and where the server's time goes: the
   request's CPU, the commit-time writes, the planner and each of its
   statements, the DB-API commit, the garbage collector, the statements and
   rows written per post;
2. how long the pushes take: from the POST returning to the first and the
   last push of that job accepted (VAPID checked, body decrypted) by the
   local push service, with the app's real worker running as the scheduler
   runs it, and the pushes per second it sends.

How it is set up, and why:

* The world is built through the real services in a temporary SQLite file
  or the loopback database given with `--database-url` (tables created if
  missing, nothing dropped, a uniquely named cluster per run): a cluster,
  its agreement, a poster and N members eligible for the job (as in
  `notify_latency.py`), each with one push subscription made with
  `delivery.subscriptions.subscribe` on `tests/push_service.FakePushService`
  (a fresh browser key pair and auth secret each).  The VAPID key is
  generated per run; the app gets it as VAPID_PRIVATE_KEY and the push
  service only accepts pushes signed with it.  PUSH_SERVICE_HOSTS is
  ["127.0.0.1"], the only way a plain-http endpoint is allowed.  The
  world's own commits skip the disk flush (`_without_fsync`); nothing timed
  runs on that engine.
* The app runs in its own process (`harness.ServerProcess`, werkzeug's
  threaded server, CSRF off); the poster logs in
  over HTTP and POSTs the real /jobs/new form.  A WSGI wrapper in that
  process counts every SQL statement with SQLAlchemy cursor events, times
  the request (wall and thread CPU), `_write_pending`, `plan_deliveries`,
  the DB-API commit and the Socket.IO publisher (wrapped, not edited) and
  the cyclic garbage collector (`gc.callbacks`); the bench reads the
  counters over HTTP before and after each POST.
* The worker runs in a process of its own, as a `flask scheduler` process
  would: `worker.send_due` with the app's channel (`runner.push_channel`),
  the real pywebpush sender and renderer, called on a fixed 1 s grid; a call
  that overruns skips the missed ticks, as APScheduler does with
  max_instances=1.  The push service runs in threads of this process.
* Push on and push off are the same members on the same database: before
  each post the bench sets or clears `removed_at` on every subscription of
  the run (what turning a device off does), so the planner finds devices or
  finds none.  The modes alternate ON OFF OFF ON ON OFF ..., so drift of the
  machine cancels and each mode follows each mode equally often.  Before
  every post the bench waits until the worker has recorded every answer of
  the previous one (no pending or sending row left), then SETTLE_S plus a
  random 0 to 1 s (so POSTs fall anywhere in the worker's 1 s tick): each
  POST runs on an idle server, the worker only polling.  One warm-up post
  per mode is not counted.

Clocks: the POST's end, the push service's receipt stamps and the worker's
round stamps are all `time.monotonic()` (CLOCK_MONOTONIC on Linux, one clock
for every process on the machine; checked for the worker process).

    .venv/bin/python bench/push_fanout.py --smoke
    .venv/bin/python bench/push_fanout.py                      # 1 000 members, 20 posts per mode
    .venv/bin/python bench/push_fanout.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/pushbench

Exit status: 0 when every push of every push-on post arrived, none was
refused or failed and no push-off post planned a delivery; 1 otherwise (the
numbers are printed either way); 2 on bad arguments; 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import re
import secrets
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import harness
import requests
from harness import ServerProcess, Watchdog, percentile

ROOT = Path(__file__).resolve().parents[1]  # tests/push_service.py lives there
MAX_MEMBERS = 5000
MAX_POSTS = 200
PASSWORD = "bench-push-fanout"
TICK_S = 1.0  # the scheduler's interval for delivery.send_push
SETTLE_S = 0.2  # quiet time before every POST, after the worker went idle ...
JITTER_S = TICK_S  # ... plus up to this much at random, so POSTs land anywhere in a tick
POST_TIMEOUT_S = 60.0
STATS_PATH = "/__bench/stats"
_FROM = re.compile(r"\sFROM\s+(\S+)")
#: the planner's statements, as the server's counters name them ("kind first-table")
PLANNER_STATEMENTS = ("SELECT pushsubscription", "SELECT channelpreference",
                      "SELECT quiethours", "INSERT delivery")
SMOKE_TIMEOUT_S = 60.0
say = harness.Progress("push_fanout")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    poster_email: str
    subscription_ids: list[int]
    tokens: set[str]
    seconds: float
    subscribe_seconds: float


def build_world(database_url: str, members: int, tag: str, push: Any) -> World:
    """A cluster, a poster and `members` eligible partners, each with one push device.

    Eligible as `notify_latency.build_world` makes them (trade, circle,
    insurance, agreement accepted); each device is a new FakePushService
    subscriber stored with the app's own `subscribe`.
    """
    from marketplace.db import utcnow
    from marketplace.delivery.subscriptions import subscribe

    started = time.perf_counter()
    emails = [f"poster.{tag}@bench.test"] + [f"m{i:04d}.{tag}@bench.test" for i in range(members)]
    with harness.world_session(database_url) as session:
        _without_fsync(session.get_bind())
        now = utcnow()
        make_eligible = harness.eligible_mower(session, now.date())

        owners = harness.found_cluster(
            session, tag, purpose="Share overflow work fairly.", timezone="America/Toronto",
            members=[(email, "Poster Lawns" if index == 0 else f"Member {index:04d} Mowing")
                     for index, email in enumerate(emails)],
            password=PASSWORD, now=now, prepare=make_eligible)
        built = time.perf_counter()
        subscription_ids, tokens = [], set()
        for owner in owners[1:]:
            browser = push.subscriber()
            row = subscribe(session, owner, browser.endpoint, browser.p256dh, browser.auth,
                            "push_fanout bench", utcnow(), ("127.0.0.1",))
            assert row.id is not None
            subscription_ids.append(row.id)
            tokens.add(browser.token)
    return World(emails[0], subscription_ids, tokens,
                 built - started, time.perf_counter() - built)


def _without_fsync(engine: Any) -> None:
    """Let the world's own commits skip the disk flush (SQLite `synchronous=OFF`,
    PostgreSQL `synchronous_commit=off`, per connection as it is checked out).

    Building 1 000 members through the services commits about 5 000 times, and on a
    busy machine each flush costs tens of milliseconds; none of those commits is
    measured.  The app and the worker use their own engines, with the defaults.
    """
    from sqlalchemy import event

    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "checkout")
    def _relax(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF" if sqlite else "SET synchronous_commit TO off")
        cursor.close()
        if not sqlite:
            dbapi_connection.commit()  # SET is transactional in PostgreSQL


# ------------------------------------------------------- the server and worker


def _counting_app(spec: dict[str, Any]) -> Any:
    """Our app (server child) plus cumulative counters: each request's wall and
    thread CPU time; SQL statements by kind, their cursor time by statement
    ("kind first-table") and the rows they wrote by table; time in
    `_write_pending`, `plan_deliveries`, the DB-API commit, the publisher and
    the garbage collector (and how many collections of each generation).

    GET STATS_PATH answers the counters as JSON without touching the app (with
    `?objects`, also how many objects the collector tracks).
    """
    from sqlalchemy import event

    from marketplace import events
    from marketplace.delivery import planner
    from marketplace.scope import EXTENSION as SCOPE

    app = harness.marketplace_app(spec)
    gc.freeze()  # as wsgi.py does in production: start-up objects stay out of collections
    counts: defaultdict[str, float] = defaultdict(float)
    lock = threading.Lock()
    local = threading.local()

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    counts[f"ms:{name}"] += (time.perf_counter() - started) * 1000
        return wrapper

    # Each is looked up as an attribute at call time, so wrapping it times the real
    # code without editing it: the rows written at commit (notifications, sequences,
    # and the planner's deliveries), the planner alone, the DB-API commit (SQLite's
    # fsync of the WAL, PostgreSQL's of its WAL) and the Socket.IO publishing after it.
    events._write_pending = timed("write_pending", events._write_pending)  # type: ignore[attr-defined]
    planner.plan_deliveries = timed("plan_deliveries", planner.plan_deliveries)
    for name in dir(planner):  # its per-channel parts, if it has them (_plan_push, ...)
        if name.startswith("_plan_") and callable(getattr(planner, name)):
            setattr(planner, name, timed(f"plan:{name[6:]}", getattr(planner, name)))
    scope = app.extensions[SCOPE]  # the app's publisher lives on the app (marketplace/scope.py)
    publisher = scope.get(events.PUBLISHER)
    if publisher is not None:
        scope.provide(events.PUBLISHER, timed("publish", publisher))
    engine = app.extensions["engine"]
    engine.dialect.do_commit = timed("db_commit", engine.dialect.do_commit)  # type: ignore[method-assign]
    # SQLite's pool is NullPool: every request closes its connection, and closing the
    # last connection to the file checkpoints the WAL into it.
    engine.dialect.do_close = timed("db_close", engine.dialect.do_close)  # type: ignore[method-assign]
    gc_started: list[float] = []

    def _gc(phase: str, info: dict[str, Any]) -> None:
        """Time spent in Python's cyclic collector, which runs in whichever thread
        allocated last: a fan-out allocates many objects, so it triggers some."""
        if phase == "start":
            gc_started[:] = [time.perf_counter()]
        elif gc_started:
            with lock:
                counts["ms:gc"] += (time.perf_counter() - gc_started[0]) * 1000
                counts[f"gc:gen{info['generation']}"] += 1

    gc.callbacks.append(_gc)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_args: Any) -> None:
        local.started = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
               executemany: bool) -> None:
        elapsed = (time.perf_counter() - getattr(local, "started", time.perf_counter())) * 1000
        words = statement.lstrip().split(None, 3)
        kind = words[0].upper() if words else "?"
        table, rows = None, 0
        if kind == "INSERT" and len(words) > 2:
            table = words[2]
            # psycopg's rowcount is right, also for an insertmanyvalues batch; sqlite3
            # says 0 for a batch with RETURNING, so count its VALUES groups instead.
            values = statement.split(" VALUES ", 1)[1] if " VALUES " in statement else ""
            rows = cursor.rowcount if cursor.rowcount > 0 else values.count("), (") + 1
        elif kind == "UPDATE" and len(words) > 1:
            table, rows = words[1], max(cursor.rowcount, 0)
        elif kind == "DELETE" and len(words) > 2:
            table, rows = words[2], max(cursor.rowcount, 0)
        elif kind == "SELECT" and (found := _FROM.search(statement)):
            table = found.group(1)
        with lock:
            counts[f"n:{kind}"] += 1
            counts["ms:sql"] += elapsed
            if table is not None:
                table = table.strip(chr(34))
                counts[f"sql:{kind} {table}"] += elapsed
                if kind != "SELECT":
                    counts[f"rows:{table}"] += rows

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATS_PATH:
            objects = len(gc.get_objects()) if "objects" in environ.get("QUERY_STRING", "") else 0
            with lock:
                body = json.dumps({**counts, "objects": objects}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            return app(environ, start_response)  # Flask's answer is complete when returned
        finally:
            with lock:
                counts["ms:request"] += (time.perf_counter() - started) * 1000
                counts["ms:request_cpu"] += (time.thread_time() - cpu) * 1000

    return wsgi


def _worker(spec: dict[str, Any], conn: Connection) -> None:
    """Child process: the scheduler's push task on a TICK_S grid until told to stop.

    Each call is what `runner.send_due_pushes` does: `worker.send_due` with the
    app's channel, inside an app context (the renderer needs Flask-Babel), on a
    fresh session.  Calls that claimed something are reported as
    ("round", start, end, claimed, sent, retried, gone, failed).
    """
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ["SECRET_KEY"] = spec["SECRET_KEY"]
    from marketplace import create_app
    from marketplace.db import session_scope, utcnow
    from marketplace.delivery.runner import push_channel, render_push
    from marketplace.delivery.worker import send_due

    app = create_app(spec)
    channel = push_channel(app)
    if channel is None:
        conn.send(("error", "the app's push channel is off"))
        return
    engine = app.extensions["engine"]
    conn.send(("ready", os.getpid(), time.monotonic()))
    next_tick = time.monotonic()
    while True:
        started = time.monotonic()
        try:
            with app.app_context(), session_scope(engine) as session:
                done = send_due(session, utcnow(), channel.sender, render_push,
                                channel.settings, clock=utcnow)
            if done:
                conn.send(("round", started, time.monotonic(), done.claimed, done.sent,
                           done.retried, done.gone, done.failed))
        except Exception as error:  # the scheduler logs and goes on; so do we, and tell
            conn.send(("error", repr(error)))
        next_tick += TICK_S
        now = time.monotonic()
        if next_tick < now:  # overran: the missed ticks are skipped (max_instances=1)
            next_tick += math.ceil((now - next_tick) / TICK_S) * TICK_S
        if conn.poll(max(0.0, next_tick - time.monotonic())):
            break
    engine.dispose()


class Worker:
    """The worker child, and what it reported."""

    def __init__(self, spec: dict[str, Any], watchdog: Watchdog) -> None:
        started = time.monotonic()
        self.conn, self.process = watchdog.spawn("worker", _worker, (spec,))
        self.rounds: list[tuple[float, float, int, int, int, int, int]] = []
        self.errors: list[str] = []
        if not self.conn.poll(harness.SERVER_START_S):
            self.stop()
            raise RuntimeError("the worker did not start")
        message = self.conn.recv()
        if message[0] != "ready":
            self.stop()
            raise RuntimeError(f"the worker failed: {message[1]}")
        if not started <= message[2] <= time.monotonic():
            self.stop()
            raise RuntimeError("time.monotonic differs between processes on this platform")
        self.pid = message[1]

    def drain(self) -> None:
        while self.conn.poll():
            message = self.conn.recv()
            if message[0] == "round":
                self.rounds.append(tuple(message[1:]))
            else:
                self.errors.append(str(message[1]))

    def cpu_seconds(self) -> float:
        return harness.cpu_seconds(self.pid)

    def stop(self) -> None:
        harness.stop_children([self.conn], [self.process], "stop")


# --------------------------------------------------------------- the runs


@dataclass
class Post:
    """One counted post."""

    mode: str  # "on" or "off"
    job_id: int
    post_ms: float
    stats: dict[str, float]
    pushes: int = 0
    first_ms: float = math.nan  # POST returned -> first push of the job received
    last_ms: float = math.nan  # ... -> last push received
    rate: float = math.nan  # pushes / (last - first receipt)
    round_ms: float = math.nan  # the worker's calls that sent this job, wall
    worker_cpu_ms: float = math.nan


@dataclass
class Results:
    members: int
    posts: list[Post] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    refused: int = 0
    worker_outcomes: Counter[str] = field(default_factory=Counter)
    login_seconds: float = 0.0
    heap_objects: int = 0
    broken: bool = False
    load: tuple[float, float] = (math.nan, math.nan)

    def of(self, mode: str) -> list[Post]:
        return [p for p in self.posts if p.mode == mode]


class Broken(RuntimeError):
    """Something a run must not go on after: its pushes did not all arrive."""


class Bench:
    """The run: the server, the worker, the poster's HTTP session, the database."""

    def __init__(self, world: World, config: dict[str, Any], push: Any, watchdog: Watchdog,
                 database_url: str) -> None:
        from marketplace.db import make_engine

        self.world, self.push = world, push
        self.writer = make_engine(database_url)
        self.reader = make_engine(database_url, lock_on_begin=False)
        self.server = ServerProcess("app", _counting_app, config, watchdog)
        self.worker = Worker(config, watchdog)
        say(f"worker running (pid {self.worker.pid}), send_due every {TICK_S:.0f} s")
        self.http = requests.Session()
        started = time.perf_counter()
        poster = harness.log_in(self.server.url, world.poster_email, PASSWORD, csrf=False)
        self.cookie = "; ".join(f"{c.name}={c.value}" for c in poster.cookies)
        self.login_seconds = time.perf_counter() - started

    def stop(self) -> None:
        self.worker.stop()
        self.server.stop()
        self.writer.dispose()
        self.reader.dispose()

    # -- the database, from outside the app

    def set_push(self, on: bool) -> None:
        """Every subscription of the run on (removed_at NULL) or off (turned off)."""
        from sqlalchemy import update
        from sqlmodel import Session, col

        from marketplace.db import utcnow
        from marketplace.delivery.models import PushSubscription

        with Session(self.writer) as session:
            session.execute(update(PushSubscription)
                            .where(col(PushSubscription.id).in_(self.world.subscription_ids))
                            .values(removed_at=None if on else utcnow(),
                                    removed_reason=None if on else "turned off"))
            session.commit()

    def open_deliveries(self) -> int:
        """Rows of this run's devices the worker has not finished (pending or sending)."""
        from sqlmodel import Session, col, func, select

        from marketplace.delivery.models import Delivery, DeliveryStatus

        ids = self.world.subscription_ids
        with Session(self.reader) as session:
            return session.exec(select(func.count()).select_from(Delivery).where(
                col(Delivery.subscription_id).between(min(ids), max(ids)),
                col(Delivery.status).in_([DeliveryStatus.PENDING.value,
                                          DeliveryStatus.SENDING.value]))).one()

    def wait_pushes(self, count: int, timeout: float) -> str | None:
        """Wait until the push service accepted `count` pushes in all; why not, if not.

        Gives up at once when the service refused one or the worker reported an
        error: a refused push is retried only after 30 s, so waiting would only
        turn a clear failure into a timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.push.wait_for(count, timeout=0.2)
                return None
            except AssertionError:
                self.worker.drain()
                refused = self.push.rejected
                if refused or self.worker.errors or time.monotonic() > deadline:
                    return (f"{len(self.push.received)} of {count} pushes accepted in all, "
                            f"{len(refused)} refused{f' (first: {refused[0]})' if refused else ''}"
                            f", worker errors: {self.worker.errors[:2] or 'none'}")

    def push_rows(self, job_id: int) -> int:
        """The push delivery rows planned for the notifications of job `job_id`."""
        from sqlmodel import Session, col, func, select

        from marketplace.delivery.models import Channel, Delivery
        from marketplace.realtime.models import Notification

        with Session(self.reader) as session:
            return session.exec(select(func.count()).select_from(Delivery).join(
                Notification, col(Notification.id) == col(Delivery.notification_id)).where(
                col(Notification.link) == f"/jobs/{job_id}",
                col(Delivery.channel) == Channel.PUSH.value)).one()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.open_deliveries():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # -- the app

    def stats(self, query: str = "") -> dict[str, float]:
        response = self.http.get(f"{self.server.url}{STATS_PATH}?{query}", timeout=10)
        response.raise_for_status()
        return response.json()

    def post_job(self, seq: int) -> int:
        from marketplace.db import utcnow

        today = utcnow().date().isoformat()
        response = self.http.post(f"{self.server.url}/jobs/new", headers={"Cookie": self.cookie},
                                  data=harness.job_form(f"Bench job {seq}", today),
                                  allow_redirects=False, timeout=POST_TIMEOUT_S)
        if response.status_code != 302:
            raise RuntimeError(f"posting a job failed: HTTP {response.status_code}")
        return int(response.headers["Location"].rsplit("/", 1)[1])

    # -- one post

    def one(self, seq: int, mode: str, results: Results) -> Post:
        on = mode == "on"
        self.set_push(on)
        if not self.wait_idle(POST_TIMEOUT_S):
            raise Broken(f"post {seq}: the worker did not finish the previous post within "
                         f"{POST_TIMEOUT_S:.0f} s")
        time.sleep(SETTLE_S + random.uniform(0, JITTER_S))
        self.worker.drain()
        received_before = len(self.push.received)
        worker_cpu = self.worker.cpu_seconds()
        before = self.stats()
        t0 = time.monotonic()
        job_id = self.post_job(seq)
        t1 = time.monotonic()
        after = self.stats()
        delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
        post = Post(mode, job_id, (t1 - t0) * 1000, delta)
        planned = self.push_rows(job_id)
        expected = len(self.world.subscription_ids) if on else 0
        if planned != expected:
            results.problems.append(f"post {seq} (push {mode}): {planned} push delivery rows "
                                    f"written, expected {expected}")
        if on:
            missing = self.wait_pushes(received_before + expected, POST_TIMEOUT_S)
            if missing:
                raise Broken(f"post {seq}: {missing}")
            self.wait_idle(POST_TIMEOUT_S)  # every answer recorded, so the next post is quiet
            mine = [m for m in self.push.received[received_before:]
                    if m.payload.get("link") == f"/jobs/{job_id}"]
            post.pushes = len(mine)
            if {m.token for m in mine} != self.world.tokens or len(mine) != expected:
                results.problems.append(f"post {seq}: {len(mine)} pushes to "
                                        f"{len({m.token for m in mine})} devices, expected "
                                        f"one to each of {expected}")
            if mine:
                stamps = sorted(m.received_at for m in mine)
                post.first_ms, post.last_ms = (stamps[0] - t1) * 1000, (stamps[-1] - t1) * 1000
                if len(stamps) > 1 and stamps[-1] > stamps[0]:
                    post.rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
            self.worker.drain()
            rounds = [r for r in self.worker.rounds if r[1] >= t0]
            post.round_ms = sum(end - start for start, end, *_rest in rounds) * 1000
            post.worker_cpu_ms = (self.worker.cpu_seconds() - worker_cpu) * 1000
        say(f"post {seq} push {mode:<3}: POST {post.post_ms:6.1f} ms (at commit "
            f"{delta.get('ms:write_pending', 0):.1f}, planner "
            f"{delta.get('ms:plan_deliveries', 0):.1f}, SQL {delta.get('ms:sql', 0):.1f}, "
            f"GC {delta.get('ms:gc', 0):.1f} in {delta.get('gc:gen2', 0):.0f} full, "
            f"CPU {delta.get('ms:request_cpu', 0):.0f}), "
            f"{planned} push deliveries planned"
            + (f", {post.pushes} pushes, last {post.last_ms:.0f} ms after the POST" if on else ""))
        return post


def order(posts: int) -> list[str]:
    """ON OFF OFF ON ON OFF ...: alternating, and each mode after each mode as often."""
    return [mode for i in range(posts)
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on"))]


def run(world: World, config: dict[str, Any], push: Any, watchdog: Watchdog,
        database_url: str, posts: int) -> Results:
    results = Results(len(world.subscription_ids))
    bench = Bench(world, config, push, watchdog, database_url)
    try:
        results.login_seconds = bench.login_seconds
        load_before = os.getloadavg()[0]
        seq = 0
        try:
            for mode in ("on", "off"):  # warm-up, not counted
                bench.one(seq, mode, results)
                seq += 1
            for mode in order(posts):
                results.posts.append(bench.one(seq, mode, results))
                seq += 1
            bench.wait_idle(POST_TIMEOUT_S)
        except Broken as error:
            results.problems.append(f"stopped early: {error}")
            results.broken = True
        results.heap_objects = int(bench.stats("objects")["objects"])
        results.load = (load_before, os.getloadavg()[0])
        bench.worker.drain()
        for _start, _end, _claimed, sent, retried, gone, failed in bench.worker.rounds:
            results.worker_outcomes.update(sent=sent, retried=retried, gone=gone, failed=failed)
        for message in bench.worker.errors:
            results.problems.append(f"worker: {message}")
    finally:
        bench.stop()
    results.refused = len(push.rejected)
    if results.refused:
        results.problems.append(f"the push service refused {results.refused} pushes, the "
                                f"first: {push.rejected[0]}")
    for outcome in ("retried", "gone", "failed"):
        if results.worker_outcomes[outcome]:
            results.problems.append(f"worker: {results.worker_outcomes[outcome]} {outcome}")
    sent_total = (posts + 1) * results.members
    if len(push.received) != sent_total:
        results.problems.append(f"{len(push.received)} pushes received in all, expected "
                                f"{sent_total} ({posts + 1} push-on posts incl. warm-up)")
    return results


# ----------------------------------------------------------------- report


def report(results: Results, world: World, *, database: str, posts: int,
           command: str) -> None:
    on, off = results.of("on"), results.of("off")

    def p(posts_: list[Post], attr: str, q: float) -> float:
        return percentile([getattr(x, attr) for x in posts_ if not math.isnan(getattr(x, attr))],
                          q)

    def med(posts_: list[Post], key: str | Callable[[dict[str, float]], float]) -> float:
        """The median over posts of one server counter (or of a sum of them)."""
        pick = key if callable(key) else (lambda stats: stats.get(key, 0.0))
        return percentile([pick(x.stats) for x in posts_], 50)

    def queries(stats: dict[str, float]) -> float:
        return sum(stats.get(f"n:{k}", 0.0) for k in ("SELECT", "INSERT", "UPDATE", "DELETE"))

    def rows(stats: dict[str, float]) -> float:
        return sum(v for k, v in stats.items() if k.startswith("rows:"))

    def row(name: str, posts_: list[Post]) -> str:
        return (f"{name:<10}{p(posts_, 'post_ms', 50):9.1f}{p(posts_, 'post_ms', 90):9.1f}"
                f"{p(posts_, 'post_ms', 99):9.1f}"
                f"{med(posts_, 'ms:request_cpu'):9.1f}{med(posts_, queries):9.0f}"
                f"{med(posts_, rows):9.0f}")

    def ratio(q: float) -> str:
        base = p(off, "post_ms", q)
        return f"{p(on, 'post_ms', q) / base:.2f}x" if base else "n/a"

    def line(label: str, a: float, b: float) -> str:
        return f"  {label:<38}{a:8.1f}{b:8.1f}{a - b:+9.1f}"

    def part(label: str, key: str | Callable[[dict[str, float]], float]) -> str:
        return line(label, med(on, key), med(off, key))

    def planner_sql(stats: dict[str, float]) -> float:
        return sum(stats.get(f"sql:{k}", 0.0) for k in PLANNER_STATEMENTS)

    pairs = [(a, b) if a.mode == "on" else (b, a)
             for a, b in zip(results.posts[::2], results.posts[1::2], strict=False)
             if {a.mode, b.mode} == {"on", "off"}]
    paired = (f"{percentile([a.post_ms / b.post_ms for a, b in pairs], 50):.2f}x"
              if pairs else "n/a")
    quiet_on = percentile([x.post_ms for x in on if not x.stats.get("gc:gen2", 0)], 50)
    quiet_off = percentile([x.post_ms for x in off if not x.stats.get("gc:gen2", 0)], 50)
    quiet_ratio = f"{quiet_on / quiet_off:.2f}x" if quiet_off > 0 else "n/a"
    quiet_n = [sum(1 for x in posts_ if not x.stats.get("gc:gen2", 0)) for posts_ in (on, off)]

    def full(posts_: list[Post]) -> str:
        return f"{sum(1 for x in posts_ if x.stats.get('gc:gen2', 0))}/{len(posts_)}"

    def pause() -> str:
        hit = [x for x in results.posts if x.stats.get("gc:gen2", 0)]
        if not hit:
            return "no post had one"
        return (f"a post with one spent {percentile([x.stats['ms:gc'] for x in hit], 50):.0f} "
                f"ms p50 in the collector (max {max(x.stats['ms:gc'] for x in hit):.0f})")

    tables = sorted({k[5:] for x in results.posts for k in x.stats if k.startswith("rows:")})
    written = ", ".join(f"{t} {med(on, 'rows:' + t):.0f}/{med(off, 'rows:' + t):.0f}"
                        for t in tables)
    kinds = ", ".join(f"{k} {med(on, 'n:' + k):.0f}/{med(off, 'n:' + k):.0f}"
                      for k in ("SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN"))
    statements = sorted({k for x in on for k in x.stats if k.startswith("sql:")},
                        key=lambda k: -med(on, k))
    pushes = sum(x.pushes for x in on)
    channels = sorted({k for x in results.posts for k in x.stats if k.startswith("ms:plan:")})
    breakdown = "\n".join([
        f"  {'':<38}{'on':>8}{'off':>8}{'on-off':>9}",
        line("POST round trip (client)", p(on, "post_ms", 50), p(off, "post_ms", 50)),
        part("the request in the server (wall)", "ms:request"),
        part("  its thread's CPU time", "ms:request_cpu"),
        part("_write_pending (at commit)", "ms:write_pending"),
        part("  of which plan_deliveries", "ms:plan_deliveries"),
        *(part(f"    {k[8:]} channel ({k[3:]})", k) for k in channels),
        part("    its SQL statements (cursor time)", planner_sql),
        *(part(f"      {k}", f"sql:{k}") for k in PLANNER_STATEMENTS),
        part("    its Python (the rest of it)",
             lambda st: st.get("ms:plan_deliveries", 0.0) - planner_sql(st)),
        part("DB-API commit", "ms:db_commit"),
        part("DB-API close (SQLite: may checkpoint)", "ms:db_close"),
        part("Socket.IO publish (after commit)", "ms:publish"),
        part("garbage collection (whole request)", "ms:gc"),
        part("all SQL statements (cursor time)", "ms:sql"),
        *(part(f"  {k[4:]}", k) for k in statements[:5]),
    ])
    print(f"""
== push_fanout: POST a job, Web Push on vs off, and the pushes it sends ==
command   {command}
machine   {harness.machine_line("pywebpush", "SQLAlchemy")}
database  {database}
server    its own process: werkzeug threaded server; worker: its own process, send_due every \
{TICK_S:.0f} s ({results.worker_outcomes['sent']} sent); push service: FakePushService \
(VAPID checked, every body decrypted) in the bench process
members   {results.members} eligible, one push subscription each (push on) or all turned off \
(push off)
posts     {posts} per mode, ON OFF OFF ON ON OFF ... (+1 warm-up each, not counted)
setup     world {world.seconds:.1f} s, subscriptions {world.subscribe_seconds:.1f} s, \
poster login {results.login_seconds:.1f} s
load      1-minute load average {results.load[0]:.1f} before the posts, {results.load[1]:.1f} \
after (other work on the machine shows here)

POST /jobs/new  p50 ms   p90 ms   p99 ms   CPU ms  queries     rows
{row("push on", on)}
{row("push off", off)}
ratio on/off: p50 {ratio(50)}  p90 {ratio(90)}  p99 {ratio(99)}   (target: p99 <= 1.1x)
paired: median over the {len(pairs)} adjacent ON/OFF pairs of on/off {paired}; without a full \
garbage collection in the request: p50 on {quiet_on:.1f} ms (n={quiet_n[0]}), off \
{quiet_off:.1f} ms (n={quiet_n[1]}), {quiet_ratio}
(POST round trip, nearest rank over {posts} posts per mode, so below 100 posts p99 is the
 slowest; CPU: the request thread's CPU time in the server; queries: SELECT, INSERT,
 UPDATE and DELETE statements; rows: inserted, updated or deleted; CPU, queries and rows
 are medians per post)
full (generation 2) collections of the server's heap ({results.heap_objects} tracked objects \
at the end): in {full(on)} of the push-on posts, {full(off)} of the push-off posts;
 {pause()}
statements per post (on/off): {kinds}
rows per post (on/off): {written}
where the server's time goes (median ms per post):
{breakdown}

pushes          p50 ms   p99 ms
first of a job {p(on, 'first_ms', 50):9.0f}{p(on, 'first_ms', 99):9.0f}
last of a job  {p(on, 'last_ms', 50):9.0f}{p(on, 'last_ms', 99):9.0f}
(POST returned -> push accepted and decrypted by the push service, over the {len(on)} push-on
 posts; includes the wait for the worker's next tick, up to {TICK_S:.0f} s)
pushes/s  {p(on, 'rate', 50):.0f} p50 per job (first to last receipt); the worker's calls that \
sent a job took {p(on, 'round_ms', 50):.0f} ms p50 and {p(on, 'worker_cpu_ms', 50):.0f} ms of \
worker CPU
received  {pushes}/{results.members * len(on)} counted pushes, refused {results.refused}, \
worker retried/gone/failed {results.worker_outcomes['retried']}/\
{results.worker_outcomes['gone']}/{results.worker_outcomes['failed']}
""", flush=True)
    for problem in results.problems:
        print(f"PROBLEM: {problem}", flush=True)


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=1000,
                        help=f"eligible members, one push device each (1..{MAX_MEMBERS}; "
                             "default 1000)")
    parser.add_argument("--posts", type=int, default=20,
                        help=f"counted posts per mode (1..{MAX_POSTS}; default 20)")
    harness.add_run_options(
        parser, smoke="20 members, 3 posts per mode",
        timeout="120 + 0.1 s per member + 0.01 s per member and post",
        database_url="a loopback PostgreSQL URL (default: a temporary SQLite file)",
        smoke_timeout=SMOKE_TIMEOUT_S)
    args = parser.parse_args(argv)
    if args.smoke:
        args.members, args.posts = 20, 3
    if not 1 <= args.members <= MAX_MEMBERS or not 1 <= args.posts <= MAX_POSTS:
        parser.error(f"--members must be 1..{MAX_MEMBERS} and --posts 1..{MAX_POSTS}")
    harness.check_run_options(parser, args, smoke_timeout=SMOKE_TIMEOUT_S,
                              full_timeout=120 + 0.1 * args.members
                              + 0.01 * args.members * args.posts)
    return args


def vapid_key() -> tuple[str, str]:
    """A fresh VAPID key for the run: (PEM for VAPID_PRIVATE_KEY, public key as browsers
    get it, which the push service then insists on)."""
    from py_vapid import Vapid

    from marketplace.delivery.vapid import load_key, public_key

    vapid = Vapid()
    vapid.generate_keys()
    pem = vapid.private_pem().decode()
    return pem, public_key(load_key(pem))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "bench/push_fanout.py", *(argv or sys.argv[1:])])
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.push_service import FakePushService

    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "push-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        pem, public = vapid_key()
        with FakePushService(vapid_public_key=public) as push:
            say(f"building {args.members} eligible members, one push device each")
            world = build_world(database_url, args.members, tag, push)
            say(f"world built in {world.seconds:.1f} s, devices subscribed in "
                f"{world.subscribe_seconds:.1f} s; starting the app and the worker")
            # The fan-out (notifications and their push rows) in the posting request, so
            # each post's writes are timed where they happen; in production the same
            # transaction runs in the background runner (marketplace/fanout.py).
            config = harness.app_config(database_url, WTF_CSRF_ENABLED=False,
                                        PUSH_SERVICE_HOSTS=["127.0.0.1"], VAPID_PRIVATE_KEY=pem,
                                        PUSH_TIMEOUT_SECONDS=10.0, FANOUT_IN_BACKGROUND=False)
            results = run(world, config, push, watchdog, database_url, args.posts)
        report(results, world, database=database, posts=args.posts, command=command)
    return 1 if results.problems else 0


if __name__ == "__main__":
    sys.exit(main())
