"""A busy board comes in pages a phone can carry, narrowed the way a crew asks: by
trade, kind, distance (as partners see it) and "closing within a day"."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.geo import destination
from marketplace.jobs.models import OverflowJob
from marketplace.jobs.views import BOARD_PAGE_SIZE
from tests.conftest import World, login
from tests.jobs.conftest import NEAR

Post = Callable[..., OverflowJob]
JSON = {"Accept": "application/json"}


def _titles(client: FlaskClient, url: str) -> list[str]:
    return [j["title"] for j in client.get(url, headers=JSON).get_json()["jobs"]]


def test_a_busy_board_comes_in_pages_with_a_link_to_the_next(
        client: FlaskClient, session: Session, jobs_world: World, post: Post) -> None:
    total = 2 * BOARD_PAGE_SIZE + 5
    now = utcnow()  # the pages read the real clock: jobs that have not started yet
    dates = {"starts_on": now.date() + timedelta(days=3), "ends_on": now.date() + timedelta(days=5)}
    for i in range(total):
        post(title=f"Lawn {i:02d}", now=now, **dates)
    session.commit()
    login(client, jobs_world.owner_b)
    html = client.get("/jobs?trade=mowing").get_data(as_text=True)
    assert html.count('class="card job-card"') == BOARD_PAGE_SIZE
    more = re.search(r'href="([^"]+)">More jobs<', html)
    assert more is not None and "trade=mowing" in more.group(1) and "page=2" in more.group(1)
    pages = [_titles(client, f"/jobs?page={n}") for n in (1, 2, 3)]
    assert [len(p) for p in pages] == [BOARD_PAGE_SIZE, BOARD_PAGE_SIZE, 5]
    seen = [t for p in pages for t in p]
    assert seen == [f"Lawn {i:02d}" for i in reversed(range(total))]  # newest first, once
    last = client.get("/jobs?page=3", headers=JSON).get_json()
    assert last["more"] is False and last["total"] == total
    assert "More jobs<" not in client.get("/jobs?page=3").get_data(as_text=True)
    assert _titles(client, "/jobs?page=0") == pages[0]  # nonsense pages are the first
    assert _titles(client, "/jobs?page=x") == pages[0]


def test_filters_narrow_the_board_the_way_a_crew_asks(
        client: FlaskClient, session: Session, jobs_world: World, post: Post) -> None:
    now = utcnow()  # every window closes before its job starts
    dates = {"starts_on": now.date() + timedelta(days=8), "ends_on": now.date() + timedelta(days=9)}
    post(title="Hand-off nearby", now=now, **dates)
    post(title="Window closing tonight", now=now, bid_window=True,
         closes_at=now + timedelta(hours=6), **dates)
    post(title="Window next week", now=now, bid_window=True, closes_at=now + timedelta(days=6),
         **dates)
    far = destination(*NEAR, 30, 90)
    post(title="Hand-off far east", now=now, site_lat=far[0], site_lng=far[1], **dates)
    session.commit()
    login(client, jobs_world.owner_b)
    assert set(_titles(client, "/jobs?mode=handoff")) == {"Hand-off nearby", "Hand-off far east"}
    assert set(_titles(client, "/jobs?mode=bid_window")) == {"Window closing tonight",
                                                             "Window next week"}
    assert _titles(client, "/jobs?closing=soon") == ["Window closing tonight"]
    assert "Hand-off far east" not in _titles(client, "/jobs?within=10")
    assert "Hand-off far east" in _titles(client, "/jobs?within=50")
    # a value the form does not offer is the whole board, never an error on a phone
    assert len(_titles(client, "/jobs?within=7&mode=nonsense")) == 4
    nearest = _titles(client, "/jobs?order=nearest")
    assert nearest[-1] == "Hand-off far east"


def test_a_page_reads_whole_only_the_jobs_it_shows(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post) -> None:
    """Every open job is weighed for the board (eligibility, distance, order), but only
    a page's worth are read as whole jobs: a busy cluster's board used to build an
    ORM object per open job to show twenty of them."""
    total = BOARD_PAGE_SIZE + 7
    now = utcnow()
    dates = {"starts_on": now.date() + timedelta(days=3), "ends_on": now.date() + timedelta(days=5)}
    for i in range(total):
        post(title=f"Hedge {i:02d}", now=now, **dates)
    session.commit()
    login(client, jobs_world.owner_b)
    loaded: list[int | None] = []

    def count(job: OverflowJob, _context: object) -> None:
        loaded.append(job.id)

    event.listen(OverflowJob, "load", count)
    try:
        second = client.get("/jobs?page=2", headers=JSON).get_json()
    finally:
        event.remove(OverflowJob, "load", count)
    assert second["total"] == total and len(second["jobs"]) == 7
    assert len(loaded) == 7, loaded
