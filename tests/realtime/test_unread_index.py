"""The unread badge counts a person's unread notifications through their own index.

Every page draws the badge.  Without the partial index of unread rows the count
visits every notification the person ever had (its cost grows with the season);
the database's own plan must name the index, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlmodel import Session

from marketplace import events
from marketplace.db import on_postgresql, utcnow
from marketplace.realtime.models import Notification
from tests.conftest import World
from tests.statements import recorded_with_parameters

HISTORY = 300  # notifications read long ago: what the count must not visit


def _the_count_statement(session: Session, user_id: int) -> tuple[str, object]:
    with recorded_with_parameters(session.get_bind()) as seen:
        assert events.unread_count(session, user_id, through=HISTORY + 4) == 3
    [found] = [s for s in seen if "count(" in s[0].lower()]
    return found


def test_the_badge_count_reads_the_unread_index(session: Session, world: World) -> None:
    owner = world.owner_b
    assert owner.id is not None
    for n in range(4):
        events.notify(session, [owner], "job.posted", "Job %(n)d", now=utcnow(), params={"n": n})
        session.commit()
    events.mark_all_read(session, owner.id, utcnow(), through=1)
    now = utcnow()
    session.add_all(Notification(user_id=owner.id, seq=5 + n, kind="job.posted", message="Old",
                                 created_at=now, read_at=now) for n in range(HISTORY))
    session.commit()
    session.connection().exec_driver_sql("ANALYZE notification")
    statement, parameters = _the_count_statement(session, owner.id)
    connection = session.connection()
    if on_postgresql(session):
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
    else:
        plan = [row[-1] for row in connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {statement}", parameters)]
    session.rollback()
    assert any("ix_notification_unread" in line for line in plan), plan
