"""The job board of a busy cluster: queries, CPU and req/s against two baselines.

Why this exists: the board (GET /jobs) is the page crews open most, on
phones, in the morning rush.  Issue #14 found it ran 2 queries per open job
(413 for 200 jobs) and answered 5 req/s; the promise now is a fixed number of
queries per page whatever the number of open jobs and however long the
cluster's history, and a page not far behind what the database work under it
costs.  This benchmark builds a busy cluster and says:

1. Queries: the SQL statements one GET /jobs runs for a partner (counted with
   a SQLAlchemy `before_cursor_execute` listener on the app's engine, Flask
   test client, in this process), at three moments of the same world: with
   SMALL open jobs and no history, with OPEN open jobs and no history, and
   after adding the history.  The three counts must be equal and at most
   QUERY_LIMIT (else exit status 1).
2. CPU per request in this process, at the last two moments:
   `time.process_time()` around REPEATS test client GETs, split into the
   view's data part (`views.board_page`: `service.board_with_trades`,
   `visibility.jobs_for` and the page's cards from `jobs/cards.py`, on a fresh
   session as a request has) and rendering the page around the cards
   (`render_template` of the board in a request context, logged in); the rest
   is Flask, the session cookie, login and the test client.  Each twice: with
   the card cache warm (as every request after a card's first), and with the
   cache off (every card rendered, as before the cache).
3. Over HTTP: the app served by the production command (docs/Procfile:
   gunicorn, one gevent worker; `--server threaded`: werkzeug's threaded
   server in a child process, as the tests serve), CSRF on, CLIENTS
   keep-alive clients (threads of this process,
   each its own `requests.Session` and login) GETting /jobs for DURATION
   seconds: req/s, p50/p99 and the server's CPU per request; with OPEN open
   jobs and no history, then with the history, then with the history and the
   card cache off (`JOB_CARD_CACHE_SIZE=0`).  The same
   clients against two baselines, each in its own process of the same kind:
   `bare`, a Flask page of the app's page size (no database, no session), and
   `two-query`, a Flask app that runs the two essential SELECTs (the
   cluster's open jobs not posted by the partner, and their trades) through
   the DB-API (sqlite3 or psycopg, one connection per server thread), builds a
   card per job with plain string formatting and pads the page to the app's
   size.  It prints app/bare and app/two-query.

The world: a cluster of MEMBERS member businesses through the real services
(`harness.found_cluster`; each with trades, a base in Toronto, a 40 km
service radius and insurance for a year, agreement accepted).  The measured
partner is the first; the open jobs are posted through `jobs.service.post_job`
by the others in turn (70 % hand-offs, 30 % bid windows; each needs one or two
of the partner's trades, sites within 12 km), so the partner is eligible for
every one: the board counts OPEN jobs and its first page shows the first
BOARD_PAGE_SIZE of them (checked through the page's JSON).
The history is HISTORY jobs in bulk through the models, shaped as the services
write them (stored approximate point, trades, `created_at` over the last
year): 55 % confirmed, 10 % awarded and 5 % done (claimed hand-offs with their
contract and its party, the partner among the takers), 25 % cancelled with a
reason, 5 % bid windows closed.  Seeded (`--seed`), so a run repeats.

    .venv/bin/python bench/board.py --smoke
    .venv/bin/python bench/board.py
    .venv/bin/python bench/board.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/boardbench

Nothing is dropped: each run adds its own cluster, so use a scratch database.
Exit status: 0 when the query counts are equal and at most QUERY_LIMIT, the board
counts every open job
and no request failed on any server; 1 otherwise (the numbers are printed
either way); 2 on bad arguments; 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import harness
import requests
from harness import Watchdog, percentile

PASSWORD = "bench-board-morning"
TIMEZONE = "America/Toronto"
CENTER = (43.6532, -79.3832)  # sites and bases are drawn around it
PARTNER_TRADES = ("mowing", "planting", "hardscaping", "irrigation")
LOCALITIES = ("Annex", "Leslieville", "High Park", "Riverdale", "The Junction",
              "Yorkville", "Cabbagetown", "Liberty Village")
WORK = ("Front lawn mowing", "Patio stones", "Hedge planting", "Drip irrigation",
        "Backyard makeover", "Spring clean-up", "Retaining wall", "Sod and seed")
HISTORY_OUTCOMES = {"confirmed": 55, "awarded": 10, "done": 5, "cancelled": 25,
                    "window_closed": 5}
TAKEN = ("confirmed", "awarded", "done")
REQUEST_TIMEOUT_S = 30.0
#: Issue #14's promise: a fixed number of queries per board page, at most this.
QUERY_LIMIT = 10
LOGIN_WORKERS = 8
MAX_OPEN, MAX_HISTORY, MAX_CLIENTS = 2_000, 100_000, 200
say = harness.Progress("board")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """The cluster, the measured partner, and how many jobs of each kind it holds."""

    cluster_id: int
    partner_id: int  # user
    partner_member_id: int
    partner_email: str
    owners: dict[int, int]  # member id -> owner user id
    agreement_id: int
    rng: random.Random
    open_jobs: int = 0
    history: int = 0
    build_s: float = 0.0


def _site(rng: random.Random, km: float) -> tuple[float, float]:
    """A point up to `km` from the center, in a random direction."""
    from marketplace.geo import destination

    return destination(*CENTER, rng.uniform(0.0, km), rng.uniform(0.0, 360.0))


def found(session: Any, tag: str, members: int, seed: int) -> World:
    """The cluster and its members, every one ready to take overflow jobs."""
    from marketplace.clusters.agreements import agreement_in_force
    from marketplace.clusters.service import MemberProfile, update_member_profile
    from marketplace.clusters.trades import TRADES
    from marketplace.db import utcnow

    rng = random.Random(seed)
    now = utcnow()
    others = [t for t in TRADES if t not in PARTNER_TRADES]

    def prepare(owner: Any, business: str) -> None:
        assert owner.member_id is not None
        first = not prepared
        trades = PARTNER_TRADES if first else tuple(sorted(
            {*rng.sample(PARTNER_TRADES, 2), *rng.sample(others, rng.randint(0, 2))}))
        base = CENTER if first else _site(rng, 10.0)
        update_member_profile(session, owner, owner.member_id, MemberProfile(
            name=business, trades=trades, base_lat=base[0], base_lng=base[1],
            service_radius_km=40.0, certifications=""))
        prepared.append(owner)

    prepared: list[Any] = []
    owners = harness.found_cluster(
        session, tag, purpose="Share the overflow of a busy season.", timezone=TIMEZONE,
        members=[(f"m{i:02d}.{tag}@bench.test", f"Board firm {i:02d} {tag}")
                 for i in range(members)], password=PASSWORD,
        now=now - timedelta(days=400), prepare=prepare)
    partner = owners[0]
    assert partner.member_id is not None and partner.id is not None
    agreement = agreement_in_force(session, partner.cluster_id)
    return World(cluster_id=partner.cluster_id, partner_id=partner.id,
                 partner_member_id=partner.member_id, partner_email=partner.email,
                 owners={o.member_id: o.id for o in owners}, agreement_id=agreement.id,
                 rng=rng)


def post_open(session: Any, world: World, count: int) -> None:
    """`count` open jobs through `post_job`, by every member but the partner in turn."""
    from marketplace.clusters.models import User
    from marketplace.db import utcnow
    from marketplace.jobs.models import JobMode
    from marketplace.jobs.service import JobDraft, post_job

    rng = world.rng
    posters = [session.get(User, user_id) for member_id, user_id in sorted(world.owners.items())
               if member_id != world.partner_member_id]
    for _ in range(count):
        now = utcnow()
        number = world.open_jobs + world.history
        starts = now.date() + timedelta(days=rng.randint(2, 40))
        bid = rng.random() < 0.3
        lat, lng = _site(rng, 12.0)
        post_job(session, posters[world.open_jobs % len(posters)], JobDraft(
            title=f"{rng.choice(WORK)} #{number}",
            description="Crew of three, own equipment, tidy site.",
            trades=tuple(rng.sample(PARTNER_TRADES, rng.randint(1, 2))),
            site_lat=lat, site_lng=lng, locality=rng.choice(LOCALITIES),
            address=f"{number} Bench Street", customer_name="Bench Customer",
            customer_contact="555-0100", crew_days=rng.randint(1, 20), starts_on=starts,
            ends_on=starts + timedelta(days=rng.randint(0, 10)),
            value_minor=rng.randint(50, 5_000) * 100,
            mode=JobMode.BID_WINDOW.value if bid else JobMode.HANDOFF.value,
            # A window closes before the job's start date (the service refuses later).
            closes_at=now + timedelta(hours=rng.randint(2, min(300, 24 * (starts - now.date())
                                                              .days))) if bid else None), now)
        world.open_jobs += 1


def add_history(session: Any, world: World, count: int) -> None:
    """`count` jobs of the past year in bulk (see the module's docstring)."""
    from marketplace.db import utcnow
    from marketplace.geo import approximate_point
    from marketplace.jobs.models import (
        ContractParty,
        JobContract,
        JobMode,
        JobTrade,
        OverflowJob,
    )

    rng, now = world.rng, utcnow()
    members = sorted(world.owners)
    jobs, takers = [], []
    for _ in range(count):
        posted = now - timedelta(days=rng.uniform(2, 365))
        poster = rng.choice(members)
        taker = rng.choice([m for m in members if m != poster])
        status = rng.choices(list(HISTORY_OUTCOMES), list(HISTORY_OUTCOMES.values()))[0]
        bid = status == "window_closed" or (status == "cancelled" and rng.random() < 0.3)
        site = _site(rng, 12.0)
        starts = (posted + timedelta(days=rng.randint(3, 30))).date()
        number = world.open_jobs + world.history + len(jobs)
        jobs.append(OverflowJob(
            cluster_id=world.cluster_id, poster_member_id=poster,
            posted_by_id=world.owners[poster], title=f"{rng.choice(WORK)} #{number}",
            description="Crew of three.", site_lat=site[0], site_lng=site[1],
            mode=JobMode.BID_WINDOW.value if bid else JobMode.HANDOFF.value, status=status,
            approx_lat=(point := approximate_point(*site, rng))[0], approx_lng=point[1],
            locality=rng.choice(LOCALITIES), address=f"{number} Bench Street",
            customer_name="Bench Customer", customer_contact="555-0100",
            crew_days=rng.randint(1, 20), starts_on=starts,
            ends_on=starts + timedelta(days=rng.randint(0, 10)),
            value_minor=rng.randint(50, 5_000) * 100, currency="CAD",
            closes_at=posted + timedelta(days=3) if bid else None,
            window_closed_at=posted + timedelta(days=3) if status == "window_closed" else None,
            awarded_member_id=taker if status in TAKEN else None,
            cancel_reason="The customer withdrew." if status == "cancelled" else None,
            created_at=posted))
        takers.append(taker)
    session.add_all(jobs)
    session.flush()
    session.add_all(JobTrade(job_id=job.id, trade=trade) for job in jobs
                    for trade in rng.sample(PARTNER_TRADES, rng.randint(1, 2)))
    contracts = [(JobContract(
        job_id=job.id, cluster_id=world.cluster_id, poster_member_id=job.poster_member_id,
        value_minor=job.value_minor, currency="CAD", referral_fee_bp=500,
        referral_fee_minor=job.value_minor * 500 // 10_000, platform_fee_bp=100,
        agreement_id=world.agreement_id, signed_at=job.created_at + timedelta(hours=5)), taker)
        for job, taker in zip(jobs, takers, strict=True) if job.status in TAKEN]
    session.add_all(contract for contract, _taker in contracts)
    session.flush()
    session.add_all(ContractParty(contract_id=contract.id, member_id=taker, share_bp=10_000)
                    for contract, taker in contracts)
    session.commit()
    world.history += count


# ------------------------------------------------------------ in-process


@contextmanager
def counted(engine: Any) -> Iterator[list[str]]:
    """The SQL statements `engine` runs inside the block."""
    from sqlalchemy import event

    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


class InProcess:
    """The app in this process, its test client logged in as the partner."""

    def __init__(self, database_url: str, world: World) -> None:
        from marketplace import create_app

        self.world = world
        self.app = create_app(harness.app_config(database_url, WTF_CSRF_ENABLED=False))
        self.engine = self.app.extensions["engine"]
        self.client = self.app.test_client()
        answer = self.client.post("/login", data={"email": world.partner_email,
                                                  "password": PASSWORD})
        if answer.status_code != 302:
            raise RuntimeError(f"login as the partner: HTTP {answer.status_code}")

    def get(self, **headers: str) -> Any:
        answer = self.client.get("/jobs", headers=headers)
        if answer.status_code != 200:
            raise RuntimeError(f"GET /jobs in-process: HTTP {answer.status_code}")
        return answer

    def queries(self) -> tuple[list[str], int, int]:
        """(the statements one GET /jobs runs, the cards its JSON shows, the open jobs it
        counts on every page), after a warm GET."""
        self.get()
        with counted(self.engine) as seen:
            self.get()
        shown = self.get(Accept="application/json").get_json()
        return seen, len(shown["jobs"]), shown["total"]

    def cpu_ms(self, repeats: int, cached: bool = True) -> dict[str, float]:
        """CPU per page, per data part and per rendering, in ms (means of `repeats`);
        with the card cache on (warm) or off."""
        from marketplace.jobs.cards import card_cache

        cache = card_cache(self.app)
        size = cache.size
        cache.clear()
        cache.size = size if cached else 0
        try:
            return self._cpu_ms(repeats)
        finally:
            cache.size = size

    def _cpu_ms(self, repeats: int) -> dict[str, float]:
        from flask import render_template
        from flask_login import login_user
        from sqlmodel import Session
        from werkzeug.datastructures import MultiDict

        from marketplace.clusters.models import User
        from marketplace.jobs.views import board_page

        with Session(self.engine, expire_on_commit=False) as session:
            user = session.get(User, self.world.partner_id)  # no transaction left open

        def data() -> dict[str, Any]:
            """The page's data: filters, the board's rows, one page of cards (the view's
            own function, in a request of its own so its session is fresh)."""
            with self.app.test_request_context("/jobs"):
                login_user(user)
                return board_page(user, MultiDict())

        context = data()
        with self.app.test_request_context("/jobs"):
            login_user(user)

            def render() -> str:
                return render_template("jobs/board.html", **context)

            found = {"render": cpu_per_call(render, repeats)}
        found["data"] = cpu_per_call(data, repeats)
        found["page"] = cpu_per_call(self.get, repeats)
        return found

    def close(self) -> None:
        self.engine.dispose()


def cpu_per_call(work: Callable[[], Any], repeats: int) -> float:
    """Mean CPU time of `work` in ms, over `repeats` calls after one warm-up call."""
    work()
    started = time.process_time()
    for _ in range(repeats):
        work()
    return (time.process_time() - started) / repeats * 1000


# ------------------------------------------------------------- the servers


def _baseline_app(spec: dict[str, Any]) -> Any:
    """GET /jobs as a page of spec["bytes"]: constant ("bare"), or built from the two
    essential SELECTs through the DB-API ("two-query": spec has "sqlite" or "conninfo")."""
    import sqlite3

    from flask import Flask
    from markupsafe import escape

    app = Flask("baseline")
    size = spec["bytes"]
    head = "<!doctype html><title>Job board</title><ul>"
    local = threading.local()
    if "conninfo" in spec:
        import psycopg

        mark, connect = "%s", lambda: psycopg.connect(spec["conninfo"], autocommit=True)
    else:
        mark, connect = "?", lambda: sqlite3.connect(spec["sqlite"])

    def pad(page: str) -> str:
        return page + "<!--" + "x" * max(0, size - len(page.encode()) - 7) + "-->"

    bare = pad(head + "</ul>")

    def build() -> str:
        if not hasattr(local, "db"):
            local.db = connect()
        cursor = local.db.cursor()
        cursor.execute(
            "SELECT id, title, locality, mode, crew_days, value_minor, currency FROM overflowjob"
            f" WHERE cluster_id = {mark} AND status = 'open' AND poster_member_id <> {mark}"
            " ORDER BY id DESC", (spec["cluster_id"], spec["member_id"]))
        jobs = cursor.fetchall()
        trades: dict[int, list[str]] = {}
        if jobs:
            cursor.execute(f"SELECT job_id, trade FROM jobtrade WHERE job_id IN "
                           f"({', '.join([mark] * len(jobs))}) ORDER BY job_id, trade",
                           [job[0] for job in jobs])
            for job_id, trade in cursor.fetchall():
                trades.setdefault(job_id, []).append(trade)
        cursor.close()
        cards = "".join(
            f'<li class="card"><h2><a href="/jobs/{i}">{escape(title)}</a></h2>'
            f"<p>{escape(', '.join(trades.get(i, [])))}</p><p>{value / 100:.2f} {currency}"
            f" · {days} crew-days</p><p>{escape(locality)}</p><p>{mode}</p></li>"
            for i, title, locality, mode, days, value, currency in jobs)
        return pad(f"{head}{cards}</ul>")

    @app.get("/jobs")
    def board() -> str:
        return build() if "cluster_id" in spec else bare

    return app


def two_query_spec(database_url: str, world: World, page_bytes: int) -> dict[str, Any]:
    """The two-query baseline's spec: where its DB-API connects, whose board it builds."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    where = ({"sqlite": url.database} if url.get_backend_name() == "sqlite" else
             {"conninfo": url.set(drivername="postgresql").render_as_string(
                 hide_password=False)})
    return {**where, "bytes": page_bytes, "cluster_id": world.cluster_id,
            "member_id": world.partner_member_id}


# ---------------------------------------------------------------- over HTTP


@dataclass
class Load:
    """What one server did for the clients: (status, latency ms, done at) per request,
    from `began`; the CPU seconds its process and this one (the clients) used."""

    name: str
    rows: list[tuple[str, float, float]] = field(default_factory=list)
    began: float = math.nan
    cpu_s: tuple[float, float] = (math.nan, math.nan)  # (server, clients)
    page_bytes: int = 0

    @property
    def latencies_ms(self) -> list[float]:
        return [ms for _status, ms, _done in self.rows]

    @property
    def elapsed(self) -> float:
        return max((done for *_r, done in self.rows), default=self.began) - self.began

    @property
    def rps(self) -> float:
        return len(self.rows) / self.elapsed if self.elapsed > 0 else math.nan

    @property
    def statuses(self) -> Counter[str]:
        return Counter(status for status, *_r in self.rows)

    @property
    def errors(self) -> int:
        return len(self.rows) - self.statuses["200"]

    def per_request_ms(self) -> float:
        """The server's CPU per request, in ms."""
        return self.cpu_s[0] / max(1, len(self.rows)) * 1000


def load(name: str, server: harness.Server, cookies: list[dict[str, str]],
         duration: float) -> Load:
    """Every client GETs /jobs on `server` over its own keep-alive connection until the
    deadline; one warm-up GET per client first (not counted)."""
    url = f"{server.url}/jobs"
    found = Load(name)

    def client(jar: dict[str, str]) -> list[tuple[str, float, float]]:
        http = requests.Session()
        http.cookies.update(jar)
        found.page_bytes = len(http.get(url, timeout=REQUEST_TIMEOUT_S).content)
        barrier.wait(REQUEST_TIMEOUT_S)  # all warm; the last one in starts the clock
        rows = []
        while (started := time.perf_counter()) < deadline:
            try:
                status = str(http.get(url, timeout=REQUEST_TIMEOUT_S).status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            done = time.perf_counter()
            rows.append((status, (done - started) * 1000, done))
        http.close()
        return rows

    def start() -> None:
        nonlocal deadline, cpu
        found.began = time.perf_counter()
        deadline = found.began + duration
        cpu = (server.cpu_seconds(), time.process_time())

    deadline, cpu = math.inf, (0.0, 0.0)
    barrier = threading.Barrier(len(cookies), action=start)
    say(f"{name}: {len(cookies)} clients for {duration:.0f} s")
    found.rows = [row for rows in harness.in_parallel(client, cookies, len(cookies))
                  for row in rows]
    found.cpu_s = (server.cpu_seconds() - cpu[0], time.process_time() - cpu[1])
    say(f"{name}: {len(found.rows)} requests, {dict(found.statuses)}, {found.rps:.1f}/s")
    return found


def measure_app(watchdog: Watchdog, kind: str, name: str, database_url: str, world: World,
                clients: int, duration: float, **settings: str) -> Load:
    """The app served as `kind` says (with `settings` on top), its clients logged in."""
    server = harness.serve_app(kind, name, database_url, watchdog, **settings)
    try:
        logins = harness.in_parallel(
            lambda _n: harness.log_in(server.url, world.partner_email, PASSWORD, csrf=True),
            range(clients), LOGIN_WORKERS)
        cookies = [{c.name: c.value or "" for c in http.cookies} for http in logins]
        return load(name, server, cookies, duration)
    finally:
        server.stop()


def measure_baselines(watchdog: Watchdog, kind: str, database_url: str, world: World,
                      clients: int, duration: float, page_bytes: int) -> list[Load]:
    """The two-query page and the bare page, of the app's page size, served alike."""
    runs = []
    for name, spec in (("two-query", two_query_spec(database_url, world, page_bytes)),
                       ("bare", {"bytes": page_bytes})):
        server = harness.serve_baseline(kind, name, _baseline_app, spec, watchdog,
                                        ready_path="/jobs")
        try:
            runs.append(load(name, server, [{} for _ in range(clients)], duration))
        finally:
            server.stop()
    return runs


# ------------------------------------------------------------------ report


def table_of(statement: str) -> str:
    """What a statement reads, in a word: its first table (or its verb: BEGIN)."""
    words = statement.split()
    after = [words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() == "FROM"]
    return after[0].strip('"') if after else words[0]


def cpu_line(label: str, cpu: dict[str, float]) -> str:
    rest = cpu["page"] - cpu["data"] - cpu["render"]
    return (f"  {label}: {cpu['page']:.1f} ms = data {cpu['data']:.1f} ms "
            f"(board_page: service, barrier, cards) + rendering the page {cpu['render']:.1f} ms"
            f" + the rest {rest:.1f} ms (Flask, session, login, test client)")


def report(args: argparse.Namespace, world: World, database: str, counts: dict[str, int],
           statements: list[str], cpus: dict[str, dict[str, float]], runs: list[Load],
           loads: list[tuple[float, ...]]) -> None:
    apps = [run for run in runs if run.name.startswith("app")]
    bases = [run for run in runs if not run.name.startswith("app")]

    def row(run: Load) -> str:
        return (f"| {run.name} | {run.rps:.1f} | {percentile(run.latencies_ms, 50):.1f} ms | "
                f"{percentile(run.latencies_ms, 99):.1f} ms | {run.per_request_ms():.2f} ms | "
                f"{run.page_bytes / 1000:.0f} KB | {run.errors} | "
                f"{run.cpu_s[1] / run.elapsed:.2f} |")

    ratios = "\n".join(
        f"{app.name}: " + "  ".join(
            f"/{run.name} req/s {app.rps / run.rps:.3f}x, p50 "
            f"{percentile(app.latencies_ms, 50) / percentile(run.latencies_ms, 50):.1f}x"
            for run in bases) for app in apps)
    steps = " | ".join(f"{label}: {n}" for label, n in counts.items())
    print(f"""board benchmark: GET /jobs for one partner of a busy cluster
machine   {harness.machine_line("Flask", "SQLAlchemy", "psycopg", "gunicorn", "gevent")}
load avg  {" / ".join(f"{a:.2f}" for a in loads[0])} (1/5/15 min) at the start, \
{" / ".join(f"{a:.2f}" for a in loads[1])} at the end
database  {database}
server    {harness.served(args.server)}
world     {args.members} members, {world.open_jobs} open jobs (all for the partner), \
{world.history:,} jobs of history; built and counted in {world.build_s:.1f} s

queries per GET /jobs   {steps} (at most {QUERY_LIMIT})
  they are  {", ".join(table_of(s) for s in statements)}
CPU per GET /jobs in-process ({args.repeats} GETs)
{chr(10).join(cpu_line(label, cpu) for label, cpu in cpus.items())}

over HTTP: {args.clients} keep-alive clients, {args.duration:.0f} s per server
| server | req/s | p50 | p99 | server CPU per request | page | errors | client CPU (cores) |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(row(run) for run in runs)}
{ratios}""")


# -------------------------------------------------------------------- main


OPTIONS = (  # flag, default, lowest, highest, what it is
    ("--members", 20, 2, 200, "member businesses in the cluster"),
    ("--open", 200, 1, MAX_OPEN, "open jobs on the board"),
    ("--small", 20, 1, MAX_OPEN, "open jobs at the first count (at most --open)"),
    ("--history", 2_000, 0, MAX_HISTORY, "jobs of history"),
    ("--clients", 8, 1, MAX_CLIENTS, "concurrent keep-alive HTTP clients"),
    ("--duration", 20, 1, 600, "seconds of load per server"),
    ("--repeats", 50, 1, 1000, "in-process GETs timed for CPU per request"),
)
#: --smoke's hard timeout: three gunicorn workers start and stop (one app, two
#: baselines), each loading its app on a CI machine busy with the tests.
SMOKE_TIMEOUT_S = 120.0
SMOKE = {"members": 4, "open": 10, "small": 3, "history": 40, "clients": 2, "duration": 1,
         "repeats": 5}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    for flag, default, low, high, text in OPTIONS:
        parser.add_argument(flag, type=int, default=default,
                            help=f"{text} ({low}..{high}; default {default})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the world (default 1)")
    harness.add_server_option(parser)
    harness.add_run_options(
        parser, smoke="4 members, 10 open jobs (3 at the first count), 40 of history, "
                      "2 clients, 1 s per server, over HTTP only the app with history and "
                      "its cards cached, 5 repeats",
        timeout="180 s + 6 x duration + 0.2 s per open job + 0.01 s per history job",
        database_url="a loopback database URL, e.g. a scratch PostgreSQL database "
                     "(default: a temporary SQLite file)", smoke_timeout=SMOKE_TIMEOUT_S)
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(SMOKE)
    for flag, _default, low, high, _text in OPTIONS:
        if not low <= getattr(args, flag[2:]) <= high:
            parser.error(f"{flag} must be {low}..{high}")
    if args.small > args.open:
        parser.error("--small must be at most --open")
    harness.check_run_options(parser, args, smoke_timeout=SMOKE_TIMEOUT_S, full_timeout=(
        180 + 6 * args.duration + 0.2 * args.open + 0.01 * args.history))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    loads = [os.getloadavg()]
    problems: list[str] = []
    with Watchdog(args.timeout, say, "board-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        counts: dict[str, int] = {}
        statements: list[str] = []
        cpus: dict[str, dict[str, float]] = {}
        runs: list[Load] = []
        with harness.world_session(database_url) as session:
            say(f"founding a cluster of {args.members} members; posting {args.small} jobs")
            started = time.perf_counter()
            world = found(session, secrets.token_hex(4), args.members, args.seed)
            post_open(session, world, args.small)
            local = InProcess(database_url, world)
            from marketplace.jobs.views import BOARD_PAGE_SIZE

            try:
                fresh = f"{args.open} open, no history"
                full = f"{args.open} open + {args.history:,} history"
                steps: list[tuple[str, Callable[[], None]]] = [
                    (f"{args.small} open, no history", lambda: None),
                    (fresh, lambda: post_open(session, world, args.open - args.small)),
                    (full, lambda: add_history(session, world, args.history))]
                for label, step in steps:
                    step()
                    statements, cards, total = local.queries()
                    counts[label] = len(statements)
                    say(f"{label}: {counts[label]} queries, {cards} cards of {total}")
                    if (total, cards) != (world.open_jobs,
                                          min(world.open_jobs, BOARD_PAGE_SIZE)):
                        problems.append(f"{label}: the page shows {cards} cards of {total} "
                                        f"jobs; {world.open_jobs} are open")
                    if label == steps[0][0]:
                        continue
                    if session.get_bind().dialect.name == "postgresql":
                        from sqlalchemy import text

                        session.execute(text("ANALYZE"))
                        session.commit()
                    say(f"{label}: timing {args.repeats} GETs in this process, cards "
                        f"cached and not")
                    cpus[f"{label}, cards cached"] = local.cpu_ms(args.repeats)
                    cpus[f"{label}, cards not cached"] = local.cpu_ms(args.repeats, False)
                    if not (args.smoke and label == fresh):  # smoke: one app run is enough
                        runs.append(measure_app(watchdog, args.server, f"app ({label})",
                                                database_url, world, args.clients,
                                                args.duration))
                world.build_s = time.perf_counter() - started
            finally:
                local.close()
        if len(set(counts.values())) != 1:
            problems.append(f"queries per page differ: {counts}")
        if max(counts.values()) > QUERY_LIMIT:
            problems.append(f"more than {QUERY_LIMIT} queries per page: {counts}")
        if not args.smoke:  # smoke: three servers, as many as before the card cache
            runs.append(measure_app(watchdog, args.server, f"app ({full}), cards not cached",
                                    database_url, world, args.clients, args.duration,
                                    JOB_CARD_CACHE_SIZE="0"))
        runs += measure_baselines(watchdog, args.server, database_url, world, args.clients,
                                  args.duration, runs[0].page_bytes)
        problems += [f"{run.name}: {run.errors} failed requests" for run in runs if run.errors]
        loads.append(os.getloadavg())
        report(args, world, database, counts, statements, cpus, runs, loads)
        print(f"checks    {'all hold' if not problems else '; '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
