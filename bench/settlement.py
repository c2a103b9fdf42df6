"""Settlement of a big month: the app's netting and approval against one raw SQL query.

Why this exists: on the 1st the coordinator settles the month that just
ended.  The page nets every account of the cluster (`month_nets`: two grouped
queries over the month's ledger entries), plans one transfer per member
(`netting`), and approval records those transfers and locks the month
(`approve`, which nets the month again, inserts the transfers and tells every
member's people).  This benchmark says what that costs for a big cluster
(1 000 members, 200 000 entries in the month), in seconds and in memory, next
to the same aggregation written as ONE raw SQL query in the same run, and
checks that both give every account the same credits and debits.

What is measured, in this order:

1. Building the world (not part of the comparison, printed apart): a cluster
   and its agreement through the services (`harness.found_cluster`:
   create_cluster, publish_agreement), founded 62 days ago; N member
   businesses with an owner each (and a crew user for every fourth), all
   having accepted the agreement, inserted in bulk through the models (one
   multi-row INSERT per table; every member is then checked with the app's
   own `participation_refusals`).  Then the month before the current one
   (in the cluster's time zone) gets E ledger entries, bulk-inserted in
   batches of INSERT_BATCH with executemany, timed on their own.  On
   PostgreSQL the loaded tables are then ANALYZEd, as autovacuum would soon
   do; SQLite is left as the app leaves it.
2. Memory, in a fresh "spawn" process, with `tracemalloc`: the whole app
   path (below) inside an outer transaction that is rolled back at the end
   (each step's session commits to a savepoint), so the real approval can
   still happen once afterwards; then the raw query.  Peaks are Python heap
   allocations over each, above what was allocated before.
3. Time, in another fresh process without tracemalloc, one session per
   request as the web app opens them (Session(engine,
   expire_on_commit=False)): `draft` (the scheduler's sweep), the
   coordinator's review (`month_nets` + `netting`), `approve` (which commits
   and locks the month).  Wall seconds of each with `time.perf_counter()`,
   and the growth of the process's peak RSS (VmHWM, reset through
   /proc/self/clear_refs just before the path; not ru_maxrss, which in a
   spawned child still holds the parent's peak) over its RSS at the start.
   Then, alternating, REPEATS runs of the raw query and of
   `month_nets` alone; medians are printed.
4. Checks: the raw query's credits and debits equal `month_nets`' for every
   account (members and the platform account); the platform's net is minus
   the sum of the members'; the month is approved, and its recorded
   transfers are exactly one per member with a non-zero raw net, in the
   right direction, for the right amount.

The raw query reads the ledger table once per side (UNION ALL of payee
credits and payer debits for the cluster and month) and groups by account:
the least work any implementation must do, with no ORM, no transfers and no
notifications.  So "app/raw" for the whole path says what the app's approval
costs over bare aggregation, and `month_nets`/raw says what the app's two
grouped queries cost over one.

The entries mimic what the app writes (same sources, keys and splits, via
`entry_key`, `allocate` and `apply_basis_points`): bookings of machines owned
by one or two members (split by share), some cancelled (refund of the fee and
sometimes a late-cancellation fee) or charged a damage fee; confirmed jobs
(referral fee to the poster, platform fee, shares to partners); and a few
coordinator adjustments to and from the platform account.  Activity is
skewed: a few members book and work much more than most.  Timestamps are
spread over the month and the month of each entry is the app's own
`ledger_month`.  Everything is seeded (`--seed`), so a run can be repeated.

Nothing here uses the network except the database: `--database-url` must be
a loopback address.  Tables are created with SQLModel.metadata.create_all if
missing; nothing is dropped; each run adds its own cluster (and its own
members, whose ids make every entry key new), so use a scratch database.

    .venv/bin/python bench/settlement.py --smoke
    .venv/bin/python bench/settlement.py
    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE settlebench'   # once
    .venv/bin/python bench/settlement.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/settlebench

Exit status: 0 when every check holds, 1 when one does not (the numbers are
printed either way), 2 on bad arguments, 3 on the hard timeout.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import secrets
import statistics
import sys
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any
from zoneinfo import ZoneInfo

import harness
from harness import Watchdog

MAX_MEMBERS = 20_000
MAX_ENTRIES = 2_000_000
PASSWORD = "bench-settlement-month"
TIMEZONE = "America/Toronto"
CURRENCY = "CAD"
INSERT_BATCH = 5_000
#: Issue 14: approving a month of 1 000 members costs at most this many raw aggregates.
APPROVE_TARGET = 3.0
REPEATS = 3  # raw query and month_nets alone, alternating; medians printed
CHILD_WAIT_S = 600.0  # one measuring child process; the watchdog bounds the whole run anyway
say = harness.Progress("settlement")

RAW_NETS_SQL = """
SELECT account, SUM(credit) AS credits, SUM(debit) AS debits
FROM (
  SELECT payee_member_id AS account, amount_minor AS credit, 0 AS debit
    FROM {table} WHERE cluster_id = :cluster AND month = :month
  UNION ALL
  SELECT payer_member_id AS account, 0 AS credit, amount_minor AS debit
    FROM {table} WHERE cluster_id = :cluster AND month = :month
) AS moves
GROUP BY account
"""

# What people write when they cancel, charge damage or adjust (memos are free text).
CANCEL_REASONS = ("Rain all week, job postponed.", "Customer cancelled the job.",
                  "Crew short, rescheduled.", "Found a smaller machine for it.")
DAMAGE_NOTES = ("Cracked bucket tooth.", "Hydraulic hose split at return.",
                "Scratched cab door.", "Track tensioner bent.")
ADJUSTMENT_REASONS = ("Fuel not refilled at return.", "Goodwill credit for late delivery.",
                      "Correction of a double-charged booking.", "Fuel surcharge from supplier.")


# ---------------------------------------------------------------- the world


@dataclass
class World:
    """The cluster, the month to settle, and what building them cost."""

    cluster_id: int
    coordinator_id: int
    month: str
    members: int
    users: int
    entries: int
    facts: Counter[str]
    seconds: dict[str, float] = field(default_factory=dict)


def insert_members(session: Any, cluster_id: int, agreement_id: int, count: int, tag: str,
                   founded: datetime) -> tuple[list[int], int]:
    """`count` member businesses with an owner each (a crew user for every fourth),
    the agreement accepted by every owner; one multi-row INSERT per table.

    The rows are what `invites.accept_invite` and `agreements.accept_agreement`
    write, made here in bulk because signing up 1 000 businesses one request at
    a time is not what is measured.  Returns the member ids and the user count.
    """
    from sqlalchemy import insert

    from marketplace.clusters.accounts import hash_password
    from marketplace.clusters.models import AgreementAcceptance, Member, Role, User

    rng = random.Random(count)
    password_hash = hash_password(PASSWORD)  # one hash for all: hashing is not measured
    member_ids = list(session.execute(
        insert(Member).returning(Member.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
        [{"cluster_id": cluster_id, "name": f"Member {i:04d} Landscaping {tag}",
          "base_lat": 43.3 + rng.random(), "base_lng": -80.0 + rng.random(),
          "service_radius_km": float(rng.choice((25, 40, 60))),
          "insurance_expires_on": founded.date() + timedelta(days=365),
          "certifications": "", "suspended": False, "exit_noticed_at": None,
          "exit_effective_at": None, "created_at": founded}
         for i in range(count)]).scalars())
    people = [(member_id, Role.OWNER.value, f"owner.{i:04d}.{tag}@bench.test")
              for i, member_id in enumerate(member_ids)]
    people += [(member_id, Role.CREW.value, f"crew.{i:04d}.{tag}@bench.test")
               for i, member_id in enumerate(member_ids) if i % 4 == 0]
    user_ids = list(session.execute(
        insert(User).returning(User.id, sort_by_parameter_order=True),  # type: ignore[arg-type]
        [{"email": email, "name": f"{role.title()} of {member_id}",
          "password_hash": password_hash, "cluster_id": cluster_id, "member_id": member_id,
          "role": role, "locale": None, "timezone": None, "unit_system": None, "active": True,
          "created_at": founded} for member_id, role, email in people]).scalars())
    session.execute(insert(AgreementAcceptance), [
        {"agreement_id": agreement_id, "member_id": member_id, "user_id": user_id,
         "accepted_at": founded}
        for (member_id, role, _email), user_id in zip(people, user_ids, strict=True)
        if role == Role.OWNER.value])
    session.commit()
    return member_ids, len(user_ids)


class Ledger:
    """Writes a month of entries the way the app's services would, as plain rows.

    Every fact becomes the entries the app's code writes for it (`record`,
    `record_split`, `reverse`, `record_contract`); `rows` collects them as
    dicts for a bulk INSERT.
    """

    def __init__(self, rng: random.Random, cluster: Any, coordinator_id: int,
                 member_ids: list[int], start: datetime, end: datetime) -> None:
        from marketplace.ledger.service import ledger_month

        self.rng = rng
        self.cluster = cluster
        self.coordinator_id = coordinator_id
        self.members = member_ids
        self.weights = [rng.paretovariate(1.2) for _ in member_ids]  # a few very busy members
        self.start, self.span = start, (end - start).total_seconds()
        self.end = end
        self.month_of: Callable[[datetime], str] = lambda when: ledger_month(cluster, when)
        self.rows: list[dict[str, Any]] = []
        self.facts: Counter[str] = Counter()
        self.numbers: Counter[str] = Counter()  # source ids, per kind of fact
        self.machines = []
        for _ in range(max(2, len(member_ids) // 3)):
            owners = sorted(rng.sample(member_ids, 1 if rng.random() < 0.8 else 2))
            shares = [10_000] if len(owners) == 1 else rng.choice(([5_000, 5_000],
                                                                   [6_000, 4_000]))
            self.machines.append((owners, shares))

    # -------------------------------------------------------------- helpers

    def _member(self, *excluding: int) -> int:
        while True:
            member = self.rng.choices(self.members, self.weights)[0]
            if member not in excluding:
                return member

    def _amount(self, median_minor: int, low: int, high: int) -> int:
        return max(low, min(high, int(self.rng.lognormvariate(math.log(median_minor), 0.8))))

    def _when(self, after: datetime | None = None) -> datetime:
        if after is None:
            return self.start + timedelta(seconds=self.rng.uniform(0, self.span))
        later = after + timedelta(hours=self.rng.uniform(1, 120))
        return min(later, self.end - timedelta(seconds=1))

    def _entry(self, out: list[dict[str, Any]], source: str, source_id: int,
               payer: int | None, payee: int | None, amount: int, when: datetime,
               memo: str = "", created_by_id: int | None = None) -> None:
        """One row, as `ledger.service.record` writes it (nothing for zero or to oneself)."""
        from marketplace.ledger.models import entry_key

        if amount <= 0 or payer == payee:
            return
        out.append({"cluster_id": self.cluster.id, "source": source, "source_id": source_id,
                    "entry_key": entry_key(source, source_id, payer, payee),
                    "payer_member_id": payer, "payee_member_id": payee,
                    "amount_minor": amount, "currency": self.cluster.currency,
                    "month": self.month_of(when), "memo": memo[:300],
                    "created_by_id": created_by_id, "created_at": when})

    def _split(self, out: list[dict[str, Any]], source: str, source_id: int, payer: int,
               amount: int, owners: list[int], shares: list[int], when: datetime,
               memo: str = "") -> list[tuple[int, int]]:
        """As `record_split`: the parts by share, payees in member-id order."""
        from marketplace.money import allocate

        parts = list(zip(owners, allocate(amount, shares), strict=True))
        for payee, part in parts:
            self._entry(out, source, source_id, payer, payee, part, when, memo)
        return parts

    # ---------------------------------------------------------------- facts

    def booking(self) -> list[dict[str, Any]]:
        """A booking's fee; sometimes cancelled (refund, maybe a late fee) or a damage fee."""
        from marketplace.ledger.models import EntrySource
        from marketplace.money import apply_basis_points

        out: list[dict[str, Any]] = []
        owners, shares = self.rng.choice(self.machines)
        booker = self._member(*owners)
        self.numbers["booking"] += 1
        number, when = self.numbers["booking"], self._when()
        price = self._amount(18_000, 4_500, 600_000)
        parts = self._split(out, EntrySource.BOOKING.value, number, booker, price, owners,
                            shares, when)
        self.facts["booking"] += 1
        luck = self.rng.random()
        if luck < 0.08:  # cancelled after confirmation: the mirror image, maybe a fee
            later, reason = self._when(when), self.rng.choice(CANCEL_REASONS)
            for owner, part in parts:
                self._entry(out, EntrySource.BOOKING_REFUND.value, number, owner, booker,
                            part, later)
            if self.rng.random() < 0.5:
                self._split(out, EntrySource.CANCELLATION_FEE.value, number, booker,
                            apply_basis_points(price, 2_500), owners, shares, later, reason)
            self.facts["cancelled booking"] += 1
        elif luck < 0.11:
            self._split(out, EntrySource.DAMAGE_FEE.value, number, booker,
                        self._amount(25_000, 5_000, 500_000), owners, shares,
                        self._when(when), self.rng.choice(DAMAGE_NOTES))
            self.facts["damage fee"] += 1
        return out

    def job(self) -> list[dict[str, Any]]:
        """A confirmed job, as `record_contract`: referral, platform fee, partner shares."""
        from marketplace.ledger.models import PLATFORM, EntrySource
        from marketplace.money import apply_basis_points

        out: list[dict[str, Any]] = []
        poster = self._member()
        lead = self._member(poster)
        partners: list[int] = []
        for _ in range(self.rng.choice((0, 0, 0, 1, 1, 2))):
            partners.append(self._member(poster, lead, *partners))
        self.numbers["job"] += 1
        number, when = self.numbers["job"], self._when()
        value = self._amount(150_000, 20_000, 5_000_000)
        referral = apply_basis_points(value, 500)
        platform = apply_basis_points(value, 100)
        self._entry(out, EntrySource.REFERRAL_FEE.value, number, lead, poster, referral, when)
        self._entry(out, EntrySource.PLATFORM_FEE.value, number, lead, PLATFORM, platform,
                    when)
        parties = sorted([lead, *partners])
        shares = [10_000] if not partners else \
            [10_000 - 3_000 * len(partners) if m == lead else 3_000 for m in parties]
        self._split(out, EntrySource.JOB_SHARE.value, number, lead,
                    value - referral - platform, parties, shares, when)
        self.facts["job"] += 1
        return out

    def adjustment(self) -> list[dict[str, Any]]:
        """A coordinator's credit or charge, between a member and the platform account."""
        from marketplace.ledger.models import PLATFORM, EntrySource

        out: list[dict[str, Any]] = []
        member = self._member()
        payer, payee = (PLATFORM, member) if self.rng.random() < 0.5 else (member, PLATFORM)
        self.numbers["adjustment"] += 1
        self._entry(out, EntrySource.ADJUSTMENT.value, self.numbers["adjustment"], payer,
                    payee, self._amount(3_000, 100, 100_000), self._when(),
                    self.rng.choice(ADJUSTMENT_REASONS), self.coordinator_id)
        self.facts["adjustment"] += 1
        return out

    def fill(self, count: int) -> None:
        """Facts until `count` entries; whole facts only, the last few as adjustments."""
        while len(self.rows) < count:
            luck = self.rng.random()
            fact = self.booking() if luck < 0.62 else self.job() if luck < 0.995 \
                else self.adjustment()
            if len(self.rows) + len(fact) > count:
                break
            self.rows.extend(fact)
        while len(self.rows) < count:
            self.rows.extend(self.adjustment())
        self.rows.sort(key=lambda row: row["created_at"])


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's, in TIMEZONE (aware, as UTC)."""

    zone = ZoneInfo(TIMEZONE)
    year, number = int(month[:4]), int(month[5:7])
    first = datetime(year, number, 1, tzinfo=zone)
    after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return first.astimezone(UTC), after.astimezone(UTC)


def build_world(database_url: str, members: int, entries: int, tag: str, seed: int) -> World:
    """The cluster through the services, members in bulk, then the month's entries."""
    from sqlalchemy import insert, text
    from sqlmodel import select

    from marketplace.clusters.agreements import (
        Activity,
        agreement_in_force,
        participation_refusals,
    )
    from marketplace.clusters.models import Cluster, Member, User
    from marketplace.db import utcnow
    from marketplace.ledger.models import LedgerEntry
    from marketplace.ledger.settlement import current_month, previous_month

    seconds: dict[str, float] = {}
    with harness.world_session(database_url) as session:
        now = utcnow()
        founded = now - timedelta(days=62)  # before the month to settle began
        started = time.perf_counter()
        harness.found_cluster(session, tag, purpose="Settle a big month.", timezone=TIMEZONE,
                              members=[], password=PASSWORD, now=founded)
        coordinator = session.exec(select(User).where(
            User.email == harness.coordinator_email(tag))).one()
        cluster = session.get(Cluster, coordinator.cluster_id)
        assert cluster is not None and cluster.id is not None and coordinator.id is not None
        agreement = agreement_in_force(session, cluster.id)
        assert agreement is not None and agreement.id is not None
        member_ids, users = insert_members(session, cluster.id, agreement.id, members, tag,
                                           founded)
        refusals = participation_refusals(
            session, session.exec(select(Member).where(Member.cluster_id == cluster.id)),
            Activity.EQUIPMENT, now)
        refused = {m: r for m, r in refusals.items() if r is not None}
        if len(refusals) != members or refused:
            raise RuntimeError(f"bulk-inserted members are not in good standing: {refused}")
        seconds["cluster"] = time.perf_counter() - started

        started = time.perf_counter()
        month = previous_month(current_month(cluster, now))
        start, end = month_bounds(month)
        ledger = Ledger(random.Random(seed), cluster, coordinator.id, member_ids, start, end)
        ledger.fill(entries)
        wrong = [row for row in ledger.rows if row["month"] != month]
        if wrong:
            raise RuntimeError(f"{len(wrong)} entries fall outside {month}: {wrong[0]}")
        seconds["generate"] = time.perf_counter() - started

        started = time.perf_counter()
        table = LedgerEntry.__table__  # type: ignore[attr-defined]
        for first in range(0, len(ledger.rows), INSERT_BATCH):
            session.execute(insert(table), ledger.rows[first:first + INSERT_BATCH])
        session.commit()
        seconds["insert"] = time.perf_counter() - started
        if session.get_bind().dialect.name == "postgresql":
            started = time.perf_counter()
            session.execute(text(f'ANALYZE {table.name}, member, "user"'))
            session.commit()
            seconds["analyze"] = time.perf_counter() - started
    return World(cluster.id, coordinator.id, month, members, users, len(ledger.rows),
                 ledger.facts, seconds)


# ------------------------------------------------------------ measuring


def raw_nets(connection: Any, cluster_id: int, month: str) -> dict[int | None, tuple[int, int]]:
    """Account -> (credits, debits) of the month, in ONE SQL statement."""
    from sqlalchemy import text

    from marketplace.ledger.models import LedgerEntry

    sql = text(RAW_NETS_SQL.format(table=LedgerEntry.__tablename__))
    return {account: (int(credits), int(debits)) for account, credits, debits
            in connection.execute(sql, {"cluster": cluster_id, "month": month})}


def app_path(sessions: Callable[[], Any], spec: dict[str, Any], now: datetime,
             clock: Callable[[], float]) -> tuple[dict[str, float], dict[int | None, Any]]:
    """Draft, review (month_nets + netting), approve: one session per request.

    Returns the seconds of each step (by `clock`) and the review's nets.
    """
    from marketplace.clusters.models import Cluster, User
    from marketplace.ledger import settlement

    steps: dict[str, float] = {}
    cluster_id, month = spec["cluster_id"], spec["month"]
    t0 = clock()
    with sessions() as session:  # the scheduler's sweep drafts the month on the 1st
        cluster = session.get(Cluster, cluster_id)
        settlement.draft(session, cluster, month, now)
    t1 = clock()
    with sessions() as session:  # the coordinator opens the month's page
        nets = settlement.month_nets(session, cluster_id, month)
        t2 = clock()
        plan = settlement.netting(nets)
    t3 = clock()
    with sessions() as session:  # ... and approves it
        actor = session.get(User, spec["coordinator_id"])
        settlement.approve(session, actor, month, {}, now)
    t4 = clock()
    steps.update(draft=t1 - t0, month_nets=t2 - t1, netting=t3 - t2, approve=t4 - t3,
                 total=t4 - t0)
    steps["planned"] = len(plan)
    return steps, nets


def _in_child(work: Callable[[dict[str, Any]], dict[str, Any]], spec: dict[str, Any],
              conn: Connection) -> None:
    """Child process: run `work(spec)`, send back ("ok", result) or ("error", traceback)."""
    try:
        conn.send(("ok", work(spec)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    conn.close()


def memory_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """tracemalloc peaks of the app path (rolled back afterwards) and of the raw query."""
    from sqlmodel import Session

    from marketplace.db import make_engine, utcnow
    from marketplace.models import import_all_models

    import_all_models()
    engine = make_engine(spec["database_url"])
    result: dict[str, Any] = {}
    try:
        with engine.connect() as connection:
            outer = connection.begin()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            started = time.perf_counter()
            steps, _nets = app_path(
                lambda: Session(bind=connection, expire_on_commit=False,
                                join_transaction_mode="create_savepoint"),
                spec, utcnow(), time.perf_counter)
            result["app_peak"] = tracemalloc.get_traced_memory()[1] - base
            result["app_seconds_traced"] = time.perf_counter() - started
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            raw_nets(connection, spec["cluster_id"], spec["month"])
            result["raw_peak"] = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
            outer.rollback()  # the real approval is the timed pass's
            result["planned"] = steps["planned"]
    finally:
        engine.dispose()
    return result


def _memory_kib(field: str) -> int | None:
    """`field` of /proc/self/status (VmRSS: resident now, VmHWM: its peak), in KiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset the process's peak RSS (VmHWM) to its RSS now (Linux, /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def timed_pass(spec: dict[str, Any]) -> dict[str, Any]:
    """The real app path, timed, then the raw query and month_nets alone; the checks."""
    from sqlalchemy import text
    from sqlalchemy.orm import configure_mappers
    from sqlmodel import Session, select

    from marketplace.db import make_engine, utcnow
    from marketplace.ledger import settlement
    from marketplace.ledger.models import (
        SettlementStatus,
        SettlementTransfer,
        TransferDirection,
    )
    from marketplace.models import import_all_models

    import_all_models()
    engine = make_engine(spec["database_url"])
    cluster_id, month = spec["cluster_id"], spec["month"]
    result: dict[str, Any] = {}
    try:
        with engine.connect() as connection:  # a warm pool, as in a running web process
            connection.execute(text("SELECT 1"))
        configure_mappers()  # done by the first request of a web process
        # The peak RSS growth over the path.  Not ru_maxrss: a "spawn" child is forked from
        # the parent before it execs, and Linux carries the forked copy's peak (the parent's
        # RSS, with the whole generated ledger in it) into the child's ru_maxrss, where
        # clear_refs cannot reset it.  VmHWM is the child's own peak, and clear_refs resets it.
        rss_before = _memory_kib("VmRSS")
        reset = _reset_peak_rss()
        steps, nets = app_path(lambda: Session(engine, expire_on_commit=False), spec,
                               utcnow(), time.perf_counter)
        peak_after = _memory_kib("VmHWM")
        result.update(steps=steps, rss_growth_kib=peak_after - rss_before
                      if reset and rss_before is not None and peak_after is not None else None,
                      ru_maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      rss_before_kib=rss_before)

        raw_seconds: list[float] = []
        nets_seconds: list[float] = []
        raw: dict[int | None, tuple[int, int]] = {}
        for _ in range(REPEATS):
            with engine.connect() as connection:
                started = time.perf_counter()
                raw = raw_nets(connection, cluster_id, month)
                raw_seconds.append(time.perf_counter() - started)
            with Session(engine, expire_on_commit=False) as session:
                started = time.perf_counter()
                settlement.month_nets(session, cluster_id, month)
                nets_seconds.append(time.perf_counter() - started)
        result.update(raw_seconds=raw_seconds, nets_seconds=nets_seconds, accounts=len(raw))

        problems: list[str] = []
        app = {account: (net.credits, net.debits) for account, net in nets.items()}
        differing = sorted((a for a in set(app) | set(raw) if app.get(a) != raw.get(a)),
                           key=lambda a: -1 if a is None else a)
        if differing:
            problems.append(f"{len(differing)} accounts differ between month_nets and the raw "
                            f"query, e.g. {[(a, app.get(a), raw.get(a)) for a in differing[:3]]}")
        member_nets = {a: c - d for a, (c, d) in raw.items() if a is not None}
        platform = raw.get(None, (0, 0))
        if platform[0] - platform[1] != -sum(member_nets.values()):
            problems.append(f"the platform's net {platform[0] - platform[1]} is not minus the "
                            f"members' sum {sum(member_nets.values())}")
        with Session(engine, expire_on_commit=False) as session:
            settled = settlement.settlement_for(session, cluster_id, month)
            if settled is None or settled.status != SettlementStatus.APPROVED:
                problems.append(f"the month is not approved: {settled}")
            transfers = {} if settled is None else {
                t.member_id: (t.direction, t.amount_minor) for t in session.exec(
                    select(SettlementTransfer).where(
                        SettlementTransfer.settlement_id == settled.id))}
        expected = {m: (TransferDirection.TO_MEMBER.value if net > 0
                        else TransferDirection.FROM_MEMBER.value, abs(net))
                    for m, net in member_nets.items() if net != 0}
        if transfers != expected:
            wrong = [m for m in set(transfers) | set(expected)
                     if transfers.get(m) != expected.get(m)]
            problems.append(f"{len(wrong)} recorded transfers differ from the raw nets "
                            f"({len(transfers)} recorded, {len(expected)} expected)")
        result.update(transfers=len(transfers), problems=problems,
                      platform_net=platform[0] - platform[1])
    finally:
        engine.dispose()
    return result


def run_child(watchdog: Watchdog, role: str, work: Callable[[dict[str, Any]], dict[str, Any]],
              spec: dict[str, Any]) -> dict[str, Any]:
    """`work(spec)` in a fresh "spawn" process (imports and heap of its own); its result."""
    conn, process = watchdog.spawn(role, _in_child, (work, spec))
    try:
        if not conn.poll(CHILD_WAIT_S):
            raise RuntimeError(f"the {role} process did not report in {CHILD_WAIT_S:.0f} s")
        status, payload = conn.recv()
    except EOFError:
        watchdog.wait_if_expiring()  # killed by the hard timeout: exit 3, not this error
        raise RuntimeError(f"the {role} process died without a result") from None
    finally:
        harness.stop_children([], [process], None)
    if status != "ok":
        raise RuntimeError(f"the {role} process failed:\n{payload}")
    return payload


# ----------------------------------------------------------------- report


def report(world: World, memory: dict[str, Any], timed: dict[str, Any], database: str) -> None:
    """The results block: the numbers someone quotes, with what they were measured on."""
    steps = timed["steps"]
    raw = statistics.median(timed["raw_seconds"])
    nets_alone = statistics.median(timed["nets_seconds"])
    mib = 1024 * 1024
    rss = "not available (needs Linux /proc)" if timed["rss_growth_kib"] is None else \
        f"+{timed['rss_growth_kib'] / 1024:.1f} MiB over its " \
        f"{timed['rss_before_kib'] / 1024:.0f} MiB at the start (VmHWM, reset just before)"
    facts = ", ".join(f"{n} {kind}" for kind, n in world.facts.most_common())
    s = world.seconds
    analyze = f", ANALYZE {s['analyze']:.1f} s" if "analyze" in s else ""

    def spread(values: list[float]) -> str:
        return " / ".join(f"{v:.3f}" for v in values)

    print(f"""
== settlement: one month of {world.members} members and {world.entries} ledger entries ==
machine   {harness.machine_line("SQLAlchemy", "sqlmodel", "psycopg")}
database  {database}
world     cluster {world.cluster_id}, month {world.month} ({TIMEZONE}); {world.members} members, \
{world.users} users
          facts: {facts}
setup     cluster + members {s['cluster']:.1f} s, entries generated {s['generate']:.1f} s, \
inserted {s['insert']:.1f} s ({world.entries / s['insert']:,.0f} rows/s, executemany in \
batches of {INSERT_BATCH}){analyze}
accounts  {timed['accounts']} with entries (members + platform); {timed['transfers']} transfers \
recorded; platform net {timed['platform_net']} minor units

app path (fresh process, one session per request)          seconds
  draft (scheduler)                                         {steps['draft']:8.3f}
  review: month_nets                                        {steps['month_nets']:8.3f}
  review: netting                                           {steps['netting']:8.3f}
  approve (nets again, transfers, notifications, commit)    {steps['approve']:8.3f}
  total                                                     {steps['total']:8.3f}
raw SQL, one UNION ALL query (median of {REPEATS}: {spread(timed['raw_seconds'])})    \
{raw:8.3f}
month_nets alone (median of {REPEATS}: {spread(timed['nets_seconds'])})           \
{nets_alone:8.3f}

ratio app/raw: approval {steps['approve'] / raw:.2f}x (target <= {APPROVE_TARGET:.0f}x: \
{"met" if steps['approve'] / raw <= APPROVE_TARGET else "NOT met"}); whole path \
{steps['total'] / raw:.1f}x; aggregation alone (month_nets/raw) {nets_alone / raw:.2f}x
peak memory: app path {memory['app_peak'] / mib:.1f} MiB, raw query \
{memory['raw_peak'] / mib:.2f} MiB (tracemalloc, separate pass, rolled back; the path took \
{memory['app_seconds_traced']:.2f} s under tracemalloc)
             app path RSS peak {rss}
             (not ru_maxrss: {timed['ru_maxrss_kib'] / 1024:.0f} MiB there, the parent's peak \
that a spawned child inherits)
checks    {"all hold" if not timed["problems"] else "; ".join(timed["problems"])}
(seconds: wall time.perf_counter(); checks: raw credits/debits = month_nets for every account,
 platform net = -sum(member nets), month approved, transfers = one per non-zero raw member net)
""", flush=True)


# ------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=1000,
                        help=f"member businesses in the cluster (2..{MAX_MEMBERS}; default 1000)")
    parser.add_argument("--entries", type=int, default=200_000,
                        help=f"ledger entries in the month (1..{MAX_ENTRIES}; default 200000)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the entries' random facts (default 1)")
    harness.add_run_options(
        parser, smoke="100 members, 5 000 entries",
        timeout="120 s + 3 s per 1 000 entries",
        database_url="a loopback database URL, e.g. a scratch PostgreSQL database "
                     "(default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.members, args.entries = 100, 5_000
    if not 2 <= args.members <= MAX_MEMBERS or not 1 <= args.entries <= MAX_ENTRIES:
        parser.error(f"--members must be 2..{MAX_MEMBERS} and --entries 1..{MAX_ENTRIES}")
    harness.check_run_options(parser, args, full_timeout=120 + 3 * args.entries / 1000)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = secrets.token_hex(4)
    with Watchdog(args.timeout, say, "settlement-bench") as watchdog:
        tmpdir = None if args.database_url else watchdog.temp_dir()
        database_url, database = harness.choose_database(args.database_url, tmpdir)
        say(f"building a cluster of {args.members} members and {args.entries} entries")
        world = build_world(database_url, args.members, args.entries, tag, args.seed)
        say(f"world built: cluster {world.cluster_id}, month {world.month}, entries inserted "
            f"in {world.seconds['insert']:.1f} s")
        spec = {"database_url": database_url, "cluster_id": world.cluster_id,
                "coordinator_id": world.coordinator_id, "month": world.month}
        say("memory pass (tracemalloc; rolled back)")
        memory = run_child(watchdog, "memory", memory_pass, spec)
        say(f"app path peak {memory['app_peak'] / 2**20:.1f} MiB; timed pass")
        timed = run_child(watchdog, "timed", timed_pass, spec)
        say(f"app path {timed['steps']['total']:.2f} s")
        report(world, memory, timed, database)
    return 1 if timed["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
