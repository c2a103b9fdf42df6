"""The demo cluster a newcomer sees first is alive and consistent."""

from __future__ import annotations

from flask import Flask
from markupsafe import escape
from sqlmodel import Session, col, select

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
from marketplace.disputes.models import DisputeMessage, MemberDispute
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


GRINDER = "Vermeer SC30TX stump grinder"
PATIO = "Planting beds for a new patio"


def _listed(client, email: str) -> str:  # type: ignore[no-untyped-def]
    """The disputes page as the demo login `email` reads it."""
    client.post("/logout")
    response = client.post("/login", data={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    page = client.get("/disputes/")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_a_newcomer_finds_an_open_and_a_decided_dispute_among_those_concerned(
        session: Session, client) -> None:  # type: ignore[no-untyped-def]
    """The grinder's booking fee is in dispute between Maple (which booked it) and
    Laurentide (which owns it), each has said something; the referral fee of last month's
    patio job was disputed by Laurentide and decided by the coordinator.  Each shows to
    its businesses and the coordinator, and to nobody else."""
    now = utcnow()
    assert seed_demo(session, SECRET, now) is True
    cluster = session.exec(select(Cluster).where(Cluster.name == DEMO_CLUSTER)).one()
    rows = {d.title: d for d in session.exec(select(MemberDispute).where(
        MemberDispute.cluster_id == cluster.id))}
    assert set(rows) == {GRINDER, PATIO}
    grinder, patio = rows[GRINDER], rows[PATIO]
    assert (grinder.status, grinder.subject, grinder.source) == ("open", "booking", "booking")
    assert grinder.opened_at <= now < grinder.deadline  # the coordinator has yet to decide
    said = list(session.exec(select(DisputeMessage).where(
        DisputeMessage.dispute_id == grinder.id).order_by(col(DisputeMessage.id))))
    maple, _hernandez, laurentide, excavating, fence = (f.email for f in FIRMS)
    firms = {u.email: u.member_id for u in demo_logins(session)}
    assert [m.author_member_id for m in said] == [firms[maple], firms[laurentide]]
    assert all(m.created_at <= now for m in said)
    assert (patio.status, patio.subject, patio.source) == ("decided", "job", "referral_fee")
    assert patio.decided_minor is not None and patio.decided_minor < patio.disputed_minor
    assert patio.decision_note and patio.decided_at is not None and patio.decided_at <= now
    session.commit()  # end the read so the app can write (SQLite has one writer)

    seen = {email: _listed(client, email) for email in firms}
    for email, shown in (
            (COORDINATOR_EMAIL, {GRINDER, PATIO}), (maple, {GRINDER}),
            (laurentide, {GRINDER, PATIO}), (FIRMS[1].email, {PATIO}),
            (excavating, set()), (fence, set())):
        assert {t for t in (GRINDER, PATIO) if t in seen[email]} == shown, email
    # The open one's conversation, on its page, for a party; missing for anyone else.
    _listed(client, maple)
    page = client.get(f"/disputes/{grinder.id}").get_data(as_text=True)
    assert all(str(escape(m.body)) in page for m in said)
    _listed(client, fence)
    assert client.get(f"/disputes/{grinder.id}").status_code == 404
    assert client.get(f"/disputes/{patio.id}").status_code == 404
    # The decided one says how and why, to a party.
    _listed(client, FIRMS[1].email)
    decided = client.get(f"/disputes/{patio.id}").get_data(as_text=True)
    assert str(escape(patio.decision_note)) in decided
