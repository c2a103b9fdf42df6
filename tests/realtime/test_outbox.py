"""The outbox: rows stored by the commit itself, published after it, text per language.

`events.notify` queues every recipient's row in the caller's transaction; the
commit stores them (numbered in each person's sequence) and only then are they
published; a rollback drops rows and batch alike.  The publisher renders the
text once per language and sends each recipient exactly what a replay of its
stored row would send.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask_babel import force_locale
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import User
from marketplace.errors import N_
from marketplace.extensions import socketio
from marketplace.realtime.models import Notification
from marketplace.realtime.publisher import flush, render_notification
from marketplace.realtime.rooms import user_room
from tests.conftest import NOW, World

MESSAGE = N_("New overflow job near %(locality)s: %(title)s")
PARAMS = {"locality": "Annex, Toronto", "title": "Mow the Annex"}


def _rows(session: Session) -> list[Notification]:
    return list(session.exec(select(Notification).order_by(col(Notification.id))))


def test_rows_are_written_with_the_change_and_published_once_after_commit(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[events.Batch] = []
    monkeypatch.setattr(events, "_publisher", published.append)
    world.crew_a.active = False
    session.add(world.crew_a)
    session.commit()
    users = [world.owner_a, world.owner_b, world.owner_a, world.crew_a]  # a repeat, an inactive
    queued = events.notify(
        session,
        users,
        "job.posted",
        MESSAGE,
        now=NOW,
        params=PARAMS,
        payload={"id": 7},
        link="/jobs/7",
    )
    assert queued == 2 and published == []  # nothing is committed yet
    session.flush()
    assert _rows(session) == []  # not even flushed: the commit writes them, with the change
    session.commit()
    rows = _rows(session)
    ids = [r.id for r in rows]
    assert [(r.user_id, r.seq) for r in rows] == [(world.owner_a.id, 1), (world.owner_b.id, 1)]
    assert {(r.kind, r.message, r.link, r.created_at) for r in rows} == {
        ("job.posted", MESSAGE, "/jobs/7", NOW)
    }
    assert all(r.params == PARAMS and r.payload == {"id": 7} and r.read_at is None for r in rows)
    assert len(published) == 1
    batch = published[0]
    assert [(r.notification_id, r.seq, r.user_id, r.locale) for r in batch.recipients] == [
        (ids[0], 1, world.owner_a.id, world.owner_a.locale),
        (ids[1], 1, world.owner_b.id, world.owner_b.locale),
    ]
    assert (
        batch.kind,
        batch.message,
        batch.params,
        batch.payload,
        batch.link,
        batch.created_at,
    ) == ("job.posted", MESSAGE, PARAMS, {"id": 7}, "/jobs/7", NOW)


def test_a_rollback_drops_the_rows_and_the_batch(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[events.Batch] = []
    monkeypatch.setattr(events, "_publisher", published.append)
    events.notify(session, [world.owner_b], "job.posted", MESSAGE, now=NOW, params=PARAMS)
    session.rollback()
    session.commit()
    assert published == [] and _rows(session) == []
    assert events.cursor_of(session, world.owner_b.id) == 0  # type: ignore[arg-type]
    assert events.notify(session, [], "job.posted", MESSAGE, now=NOW) == 0


def test_one_message_per_language_carries_nothing_of_one_person(
    app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two French readers share one message sent to both rooms at once; it has no row
    id, no number and names nobody, but its batch key is the one each reader's replayed
    row carries.  The German reader, alone in its language, gets its exact row."""
    emitted: list[tuple[str, dict[str, Any], str | list[str]]] = []
    monkeypatch.setattr(
        socketio, "emit", lambda kind, message, to: emitted.append((kind, message, to))
    )
    for user, locale in ((world.owner_a, "fr"), (world.owner_b, "de"), (world.crew_a, "fr")):
        user.locale = locale
        session.add(user)
    session.commit()
    users: list[User] = [world.owner_a, world.owner_b, world.crew_a]
    events.notify(
        session,
        users,
        "job.posted",
        MESSAGE,
        now=NOW,
        params=PARAMS,
        payload={"id": 7, "trades": ["mowing"]},
        link="/jobs/7",
    )
    session.commit()
    assert flush(app)
    rows = {row.user_id: row for row in _rows(session)}
    assert len(emitted) == 2  # one per language, not one per reader
    (kind, shared, to), (_kind, alone, to_alone) = sorted(
        emitted, key=lambda e: not isinstance(e[2], list))
    assert kind == "job.posted" and isinstance(to, list)
    assert sorted(to) == sorted([user_room(world.owner_a.id), user_room(world.crew_a.id)])  # type: ignore[arg-type]
    assert shared["text"] == "Nouveau contrat en surplus près de Annex, Toronto : Mow the Annex"
    assert shared["id"] is None and shared["seq"] is None
    for user in (world.owner_a, world.crew_a):
        with app.app_context(), force_locale("fr"):
            replayed = render_notification(rows[user.id])  # type: ignore[index]
        # the same message as the replay, but for what only that reader's row has
        assert {**replayed, "id": None, "seq": None} == shared
    leaked = json.dumps(shared)
    for user in users:
        assert f"user:{user.id}" not in leaked and user.email not in leaked
    assert to_alone == user_room(world.owner_b.id)  # type: ignore[arg-type]
    with app.app_context(), force_locale("de"):
        assert alone == render_notification(rows[world.owner_b.id])  # type: ignore[index]
    assert alone["text"] == "Neuer Auftrag zur Weitergabe bei Annex, Toronto: Mow the Annex"


def test_each_person_numbers_their_notifications_in_commit_order_without_gaps(
    session: Session, world: World
) -> None:
    """Several events in one transaction, and across transactions: a person's
    notifications are 1, 2, 3 ... in the order they were committed; a rolled-back
    transaction uses up no number."""
    a, b = world.owner_a, world.owner_b
    events.notify(session, [a, b], "job.posted", MESSAGE, now=NOW, params=PARAMS)
    events.notify(session, [b], "job.taken", MESSAGE, now=NOW, params=PARAMS)
    session.commit()
    events.notify(session, [a], "job.posted", MESSAGE, now=NOW, params=PARAMS)
    session.rollback()
    events.notify(session, [b, a], "job.cancelled", MESSAGE, now=NOW, params=PARAMS)
    session.commit()
    numbered = [(r.user_id, r.seq, r.kind) for r in _rows(session)]
    assert sorted(numbered) == sorted([
        (a.id, 1, "job.posted"), (b.id, 1, "job.posted"), (b.id, 2, "job.taken"),
        (a.id, 2, "job.cancelled"), (b.id, 3, "job.cancelled")])
    assert events.cursor_of(session, a.id) == 2 and events.cursor_of(session, b.id) == 3  # type: ignore[arg-type]
    assert [r.kind for r in events.missed_since(session, b.id, 1)] == ["job.taken",  # type: ignore[arg-type]
                                                                      "job.cancelled"]
