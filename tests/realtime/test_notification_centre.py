"""The notification centre: pages of 30, times as the reader reads them, months by name,
and nothing marked read by looking (GET writes nothing; a POST marks what was shown)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlmodel import Session, select
from werkzeug.test import TestResponse

from marketplace import events
from marketplace.clusters.service import update_preferences
from marketplace.db import utcnow
from marketplace.realtime.models import Notification
from marketplace.realtime.views import PAGE_SIZE
from tests.conftest import World, login

JSON = {"Accept": "application/json"}


def _notify(session: Session, world: World, count: int, **fields: object) -> None:
    """`count` notifications to B, the newest `count` minutes ago at the latest."""
    now = utcnow()
    for n in range(count):
        events.notify(session, [world.owner_b], "job.posted", "Job number %(n)d",
                      now=now - timedelta(minutes=count - n), params={"n": n},
                      **fields)  # type: ignore[arg-type]
        session.commit()


def _snapshot(session: Session) -> list[tuple[int | None, object]]:
    session.expire_all()
    rows = [(n.id, n.read_at) for n in session.exec(select(Notification))]
    session.commit()
    return rows


def test_looking_marks_nothing_read_and_a_post_marks_what_was_shown(
        client: FlaskClient, session: Session, world: World) -> None:
    _notify(session, world, 3)
    before = _snapshot(session)
    login(client, world.owner_b)
    page = client.get("/notifications").get_data(as_text=True)
    client.get("/notifications", headers=JSON)
    client.get("/notifications?before=2")
    assert _snapshot(session) == before  # not one row changed by reading
    through = re.search(r'name="through" value="(\d+)"', page)
    assert through is not None and through.group(1) == "3"
    _notify(session, world, 1)  # arrives after the page was shown: stays unread
    response = client.post("/notifications/read", data={"through": "3"}, headers=JSON)
    assert response.get_json() == {"marked": 3, "unread": 1}
    assert client.post("/notifications/read").status_code == 302  # "mark all" from a page
    assert events.unread_count(session, world.owner_b.id) == 0  # type: ignore[arg-type]


def test_the_centre_comes_in_pages(client: FlaskClient, session: Session,
                                   world: World) -> None:
    _notify(session, world, PAGE_SIZE + 5)
    login(client, world.owner_b)
    first = client.get("/notifications", headers=JSON).get_json()
    texts = [n["text"] for n in first["notifications"]]
    assert len(texts) == PAGE_SIZE and texts[0] == f"Job number {PAGE_SIZE + 4}"
    assert first["older"] is not None
    second = client.get(first["older"], headers=JSON).get_json()
    assert [n["text"] for n in second["notifications"]] == [
        f"Job number {n}" for n in range(4, -1, -1)]
    assert second["older"] is None
    html = client.get("/notifications").get_data(as_text=True)
    listed = html.split('id="notification-list"')[1].split("</ul>")[0]
    assert listed.count("<li") == PAGE_SIZE and "Older notifications" in html


def test_times_read_as_the_reader_reads_them(client: FlaskClient, session: Session,
                                             world: World) -> None:
    now = utcnow()
    events.notify(session, [world.owner_b], "job.posted", "Recent", now=now - timedelta(
        minutes=3))
    events.notify(session, [world.owner_b], "job.posted", "Old", now=now - timedelta(days=3))
    session.commit()
    update_preferences(session, world.owner_b, "fr", "Europe/Paris", None)
    login(client, world.owner_b)
    items = {n["text"]: n for n in client.get("/notifications", headers=JSON).get_json()[
        "notifications"]}
    assert items["Recent"]["when"].replace("\xa0", " ") == "il y a 3 min"
    assert "+00:00" not in items["Old"]["when"] and "T" not in items["Old"]["when"]
    html = client.get("/notifications").get_data(as_text=True)
    assert "il y a 3\xa0min" in html and "+00:00</" not in html


def test_months_in_notification_texts_are_named(client: FlaskClient, session: Session,
                                                world: World) -> None:
    events.notify(session, [world.owner_b], "settlement.drafted",
                  "The statement for %(month)s is drafted: check it before the "
                  "coordinator approves the month.", now=utcnow(), params={"month": "2026-11"})
    session.commit()
    update_preferences(session, world.owner_b, "fr", None, None)
    login(client, world.owner_b)
    html = client.get("/notifications").get_data(as_text=True)
    assert "novembre 2026" in html and "2026-11" not in html


def test_a_page_says_when_it_read_its_cursor(
        client: FlaskClient, session: Session, world: World) -> None:
    """live.js holds a shared live message of an event from before this moment until a
    sync says whether the page already shows it (counted in the badge)."""
    _notify(session, world, 1)
    login(client, world.owner_b)
    before = utcnow()
    html = client.get("/notifications").get_data(as_text=True)
    found = re.search(r'data-notification-cursor="(\d+)" data-notification-at="([^"]+)"', html)
    assert found is not None and found.group(1) == "1"
    read_at = datetime.fromisoformat(found.group(2))
    assert before <= read_at <= utcnow()  # aware: live.js compares it with created_at


def test_the_badge_counts_what_the_cursor_covers_even_if_one_commits_meanwhile(
        app: Flask, client: FlaskClient, session: Session, world: World) -> None:
    """A notification committed while a page is being built comes live after the cursor
    (live.js bumps the badge for it): the badge rendered with the page must not count
    it already, or it is counted twice.  On PostgreSQL every statement sees what has
    committed when it starts, so the count is read in the cursor's own statement."""
    _notify(session, world, 1)
    login(client, world.owner_b)
    engine = app.extensions["engine"]
    arrived: list[int] = []

    def one_arrives(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if arrived or "notificationsequence" not in statement or "SELECT" not in statement:
            return
        arrived.append(1)
        _notify(session, world, 1)  # its own connection, committed

    def page(**headers: str) -> TestResponse:
        arrived.clear()
        event.listen(engine, "after_cursor_execute", one_arrives)
        try:
            return client.get("/notifications", headers=headers)
        finally:
            event.remove(engine, "after_cursor_execute", one_arrives)

    html = page().get_data(as_text=True)
    assert arrived
    cursor = re.search(r'data-notification-cursor="(\d+)"', html)
    badge = re.search(r'id="unread-badge"[^>]*>(\d+)<', html)
    assert cursor is not None and badge is not None
    assert (cursor.group(1), badge.group(1)) == ("1", "1")
    assert events.unread_count(session, world.owner_b.id) == 2  # type: ignore[arg-type]
    # The centre lists and counts up to its cursor too: the one arriving now comes live.
    centre = page(**JSON).get_json()
    assert arrived
    assert (centre["through"], centre["unread"], len(centre["notifications"])) == (2, 2, 2)
