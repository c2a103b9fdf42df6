"""Holes a reviewer found in the cluster totals a member sees (issue #16), closed.

1. Amounts every member already knows -- a hand-off's value is the job's value
   on the board, its referral and platform fees that value times the agreement's
   rates, an untaken job's value is on its card -- do not hide anything, so they
   do not count towards k: two hand-offs and one award do not make three hidden
   contracts.  Revenue counts a contract once, not once per ledger entry.
2. A closed month's figures never move again: not when the coordinator changes
   the time zone, not when a fact is filed late, not with another range.  The
   first read of a closed month stores what members see of it; later reads
   serve that.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select

from marketplace.clusters.models import User
from marketplace.clusters.service import ClusterSettings, update_cluster
from marketplace.dashboard import disclosure
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.figures import figures
from marketplace.dashboard.models import ClusterSnapshot
from marketplace.dashboard.periods import month_range
from marketplace.equipment import booking, listings
from marketplace.jobs import bidding, completion
from marketplace.jobs.models import JobRating, OverflowJob
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, LedgerEntry, entry_key
from tests.conftest import login
from tests.dashboard.conftest import (
    APRIL_HANDOFFS,
    Market,
    award,
    bid,
    bid_window,
    handoff,
    utc,
)
from tests.dashboard.test_disclosure import _clock, read
from tests.dashboard.test_pages import tables
from tests.equipment.conftest import at
from tests.equipment.conftest import draft as machine_draft
from tests.jobs.conftest import job_draft

KEPT = "Kept in the cluster (CAD)"
UNTAKEN = "Not taken by anyone (CAD)"
CHARTS = ("value", "fees", "revenue", "rating")


def _csvs(client: FlaskClient, monkeypatch: pytest.MonkeyPatch, when: datetime,
          query: str = "first=2026-04&last=2026-05") -> dict[str, bytes]:
    """The member's four pooled CSVs, byte for byte."""
    _clock(monkeypatch, when)
    found = {}
    for chart in CHARTS:
        response = client.get(f"/dashboard/{chart}.csv?{query}&member={CLUSTER}")
        assert response.status_code == 200
        found[chart] = response.get_data()
    return found


# --- 1. what everyone knows hides nothing ------------------------------------------------


def test_known_hand_off_values_do_not_count_towards_k(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """May: A hands jobs to C (500.00) and D (600.00), and E wins C's bid window at
    1 500.00.  Three contracts from three members -- but B saw both hand-offs on the
    board, so the May total less 1 100.00 would be E's winning bid: withheld.  June
    has hand-offs only: the total is a sum of values on the board, so it is shown."""
    a, b, c, d, e = (market.owner(n) for n in "abcde")
    handoff(session, a, c, 50_000, utc(5, 10))
    handoff(session, a, d, 60_000, utc(5, 12))
    window = bid_window(session, c, 200_000, utc(5, 4), utc(5, 6), utc(5, 20).date())
    award(session, c, window, bid(session, e, window, 150_000, utc(5, 4, 15)), utc(5, 6, 13))
    handoff(session, e, c, 70_000, utc(6, 5))
    login(client, b)
    cells, _p, page = read(client, monkeypatch, utc(7, 2))
    assert cells[("value", "2026-05", KEPT)] == ""
    may = page.split('id="table-value"', 1)[1].split('data-value="2026-05"', 1)[1]
    assert "too few to show" in may.split("</tr>", 1)[0]
    assert cells[("value", "2026-06", KEPT)] == "700.00"
    # The job nobody took is on the board for everyone: its value is no secret.
    assert cells[("value", "2026-04", UNTAKEN)] == "770.00"
    # The poster of the bid window knows the price: for C nothing is hidden in May
    # but the hand-offs it knows as well, so C sees the total.
    login(client, c)
    cells, _p, _page = read(client, monkeypatch, utc(7, 2))
    assert cells[("value", "2026-05", KEPT)] == "2600.00"


def test_a_contract_counts_once_in_revenue_however_many_entries(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """May's one contract: C leads a joint bid with D and E on A's bid window and wins
    it.  Its entries pay A (the referral fee), D and E (their shares): three entries to
    three members, but one contract -- its total would give the price away."""
    a, b, c, d, e = (market.owner(n) for n in "abcde")
    job = bid_window(session, a, 300_000, utc(5, 4), utc(5, 6), utc(5, 20).date())
    joint = bidding.propose_joint_bid(
        session, c, job, bidding.BidTerms(240_000, 3, date(2026, 5, 20)),
        {market.member("c"): 4_000, market.member("d"): 3_000, market.member("e"): 3_000},
        utc(5, 4, 15))
    assert joint.id is not None
    bidding.confirm_joint_share(session, d, joint.id, utc(5, 4, 16))
    bidding.confirm_joint_share(session, e, joint.id, utc(5, 4, 17))
    bidding.submit_joint_bid(session, c, joint.id, utc(5, 4, 18))
    award(session, a, job, joint.id, utc(5, 6, 13))
    completion.report_done(session, c, job, utc(5, 22))
    completion.confirm_completion(session, a, job, utc(5, 23))
    coordinator = market.world.coordinator
    for month, when in (("2026-04", utc(5, 2)), ("2026-05", utc(6, 2))):
        settlement.draft_for(session, coordinator, month, when)
        settlement.approve(session, coordinator, month, {}, when)
    login(client, b)
    cells, _p, _page = read(client, monkeypatch, utc(6, 3))
    for header in ("Received (CAD)", "Paid (CAD)", "Net (CAD)"):
        assert cells[("revenue", "2026-05", header)] == "", header
    # April: four hand-offs (known) and three bookings from C, D and E: shown.
    assert cells[("revenue", "2026-04", "Received (CAD)")] != ""


def test_a_booking_counts_once_however_many_owners(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """C, D and E own a machine together; A books it once in May.  Its fee is paid to
    three owners, but it is one booking: May's fees stay withheld from B."""
    machine = listings.record_co_owned(
        session, market.world.coordinator, machine_draft(name="Shared trencher"),
        {market.member("c"): 3_334, market.member("d"): 3_333, market.member("e"): 3_333},
        utc(5, 1))
    assert machine.id is not None
    booking.book(session, market.owner("a"), machine.id, at(date(2026, 5, 12), 9),
                 at(date(2026, 5, 12), 13), utc(5, 11))
    login(client, market.owner("b"))
    cells, _p, _page = read(client, monkeypatch, utc(6, 2))
    assert cells[("fees", "2026-05", "Fees earned (CAD)")] == ""


# --- 2. a closed month never moves -------------------------------------------------------


def test_a_closed_month_reads_the_same_after_the_time_zone_changes(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """C claims A's job at 23:30 on 30 April in Toronto (1 May in Paris).  B reads April
    and May; the coordinator moves the cluster to Paris; B reads them again: the same
    bytes, though April's contract now falls in May where the cluster is."""
    a, b, c = market.owner("a"), market.owner("b"), market.owner("c")
    handoff(session, a, c, 90_000, datetime(2026, 5, 1, 2, 30, tzinfo=UTC),
            date(2026, 5, 6))
    login(client, b)
    before = _csvs(client, monkeypatch, utc(6, 2))
    april = sum(v for _p, _w, v, _s, _o in APRIL_HANDOFFS) + 90_000
    assert f"2026-04,{april / 100:.2f}," in before["value"].decode()
    cluster = market.world.cluster
    update_cluster(session, market.world.coordinator, ClusterSettings(
        cluster.name, cluster.currency, cluster.default_locale, "Europe/Paris"))
    assert _csvs(client, monkeypatch, utc(6, 2)) == before
    # The coordinator's own view follows the zone, as before.
    login(client, market.world.coordinator)
    _clock(monkeypatch, utc(6, 2))
    live = client.get(f"/dashboard/value.csv?first=2026-04&last=2026-05&member={CLUSTER}")
    assert "2026-05,900.00," in live.get_data(as_text=True)


def test_a_late_fact_does_not_change_a_published_month(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """B reads April; then a rating and a booking fee are filed into April after the
    fact (an import, a clock that was wrong): B's April stays as it was."""
    b = market.owner("b")
    login(client, b)
    before = _csvs(client, monkeypatch, utc(5, 2))
    cells, _p, _page = read(client, monkeypatch, utc(5, 2))
    assert cells[("rating", "2026-04", "Average rating")] == "4.25"
    assert cells[("fees", "2026-04", "Fees earned (CAD)")] == "480.00"
    job = session.exec(select(OverflowJob).where(OverflowJob.title == "April job 2")).one()
    session.add(JobRating(job_id=job.id, rater_member_id=market.member("c"),  # type: ignore[arg-type]
                          ratee_member_id=market.member("a"), score=1, on_time=False,
                          created_at=utc(4, 28)))
    source = EntrySource.BOOKING.value
    payer, payee = market.member("a"), market.member("d")
    session.add(LedgerEntry(
        cluster_id=market.world.cluster.id, source=source, source_id=99_999,  # type: ignore[arg-type]
        entry_key=entry_key(source, 99_999, payer, payee), payer_member_id=payer,
        payee_member_id=payee, amount_minor=12_345, currency="CAD", month="2026-04",
        created_at=utc(5, 3)))
    session.commit()
    assert _csvs(client, monkeypatch, utc(5, 4)) == before


def test_the_range_does_not_change_a_month(client: FlaskClient, session: Session,
                                           market: Market,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """In May C, D and E post jobs nobody takes; D's last one, posted on 3 May, was to
    start on 20 April.  May's untaken total is the same whichever months B asks for."""
    from marketplace.jobs import service

    for name, value, starts in (("c", 11_000, 10), ("d", 12_000, 12), ("e", 13_000, 14)):
        service.post_job(session, market.owner(name),
                         job_draft(value_minor=value, starts_on=date(2026, 5, starts),
                                   ends_on=date(2026, 5, starts + 1)), utc(5, 2))
    service.post_job(session, market.owner("d"),
                     job_draft(value_minor=9_000, starts_on=date(2026, 4, 20),
                               ends_on=date(2026, 4, 21)), utc(5, 3))
    now = utc(6, 2)
    login(client, market.owner("b"))

    def may(query: str) -> list[str]:
        texts = _csvs(client, monkeypatch, now, query)
        return [line for chart in CHARTS for line in texts[chart].decode().splitlines()
                if line.startswith("2026-05,")]

    # What B reads agrees, whichever range it reads first ...
    narrow_first = may("first=2026-05&last=2026-07")
    assert may("first=2026-04&last=2026-07") == narrow_first
    assert "2026-05,0.00,450.00" in narrow_first
    # ... and so does what is computed before anything is stored.
    scope = scope_for(session, market.owner("b"), CLUSTER)
    rule = disclosure.Rule.of(scope, now)
    wide = month_range(scope.cluster, now, "2026-04", "2026-07")
    narrow = month_range(scope.cluster, now, "2026-05", "2026-07")
    assert disclosure.live_value_pools(session, scope, wide, rule)["2026-05"][1].total == \
        disclosure.live_value_pools(session, scope, narrow, rule)["2026-05"][1].total == 45_000


# --- the snapshot itself ------------------------------------------------------------------


def _snapshot_count(session: Session, cluster_id: int) -> int:
    session.rollback()  # a new transaction: what the app committed since
    return session.exec(select(func.count()).select_from(ClusterSnapshot)
                        .where(col(ClusterSnapshot.cluster_id) == cluster_id)).one()


def test_two_first_reads_at_once_store_one_snapshot(app: Flask, session: Session,
                                                    market: Market) -> None:
    """B and E read the cluster's closed months for the first time at the same moment,
    each in its own transaction: one snapshot per month and figure is stored, and both
    read the same numbers."""
    engine = app.extensions["engine"]
    now = utc(6, 2)
    readers = [market.owner("b"), market.owner("e")] * 2
    barrier = threading.Barrier(len(readers), timeout=30)
    results: list[object] = []
    errors: list[str] = []
    lock = threading.Lock()

    def look(user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            try:
                viewer = own.get(User, user_id)
                assert viewer is not None
                scope = scope_for(own, viewer, CLUSTER)
                months = month_range(scope.cluster, now, "2026-03", "2026-06")
                own.commit()
                barrier.wait()
                cells = [(f.name, f.rows) for f in figures(own, scope, months, now)
                         if f.name in CHARTS]
                with lock:
                    results.append((user_id, cells))
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                with lock:
                    errors.append(repr(error))

    threads = [threading.Thread(target=look, args=(u.id,)) for u in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # Three closed months (March, April, May) x five figures (kept, not taken, fees,
    # ratings, on time); June is running, and revenue waits for an approved month.
    assert _snapshot_count(session, market.world.cluster.id) == 3 * 5  # type: ignore[arg-type]
    by_reader: dict[object, object] = {}
    for user_id, cells in results:  # type: ignore[misc]
        assert by_reader.setdefault(user_id, cells) == cells


def test_the_coordinators_view_stores_nothing_and_stays_live(
        client: FlaskClient, session: Session, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    login(client, market.world.coordinator)
    read(client, monkeypatch, utc(6, 2))
    assert _snapshot_count(session, market.world.cluster.id) == 0  # type: ignore[arg-type]
    login(client, market.owner("b"))
    page = read(client, monkeypatch, utc(6, 2))[2]
    assert _snapshot_count(session, market.world.cluster.id) > 0  # type: ignore[arg-type]
    assert tables(page)["value"][0][:2] == ["2026-04", "4600.00"]
