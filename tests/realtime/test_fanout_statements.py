"""A notification to 400 people costs the commit the same statements as one to 3.

Why it matters: the commit that stores a post's notifications is inside the
poster's request (and, on SQLite, holds the one write lock).  Its statements
must not multiply with the recipients (a VALUES list of 1 000 rows was compiled
afresh for every post, and SQLite split the rows into a batch per hundred), and
the event's own fields (message, parameters, the card's payload) are sent once
per event, not once per recipient.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from marketplace import events
from marketplace.clusters.models import Role, User
from marketplace.errors import N_
from marketplace.realtime.models import Notification, NotificationSequence
from marketplace.scope import AppScope, bind
from tests.conftest import NOW, World
from tests.statements import recorded_with_parameters, shapes

MESSAGE = N_("New overflow job near %(locality)s: %(title)s")
PAYLOAD = {"id": 7, "title": "Mow the Annex " + "x" * 200}


def _mentions(value: object, text: str) -> int:
    """How many times `text` is sent in a statement's parameters (psycopg wraps JSON
    values in an object holding the original as `.obj`)."""
    value = getattr(value, "obj", value)
    if isinstance(value, dict):
        return sum(_mentions(item, text) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_mentions(item, text) for item in value)
    return str(value).count(text)


def _people(session: Session, world: World, count: int, tag: str) -> list[User]:
    people = [User(email=f"{tag}{n}@fanout.test", name=f"Crew {n}", password_hash="x",
                   cluster_id=world.cluster.id, member_id=world.owner_b.member_id,
                   role=Role.CREW, locale="en_CA", created_at=NOW) for n in range(count)]
    session.add_all(people)
    session.commit()
    return people


def _commit_cost(session: Session, people: list[User]) -> list[tuple[str, object]]:
    events.notify(session, people, "job.posted", MESSAGE, now=NOW,
                  params={"locality": "Annex", "title": "Mow"}, payload=PAYLOAD, link="/jobs/7")
    events.notify(session, people[:2], "job.claimed", MESSAGE, now=NOW,
                  params={"locality": "Annex", "title": "Mow"}, payload={"id": 7})
    with recorded_with_parameters(session.get_bind()) as seen:
        session.commit()
    return seen


def test_the_commit_runs_the_same_statements_for_3_and_400_recipients(
        session: Session, world: World) -> None:
    published: list[events.Batch] = []
    bind(session, AppScope({events.PUBLISHER: published.append}))
    few = _commit_cost(session, _people(session, world, 3, "few"))
    many_people = _people(session, world, 400, "many")
    many = _commit_cost(session, many_people)

    assert shapes([text for text, _p in many]) == shapes([text for text, _p in few])
    payload_text = PAYLOAD["title"]
    assert sum(_mentions(params, payload_text) for _text, params in many) == 1

    # ... and what they store is still one row per person, numbered in their sequence
    rows = list(session.exec(select(Notification).where(
        col(Notification.user_id).in_([p.id for p in many_people])).order_by(
        col(Notification.user_id), col(Notification.seq))))
    assert len(rows) == 402
    first, second = many_people[0], many_people[1]
    assert [(r.seq, r.kind) for r in rows if r.user_id == first.id] == [
        (1, "job.posted"), (2, "job.claimed")]
    assert all(r.payload == PAYLOAD and r.params["title"] == "Mow" and r.created_at == NOW
               for r in rows if r.kind == "job.posted")
    assert session.get(NotificationSequence, second.id).last_seq == 2  # type: ignore[union-attr]  # the row exists: the commit made it
    assert session.get(NotificationSequence, many_people[-1].id).last_seq == 1  # type: ignore[union-attr]  # as above
    batch = published[-2]
    assert len(batch.recipients) == 400 and {r.notification_id for r in batch.recipients} == {
        r.id for r in rows if r.kind == "job.posted"}
