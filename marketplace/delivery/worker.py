"""The delivery worker: claim due rows, send them, record each answer at once.

Exactly once, as far as the wire allows:

* A row is claimed (status `sending`, a lease, attempts + 1) in a committed
  transaction before anything is sent.  PostgreSQL claims with `SKIP LOCKED`,
  so two workers never take the same rows; SQLite's write lock serializes.
* Each answer is committed as soon as it arrives.  A row marked `sent` is
  never sent again.  A worker killed mid-batch leaves its unanswered rows in
  `sending`; when the lease runs out they are due again and the next worker
  sends them.  Only a message that was in flight at the moment of the crash
  can reach the push service twice, and it carries the same Topic, tag and
  notification id, so the push service and the phone's service worker keep
  one (static sw.js drops a repeat of a notification already shown).
* Retries back off exponentially (or as Retry-After asks); a device that is
  gone (404/410) is unsubscribed and its other pending rows are dropped.

Nothing here runs in a member's request: the scheduler process (in-process in
the embedded default) calls `send_due` every second.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import Channel, Delivery, DeliveryStatus, PushSubscription
from marketplace.delivery.preferences import Category, category_of
from marketplace.delivery.webpush import PushAnswer, PushMessage
from marketplace.realtime.models import Notification
from marketplace.realtime.wire import push_payload, push_topic, wire

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
#: a notice that could not go out for this long is news no more
STALE_AFTER = timedelta(hours=12)


class Sender(Protocol):
    def send(self, message: PushMessage) -> PushAnswer: ...


#: (notification, locale, cluster name) -> (title, text) in that language
Renderer = Callable[[Notification, str, str], tuple[str, str]]


@dataclass
class WorkerSettings:
    batch: int = 32
    concurrency: int = 8
    lease: timedelta = timedelta(seconds=60)
    ttl_seconds: int = 12 * 3600
    default_locale: str = "en"
    most_per_call: int = 5000


@dataclass
class Round:
    """What one call of `send_due` did, for the scheduler's log line."""

    sent: int = 0
    retried: int = 0
    gone: int = 0
    failed: int = 0
    claimed: int = 0
    outcomes: list[tuple[int, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.claimed > 0


@dataclass(frozen=True)
class _Claimed:
    delivery_id: int
    attempts: int
    subscription_id: int
    message: PushMessage


def retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    """Exponential back-off from 30 s, capped at an hour; a push service's own
    Retry-After wins when it asks for longer."""
    delay = min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), LONGEST_RETRY))
    return delay


def due_rows(channel: Channel, now: datetime) -> ColumnElement[bool]:
    """Rows of `channel` a worker may take now: pending and due, or claimed by a worker
    whose lease ran out (it crashed, or hangs)."""
    return (col(Delivery.channel) == channel) & or_(
        (col(Delivery.status) == DeliveryStatus.PENDING) & (col(Delivery.due_at) <= now),
        (col(Delivery.status) == DeliveryStatus.SENDING) & (col(Delivery.claimed_until) < now))


def claim(session: Session, now: datetime, settings: WorkerSettings,
          where: ColumnElement[bool], limit: int | None = None) -> list[tuple[int, int]]:
    """Take due rows matching `where` for this worker (status `sending`, a lease, one
    more attempt) and commit; (delivery id, attempt number) of each."""
    due = (select(Delivery.id).where(where)
           .order_by(col(Delivery.due_at), col(Delivery.id)).limit(limit or settings.batch)
           .with_for_update(skip_locked=True))
    ids = list(session.execute(due).scalars())
    if not ids:
        session.rollback()
        return []
    claimed = session.execute(
        update(Delivery).where(col(Delivery.id).in_(ids))
        .values(status=DeliveryStatus.SENDING.value, claimed_until=now + settings.lease,
                attempts=Delivery.attempts + 1)
        .returning(col(Delivery.id), col(Delivery.attempts)))
    rows = [(delivery_id, attempts) for delivery_id, attempts in claimed]
    session.commit()
    return rows


def _claim(session: Session, now: datetime, settings: WorkerSettings) -> list[tuple[int, int]]:
    return claim(session, now, settings, due_rows(Channel.PUSH, now))


def retry_later(session: Session, delivery_id: int, attempts: int, now: datetime,
                retry_after: float | None, reason: str) -> bool:
    """Put our claimed row back, due after the back-off; False when it was not ours."""
    result = session.exec(
        update(Delivery).where(col(Delivery.id) == delivery_id,
                               col(Delivery.status) == DeliveryStatus.SENDING,
                               col(Delivery.attempts) == attempts)
        .values(status=DeliveryStatus.PENDING.value, claimed_until=None,
                due_at=now + retry_delay(attempts, retry_after), last_error=reason[:300]))
    return bool(result.rowcount)


def _messages(session: Session, claimed: list[tuple[int, int]], now: datetime,
              render: Renderer, settings: WorkerSettings, done: Round) -> list[_Claimed]:
    """Build each claimed row's encrypted-to-be message; rows that can no longer be
    sent (device gone, notice stale) are closed here."""
    attempts_of = dict(claimed)
    rows = session.execute(
        sa_select(Delivery, Notification, PushSubscription, col(User.locale), col(Cluster.name),
                  col(Cluster.default_locale))
        .join(Notification, col(Notification.id) == col(Delivery.notification_id))
        .join(PushSubscription, col(PushSubscription.id) == col(Delivery.subscription_id))
        .join(User, col(User.id) == col(Notification.user_id))
        .join(Cluster, col(Cluster.id) == col(User.cluster_id))
        .where(col(Delivery.id).in_(list(attempts_of))).order_by(col(Delivery.id))).all()
    ready: list[_Claimed] = []
    for delivery, notification, subscription, locale, cluster_name, cluster_locale in rows:
        if subscription.removed_at is not None:
            close(session, delivery.id, attempts_of[delivery.id], DeliveryStatus.GONE,
                   "device unsubscribed", now, done)
            continue
        if subscription.user_id != notification.user_id:  # another person subscribed it since
            close(session, delivery.id, attempts_of[delivery.id], DeliveryStatus.GONE,
                   "device moved to another person", now, done)
            continue
        if now - delivery.due_at > STALE_AFTER:
            close(session, delivery.id, attempts_of[delivery.id], DeliveryStatus.FAILED,
                   "stale: not sent within 12 hours", now, done)
            continue
        language = locale or cluster_locale or settings.default_locale
        try:
            title, text = render(notification, language, cluster_name)
            body = push_payload(wire(notification.id, notification.seq, notification.kind, text,
                                     notification.link, notification.payload,
                                     notification.created_at),
                                title, language.split("_")[0])
        except Exception as error:  # e.g. a translation whose placeholders do not match:
            # fail this row, never the batch (raising would leave every row of it claimed,
            # to be claimed and fail again after each lease, holding up everyone's pushes)
            log.exception("push delivery id=%s could not be rendered", delivery.id)
            close(session, delivery.id, attempts_of[delivery.id], DeliveryStatus.FAILED,
                   f"could not render: {type(error).__name__}", now, done)
            continue
        urgent = category_of(notification.kind) is Category.NEW_JOBS
        ready.append(_Claimed(delivery.id, attempts_of[delivery.id], subscription.id, PushMessage(
            subscription.endpoint, subscription.p256dh, subscription.auth, body,
            settings.ttl_seconds, push_topic(notification.link), "high" if urgent else "normal")))
    session.commit()
    return ready


def close(session: Session, delivery_id: int, attempts: int, status: DeliveryStatus,
           error: str | None, now: datetime, done: Round) -> bool:
    """Move our claimed row to its final state (only if it is still ours)."""
    result = session.exec(
        update(Delivery).where(col(Delivery.id) == delivery_id,
                               col(Delivery.status) == DeliveryStatus.SENDING,
                               col(Delivery.attempts) == attempts)
        .values(status=status.value, claimed_until=None, last_error=error,
                sent_at=now if status is DeliveryStatus.SENT else None))
    ours = bool(result.rowcount)
    if ours:
        done.outcomes.append((delivery_id, status.value))
        if status is DeliveryStatus.SENT:
            done.sent += 1
        elif status is DeliveryStatus.GONE:
            done.gone += 1
        else:
            done.failed += 1
    return ours


def _record(session: Session, item: _Claimed, answer: PushAnswer, now: datetime,
            done: Round) -> None:
    """What a push service's answer means for the row (and the device)."""
    status = answer.status
    if status is not None and 200 <= status < 300:
        if close(session, item.delivery_id, item.attempts, DeliveryStatus.SENT, None, now, done):
            session.execute(update(PushSubscription)
                            .where(col(PushSubscription.id) == item.subscription_id)
                            .values(last_sent_at=now))
        return
    if status in (404, 410):
        close(session, item.delivery_id, item.attempts, DeliveryStatus.GONE,
               f"push service answered {status}", now, done)
        _unsubscribe_gone(session, item.subscription_id, now)
        log.info("push subscription id=%s is gone (%s); removed", item.subscription_id, status)
        return
    retryable = status is None or status == 429 or status >= 500
    if retryable and item.attempts < MAX_ATTEMPTS:
        if retry_later(session, item.delivery_id, item.attempts, now, answer.retry_after,
                       answer.reason or f"status {status}"):
            done.retried += 1
            done.outcomes.append((item.delivery_id, "retry"))
        log.info("push delivery id=%s will be retried (status %s, attempt %s)",
                 item.delivery_id, status, item.attempts)
        return
    close(session, item.delivery_id, item.attempts, DeliveryStatus.FAILED,
           (answer.reason or f"status {status}")[:300], now, done)
    log.warning("push delivery id=%s failed for good (status %s, attempt %s)",
                item.delivery_id, status, item.attempts)


def _unsubscribe_gone(session: Session, subscription_id: int, now: datetime) -> None:
    session.execute(update(PushSubscription)
                    .where(col(PushSubscription.id) == subscription_id,
                           col(PushSubscription.removed_at).is_(None))
                    .values(removed_at=now, removed_reason="gone"))
    session.execute(update(Delivery)
                    .where(col(Delivery.subscription_id) == subscription_id,
                           col(Delivery.status) == DeliveryStatus.PENDING)
                    .values(status=DeliveryStatus.GONE.value, last_error="device unsubscribed"))


def send_due(session: Session, now: datetime, sender: Sender, render: Renderer,
             settings: WorkerSettings | None = None,
             clock: Callable[[], datetime] | None = None) -> Round:
    """Send every push delivery that is due, a batch at a time, until none is left.

    Answers are recorded as they arrive (`clock` gives the time of each; `now`
    by default), each in its own short transaction on `session`.
    """
    settings = settings or WorkerSettings()
    clock = clock or (lambda: now)
    done = Round()
    with ThreadPoolExecutor(max_workers=settings.concurrency,
                            thread_name_prefix="push") as pool:
        while True:
            claimed = _claim(session, clock(), settings)
            if not claimed:
                return done
            done.claimed += len(claimed)
            ready = _messages(session, claimed, clock(), render, settings, done)
            answers: queue.Queue[tuple[_Claimed, PushAnswer]] = queue.Queue()
            for item in ready:
                pool.submit(_send_one, sender, item, answers)
            remaining = len(ready)
            while remaining:
                arrived = [answers.get()]
                while True:  # record together whatever else has arrived meanwhile
                    try:
                        arrived.append(answers.get_nowait())
                    except queue.Empty:
                        break
                for item, answer in arrived:
                    _record(session, item, answer, clock(), done)
                session.commit()
                remaining -= len(arrived)
            if done.claimed >= settings.most_per_call:
                return done  # the next call goes on; a long backlog must not hold the thread


def _send_one(sender: Sender, item: _Claimed,
              answers: queue.Queue[tuple[_Claimed, PushAnswer]]) -> None:
    try:
        answer = sender.send(item.message)
    except Exception as error:  # a bug or a broken key must not kill the worker
        log.exception("push delivery id=%s could not be sent", item.delivery_id)
        answer = PushAnswer(None, None, f"error: {type(error).__name__}")
    answers.put((item, answer))
