"""The sunset review's pages: the review with its targets, a business's answer (forms
without JavaScript), the coordinator's renewal, the printable record and the CSV, and
the dashboard's targets panel."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from flask.testing import FlaskClient
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.review import service as review
from marketplace.clusters.review.models import ReviewAnswer, SunsetReview
from marketplace.db import utcnow
from tests.conftest import World, login, terms

TARGETS = {"overflow_value_kept": 500_000, "machine_utilization_bp": 2_500}


def open_review(session: Session, world: World) -> SunsetReview:
    """A version ending in 20 days (with targets), accepted by A and B; its review open."""
    now = utcnow()
    sunset = (now + timedelta(days=20)).date()
    version = agreements.publish_agreement(
        session, world.coordinator,
        terms(purpose="Charter.", sunset_on=sunset, targets=TARGETS), now)
    for owner in (world.owner_a, world.owner_b):
        agreements.accept_agreement(session, owner, version.version, now)
    assert review.open_due_reviews(session, now) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    return found


def test_an_owner_answers_from_the_page_and_a_rival_member_reads_only_the_lessons(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    login(client, world.owner_a)
    page = client.get(f"/agreement/reviews/{found.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Outcomes against the targets" in text and 'data-target="overflow_value_kept"' in text
    assert 'name="choice"' in text and "Shared with every member" in text
    sent = client.post(f"/agreement/reviews/{found.id}/answer",
                       data={"choice": "leave", "lessons": "Too few hand-offs came our way."})
    assert sent.status_code == 302
    again = client.post(f"/agreement/reviews/{found.id}/answer",
                        data={"choice": "change", "lessons": "Lower the referral fee."})
    assert again.status_code == 302
    session.rollback()
    stored = session.exec(select(ReviewAnswer)).one()
    assert (stored.choice, stored.lessons) == ("change", "Lower the referral fee.")
    client.post("/logout")
    login(client, world.owner_b)
    seen = client.get(f"/agreement/reviews/{found.id}").get_data(as_text=True)
    assert "Lower the referral fee." in seen  # what A learned is the postmortem
    assert "Alpha Lawns</strong> ·" in seen
    assert "Change</" not in seen.split('id="answers"')[1]  # A's choice is not shown to B


def test_a_bad_answer_shows_the_form_again_and_writes_nothing(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    login(client, world.owner_a)
    refused = client.post(f"/agreement/reviews/{found.id}/answer",
                          data={"choice": "maybe", "lessons": "x"})
    assert refused.status_code == 422
    assert 'name="lessons"' in refused.get_data(as_text=True)
    too_long = client.post(f"/agreement/reviews/{found.id}/answer",
                           data={"choice": "renew", "lessons": "x" * 4001})
    assert too_long.status_code == 422
    assert "4000" in too_long.get_data(as_text=True)
    session.rollback()
    assert session.exec(select(ReviewAnswer)).first() is None


def test_crew_and_the_coordinator_are_refused_with_the_error_page(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    login(client, world.crew_a)
    refused = client.post(f"/agreement/reviews/{found.id}/answer", data={"choice": "renew"})
    assert refused.status_code == 403
    assert "Ask an owner of your business" in refused.get_data(as_text=True)
    assert 'name="sunset_on"' not in client.get(
        f"/agreement/reviews/{found.id}").get_data(as_text=True)
    assert client.post(f"/agreement/reviews/{found.id}/renew",
                       data={"sunset_on": "2031-01-01"}).status_code == 403
    session.rollback()
    assert session.exec(select(ReviewAnswer)).first() is None


def test_the_coordinator_renews_from_the_review_page(client: FlaskClient, session: Session,
                                                     world: World) -> None:
    found = open_review(session, world)
    review.answer(session, world.owner_a, found.id, "renew", "", utcnow())
    login(client, world.coordinator)
    page = client.get(f"/agreement/reviews/{found.id}").get_data(as_text=True)
    assert 'name="sunset_on"' in page and "Propose changed terms" in page
    assert "1 of 2 participating businesses answered renew" in page
    refused = client.post(f"/agreement/reviews/{found.id}/renew",
                          data={"sunset_on": "2031-01-01"})
    assert refused.status_code == 409  # a majority of two is both
    review.answer(session, world.owner_b, found.id, "renew", "", utcnow())
    early = client.post(f"/agreement/reviews/{found.id}/renew",
                        data={"sunset_on": found.sunset_on.isoformat()})
    assert early.status_code == 422
    assert "later than the current one" in early.get_data(as_text=True)
    done = client.post(f"/agreement/reviews/{found.id}/renew",
                       data={"sunset_on": "2031-01-01"})
    assert done.status_code == 302
    session.rollback()
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None and current.sunset_on == date(2031, 1, 1)
    assert current.targets == TARGETS  # nothing else changed
    session.refresh(found)
    assert (found.status, found.outcome) == ("closed", "renewed")


def test_the_record_prints_and_downloads_with_spreadsheet_safe_text(
        client: FlaskClient, session: Session, world: World) -> None:
    found = open_review(session, world)
    review.answer(session, world.owner_a, found.id, "renew", "=HYPERLINK(\"http://x\")",
                  utcnow())
    login(client, world.owner_b)
    printed = client.get(f"/agreement/reviews/{found.id}/record")
    text = printed.get_data(as_text=True)
    assert printed.status_code == 200 and "css/print.css" in text and 'class="print"' in text
    assert "Outcomes against the targets" in text
    download = client.get(f"/agreement/reviews/{found.id}.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
    lessons = [r for r in rows if r and r[0] == "Alpha Lawns"]
    assert lessons and lessons[0][2].startswith("'=HYPERLINK")
    assert lessons[0][1] == ""  # B does not get A's choice in the file either
    targets = [r for r in rows if r and r[0] == "Overflow value kept in the cluster"]
    assert targets and all(r[2] == "500000" for r in targets)
    client.post("/logout")
    login(client, world.other_owner)
    assert client.get(f"/agreement/reviews/{found.id}.csv").status_code == 404
    assert client.get(f"/agreement/reviews/{found.id}/record").status_code == 404


def test_the_dashboard_shows_progress_against_the_targets(
        client: FlaskClient, session: Session, world: World) -> None:
    open_review(session, world)
    login(client, world.coordinator)
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Progress against the targets" in page
    assert page.count('data-target="overflow_value_kept"') == 4  # the last four quarters
    client.post("/logout")
    login(client, world.owner_a)
    member = client.get("/dashboard?member=cluster").get_data(as_text=True)
    assert "Money totals are shown to members only for quarters that are over" in member
    own = client.get(f"/dashboard?member={world.member_a_id}").get_data(as_text=True)
    assert "Progress against the targets" not in own  # targets are the cluster's


def test_the_reviews_list_links_each_review(client: FlaskClient, session: Session,
                                            world: World) -> None:
    found = open_review(session, world)
    login(client, world.crew_a)
    text = client.get("/agreement/reviews").get_data(as_text=True)
    assert f"/agreement/reviews/{found.id}" in text
