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
from marketplace.clusters.models import Cluster, User
from marketplace.errors import N_
from marketplace.extensions import socketio_of
from marketplace.i18n import notification_text
from marketplace.realtime.models import Notification
from marketplace.realtime.publisher import flush, render_notification
from marketplace.realtime.rooms import user_room
from marketplace.scope import AppScope, bind
from tests.conftest import NOW, World

MESSAGE = N_("New overflow job near %(locality)s: %(title)s")
MONTHLY = N_("The settlement for %(month)s is approved. Your statement is ready.")
PARAMS = {"locality": "Annex, Toronto", "title": "Mow the Annex"}


def _rows(session: Session) -> list[Notification]:
    return list(session.exec(select(Notification).order_by(col(Notification.id))))


def test_rows_are_written_with_the_change_and_published_once_after_commit(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    published: list[events.Batch] = []
    bind(session, AppScope({events.PUBLISHER: published.append}))
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
    assert world.owner_a.locale is None  # never chose: their cluster's language
    assert [(r.notification_id, r.seq, r.user_id, r.locale) for r in batch.recipients] == [
        (ids[0], 1, world.owner_a.id, world.cluster.default_locale),
        (ids[1], 1, world.owner_b.id, world.owner_b.locale or world.cluster.default_locale),
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
    bind(session, AppScope({events.PUBLISHER: published.append}))
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
    row carries.  The German reader, alone in its language, gets the same form: a
    message numbered only when nobody else shares it would tell that reader so."""
    emitted: list[tuple[str, dict[str, Any], str | list[str]]] = []
    monkeypatch.setattr(
        socketio_of(app), "emit", lambda kind, message, to: emitted.append((kind, message, to))
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
    (kind, shared, to), (_kind, alone, to_alone) = sorted(emitted, key=lambda e: -len(e[2]))
    assert kind == "job.posted"
    assert sorted(to) == sorted([user_room(world.owner_a.id), user_room(world.crew_a.id)])  # type: ignore[arg-type]
    assert shared["text"] == "Nouveau contrat en surplus près de Annex, Toronto : Mow the Annex"
    for user, message, locale in ((world.owner_a, shared, "fr"), (world.crew_a, shared, "fr"),
                                  (world.owner_b, alone, "de")):
        with app.app_context(), force_locale(locale):
            replayed = render_notification(rows[user.id])  # type: ignore[index]
        # the same message as the replay, but for what only that reader's row has
        assert {**replayed, "id": None, "seq": None} == message
    leaked = json.dumps(shared)
    for user in users:
        assert f"user:{user.id}" not in leaked and user.email not in leaked
    assert to_alone == [user_room(world.owner_b.id)]  # type: ignore[arg-type]
    assert alone["text"] == "Neuer Auftrag zur Weitergabe bei Annex, Toronto: Mow the Annex"


def test_a_live_message_does_not_tell_whether_anyone_else_got_it(
    app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The barrier: the same event reaches a reader in the same form whether they are
    its only recipient or one of many (a numbered "job posted" would otherwise say "no
    other partner was eligible")."""
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(socketio_of(app), "emit", lambda kind, message, to: emitted.append(message))
    for recipients in ([world.owner_a], [world.owner_a, world.owner_b, world.crew_a]):
        events.notify(session, recipients, "job.posted", MESSAGE, now=NOW, params=PARAMS,
                      payload={"id": 7}, link="/jobs/7")
        session.commit()
        assert flush(app)
    alone, among_many = emitted
    assert set(alone) == set(among_many)
    assert alone["id"] is alone["seq"] is among_many["id"] is among_many["seq"] is None
    assert {**alone, "batch": None} == {**among_many, "batch": None}


def test_a_reader_without_a_language_reads_the_live_message_in_their_clusters(
    app: Flask, session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invited person who never chose a language sees their pages, replay and
    notification centre in the cluster's default language; the live message too (not
    in the app's fallback), and a month by its name as the centre writes it."""
    emitted: list[dict[str, Any]] = []
    monkeypatch.setattr(socketio_of(app), "emit", lambda kind, message, to: emitted.append(message))
    cluster = session.get(Cluster, world.owner_a.cluster_id)
    assert cluster is not None
    cluster.default_locale = "fr_CA"
    world.owner_a.locale = None
    session.add_all([cluster, world.owner_a])
    session.commit()
    events.notify(session, [world.owner_a], "job.posted", MESSAGE, now=NOW, params=PARAMS)
    events.notify(session, [world.owner_a], "settlement.approved", MONTHLY, now=NOW,
                  params={"month": "2026-11"})
    session.commit()
    assert flush(app)
    posted, statement = emitted
    assert posted["text"] == "Nouveau contrat en surplus près de Annex, Toronto : Mow the Annex"
    assert "2026-11" not in statement["text"] and "novembre 2026" in statement["text"]
    with app.app_context(), force_locale("fr_CA"):
        assert statement["text"] == notification_text(MONTHLY, {"month": "2026-11"})


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
