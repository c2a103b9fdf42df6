"""Board cards are rendered once per (what the card shows, audience, language) and
reused; the live client's fragment is the same markup; no audience is ever served a card
rendered for another, and no person's CSRF token is ever kept in a shared card."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from marketplace import create_app
from marketplace.barrier import JOB, Audience, cut
from marketplace.db import utcnow
from marketplace.jobs import service
from marketplace.jobs.cards import card_cache, card_key
from marketplace.jobs.models import OverflowJob
from tests.conftest import World, login
from tests.jobs.conftest import add_partner
from tests.jobs.test_page_queries import BOARD_QUERY_LIMIT
from tests.statements import recorded

Post = Callable[..., OverflowJob]
TOKEN = re.compile(r'(name="csrf_token" value=")[^"]*(")')
CARD = re.compile(r'<li class="card job-card".*?</li>', re.S)


def _dates() -> dict[str, Any]:
    """A job that starts soon (the board shows only jobs not yet due)."""
    today = utcnow().date()
    return {"starts_on": today + timedelta(days=3), "ends_on": today + timedelta(days=5)}


def _board_cards(client: FlaskClient, url: str = "/jobs") -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    return CARD.findall(response.get_data(as_text=True))


def _fragment(client: FlaskClient, job_id: int | None) -> str:
    response = client.get(f"/jobs/{job_id}/card")
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def _tokenless(html: str) -> str:
    """The markup with each response's own CSRF token blanked (it is signed with the
    time, so two responses to the same person differ there and only there)."""
    return TOKEN.sub(r"\1\2", html)


def test_the_fragment_is_the_boards_card_byte_for_byte(
        client: FlaskClient, session: Session, jobs_world: World, post: Post) -> None:
    hand_off = post(title="Mow the annex", **_dates())
    window = post(title="Plant the beds", bid_window=True, **_dates())
    session.commit()
    login(client, jobs_world.owner_b)
    cards = _board_cards(client)
    assert len(cards) == 2
    fragments = [_fragment(client, job.id) for job in (window, hand_off)]  # newest first
    assert [_tokenless(f) for f in fragments] == [_tokenless(c) for c in cards]
    # The hand-off carries one-tap claim with this person's token; the window none.
    assert "Claim this job" in fragments[1] and TOKEN.search(fragments[1])
    assert "Claim this job" not in fragments[0]


def test_a_second_board_renders_no_card_and_a_change_renders_a_new_one(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post) -> None:
    jobs = [post(title=f"Lawn {i}", **_dates()) for i in range(3)]
    session.commit()
    login(client, jobs_world.owner_b)
    cache = card_cache(app)
    first = _board_cards(client)
    assert (cache.stats.hits, cache.stats.misses) == (0, 3)
    assert [_tokenless(c) for c in _board_cards(client)] == [_tokenless(c) for c in first]
    assert cache.stats.misses == 3 and cache.stats.hits >= 3

    # Any change to what the card shows is a new card: no version column to forget.
    jobs[0].title = "Lawn 0, front and back"
    jobs[1].value_minor += 100_00
    session.add_all(jobs[:2])
    session.commit()
    again = "\n".join(_board_cards(client))
    assert "Lawn 0, front and back" in again and cache.stats.misses == 5
    assert "Lawn 0<" not in again


def test_the_distance_bucket_is_part_of_the_card(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post) -> None:
    """Two partners at different distances from one job never share its card."""
    post(title="Hedge row", **_dates())
    far = add_partner(session, jobs_world, "Far Greens", "far@greens.test",
                      base=(43.80, -79.40))  # about 17 km north of the site
    session.commit()
    login(client, jobs_world.owner_b)
    near_card = _board_cards(client)[0]
    login(client, far)
    far_card = _board_cards(client)[0]
    assert near_card != far_card
    assert "from your base" in near_card and "from your base" in far_card


def _audiences(session: Session, world: World, post: Post
               ) -> tuple[dict[Audience, Any], int | None, int | None]:
    """One open job and one claimed job, and a person for every audience of each."""
    other = add_partner(session, world, "Cedar Lawns", "c@cedar.test")
    open_job = post(title="Open lawn", **_dates())
    taken = post(title="Taken lawn", **_dates())
    session.commit()
    service.claim_job(session, world.owner_b, taken.id, utcnow())  # type: ignore[arg-type]
    session.commit()
    people = {Audience.POSTER: world.owner_a, Audience.PARTNER: world.owner_b,
              Audience.PARTY: world.owner_b, Audience.OTHER_MEMBER: other,
              Audience.COORDINATOR: world.coordinator}
    return people, open_job.id, taken.id


#: (audience, which job: the open one or the claimed one)
READERS = [(Audience.POSTER, "open"), (Audience.PARTNER, "open"),
           (Audience.COORDINATOR, "open"), (Audience.POSTER, "taken"),
           (Audience.PARTY, "taken"), (Audience.OTHER_MEMBER, "taken"),
           (Audience.COORDINATOR, "taken")]


@pytest.mark.parametrize(("first", "which"), READERS, ids=[f"{a}-{w}" for a, w in READERS])
def test_no_audience_is_served_a_card_rendered_for_another(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World, post: Post,
        first: Audience, which: str) -> None:
    """`first` reads the card (it is cached now), then every other audience of the same
    job reads it: each gets exactly what it gets from an empty cache."""
    people, open_id, taken_id = _audiences(session, jobs_world, post)
    job_id = open_id if which == "open" else taken_id
    readers = [a for a, w in READERS if w == which]
    cold = {}
    for audience in readers:
        card_cache(app).clear()
        login(client, people[audience])
        cold[audience] = _tokenless(_fragment(client, job_id))
    card_cache(app).clear()
    login(client, people[first])
    assert _tokenless(_fragment(client, job_id)) == cold[first]
    for audience in readers:
        login(client, people[audience])
        assert _tokenless(_fragment(client, job_id)) == cold[audience], audience
    # The audiences really see different cards (else the test would prove nothing).
    assert len(set(cold.values())) >= 2


def test_audiences_never_share_a_key_even_for_equal_read_models(app: Flask) -> None:
    """The key names the audience: a poster's card is never a partner's, even where what
    their read models hold happens to be equal."""
    data = {"id": 7, "title": "Lawn", "status": "open", "mode": "handoff"}
    with app.test_request_context("/jobs"):
        keys = {card_key(cut(JOB, audience, data), True) for audience in Audience}
        assert len(keys) == len(Audience)
        poster = cut(JOB, Audience.POSTER, {**data, "customer_name": "Ada"})
        partner = cut(JOB, Audience.PARTNER, {**data, "customer_name": "Ada"})
        assert "customer_name" not in partner
        assert card_key(poster, True) != card_key(partner, True)


def test_a_cached_card_keeps_nobodys_csrf_token(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post) -> None:
    job = post(title="Token lawn", **_dates())
    other = add_partner(session, jobs_world, "Cedar Lawns", "c@cedar.test")
    session.commit()
    login(client, jobs_world.owner_b)
    mine = TOKEN.search(_fragment(client, job.id))
    client = app.test_client()  # another phone: its own session, its own token
    login(client, other)
    theirs = TOKEN.search(_fragment(client, job.id))
    assert mine and theirs and mine.group(0) != theirs.group(0)
    cache = card_cache(app)
    assert cache.stats.hits == 1  # the second person got the first one's card ...
    stored = list(cache._cards.values())
    assert all(cache.csrf_slot in html for html in stored)  # ... with its own token
    assert not any(m.group(0) in html for html in stored for m in (mine, theirs))
    # and the token it got is one that works: the card's claim form claims the job.
    token = theirs.group(0).split('value="')[1].rstrip('"')
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post(f"/jobs/{job.id}/claim", data={"csrf_token": token})
    assert response.status_code == 302


def test_another_clusters_job_card_is_not_found(
        client: FlaskClient, session: Session, jobs_world: World, post: Post) -> None:
    job = post(title="Private lawn", **_dates())
    session.commit()
    assert client.get(f"/jobs/{job.id}/card").status_code == 302  # log in first
    login(client, jobs_world.other_owner)
    response = client.get(f"/jobs/{job.id}/card")
    assert response.status_code == 404
    assert "Private lawn" not in response.get_data(as_text=True)
    login(client, jobs_world.owner_b)
    assert client.get("/jobs/999999/card").status_code == 404


def test_the_cache_is_bounded_and_belongs_to_its_app(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post, database_url: str, tmp_path: Path) -> None:
    for i in range(5):
        post(title=f"Lawn {i}", **_dates())
    session.commit()
    cache = card_cache(app)
    cache.size = 3
    login(client, jobs_world.owner_b)
    assert len(_board_cards(client)) == 5
    assert len(cache) == 3
    other = create_app({"TESTING": True, "DATABASE_URL": database_url, "REDIS_URL": None,
                        "MAIL_FOLDER": str(tmp_path / "mail2"), "JOB_CARD_CACHE_SIZE": 9})
    try:
        assert card_cache(other) is not cache and card_cache(other).size == 9
    finally:
        other.extensions["engine"].dispose()


def test_the_board_runs_at_most_ten_queries_cached_or_not(
        app: Flask, client: FlaskClient, session: Session, jobs_world: World,
        post: Post) -> None:
    for i in range(3):
        post(title=f"Lawn {i}", trades=("mowing", "planting"), **_dates())
    session.commit()
    login(client, jobs_world.owner_b)
    with recorded(app.extensions["engine"]) as cold:
        assert len(_board_cards(client)) == 3
    for i in range(30):
        post(title=f"Bed {i}", trades=("planting",), **_dates())
    session.commit()
    with recorded(app.extensions["engine"]) as many:
        assert len(_board_cards(client)) == 20
    with recorded(app.extensions["engine"]) as warm:
        assert len(_board_cards(client)) == 20
    assert len(cold) == len(many) == len(warm) <= BOARD_QUERY_LIMIT <= 10
    assert not any("jobcontract" in statement.lower() for statement in warm)


def test_no_cards_are_kept_while_templates_reload_from_disk(
        database_url: str, tmp_path: Path) -> None:
    """A developer editing _card.html (debug, templates reloading) sees the edit at once."""
    dev = create_app({"TESTING": True, "DATABASE_URL": database_url, "REDIS_URL": None,
                      "MAIL_FOLDER": str(tmp_path / "mail"), "TEMPLATES_AUTO_RELOAD": True})
    try:
        assert card_cache(dev).size == 0
    finally:
        dev.extensions["engine"].dispose()
