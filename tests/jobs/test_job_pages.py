"""Job pages as each party sees them: board, detail, forms, and the barrier in HTML."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs.models import Bid, OverflowJob
from tests.conftest import World, login
from tests.jobs.conftest import (
    ADDRESS,
    CUSTOMER_CONTACT,
    CUSTOMER_NAME,
    SITE,
    add_partner,
    count,
    give_profile,
)


def _live_window(post: Callable[..., OverflowJob]) -> OverflowJob:
    """A bid window open now, closing in a day.  The job starts the next UTC day: a
    window must close before the job's start date is over where the cluster is
    (Toronto), and "today" in UTC ends there at 05:00 UTC (04:00 in summer), so a job
    starting today failed this test whenever it ran between midnight and 05:00 UTC."""
    now = utcnow()
    return post(now=now, bid_window=True, closes_at=now + timedelta(days=1),
                starts_on=now.date() + timedelta(days=1), ends_on=now.date() + timedelta(days=5))


def test_board_lists_only_jobs_i_can_take(client: FlaskClient, session: Session,
                                          jobs_world: World, post) -> None:
    now = utcnow()  # the board reads the real clock: jobs that have not started yet
    dates = {"starts_on": now.date() + timedelta(days=3), "ends_on": now.date() + timedelta(days=5)}
    post(title="Mow the Annex", now=now, **dates)
    post(title="Fence the yard", trades=("fencing",), now=now, **dates)
    session.commit()
    login(client, jobs_world.owner_b)
    html = client.get("/jobs").get_data(as_text=True)
    assert "Mow the Annex" in html and "Fence the yard" not in html
    assert CUSTOMER_NAME not in html and ADDRESS not in html
    filtered = client.get("/jobs?trade=planting").get_data(as_text=True)
    assert "Mow the Annex" not in filtered
    as_json = client.get("/jobs", headers={"Accept": "application/json"}).get_json()
    assert [j["title"] for j in as_json["jobs"]] == ["Mow the Annex"]
    assert "customer_name" not in as_json["jobs"][0]


def test_ineligible_member_is_told_why(client: FlaskClient, session: Session,
                                       jobs_world: World, post) -> None:
    now = utcnow()  # the claim reads the real clock: a job that has not started yet
    job = post(now=now, starts_on=now.date() + timedelta(days=3),
               ends_on=now.date() + timedelta(days=5))
    give_profile(session, jobs_world.owner_b, insurance=job.ends_on - timedelta(days=1))
    session.commit()
    login(client, jobs_world.owner_b)
    html = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Your insurance expires before the job ends." in html
    assert 'id="claim"' not in html
    refused = client.post(f"/jobs/{job.id}/claim", headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "insurance_expires"


def test_other_cluster_cannot_see_the_job(client: FlaskClient, jobs_world: World,
                                          post) -> None:
    job = post()
    login(client, jobs_world.other_owner)
    assert client.get(f"/jobs/{job.id}").status_code == 404
    assert client.post(f"/jobs/{job.id}/claim").status_code == 404


def test_bad_job_form_is_422_and_writes_nothing(client: FlaskClient, session: Session,
                                                jobs_world: World) -> None:
    login(client, jobs_world.owner_a)
    before = count(session, OverflowJob)
    session.commit()
    response = client.post("/jobs/new", data={
        "title": "Too soon", "trades": ["mowing"], "locality": "Annex", "site_lat": "43.6",
        "site_lng": "-79.3", "address": "1 Main St", "customer_name": "Kim",
        "crew_days": "2", "starts_on": "2026-12-10", "ends_on": "2026-12-01",
        "value": "-5", "mode": "bid_window",
        "closes_at": (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The end date cannot be before the start date." in html
    assert "Enter a contract value above zero." in html
    assert "between 15 minutes and 14 days from now" in html
    garbage = client.post("/jobs/new", data={"title": "x", "site_lat": "north", "value": "lots"})
    assert garbage.status_code == 422
    assert count(session, OverflowJob) == before


def test_skipped_daylight_saving_hour_is_refused(client: FlaskClient, jobs_world: World) -> None:
    login(client, jobs_world.owner_a)  # cluster time zone: America/Toronto
    year = utcnow().year + 1
    response = client.post("/jobs/new", data={
        "title": "DST", "trades": ["mowing"], "locality": "Annex", "site_lat": str(SITE[0]),
        "site_lng": str(SITE[1]), "address": "1 Main St", "customer_name": "Kim",
        "crew_days": "2", "starts_on": f"{year}-03-20", "ends_on": f"{year}-03-21",
        "value": "100", "mode": "bid_window", "closes_at": _spring_gap(year),
    })
    assert response.status_code == 422
    assert "That time does not exist on that day" in response.get_data(as_text=True)


def _spring_gap(year: int) -> str:
    """02:30 on the second Sunday of March: skipped in America/Toronto."""
    from datetime import date

    first = date(year, 3, 1)
    second_sunday = first + timedelta(days=(6 - first.weekday()) % 7 + 7)
    return f"{second_sunday.isoformat()}T02:30"


def test_bid_prices_cross_no_barrier_in_html(client: FlaskClient, session: Session,
                                             jobs_world: World, post) -> None:
    job = _live_window(post)
    rival = add_partner(session, jobs_world, "Gamma Mowing", "g@gamma.test")
    onlooker = add_partner(session, jobs_world, "Delta Mowing", "d@delta.test")
    session.commit()
    for user, price in ((jobs_world.owner_b, "1111.11"), (rival, "2222.22")):
        login(client, user)
        response = client.post(f"/jobs/{job.id}/bid", data={
            "price": price, "crew_size": "3", "earliest_start": job.starts_on.isoformat()})
        assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    pages, api = {}, {}
    for name, user in (("poster", jobs_world.owner_a), ("b", jobs_world.owner_b),
                       ("rival", rival), ("onlooker", onlooker)):
        login(client, user)
        pages[name] = client.get(f"/jobs/{job.id}").get_data(as_text=True)
        api[name] = client.get(f"/jobs/{job.id}", headers={"Accept": "application/json"}
                               ).get_data(as_text=True)
    assert "111111" in api["poster"] and "222222" in api["poster"]
    assert "222222" not in api["b"] and "111111" not in api["rival"]
    assert "111111" not in api["onlooker"] and "222222" not in api["onlooker"]
    assert '"count": 2' in api["onlooker"].replace('"count":2', '"count": 2')
    for name in ("b", "rival", "onlooker"):
        assert CUSTOMER_NAME not in api[name] and ADDRESS not in api[name]
    assert "1,111.11" in pages["poster"] and "2,222.22" in pages["poster"]
    assert "1,111.11" in pages["b"] and "2,222.22" not in pages["b"]
    assert "2,222.22" in pages["rival"] and "1,111.11" not in pages["rival"]
    assert "1,111.11" not in pages["onlooker"] and "2,222.22" not in pages["onlooker"]
    assert re.search(r"2 bids", pages["onlooker"])
    for name in ("b", "rival", "onlooker"):
        assert CUSTOMER_NAME not in pages[name] and CUSTOMER_CONTACT not in pages[name]


def test_joint_bid_through_the_forms(client: FlaskClient, session: Session, jobs_world: World,
                                     post) -> None:
    job = _live_window(post)
    partner = add_partner(session, jobs_world, "Gamma Mowing", "g@gamma.test")
    session.commit()
    login(client, jobs_world.owner_b)
    bad = client.post(f"/jobs/{job.id}/joint", data={  # 60 + 30 is not 100
        "price": "5000", "crew_size": "6", "earliest_start": job.starts_on.isoformat(),
        f"share-{jobs_world.member_b_id}": "60", f"share-{partner.member_id}": "30"})
    assert bad.status_code == 422
    assert "adding up to 10000" in bad.get_data(as_text=True)
    assert count(session, Bid) == 0
    session.commit()  # end the read so the next one sees the app's writes
    proposed = client.post(f"/jobs/{job.id}/joint", data={
        "price": "5000", "crew_size": "6", "earliest_start": job.starts_on.isoformat(),
        f"share-{jobs_world.member_b_id}": "60", f"share-{partner.member_id}": "40"})
    assert proposed.status_code == 302
    bid = session.exec(__import__("sqlmodel").select(Bid)).one()
    session.commit()
    early = client.post(f"/jobs/bids/{bid.id}/submit", headers={"Accept": "application/json"})
    assert early.status_code == 409
    login(client, partner)
    assert client.post(f"/jobs/bids/{bid.id}/confirm").status_code == 302
    login(client, jobs_world.owner_b)
    assert client.post(f"/jobs/bids/{bid.id}/submit").status_code == 302
    login(client, jobs_world.owner_a)
    poster_page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "joint bid" in poster_page and "60.0 %" in poster_page and "40.0 %" in poster_page


def test_cancel_needs_a_reason(client: FlaskClient, jobs_world: World, post) -> None:
    job = post()
    login(client, jobs_world.owner_a)
    assert client.post(f"/jobs/{job.id}/cancel", data={"reason": ""}).status_code == 422
    assert client.post(f"/jobs/{job.id}/cancel", data={"reason": "Customer moved"}
                       ).status_code == 302
    login(client, jobs_world.owner_b)
    note = client.get("/notifications", headers={"Accept": "application/json"}).get_json()
    assert note["unread"] >= 1
    assert any("Customer moved" in n["text"] for n in note["notifications"])


def test_notification_centre_marks_read(client: FlaskClient, jobs_world: World, post) -> None:
    post(title="Mow the Annex")
    login(client, jobs_world.owner_b)
    assert 'id="unread-badge">1<' in client.get("/").get_data(as_text=True)
    page = client.get("/notifications").get_data(as_text=True)
    assert "New overflow job near Annex, Toronto: Mow the Annex" in page
    assert 'id="unread-badge">1<' in client.get("/").get_data(as_text=True)  # GET reads only
    through = re.search(r'name="through" value="(\d+)"', page)
    assert through is not None
    client.post("/notifications/read", data={"through": through.group(1)})
    assert 'id="unread-badge" hidden>0<' in client.get("/").get_data(as_text=True)
