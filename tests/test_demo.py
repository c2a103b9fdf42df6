"""The demo cluster a newcomer sees first is alive and consistent."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from flask import Flask
from markupsafe import escape
from sqlmodel import Session, col, select

from marketplace.clusters.agreements import (
    Activity,
    AgreementTerms,
    agreement_in_force,
    cluster_today,
    participation_refusal,
)
from marketplace.clusters.models import Agreement, AgreementAcceptance, Cluster, Member
from marketplace.clusters.review.models import ReviewAnswer, SunsetReview
from marketplace.clusters.review.service import REVIEW_DAYS, closing_moment
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


def _login(client, email: str) -> None:  # type: ignore[no-untyped-def]
    client.post("/logout")
    response = client.post("/login", data={"email": email, "password": DEMO_PASSWORD})
    assert response.status_code == 302


def test_a_newcomer_finds_the_first_agreements_sunset_review_closed_by_a_renewal(
        session: Session, client) -> None:  # type: ignore[no-untyped-def]
    """The first agreement's sunset came a few weeks ago; its review opened 30 days
    before it, four of the five businesses answered (three renew, one change, each with
    what it learned), and the coordinator renewed before the sunset: the version in
    force is the renewal, with the later sunset, accepted by every business.  The
    coordinator reads each business's answer; a member reads every lesson but only its
    own business's choice; both open the printable record and the CSV."""
    now = utcnow()
    assert seed_demo(session, SECRET, now) is True
    cluster = session.exec(select(Cluster).where(Cluster.name == DEMO_CLUSTER)).one()
    today = cluster_today(cluster, now)
    review = session.exec(select(SunsetReview).where(
        SunsetReview.cluster_id == cluster.id)).one()
    first, renewed = session.exec(select(Agreement).where(
        Agreement.cluster_id == cluster.id).order_by(col(Agreement.version))).all()
    current = agreement_in_force(session, cluster.id)
    assert current is not None and current.id == renewed.id
    assert renewed.sunset_on == date(now.year + 2, 12, 31)  # the sunset the demo has today
    assert AgreementTerms.of(renewed) == replace(AgreementTerms.of(first),
                                                 sunset_on=renewed.sunset_on)
    assert (review.agreement_version, review.sunset_on) == (first.version, first.sunset_on)
    assert today - timedelta(days=60) < review.sunset_on <= today - timedelta(days=14)
    assert cluster_today(cluster, review.opened_at) == \
        review.sunset_on - timedelta(days=REVIEW_DAYS)
    assert first.created_at < review.opened_at
    assert (review.status, review.outcome) == ("closed", "renewed")
    assert (review.renewed_version, review.renewed_sunset_on) == (2, renewed.sunset_on)
    assert review.closed_at is not None and review.closed_at == renewed.created_at
    assert review.opened_at < review.closed_at < closing_moment(session, review)
    answers = list(session.exec(select(ReviewAnswer).where(
        ReviewAnswer.review_id == review.id)))
    assert Counter(a.choice for a in answers) == {"renew": 3, "change": 1}
    assert all(a.lessons and review.opened_at < a.answered_at < review.closed_at
               for a in answers)
    accepted = list(session.exec(select(AgreementAcceptance).where(
        AgreementAcceptance.agreement_id == renewed.id)))
    assert len(accepted) == len(FIRMS)  # before the old sunset: nobody stopped taking part
    assert all(review.closed_at < a.accepted_at < closing_moment(session, review)
               for a in accepted)
    names = {m.id: m.name for m in session.exec(select(Member).where(
        Member.cluster_id == cluster.id))}
    changed = next(a for a in answers if a.choice == "change")
    maple = _listed_firm(session, FIRMS[0].email)
    mine = next(a for a in answers if a.member_id == maple)
    session.commit()  # end the read so the app can write (SQLite has one writer)

    _login(client, COORDINATOR_EMAIL)
    listed = client.get("/agreement/reviews").get_data(as_text=True)
    assert "Closed: renewed by version 2." in listed
    assert f"/agreement/reviews/{review.id}" in listed
    page = client.get(f"/agreement/reviews/{review.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Closed: version 2 renews the agreement until" in text
    assert 'name="choice"' not in text and 'id="renew"' not in text  # the record is final
    assert "Renew: 3 · Change: 1 · Leave: 0" in text
    for a in answers:
        assert str(escape(a.lessons)) in text
        assert f"{escape(names[a.member_id])}</strong> · {a.choice.capitalize()}" in text
    for path in (f"/agreement/reviews/{review.id}/record", f"/agreement/reviews/{review.id}.csv"):
        assert client.get(path).status_code == 200, path
    table = list(csv.reader(io.StringIO(client.get(
        f"/agreement/reviews/{review.id}.csv").get_data(as_text=True))))
    assert ["Outcome", f"Renewed: version 2, until {renewed.sunset_on.isoformat()}."] in table
    assert {(row[0], row[1], row[2]) for row in table if row and row[0] in names.values()} \
        == {(names[a.member_id], a.choice.capitalize(), a.lessons) for a in answers}

    _login(client, FIRMS[0].email)  # Maple, an owner, in English
    listed = client.get("/agreement/reviews").get_data(as_text=True)
    assert "Closed: renewed by version 2." in listed
    page = client.get(f"/agreement/reviews/{review.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert all(str(escape(a.lessons)) in text for a in answers)  # the postmortem
    assert f"Your business answered: {mine.choice.capitalize()}." in text
    rivals = text.split('id="answers"')[1]
    assert f"{escape(names[changed.member_id])}</strong> ·" in rivals
    assert "Change" not in rivals  # one business chose it: fewer than k, not shown
    record = client.get(f"/agreement/reviews/{review.id}/record")
    assert record.status_code == 200
    assert str(escape(changed.lessons)) in record.get_data(as_text=True)
    download = client.get(f"/agreement/reviews/{review.id}.csv")
    assert download.status_code == 200
    assert "Change" not in download.get_data(as_text=True)


def _listed_firm(session: Session, email: str) -> int:
    """The member business of a demo owner."""
    firms = {u.email: u.member_id for u in demo_logins(session)}
    member_id = firms[email]
    assert member_id is not None
    return member_id
