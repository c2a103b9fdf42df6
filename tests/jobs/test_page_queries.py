"""The board and the job page cost a fixed number of queries, whatever the cluster's
size: a busy season must not make every phone's board slower."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace.jobs import bidding, service
from marketplace.jobs.models import OverflowJob
from tests.conftest import NOW, World, login
from tests.jobs.conftest import STARTS_ON, add_partner
from tests.statements import recorded

# The board: BEGIN, the person, its cursor and cluster, its business, the open jobs
# with their trades, agreement and acceptance, its trades, the unread count.  (Open jobs
# have no contract, so the barrier asks for no parties.)
BOARD_QUERY_LIMIT = 10
JOB_PAGE_QUERY_LIMIT = 15


def _cost(app: Flask, client: FlaskClient, url: str, **headers: str) -> int:
    with recorded(app.extensions["engine"]) as seen:
        response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return len(seen)


def test_the_board_costs_the_same_for_3_jobs_as_for_40(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Callable[..., OverflowJob]) -> None:
    for i in range(3):
        post(title=f"Mow lawn {i}", trades=("mowing", "planting"))
    session.commit()
    login(client, jobs_world.owner_b)
    few = {url: _cost(app, client, url) for url in ("/jobs", "/jobs?order=nearest",
                                                    "/jobs?trade=mowing")}
    few_json = _cost(app, client, "/jobs", Accept="application/json")
    for i in range(37):
        post(title=f"Plant bed {i}", trades=("planting",) if i % 2 else ("mowing",))
    session.commit()
    many = {url: _cost(app, client, url) for url in few}
    assert many == few and max(few.values()) <= BOARD_QUERY_LIMIT
    assert _cost(app, client, "/jobs", Accept="application/json") == few_json


def test_the_job_page_costs_the_same_for_1_bid_as_for_6(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Callable[..., OverflowJob]) -> None:
    job = post(bid_window=True)
    assert job.id is not None

    def bid(owner_email: str, business: str) -> None:
        bidder = add_partner(session, jobs_world, business, owner_email)
        bidding.place_bid(session, bidder, job.id,  # type: ignore[arg-type]
                          bidding.BidTerms(900_00, 3, STARTS_ON), NOW)

    bid("first@partners.test", "First Partner")
    session.commit()
    login(client, jobs_world.owner_a)  # the poster sees every bid
    poster_few = _cost(app, client, f"/jobs/{job.id}")
    for i in range(5):
        bid(f"p{i}@partners.test", f"Partner {i}")
    session.commit()
    assert _cost(app, client, f"/jobs/{job.id}") == poster_few <= JOB_PAGE_QUERY_LIMIT
    service.get_job(session, jobs_world.owner_a, job.id)  # still there for the next reader
