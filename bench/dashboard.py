"""The coordinator's dashboard for a busy year: queries, time, and the bare SQL beneath.

Why this exists: the dashboard reads a whole year of a cluster -- every job,
booking, rating and ledger month -- each time the page opens.  The promise is
that it costs a fixed handful of queries however busy the year was, and that
the page is not much slower than the database work under it.  This benchmark
builds a realistic year (by default 20 members, 2 000 jobs, 5 000 bookings of
30 machines over 12 months) and says:

1. Queries: the SQL statements one GET /dashboard runs (counted with a
   SQLAlchemy event listener on the app's engine, in this process), for the
   coordinator (every chart, cluster scope) and a member (its own figures), in
   the busy cluster and in a tiny one (a handful of jobs) in the same
   database.  The counts must be equal: they may not grow with the data.
2. Time over HTTP: the app in its own process (`harness.ServerProcess`,
   werkzeug threaded, CSRF on), logged in like a browser; REPEATS GETs of the
   page after one warm-up, median and worst, and the server's CPU per page.
3. The bare baseline: the very SELECT statements the dashboard ran, with
   their parameters, replayed through the DB-API cursor alone (no ORM, no
   bucketing by month, no availability arithmetic, no rendering), median of
   REPEATS.  "page / bare" is what the app adds on top of the database work;
   the in-process time of `figures()` alone splits it between reading and
   bucketing on one side and rendering (SVG, tables, HTTP) on the other.
4. Checks: the app's monthly jobs posted and booked hours equal what the
   generator made (it knows each row's month where the cluster is, America/
   Toronto); its fee and rating totals equal plain SQL sums; the page
   answers 200 for both viewers.

The world: the cluster and its members through the real services
(`harness.found_cluster`), founded 13 months ago; then rows in bulk through
the models, shaped as the services write them: machines with weekday hours
(07:00-18:00 Toronto) and a blackout each, owned by one member; jobs posted
over the 12 months (60 % hand-offs claimed, 20 % bid windows awarded to a
bid, 10 % cancelled, 10 % left open, some past their start), contracts and
parties for the taken ones, confirmed and rated when over; bookings of 1-4 h
on weekdays by members other than the owner (8 % cancelled), with their fee
entries; referral and platform fees of confirmed jobs; and every month
before the last one settled (approved).  Seeded (`--seed`), so a run repeats.

    .venv/bin/python bench/dashboard.py --smoke
    .venv/bin/python bench/dashboard.py
    .venv/bin/python bench/dashboard.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/dashboard

Nothing is dropped: each run adds its own clusters, so use a scratch database.
Exit status: 0 when every check holds, 1 when one does not (the numbers are
printed either way), 2 on bad arguments, 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import harness
from harness import ServerProcess, Watchdog

PASSWORD = "bench-dashboard-year"
TIMEZONE = "America/Toronto"
CURRENCY = "CAD"
MONTHS = 12
REPEATS = 7
MAX_JOBS, MAX_BOOKINGS = 200_000, 500_000
say = harness.Progress("dashboard")


# ---------------------------------------------------------------- the world


@dataclass
class Year:
    """A cluster's year as bulk rows, and what each month should show."""

    cluster_id: int
    coordinator_email: str
    member_email: str
    range_args: dict[str, str]
    posted: Counter[str] = field(default_factory=Counter)  # month -> jobs posted
    booked: Counter[str] = field(default_factory=Counter)  # month -> minutes booked
    jobs: int = 0
    bookings: int = 0


class Generator:
    """Rows as the services write them, with the months they must land in."""

    def __init__(self, rng: random.Random, session: Any, tag: str, now: datetime,
                 members: int) -> None:
        from sqlmodel import select

        from marketplace.clusters.agreements import agreement_in_force
        from marketplace.clusters.models import Cluster, User

        self.rng, self.session, self.now = rng, session, now
        self.zone = ZoneInfo(TIMEZONE)
        founded = now - timedelta(days=400)
        owners = harness.found_cluster(
            session, tag, purpose="Measure a busy year.", timezone=TIMEZONE,
            members=[(f"m{i:02d}.{tag}@bench.test", f"Bench firm {i:02d} {tag}")
                     for i in range(members)], password=PASSWORD, now=founded)
        self.cluster = session.get(Cluster, owners[0].cluster_id)
        agreement = agreement_in_force(session, self.cluster.id)
        self.agreement_id = agreement.id
        self.owners = {o.member_id: o.id for o in owners}
        self.members = sorted(self.owners)
        coordinator = session.exec(select(User).where(
            User.email == harness.coordinator_email(tag))).one()
        self.year = Year(self.cluster.id, coordinator.email, owners[0].email, {})
        local = now.astimezone(self.zone)  # the range: the last MONTHS months, this one too
        index = local.year * 12 + local.month - 1 - (MONTHS - 1)
        self.start = datetime(index // 12, index % 12 + 1, 1, tzinfo=self.zone)
        self.start_utc = self.start.astimezone(UTC)

    def month(self, instant: datetime) -> str:
        return instant.astimezone(self.zone).strftime("%Y-%m")

    def instant(self) -> datetime:
        """A random moment between the range's start and now."""
        span = (self.now - self.start_utc).total_seconds()
        return self.start_utc + timedelta(seconds=self.rng.uniform(0, span))

    def insert(self, model: Any, rows: list[dict[str, Any]], returning: bool = False
               ) -> list[int]:
        from sqlalchemy import insert

        if not rows:
            return []
        if returning:
            return list(self.session.execute(
                insert(model).returning(model.id, sort_by_parameter_order=True),
                rows).scalars())
        self.session.execute(insert(model), rows)
        return []

    def machines(self, count: int) -> list[tuple[int, int]]:
        """`count` machines, each owned by one member: (machine id, owner member id)."""
        from marketplace.equipment.models import (
            AvailabilityWindow,
            Blackout,
            Equipment,
            EquipmentOwner,
        )

        owners = [self.members[i % len(self.members)] for i in range(count)]
        listed = self.start_utc - timedelta(days=20)
        ids = self.insert(Equipment, [
            {"cluster_id": self.cluster.id, "name": f"Machine {i}", "kind": "mower",
             "description": "", "photo": None, "locality": "Yard", "base_lat": 43.6,
             "base_lng": -79.4, "hour_rate_minor": 4_000, "day_rate_minor": 25_000,
             "currency": CURRENCY, "min_minutes": 60, "max_minutes": 4_320,
             "buffer_minutes": 30, "granularity_minutes": 30, "timezone": TIMEZONE,
             "needs_approval": False, "cancel_cutoff_hours": 24, "cancel_fee_bp": 5_000,
             "status": "active", "listed_by_id": self.owners[owner], "created_at": listed}
            for i, owner in enumerate(owners)], returning=True)
        self.insert(EquipmentOwner, [{"equipment_id": m, "member_id": o, "share_bp": 10_000}
                                     for m, o in zip(ids, owners, strict=True)])
        self.insert(AvailabilityWindow, [
            {"equipment_id": m, "weekday": d, "start_minute": 7 * 60, "end_minute": 18 * 60}
            for m in ids for d in range(5)])
        self.insert(Blackout, [
            {"equipment_id": m, "starts_at": (when := self.instant()),
             "ends_at": when + timedelta(hours=8), "reason": "Service",
             "created_by_id": self.owners[o]}
            for m, o in zip(ids, owners, strict=True)])
        return list(zip(ids, owners, strict=True))

    def bookings(self, machines: list[tuple[int, int]], count: int) -> list[dict[str, Any]]:
        """Booking rows and the ledger rows of their fees (the cheaper rate, as pricing
        does); cancelled ones refunded.  Each on a weekday within opening hours."""
        from marketplace.equipment.models import Booking
        from marketplace.equipment.pricing import booking_fee
        from marketplace.ledger.models import EntrySource

        rows, facts = [], []
        while len(rows) < count:
            machine, owner = self.rng.choice(machines)
            local_day = self.instant().astimezone(self.zone).date()
            if local_day.weekday() > 4:
                continue
            hours = self.rng.randint(1, 4)
            starts = datetime.combine(local_day, clock(self.rng.randint(7, 18 - hours)),
                                      tzinfo=self.zone).astimezone(UTC)
            ends = starts + timedelta(hours=hours)
            if ends > self.now:
                continue
            booker = self.rng.choice([m for m in self.members if m != owner])
            cancelled = self.rng.random() < 0.08
            price = booking_fee(hours * 60, 4_000, 25_000)
            made = starts - timedelta(days=self.rng.randint(1, 10))
            made = max(made, self.start_utc)
            rows.append({
                "equipment_id": machine, "cluster_id": self.cluster.id, "member_id": booker,
                "booked_by_id": self.owners[booker], "starts_at": starts, "ends_at": ends,
                "blocked_until": ends + timedelta(minutes=30),
                "status": "cancelled" if cancelled else "closed", "price_minor": price,
                "currency": CURRENCY, "in_custody": False, "created_at": made,
                "decided_at": made})
            facts.append((booker, owner, price, made, cancelled, starts))
            if not cancelled:
                self.year.booked[self.month(starts)] += hours * 60
        ids = self.insert(Booking, rows, returning=True)
        entries = []
        for booking_id, (booker, owner, price, made, cancelled, starts) in zip(
                ids, facts, strict=True):
            entries.append(self.entry(EntrySource.BOOKING, booking_id, booker, owner, price,
                                      made))
            if cancelled:
                entries.append(self.entry(EntrySource.BOOKING_REFUND, booking_id, owner,
                                          booker, price, min(starts, self.now)))
        self.year.bookings = len(rows)
        return entries

    def entry(self, source: Any, source_id: int, payer: int | None, payee: int | None,
              amount: int, when: datetime) -> dict[str, Any]:
        from marketplace.ledger.models import entry_key

        return {"cluster_id": self.cluster.id, "source": source.value, "source_id": source_id,
                "entry_key": entry_key(source.value, source_id, payer, payee),
                "payer_member_id": payer, "payee_member_id": payee, "amount_minor": amount,
                "currency": CURRENCY, "month": self.month(when), "memo": "",
                "created_by_id": None, "created_at": when}

    def jobs(self, count: int) -> list[dict[str, Any]]:
        """Jobs with their bids, contracts, parties and ratings; the fee entries of the
        confirmed ones (the claimer or bidder pays the poster and the platform)."""
        from marketplace.jobs.models import (
            Bid,
            BidShare,
            ContractParty,
            JobContract,
            JobRating,
            OverflowJob,
        )
        from marketplace.ledger.models import PLATFORM, EntrySource
        from marketplace.money import apply_basis_points

        plans = []
        for n in range(count):
            posted = self.instant()
            poster = self.rng.choice(self.members)
            taker = self.rng.choice([m for m in self.members if m != poster])
            outcome = self.rng.choices(("claimed", "awarded", "cancelled", "open"),
                                       (60, 20, 10, 10))[0]
            starts = posted.astimezone(self.zone).date() + timedelta(days=self.rng.randint(3, 30))
            ends = starts + timedelta(days=self.rng.randint(0, 5))
            signed = posted + timedelta(hours=self.rng.randint(1, 72))
            if outcome in ("claimed", "awarded") and signed > self.now:
                outcome = "open"
            value = self.rng.randint(50, 5_000) * 100
            plans.append((n, posted, poster, taker, outcome, starts, ends, signed, value))
            self.year.posted[self.month(posted)] += 1
        status = {"cancelled": "cancelled", "open": "open"}
        job_ids = self.insert(OverflowJob, [
            {"cluster_id": self.cluster.id, "poster_member_id": poster,
             "posted_by_id": self.owners[poster], "title": f"Job {n}", "description": "",
             "mode": "bid_window" if outcome == "awarded" else "handoff",
             "status": status.get(outcome) or ("confirmed" if ends < self.now.date()
                                               else "awarded"),
             "site_lat": 43.65, "site_lng": -79.38, "approx_lat": 43.66, "approx_lng": -79.37,
             "locality": "Annex", "address": "1 Main",
             "customer_name": "Customer", "customer_contact": "", "crew_days": 3,
             "starts_on": starts, "ends_on": ends, "value_minor": value, "currency": CURRENCY,
             "closes_at": None, "window_closed_at": None,
             "awarded_member_id": taker if outcome in ("claimed", "awarded") else None,
             "cancel_reason": "Withdrawn" if outcome == "cancelled" else None,
             "created_at": posted}
            for n, posted, poster, taker, outcome, starts, ends, signed, value in plans],
            returning=True)
        taken = [(job_id, *plan) for job_id, plan in zip(job_ids, plans, strict=True)
                 if plan[4] in ("claimed", "awarded")]
        awarded = [t for t in taken if t[5] == "awarded"]
        bid_ids = dict(zip([t[0] for t in awarded], self.insert(Bid, [
            {"job_id": job_id, "member_id": taker, "placed_by_id": self.owners[taker],
             "price_minor": value * 9 // 10, "crew_size": 3, "earliest_start": starts,
             "note": "", "is_joint": False, "status": "submitted", "created_at": posted,
             "submitted_at": posted}
            for job_id, _n, posted, _p, taker, _o, starts, _e, _s, value in awarded],
            returning=True), strict=True))
        self.insert(BidShare, [{"bid_id": bid_ids[t[0]], "member_id": t[4], "share_bp": 10_000,
                                "confirmed_at": t[2]} for t in awarded])
        prices = {t[0]: (t[9] * 9 // 10 if t[0] in bid_ids else t[9]) for t in taken}
        contract_ids = self.insert(JobContract, [
            {"job_id": job_id, "cluster_id": self.cluster.id, "poster_member_id": poster,
             "bid_id": bid_ids.get(job_id), "value_minor": prices[job_id],
             "currency": CURRENCY, "referral_fee_bp": 500,
             "referral_fee_minor": apply_basis_points(prices[job_id], 500),
             "platform_fee_bp": 100, "agreement_id": self.agreement_id, "signed_at": signed}
            for job_id, _n, _t, poster, _k, _o, _s, _e, signed, _v in taken], returning=True)
        self.insert(ContractParty, [{"contract_id": c, "member_id": t[4], "share_bp": 10_000}
                                    for c, t in zip(contract_ids, taken, strict=True)])
        done = [(c, t) for c, t in zip(contract_ids, taken, strict=True)
                if t[7] < self.now.date()]
        ratings, entries = [], []
        for contract_id, (job_id, _n, _posted, poster, taker, _o, _s, ends, _sg, _v) in done:
            confirmed = min(datetime.combine(ends, clock(17), tzinfo=self.zone)
                            .astimezone(UTC) + timedelta(days=1), self.now)
            ratings.append({"job_id": job_id, "rater_member_id": poster,
                            "ratee_member_id": taker, "score": self.rng.randint(2, 5),
                            "on_time": self.rng.random() < 0.8, "comment": "",
                            "created_at": confirmed})
            price = prices[job_id]
            entries.append(self.entry(EntrySource.REFERRAL_FEE, contract_id, taker, poster,
                                      apply_basis_points(price, 500), confirmed))
            entries.append(self.entry(EntrySource.PLATFORM_FEE, contract_id, taker, PLATFORM,
                                      apply_basis_points(price, 100), confirmed))
        self.insert(JobRating, ratings)
        self.year.jobs = count
        return entries

    def settle(self, entries: list[dict[str, Any]]) -> None:
        """The ledger rows, and every month before the last one approved."""
        from marketplace.ledger.models import LedgerEntry, Settlement
        from marketplace.ledger.settlement import current_month, previous_month

        for first in range(0, len(entries), 5_000):
            self.insert(LedgerEntry, entries[first:first + 5_000])
        last_open = previous_month(current_month(self.cluster, self.now))
        months = sorted({e["month"] for e in entries if e["month"] < last_open})
        self.insert(Settlement, [
            {"cluster_id": self.cluster.id, "month": m, "status": "approved",
             "drafted_at": self.now, "approved_at": self.now, "approved_by_id": None}
            for m in months])


def build_year(database_url: str, tag: str, seed: int, members: int, jobs: int,
               bookings: int, machines: int) -> Year:
    """A cluster's year in `database_url` (see the module's docstring)."""
    from sqlalchemy import text

    from marketplace.db import utcnow

    with harness.world_session(database_url) as session:
        generator = Generator(random.Random(seed), session, tag, utcnow(), members)
        entries = generator.bookings(generator.machines(machines), bookings)
        entries += generator.jobs(jobs)
        generator.settle(entries)
        session.commit()
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("ANALYZE"))
            session.commit()
        year = generator.year
        current = generator.month(generator.now)
        year.range_args = {"first": generator.start.strftime("%Y-%m"), "last": current,
                           "member": "cluster"}
    return year


# ------------------------------------------------------------ measuring


@contextmanager
def statements(engine: Any) -> Iterator[list[tuple[str, Any]]]:
    """Every SQL statement (with its parameters) the engine runs meanwhile."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def median_seconds(work: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `work` over `repeats` runs (after one warm-up run)."""
    work()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dataclass
class InProcess:
    """What this process measured: queries per page, figures() and the bare replay."""

    queries: dict[str, int] = field(default_factory=dict)  # "coordinator/busy" -> count
    figures_s: dict[str, float] = field(default_factory=dict)
    bare_s: dict[str, float] = field(default_factory=dict)
    selects: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def page_queries(app: Any, email: str, args: dict[str, str]) -> int:
    """How many statements one GET /dashboard runs for `email` (200 required)."""
    from urllib.parse import urlencode

    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 302, f"login as {email}: {response.status_code}"
    url = f"/dashboard?{urlencode(args)}"
    client.get(url)  # warm: templates compiled, the user's session loaded once
    with statements(app.extensions["engine"]) as seen:
        status = client.get(url).status_code
    if status != 200:
        raise RuntimeError(f"GET {url} as {email}: {status}")
    return len(seen)


def measure_in_process(database_url: str, busy: Year, tiny: Year, repeats: int) -> InProcess:
    """Query counts (busy vs tiny cluster), figures() time and the bare SQL replay."""
    from sqlmodel import Session, select

    from marketplace import create_app
    from marketplace.clusters.models import User
    from marketplace.dashboard.access import scope_for
    from marketplace.dashboard.figures import figures
    from marketplace.dashboard.periods import month_range
    from marketplace.db import utcnow

    app = create_app(harness.app_config(database_url, WTF_CSRF_ENABLED=False))
    engine = app.extensions["engine"]
    found = InProcess()
    try:
        for label, year in (("busy", busy), ("tiny", tiny)):
            for who, email, args in (
                    ("coordinator", year.coordinator_email, year.range_args),
                    ("member", year.member_email, {**year.range_args, "member": ""})):
                found.queries[f"{who}/{label}"] = page_queries(app, email, args)
        now = utcnow()
        with Session(engine, expire_on_commit=False) as session:
            made: dict[str, dict[str, Any]] = {}
            for who, email, member in (("coordinator", busy.coordinator_email, "cluster"),
                                       ("member", busy.member_email, None)):
                user = session.exec(select(User).where(User.email == email)).one()
                scope = scope_for(session, user, member)
                months = month_range(scope.cluster, now, busy.range_args["first"],
                                     busy.range_args["last"])
                with statements(engine) as seen:
                    made[who] = {f.name: f for f in figures(session, scope, months, now)}
                found.figures_s[who] = median_seconds(
                    lambda s=scope, m=months: figures(session, s, m, now), repeats)
                selects = [(q, p) for q, p in seen if q.lstrip().upper().startswith("SELECT")]
                found.selects[who] = len(selects)
                found.bare_s[who] = median_seconds(lambda q=selects: replay(engine, q), repeats)
            check_figures(session, busy, made["coordinator"], found.problems)
    finally:
        engine.dispose()
    counts = found.queries
    for who in ("coordinator", "member"):
        if counts[f"{who}/busy"] != counts[f"{who}/tiny"]:
            found.problems.append(f"{who}: {counts[f'{who}/busy']} queries for the busy "
                                  f"cluster, {counts[f'{who}/tiny']} for the tiny one")
    return found


def replay(engine: Any, selects: list[tuple[str, Any]]) -> None:
    """The dashboard's SELECTs with their parameters, through the bare DB-API cursor."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters in selects:
            cursor.execute(statement, parameters)
            cursor.fetchall()
        cursor.close()
    finally:
        raw.close()


def check_figures(session: Any, year: Year, made: dict[str, Any], problems: list[str]) -> None:
    """The busy cluster's figures against the generator and plain SQL sums."""
    from sqlalchemy import text

    from marketplace.dashboard.periods import MonthRange, months_back

    posted = {row[0]: row[1] for row in made["jobs"].rows}
    booked = {row[0]: row[2] for row in made["utilization"].rows}
    for month in posted:
        if posted[month] != year.posted.get(month, 0):
            problems.append(f"{month}: {posted[month]} jobs posted, generated "
                            f"{year.posted.get(month, 0)}")
        if abs(booked[month] - year.booked.get(month, 0)) > 1e-6:
            problems.append(f"{month}: {booked[month]} minutes booked, generated "
                            f"{year.booked.get(month, 0)}")
    first = year.range_args["first"]
    months = MonthRange(tuple(months_back(year.range_args["last"], n)
                              for n in range(MONTHS - 1, -1, -1)), TIMEZONE)
    assert months.first == first
    where = "cluster_id = :c AND month >= :f AND month <= :l"
    fees = session.execute(text(
        "SELECT COALESCE(SUM(CASE WHEN source = 'booking_refund' THEN -amount_minor "
        f"ELSE amount_minor END), 0) FROM ledgerentry WHERE {where} AND source IN "
        "('booking', 'cancellation_fee', 'booking_refund')"),
        {"c": year.cluster_id, "f": months.first, "l": months.last}).scalar()
    shown = sum(row[1] for row in made["fees"].rows)
    if shown != fees:
        problems.append(f"fees: the dashboard shows {shown}, the ledger sums to {fees}")
    ratings = session.execute(text(
        "SELECT COUNT(*) FROM jobrating JOIN overflowjob ON overflowjob.id = jobrating.job_id "
        "WHERE overflowjob.cluster_id = :c AND jobrating.created_at >= :s "
        "AND jobrating.created_at < :e"),
        {"c": year.cluster_id, "s": months.start.replace(tzinfo=None),
         "e": months.end.replace(tzinfo=None)}).scalar()
    counted = sum(row[2] for row in made["rating"].rows)
    if counted != ratings:
        problems.append(f"ratings: the dashboard counts {counted}, SQL {ratings}")
    session.rollback()


@dataclass
class OverHttp:
    median_ms: dict[str, float] = field(default_factory=dict)
    worst_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    csv_ms: float = 0.0


def measure_http(watchdog: Watchdog, database_url: str, year: Year, repeats: int) -> OverHttp:
    """GET /dashboard over HTTP from a server process, for both viewers."""
    from urllib.parse import urlencode

    server = ServerProcess("app", harness.marketplace_app,
                           harness.app_config(database_url), watchdog)
    found = OverHttp()
    try:
        for who, email, args in (("coordinator", year.coordinator_email, year.range_args),
                                  ("member", year.member_email,
                                   {**year.range_args, "member": ""})):
            http = harness.log_in(server.url, email, PASSWORD, csrf=True)
            url = f"{server.url}/dashboard?{urlencode(args)}"
            if http.get(url, timeout=120).status_code != 200:
                raise RuntimeError(f"GET {url} as {email} failed")
            cpu_before, times = server.cpu_seconds(), []
            for _ in range(repeats):
                started = time.perf_counter()
                http.get(url, timeout=120).raise_for_status()
                times.append(time.perf_counter() - started)
            found.cpu_ms[who] = (server.cpu_seconds() - cpu_before) / repeats * 1000
            found.median_ms[who] = statistics.median(times) * 1000
            found.worst_ms[who] = max(times) * 1000
            if who == "coordinator":
                csv_url = f"{server.url}/dashboard/utilization.csv?{urlencode(args)}"
                found.csv_ms = median_seconds(
                    lambda u=csv_url, h=http: h.get(u, timeout=120).raise_for_status(),
                    repeats) * 1000
    finally:
        server.stop()
    return found


def report(busy: Year, args: argparse.Namespace, database: str, built_s: float,
           local: InProcess, remote: OverHttp) -> None:
    q = local.queries
    rows = []
    for who in ("coordinator", "member"):
        rows.append(
            f"| {who} | {q[f'{who}/busy']} ({q[f'{who}/tiny']} in a tiny cluster) | "
            f"{remote.median_ms[who]:.0f} / {remote.worst_ms[who]:.0f} ms | "
            f"{remote.cpu_ms[who]:.0f} ms | {local.figures_s[who] * 1000:.0f} ms | "
            f"{local.bare_s[who] * 1000:.1f} ms ({local.selects[who]} SELECTs) | "
            f"{remote.median_ms[who] / 1000 / local.bare_s[who]:.1f}x |")
    print(f"""dashboard benchmark: a year of a busy cluster, one page
machine   {harness.machine_line("Flask", "SQLAlchemy", "psycopg")}
database  {database}
world     {args.members} members, {args.machines} machines, {busy.jobs:,} jobs, \
{busy.bookings:,} bookings over {MONTHS} months ({busy.range_args['first']} to \
{busy.range_args['last']}, {TIMEZONE}); built in {built_s:.1f} s

| viewer | queries per page | page median / worst (HTTP) | server CPU per page | \
figures() in-process | bare SQL replay | page / bare |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

one CSV (utilization, coordinator): {remote.csv_ms:.0f} ms median over HTTP
checks    {"all hold" if not local.problems else "; ".join(local.problems)}""")


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=20, help="members (2..200; default 20)")
    parser.add_argument("--machines", type=int, default=30, help="machines (1..500; default 30)")
    parser.add_argument("--jobs", type=int, default=2_000,
                        help=f"jobs over the year (1..{MAX_JOBS}; default 2000)")
    parser.add_argument("--bookings", type=int, default=5_000,
                        help=f"bookings over the year (1..{MAX_BOOKINGS}; default 5000)")
    parser.add_argument("--repeats", type=int, default=REPEATS,
                        help=f"timed runs of each measurement (default {REPEATS})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the year (default 1)")
    harness.add_run_options(
        parser, smoke="5 members, 4 machines, 100 jobs, 200 bookings, 2 repeats",
        timeout="120 s + 20 s per 1 000 jobs and bookings",
        database_url="a loopback database URL, e.g. a scratch PostgreSQL database "
                     "(default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.members, args.machines, args.jobs, args.bookings, args.repeats = 5, 4, 100, 200, 2
    if not (2 <= args.members <= 200 and 1 <= args.machines <= 500
            and 1 <= args.jobs <= MAX_JOBS and 1 <= args.bookings <= MAX_BOOKINGS
            and 1 <= args.repeats <= 100):
        parser.error("--members 2..200, --machines 1..500, --jobs 1..200000, "
                     "--bookings 1..500000, --repeats 1..100")
    harness.check_run_options(parser, args, full_timeout=120 + 20 * (
        args.jobs + args.bookings) / 1000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "dashboard-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        say(f"building a year: {args.jobs} jobs, {args.bookings} bookings")
        started = time.perf_counter()
        busy = build_year(database_url, tag, args.seed, args.members, args.jobs,
                          args.bookings, args.machines)
        built_s = time.perf_counter() - started
        tiny = build_year(database_url, f"{tag}t", args.seed, 3, 5, 5, 2)
        say(f"built in {built_s:.1f} s; counting queries and timing in this process")
        local = measure_in_process(database_url, busy, tiny, args.repeats)
        say("timing the page over HTTP")
        remote = measure_http(watchdog, database_url, busy, args.repeats)
        report(busy, args, database, built_s, local, remote)
    return 1 if local.problems else 0


if __name__ == "__main__":
    sys.exit(main())
