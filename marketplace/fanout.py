"""Fan-outs done after the commit that asked for them, off the request path.

Why: a job posted to a cluster of a thousand members used to find every
eligible member, store a notification for each and plan their pushes and mails
inside the poster's request, so the poster waited longer the bigger the cluster
(and, on SQLite, everybody else waited for the write lock).  Now the posting
transaction stores one `PendingFanout` row with the job; after the commit the
app's background runner (`RUNNER`, marketplace/scope.py) does the fan-out in its
own transaction, which deletes that row.  The request's work no longer depends
on how many people the post reaches.

Exactly once, whatever fails:
- the row commits with the change, or neither exists (a rolled-back post owes
  nothing);
- the fan-out's transaction deletes the row and stores the notifications
  together: if it fails, the row stays and the sweep (a periodic task) does it
  later; if two workers (two instances, the runner and the sweep) take the same
  row, the second one's DELETE finds nothing and it stops;
- the handler decides with the facts as they were at `created_at` (eligibility
  "at the time of the post"), and a job no longer open by then tells nobody.

A session whose app has no runner (commands, scripts, the test suite by
default) runs the handler at once, in the caller's transaction: the behaviour
before this module, and still exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col, select

from marketplace.persisted import id_of
from marketplace.realtime.models import PendingFanout
from marketplace.scope import Slot

log = logging.getLogger(__name__)

#: A fan-out: (session, subject id, when it was asked for) -> how many were told.  It
#: only adds to the session's transaction; whoever runs it commits.
Handler = Callable[[Session, int, datetime], int]
#: Takes the id of a committed PendingFanout row and has it done in the background.
Runner = Callable[[int], object]
RUNNER: Slot[Runner] = Slot("fan-out runner")

_HANDLERS: dict[str, Handler] = {}
_OWED_KEY = "marketplace.fanouts_owed"
#: The sweep leaves younger rows to the runner that was handed them.
SWEEP_AFTER = timedelta(seconds=5)
SWEEP_BATCH = 100


def handles(kind: str) -> Callable[[Handler], Handler]:
    """Register the function that does fan-outs of `kind` (once per kind, at import,
    like a route: code, not configuration, so it is the same for every app)."""
    def register(handler: Handler) -> Handler:
        if _HANDLERS.get(kind, handler) is not handler:
            raise RuntimeError(f"two handlers for fan-out {kind!r}")
        _HANDLERS[kind] = handler
        return handler
    return register


def fan_out(session: Session, kind: str, subject_id: int, now: datetime) -> None:
    """Have fan-out `kind` of `subject_id` done for this transaction's change: after
    its commit, in the background, when the session's app has a runner; otherwise now,
    in this transaction."""
    handler = _HANDLERS[kind]
    if RUNNER.of(session) is None:
        handler(session, subject_id, now)
        return
    owed = PendingFanout(kind=kind, subject_id=subject_id, created_at=now)
    session.add(owed)
    session.flush()
    session.info.setdefault(_OWED_KEY, []).append(id_of(owed))


def run_pending(session: Session, fanout_id: int) -> int:
    """Do one stored fan-out, exactly once; how many people it told (0 if it was done
    already, by another instance or the sweep).  Commits."""
    claimed = session.execute(
        delete(PendingFanout).where(col(PendingFanout.id) == fanout_id)
        .returning(col(PendingFanout.kind), col(PendingFanout.subject_id),
                   col(PendingFanout.created_at))).first()
    if claimed is None:
        session.rollback()
        return 0
    kind, subject_id, created_at = claimed
    try:
        told = _HANDLERS[kind](session, subject_id, created_at)
        session.commit()
    except Exception:
        session.rollback()  # the row is back: the sweep tries again
        log.exception("fan-out %s id=%s of %s failed; the sweep retries it", kind,
                      fanout_id, subject_id)
        raise
    log.info("fan-out %s id=%s of %s told %s", kind, fanout_id, subject_id, told)
    return told


def sweep(session: Session, now: datetime) -> int:
    """The periodic task: fan-outs still owed a while after their commit (the process
    that owed them stopped, or their run failed); how many people they told."""
    owed = list(session.exec(
        select(PendingFanout.id).where(col(PendingFanout.created_at) <= now - SWEEP_AFTER)
        .order_by(col(PendingFanout.id)).limit(SWEEP_BATCH)))
    session.rollback()  # end the read before each fan-out takes its own transaction
    told = 0
    for fanout_id in owed:
        if fanout_id is None:  # (a stored row always has its id)
            continue
        try:
            told += run_pending(session, fanout_id)
        except Exception:  # logged by run_pending; the next one still goes
            continue
    return told


@event.listens_for(Session, "after_commit")
def _hand_over_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    owed: list[int] = session.info.pop(_OWED_KEY, [])
    if not owed:
        return
    runner = RUNNER.of(session)
    for fanout_id in owed:
        try:
            if runner is not None:
                runner(fanout_id)
        except Exception:  # the row is stored: the sweep does it
            log.exception("could not hand fan-out id=%s to the runner", fanout_id)


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous: SessionTransaction) -> None:
    """A rolled-back change owes nothing (its row was never committed)."""
    if not previous.nested:
        session.info.pop(_OWED_KEY, None)
