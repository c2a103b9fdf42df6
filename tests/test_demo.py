"""The demo cluster a newcomer sees first is alive and consistent."""

from __future__ import annotations

from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters.agreements import Activity, cluster_today, participation_refusal
from marketplace.clusters.models import Cluster, Member
from marketplace.db import utcnow
from marketplace.demo import (
    COORDINATOR_EMAIL,
    DEMO_CLUSTER,
    DEMO_PASSWORD,
    FIRMS,
    demo_logins,
    seed_demo,
)
from marketplace.jobs import service
from marketplace.jobs.models import JobStatus, OverflowJob
from tests.conftest import NOW, SECRET


def test_seed_demo_builds_a_living_cluster_once(session: Session, client) -> None:
    assert seed_demo(session, SECRET, NOW) is True
    assert seed_demo(session, SECRET, NOW) is False
    logins = demo_logins(session)
    assert len(logins) == 1 + len(FIRMS)
    assert {u.locale for u in logins} >= {"en", "es", "fr"}
    for user in logins[1:]:
        member = session.get(Member, user.member_id)
        assert member is not None
        assert participation_refusal(session, member, Activity.OVERFLOW_JOBS, NOW) is None
    session.commit()  # end the read so the app can write (SQLite has one writer)
    response = client.post("/login", data={"email": logins[1].email, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert "Valley Green Cooperative" in client.get("/members").get_data(as_text=True)


def test_the_demo_offers_no_past_job_to_claim(session: Session) -> None:
    """Seeded now, every job still on offer starts today or later where the cluster is;
    the history's untaken jobs are expired, as the scheduler would have left them."""
    now = utcnow()
    assert seed_demo(session, SECRET, now) is True
    cluster = session.exec(select(Cluster).where(Cluster.name == DEMO_CLUSTER)).one()
    today = cluster_today(cluster, now)
    jobs = list(session.exec(select(OverflowJob).where(OverflowJob.cluster_id == cluster.id)))
    on_offer = [j for j in jobs if j.status == JobStatus.OPEN]
    assert on_offer and all(j.starts_on >= today for j in on_offer)
    expired = [j for j in jobs if j.status == JobStatus.EXPIRED]
    assert len(expired) == 2 and all(j.starts_on < today for j in expired)
    assert service.expire_due_jobs(session, now) == []


def test_seed_demo_prints_each_login_with_firm_role_and_language(app: Flask) -> None:
    with app.app_context():  # as `flask seed-demo` runs it
        result = app.test_cli_runner().invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()
             if line.startswith("  ")}
    assert set(lines) == {COORDINATOR_EMAIL, *(f.email for f in FIRMS)}
    assert "coordinator" in lines[COORDINATOR_EMAIL]
    assert "English (Canada)" in lines[COORDINATOR_EMAIL]
    for firm in FIRMS:
        assert firm.name in lines[firm.email] and "owner" in lines[firm.email]
    assert "español" in lines[FIRMS[1].email]
    assert "français (Canada)" in lines[FIRMS[2].email]
