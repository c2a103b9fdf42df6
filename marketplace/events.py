"""Domain events: outbox rows written with the change, emitted only after commit.

A service calls `notify(...)` inside its transaction.  When that transaction
commits, the queued events become stored notifications *in the same commit*
(never without it), each numbered in its recipient's own sequence, together
with the delivery rows of the outside channels (Web Push) the recipient chose.
Only after the commit succeeded are they handed to the publisher of the
session's own app (`PUBLISHER`, marketplace/scope.py), which only queues them:
a background task emits them (Socket.IO, through Redis when configured), so
the committing request does not wait for them (realtime/publisher.py); a
rollback drops them all.  Because every event
is a stored row, a client that was offline replays what it missed from the
table: nothing is lost when a phone drops off the network (or when a live
message is).

Why the rows are written at commit and not in `notify`: the sequence numbers
must be taken under a lock on each recipient's `NotificationSequence` row, and
taking all of a transaction's locks at once, in user-id order, right before
the commit, is what keeps them short and free of deadlocks (two transactions
that notify the same people in a different order would otherwise each hold
what the other waits for).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    Table,
    bindparam,
    cast,
    event,
    func,
    insert,
    true,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select  # (sqlmodel's types at most four columns)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, SQLModel, col, select

from marketplace.clusters.models import Addressee, Cluster, User
from marketplace.db import UTCDateTime, on_postgresql
from marketplace.delivery import planner
from marketplace.realtime.models import Notification, NotificationSequence
from marketplace.scope import Slot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """One stored notification of a batch: its row id, its place in the person's
    sequence, whose it is, in which language: the person's own, else their cluster's
    default (what their pages, replay and notification centre are shown in)."""

    notification_id: int
    seq: int
    user_id: int
    locale: str | None


@dataclass(frozen=True)
class Batch:
    """One `notify` call as committed: the same event for every recipient, one row each."""

    kind: str
    message: str
    params: dict[str, Any]
    payload: dict[str, Any]
    link: str | None
    created_at: datetime
    recipients: tuple[Recipient, ...]


@dataclass
class _Pending:
    """A `notify` call waiting for its transaction to commit."""

    kind: str
    message: str
    params: dict[str, Any]
    payload: dict[str, Any]
    link: str | None
    created_at: datetime
    users: list[tuple[int, str | None]] = field(default_factory=list)


#: Takes a committed batch; in the web process it only queues it for a background
#: task (realtime/background.py), so the committing request never waits for delivery.
Publisher = Callable[[Batch], object]
#: The app's publisher, lent to its sessions (marketplace/scope.py): a commit hands its
#: batches to the publisher of the session's own app, never another app's.
PUBLISHER: Slot[Publisher] = Slot("publisher")
_PENDING_KEY = "marketplace.pending_events"
_OUTBOX_KEY = "marketplace.outbox"


def notify(
    session: Session,
    recipients: Iterable[User | Addressee],
    kind: str,
    message: str,
    *,
    now: datetime,
    params: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
    link: str | None = None,
) -> int:
    """Queue one notification per active recipient for this transaction's commit;
    how many were queued.

    `payload` must already be what every one of these recipients may see;
    callers build it with the visibility rules, never from raw rows.
    """
    users: list[tuple[int, str | None]] = []
    seen: set[int] = set()
    cluster_locale: dict[int, str | None] = {}
    for user in recipients:
        if user.id is None or user.id in seen or not user.active:
            continue
        seen.add(user.id)
        locale = user.locale
        if locale is None:  # an invited person who never chose: their cluster's language
            if user.cluster_id not in cluster_locale:
                cluster = session.get(Cluster, user.cluster_id)
                cluster_locale[user.cluster_id] = cluster.default_locale if cluster else None
            locale = cluster_locale[user.cluster_id]
        users.append((user.id, locale))
    if users:
        if not session.in_transaction():
            session.begin()  # so that a rollback before any query still drops this
        session.info.setdefault(_PENDING_KEY, []).append(_Pending(
            kind, message, params or {}, payload or {}, link, now, users))
    return len(users)


def _take_sequences(session: Session, counts: Counter[int]) -> dict[int, int]:
    """Reserve `counts[user]` numbers in each user's sequence; the first of each.

    One statement, its rows in user-id order: INSERT ... ON CONFLICT DO UPDATE
    takes each person's row lock as it reaches that row, so concurrent commits
    always lock in the same order and queue behind each other per person instead
    of deadlocking -- also when a person gets a first notification, whose row does
    not exist yet (a SELECT ... FOR UPDATE followed by an insert of the missing
    rows would lock out of order).  On SQLite the transaction already holds the
    database's write lock.
    """
    users = sorted(counts)
    people, values = _integer_rows(session, users=users,
                                   counts=[counts[user] for user in users])
    # (WHERE true: SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT)
    upsert = _dialect(session).insert(_table(NotificationSequence)).from_select(
        ["user_id", "last_seq"],
        select(people.c.users, people.c.counts).where(true()).order_by(people.c.users))
    upsert = upsert.on_conflict_do_update(
        index_elements=[col(NotificationSequence.user_id)],
        set_={"last_seq": NotificationSequence.last_seq + upsert.excluded.last_seq},
    ).returning(col(NotificationSequence.user_id), col(NotificationSequence.last_seq))
    return {user_id: last - counts[user_id] + 1
            for user_id, last in session.execute(upsert, values)}


def _table(model: type[SQLModel]) -> Table:
    """The model's table, for a Core statement: an ORM insert would read our parameters
    as rows to insert, one per recipient, which is what these statements avoid."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # every table model has one
    return table


def _dialect(session: Session) -> Any:
    return postgresql if on_postgresql(session) else sqlite


def _integer_rows(session: Session, **columns: list[int]) -> tuple[Any, dict[str, Any]]:
    """A table of integer columns for a statement to select from, and the parameters
    that fill it: `unnest` of one integer array per column on PostgreSQL, `json_each`
    over one JSON array of rows on SQLite.

    Why not a VALUES list or executemany: the statement's text must not depend on how
    many people a post reaches, so it is compiled once per process and sent as one
    statement with a few parameters (compiling a 1 000-row VALUES list cost more than
    running it, and a parameter set per row is a thousand of them to serialize)."""
    names = list(columns)
    if on_postgresql(session):
        arrays = [bindparam(name, type_=postgresql.ARRAY(Integer)) for name in names]
        return func.unnest(*arrays).table_valued(*names).render_derived(), dict(columns)
    each = func.json_each(bindparam("rows", type_=String)).table_valued("value")
    table = select(*[cast(func.json_extract(each.c.value, f"$[{index}]"), Integer).label(name)
                     for index, name in enumerate(names)]).subquery()
    return table, {"rows": json.dumps(list(zip(*columns.values(), strict=True)))}


def _json_value(session: Session, name: str) -> Any:
    """A JSON parameter as a value to insert (PostgreSQL needs to be told it is JSON;
    SQLite keeps the text, and a CAST there would turn it into a number)."""
    value = bindparam(name, type_=JSON)
    if on_postgresql(session):
        return cast(value, JSON)
    return type_coerce(value, JSON)


def _store_rows(session: Session, item: _Pending, seqs: list[int]) -> dict[tuple[int, int], int]:
    """One `notify` call's rows, one per recipient, in one INSERT ... SELECT whose text
    does not depend on the number of recipients; their ids by (user, seq).  The event's
    own fields are sent once, not once per recipient."""
    people, values = _integer_rows(session, users=[user for user, _l in item.users],
                                   seqs=seqs)
    stored = session.execute(
        insert(_table(Notification)).from_select(
            ["user_id", "seq", "kind", "message", "params", "payload", "link", "created_at"],
            sa_select(people.c.users, people.c.seqs, bindparam("kind", type_=String),
                      bindparam("message", type_=String), _json_value(session, "params"),
                      _json_value(session, "payload"), bindparam("link", type_=String),
                      bindparam("created_at", type_=UTCDateTime())))
        .returning(col(Notification.user_id), col(Notification.seq), col(Notification.id)),
        {**values, "kind": item.kind, "message": item.message, "params": item.params,
         "payload": item.payload, "link": item.link, "created_at": item.created_at})
    return {(user_id, seq): row_id for user_id, seq, row_id in stored}


def _write_pending(session: Session) -> None:
    """Store the transaction's queued notifications and their deliveries (before commit)."""
    pending: list[_Pending] = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    next_seq = _take_sequences(session, Counter(u for p in pending for u, _l in p.users))
    batches: list[Batch] = []
    for item in pending:
        seqs = []
        for user_id, _locale in item.users:
            seqs.append(next_seq[user_id])
            next_seq[user_id] += 1
        id_of = _store_rows(session, item, seqs)
        batches.append(Batch(item.kind, item.message, item.params, item.payload, item.link,
                             item.created_at, tuple(
                                 Recipient(id_of[(user_id, seq)], seq, user_id, locale)
                                 for (user_id, locale), seq in zip(item.users, seqs,
                                                                   strict=True))))
    planner.plan_deliveries(session, [
        planner.Planned(r.notification_id, r.user_id, b.kind, b.created_at)
        for b in batches for r in b.recipients])
    session.info.setdefault(_OUTBOX_KEY, []).extend(batches)


# Registered once, on the Session class, for every session of the process: each acts
# with what the session itself carries (its queued rows, its app's PUBLISHER), so a
# session of one app never publishes through another app's publisher.
@event.listens_for(Session, "before_commit")
def _store_before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's release is not the commit
        _write_pending(session)


@event.listens_for(Session, "after_commit")
def _deliver_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending: list[Batch] = session.info.pop(_OUTBOX_KEY, [])
    publisher = PUBLISHER.of(session)
    if not pending or publisher is None:
        return
    for batch in pending:
        try:
            publisher(batch)
        except Exception:  # the rows are stored; replay delivers them later
            log.exception(
                "could not deliver %s notifications from id=%s",
                batch.kind,
                batch.recipients[0].notification_id,
            )


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous: SessionTransaction) -> None:
    """Any rollback of the whole transaction drops what it queued, even one that never
    reached the database (`notify` itself writes nothing until the commit)."""
    if not previous.nested:
        session.info.pop(_PENDING_KEY, None)
        session.info.pop(_OUTBOX_KEY, None)


def missed_since(
    session: Session, user_id: int, cursor: int, limit: int = 200
) -> list[Notification]:
    """The user's notifications after position `cursor` of their sequence, in order
    (for replay).  Sequence numbers commit in order and without gaps, so this is
    everything committed that the holder of `cursor` has not seen."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.user_id == user_id, col(Notification.seq) > cursor)
            .order_by(col(Notification.seq))
            .limit(limit)
        )
    )


def recent(session: Session, user_id: int, limit: int = 100, before: int | None = None,
           through: int | None = None) -> list[Notification]:
    """The user's latest notifications, newest first (the notification centre); with
    `before`, the page of those older than that position of their sequence; with
    `through`, none after that position (the page's cursor: later ones come live)."""
    query = select(Notification).where(Notification.user_id == user_id)
    if before is not None:
        query = query.where(col(Notification.seq) < before)
    if through is not None:
        query = query.where(col(Notification.seq) <= through)
    return list(session.exec(query.order_by(col(Notification.seq).desc()).limit(limit)))


def cursor_of(session: Session, user_id: int) -> int:
    """The position of the user's newest committed notification (0 for none): what a
    page rendered now already reflects, so its live connection replays only what
    comes after."""
    return session.exec(
        select(NotificationSequence.last_seq).where(NotificationSequence.user_id == user_id)
    ).first() or 0


def unread_count(session: Session, user_id: int, through: int | None = None) -> int:
    """How many notifications the user has not opened yet; with `through`, only those
    up to that position of their sequence.

    A page counts its badge `through` its cursor: one committed after the cursor was
    read comes live and live.js adds it to the badge then.  On PostgreSQL a count
    without the bound could already see it (each statement sees what has committed
    when it starts), and it would be counted twice."""
    query = select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, col(Notification.read_at).is_(None))
    if through is not None:
        query = query.where(col(Notification.seq) <= through)
    return session.exec(query).one()


def mark_all_read(session: Session, user_id: int, now: datetime, through: int | None = None
                  ) -> int:
    """The user read their notifications (up to position `through` of their sequence:
    what the page they acted on showed, never one that arrived after it); how many."""
    query = update(Notification).where(
        col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
    if through is not None:
        query = query.where(col(Notification.seq) <= through)
    marked = session.exec(query.values(read_at=now)).rowcount
    session.commit()
    return int(marked)
