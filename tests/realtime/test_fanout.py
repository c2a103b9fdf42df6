"""A post's notifications are written after its commit, off the request, exactly once.

What a poster and a partner rely on:
- posting answers without waiting for the people it reaches: the posting
  transaction stores the job and one owed fan-out, nothing per recipient;
- every eligible partner is told once, whoever does the fan-out (the app's
  background runner, the sweep after a crash, two instances at once);
- a post that is rolled back owes nothing, and a job taken before its fan-out
  ran is announced to nobody;
- on the production setting, a partner's phone hears of a job posted over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlmodel import Session, col, func, select

from marketplace import create_app, fanout
from marketplace.db import make_engine, utcnow
from marketplace.jobs import service
from marketplace.jobs.models import OverflowJob
from marketplace.realtime.models import Notification, PendingFanout
from marketplace.realtime.publisher import FANOUT_EXTENSION
from marketplace.scope import AppScope, bind, scope_of
from tests.conftest import CHEAP_HASHING, NOW, PASSWORD, SECRET, World
from tests.jobs.conftest import add_partner, give_profile, job_draft
from tests.live import Inbox, live_server, logged_in_cookie, socket_client
from tests.statements import recorded

PARTNERS = 3


@pytest.fixture
def owed(session: Session) -> list[int]:
    """The session acts with a runner that only records what it is handed: a process
    that committed the post and stopped before doing the fan-out."""
    handed: list[int] = []
    bind(session, (scope_of(session) or AppScope()).with_(fanout.RUNNER, handed.append))
    return handed


def _partners(session: Session, world: World) -> list[int]:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    users = [world.owner_b] + [add_partner(session, world, f"Partner {n}", f"p{n}@fan.test")
                               for n in range(PARTNERS - 1)]
    session.commit()
    return sorted(u.id for u in users if u.id is not None)


def _told(session: Session, job_id: int) -> list[int]:
    """Who holds a job.posted notification of this job (one entry per row)."""
    session.rollback()  # read what is committed now
    return sorted(session.exec(select(Notification.user_id).where(
        Notification.kind == "job.posted", Notification.link == f"/jobs/{job_id}")))


def _owed_rows(session: Session) -> int:
    session.rollback()
    return session.exec(select(func.count()).select_from(PendingFanout)).one()


def test_the_post_commits_one_owed_fan_out_and_the_runner_tells_each_partner_once(
        session: Session, world: World, owed: list[int]) -> None:
    partners = _partners(session, world)
    job = service.post_job(session, world.owner_a, job_draft(), NOW)
    assert job.id is not None
    assert _told(session, job.id) == [] and _owed_rows(session) == 1 and len(owed) == 1

    assert fanout.run_pending(session, owed[0]) == PARTNERS
    assert _told(session, job.id) == partners and _owed_rows(session) == 0
    assert fanout.run_pending(session, owed[0]) == 0  # done: a second run tells nobody
    assert _told(session, job.id) == partners


def test_a_rolled_back_post_owes_nothing(session: Session, world: World,
                                         owed: list[int]) -> None:
    _partners(session, world)
    job = OverflowJob(cluster_id=world.cluster.id, poster_member_id=world.owner_a.member_id,
                      posted_by_id=world.owner_a.id, title="Never posted", description="",
                      mode="handoff", site_lat=43.65, site_lng=-79.38, approx_lat=43.65,
                      approx_lng=-79.38, locality="Annex", address="1 Main",
                      customer_name="C", customer_contact="c", crew_days=1,
                      starts_on=NOW.date(), ends_on=NOW.date(), value_minor=100,
                      currency="CAD", created_at=NOW)
    session.add(job)
    session.flush()
    assert job.id is not None
    fanout.fan_out(session, "job.posted", job.id, NOW)
    session.rollback()
    assert owed == [] and _owed_rows(session) == 0


def test_what_a_stopped_process_owed_is_done_by_the_sweep_once(
        session: Session, world: World, owed: list[int]) -> None:
    partners = _partners(session, world)
    job = service.post_job(session, world.owner_a, job_draft(), NOW)
    assert job.id is not None
    assert fanout.sweep(session, NOW) == 0  # young: still its runner's
    assert _told(session, job.id) == []
    later = NOW + fanout.SWEEP_AFTER + timedelta(seconds=1)
    assert fanout.sweep(session, later) == PARTNERS
    assert fanout.sweep(session, later) == 0
    assert _told(session, job.id) == partners and _owed_rows(session) == 0


def test_a_job_taken_before_its_fan_out_ran_is_announced_to_nobody(
        session: Session, world: World, owed: list[int]) -> None:
    _partners(session, world)
    job = service.post_job(session, world.owner_a, job_draft(), NOW)
    assert job.id is not None
    service.claim_job(session, world.owner_b, job.id, NOW + timedelta(minutes=1))
    assert fanout.run_pending(session, owed[0]) == 0
    assert _told(session, job.id) == [] and _owed_rows(session) == 0


def test_two_workers_doing_the_same_fan_outs_at_once_tell_each_partner_once(
        session: Session, world: World, owed: list[int], database_url: str) -> None:
    """Two instances (their own engines and connections, real threads) race for every
    owed fan-out: on PostgreSQL the second DELETE waits for the first to commit and
    then finds nothing; on SQLite the write lock serializes them."""
    partners = _partners(session, world)
    jobs = [service.post_job(session, world.owner_a, job_draft(title=f"Race {n}"), NOW)
            for n in range(6)]
    start = threading.Barrier(2)
    told: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        engine = make_engine(database_url)
        try:
            with Session(engine, expire_on_commit=False) as own:
                start.wait(timeout=10)
                for fanout_id in owed:
                    told.append(fanout.run_pending(own, fanout_id))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(told) == [0] * len(jobs) + [PARTNERS] * len(jobs)
    for job in jobs:
        assert job.id is not None and _told(session, job.id) == partners
    assert _owed_rows(session) == 0


@pytest.fixture
def production_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app as deployed: fan-outs in the background (the suite's default is off)."""
    app = create_app({
        "UPLOAD_DIR": str(tmp_path / "uploads"), "MAIL_FOLDER": str(tmp_path / "mail"),
        "RATELIMIT_ENABLED": False, "TESTING": True, "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False, "REDIS_URL": None,
        "PUBLIC_URL": "http://localhost", "FANOUT_IN_BACKGROUND": True, **CHEAP_HASHING,
    })
    yield app
    app.extensions["engine"].dispose()


def test_a_job_posted_over_http_reaches_the_partner_phone_from_the_background(
        production_app: Flask, session: Session, world: World) -> None:
    bind(session, AppScope())  # the test's reads never run fan-outs themselves
    partners = _partners(session, world)
    with live_server(production_app) as base:
        poster = logged_in_cookie(base, world.owner_a.email, PASSWORD)
        phone = socket_client(base, logged_in_cookie(base, world.owner_b.email, PASSWORD))
        inbox = Inbox(phone)
        today = utcnow().date().isoformat()
        answer = requests.post(f"{base}/jobs/new", headers={"Cookie": poster}, data={
            "title": "Mow the Annex", "description": "Weekly", "trades": ["mowing"],
            "locality": "Annex, Toronto", "site_lat": "43.6532", "site_lng": "-79.3832",
            "address": "742 Evergreen Terrace", "customer_name": "Zelda",
            "customer_contact": "555-0199", "crew_days": "3", "starts_on": today,
            "ends_on": today, "value": "1234.50", "mode": "handoff",
        }, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        job_id = int(answer.headers["Location"].rsplit("/", 1)[1])
        posted = inbox.wait_for("job.posted")
        assert posted is not None and posted["data"]["id"] == job_id
        phone.disconnect()
    assert production_app.extensions[FANOUT_EXTENSION].flush(10)
    assert _told(session, job_id) == partners and _owed_rows(session) == 0
    assert session.exec(select(func.count()).select_from(Notification).where(
        col(Notification.kind) == "job.posted")).one() == len(partners)


def _post_form(title: str) -> dict[str, object]:
    return {"title": title, "description": "Weekly", "trades": ["mowing"],
            "locality": "Annex, Toronto", "site_lat": "43.6532", "site_lng": "-79.3832",
            "address": "742 Evergreen Terrace", "customer_name": "Zelda",
            "customer_contact": "555-0199", "crew_days": "3",
            "starts_on": utcnow().date().isoformat(), "ends_on": utcnow().date().isoformat(),
            "value": "1234.50", "mode": "handoff"}


def test_the_posting_request_runs_the_same_statements_for_3_and_23_partners(
        session: Session, world: World, production_app: Flask) -> None:
    """What the poster waits for does not grow with the cluster: the request's own
    statements (the fan-out's run in the runner's thread and are not counted)."""
    bind(session, AppScope())
    _partners(session, world)
    client = production_app.test_client()
    client.post("/login", data={"email": world.owner_a.email, "password": PASSWORD})

    def cost(title: str) -> list[str]:
        with recorded(production_app.extensions["engine"], this_thread_only=True) as seen:
            answer = client.post("/jobs/new", data=_post_form(title))
        assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
        assert production_app.extensions[FANOUT_EXTENSION].flush(10)
        return seen

    cost("Warm-up")  # first-request work (caches) out of the comparison
    few = cost("Few")
    for n in range(20):
        add_partner(session, world, f"Extra {n}", f"x{n}@fan.test")
    session.commit()
    many = cost("Many")
    assert many == few
    assert _told(session, _last_job(session)) and len(_told(session, _last_job(session))) == 23


def _last_job(session: Session) -> int:
    session.rollback()
    job_id = session.exec(select(func.max(OverflowJob.id))).one()
    assert job_id is not None
    return int(job_id)
