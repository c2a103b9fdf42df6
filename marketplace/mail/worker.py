"""Send due e-mail deliveries: one mail per row, one digest per person and day.

The same claim-then-record protocol as Web Push (delivery/worker.py): a row is
claimed with a lease in its own transaction, the SMTP answer is committed as
soon as it comes back, a worker killed meanwhile leaves the row to come due
again when its lease runs out.  That is at-least-once, on purpose: a mail lost
(at-most-once) is a reset that never arrives or a job nobody hears of, while a
repeat costs a second copy of the same mail -- and that copy carries the same
Message-ID (derived from the delivery row), which mail clients use to fold
repeats.  Only a mail in flight at the moment of a crash can come twice.

A permanent refusal (5xx) marks the address undeliverable: no notification
mail goes there until its owner asks to try again (a reset or an invite, which
a person asked for just now, is still tried).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import (
    Channel,
    ChannelPreference,
    Delivery,
    DeliveryStatus,
    OutboundMail,
)
from marketplace.delivery.preferences import Category, category_of
from marketplace.delivery.worker import (
    MAX_ATTEMPTS,
    Round,
    WorkerSettings,
    claim,
    close,
    due_rows,
    retry_later,
)
from marketplace.mail.outbox import mark_undeliverable, undeliverable
from marketplace.mail.transport import MailAnswer, MailTransport
from marketplace.realtime.models import Notification

log = logging.getLogger(__name__)
#: a notice that could not go out for this long is news no more (invites and resets,
#: which a person is waiting for, are sent however late)
STALE_AFTER = timedelta(days=2)


@dataclass(frozen=True)
class Recipient:
    """Who a notification mail is for: the person, their cluster, their address."""

    user: User
    cluster: Cluster


class Composer(Protocol):
    """Builds the mails (the edge renders templates in the recipient's language)."""

    def notification(self, delivery_id: int, notification: Notification,
                     to: Recipient) -> EmailMessage: ...

    def digest(self, delivery_id: int, notifications: list[Notification],
               to: Recipient) -> EmailMessage: ...

    def mail(self, delivery_id: int, mail: OutboundMail) -> EmailMessage | None: ...


@dataclass
class MailRound(Round):
    digests: int = 0
    skipped: list[int] = field(default_factory=list)


def _record(session: Session, ids: list[tuple[int, int]], address: str, answer: MailAnswer,
            now: datetime, done: Round) -> None:
    """The SMTP answer for these claimed rows (one mail: one row, or a digest's rows)."""
    if answer.outcome == "sent":
        for delivery_id, attempts in ids:
            close(session, delivery_id, attempts, DeliveryStatus.SENT, None, now, done)
        return
    reason = (f"{answer.code} {answer.reason}" if answer.code else answer.reason)[:300]
    if answer.outcome == "retry" and max(a for _d, a in ids) < MAX_ATTEMPTS:
        for delivery_id, attempts in ids:
            if retry_later(session, delivery_id, attempts, now, None, reason or "try again"):
                done.retried += 1
        log.info("mail deliveries %s will be retried (%s)", [d for d, _a in ids], answer.code)
        return
    for delivery_id, attempts in ids:
        close(session, delivery_id, attempts, DeliveryStatus.FAILED, reason, now, done)
    if answer.outcome == "permanent" and answer.recipient:
        mark_undeliverable(session, address, answer.code, answer.reason, now)
        log.warning("mail deliveries %s refused for good (%s): address marked undeliverable",
                    [d for d, _a in ids], answer.code)
    elif answer.outcome == "permanent":  # our sender, the message or the server's rules
        log.error("mail deliveries %s refused for good (%s %s): check MAIL_FROM and the "
                  "mail server's settings", [d for d, _a in ids], answer.code, answer.reason)


def _recipients(session: Session, user_ids: list[int]) -> dict[int, Recipient]:
    rows = session.execute(sa_select(User, Cluster).join(
        Cluster, col(Cluster.id) == col(User.cluster_id)).where(col(User.id).in_(user_ids)))
    return {user.id: Recipient(user, cluster) for user, cluster in rows}


def _turned_off(session: Session, user_id: int, category: Category) -> bool:
    """Whether the person has turned this kind of mail off since the row was written (a
    digest waits up to a day; "Stop these e-mails" must hold for what it collected)."""
    enabled = session.exec(select(ChannelPreference.enabled).where(
        ChannelPreference.user_id == user_id, ChannelPreference.channel == Channel.EMAIL,
        ChannelPreference.category == category.value)).first()
    return enabled is False


class _NotComposed(Exception):
    """The mail could not be built (a template bug): fail this row alone."""


def _send(transport: MailTransport, message: EmailMessage) -> MailAnswer:
    try:
        return transport.send(message)
    except Exception as error:  # a bug must not stop everyone's mail
        log.exception("mail could not be sent")
        return MailAnswer("retry", None, f"error: {type(error).__name__}")


def _compose(what: str, build: Callable[..., EmailMessage | None], *args: object
             ) -> EmailMessage | None:
    """The mail, or None when it is no longer needed (an invite used meanwhile).  One
    that cannot be composed raises _NotComposed and fails alone: a template bug must
    not hold the batch claimed, to fail again after every lease."""
    try:
        return build(*args)
    except Exception as error:
        log.exception("could not compose %s", what)
        raise _NotComposed(type(error).__name__) from error


def _deliver(session: Session, ids: list[tuple[int, int]], address: str,
             transport: MailTransport, what: str, build: Callable[..., EmailMessage | None],
             *args: object, now: datetime, done: Round) -> None:
    """Compose, send and record one mail for these claimed rows."""
    try:
        message = _compose(what, build, *args)
    except _NotComposed as error:
        for delivery_id, attempts in ids:
            close(session, delivery_id, attempts, DeliveryStatus.FAILED,
                  f"could not compose: {error}", now, done)
        return
    if message is None:
        for delivery_id, attempts in ids:
            close(session, delivery_id, attempts, DeliveryStatus.SKIPPED,
                  "no longer needed", now, done)
        return
    # End the reads of composing before talking to the server: on SQLite a transaction
    # holds the write lock, and the site must not wait for a slow mail server.
    session.commit()
    _record(session, ids, address, _send(transport, message), now, done)


def _send_digests(session: Session, now: datetime, transport: MailTransport,
                  composer: Composer, settings: WorkerSettings, done: MailRound) -> None:
    """One mail per person whose new-job digest is due, with every job it collected."""
    due = due_rows(Channel.EMAIL, now) & col(Delivery.digest).is_(True)
    people = list(session.execute(
        sa_select(col(Notification.user_id)).join(
            Delivery, col(Delivery.notification_id) == col(Notification.id))
        .where(due).distinct().limit(50)).scalars())
    session.rollback()
    for user_id in people:
        mine = col(Delivery.notification_id).in_(
            select(Notification.id).where(Notification.user_id == user_id))
        claimed = claim(session, now, settings, due & mine, limit=500)
        if not claimed:
            continue
        done.claimed += len(claimed)
        ids = [d for d, _a in claimed]
        notifications = list(session.exec(
            select(Notification).join(Delivery, col(Delivery.notification_id) == col(
                Notification.id)).where(col(Delivery.id).in_(ids))
            .order_by(col(Notification.seq))))
        to = _recipients(session, [user_id])[user_id]
        if undeliverable(session, to.user.email) is not None or not to.user.active \
                or _turned_off(session, user_id, Category.NEW_JOBS):
            # collected before the address bounced, the account closed or the person
            # stopped these mails: as for one notice, the digest is not even tried
            for delivery_id, attempts in claimed:
                close(session, delivery_id, attempts, DeliveryStatus.SKIPPED,
                      "address undeliverable, account closed or mail turned off", now, done)
                done.skipped.append(delivery_id)
            session.commit()
            continue
        _deliver(session, claimed, to.user.email, transport, f"the digest of user_id={user_id}",
                 composer.digest, min(ids), notifications, to, now=now, done=done)
        session.commit()
        done.digests += 1


def _send_single(session: Session, now: datetime, transport: MailTransport,
                 composer: Composer, settings: WorkerSettings, done: MailRound) -> bool:
    """One batch of single mails; whether there was any."""
    claimed = claim(session, now, settings,
                    due_rows(Channel.EMAIL, now) & col(Delivery.digest).is_(False))
    if not claimed:
        return False
    done.claimed += len(claimed)
    attempts_of = dict(claimed)
    deliveries = list(session.exec(select(Delivery).where(
        col(Delivery.id).in_(list(attempts_of))).order_by(col(Delivery.id))))
    notes = {n.id: n for n in session.exec(select(Notification).where(col(Notification.id).in_(
        [d.notification_id for d in deliveries if d.notification_id is not None])))}
    mails = {m.id: m for m in session.exec(select(OutboundMail).where(col(OutboundMail.id).in_(
        [d.mail_id for d in deliveries if d.mail_id is not None])))}
    people = _recipients(session, sorted({n.user_id for n in notes.values()}))
    session.commit()
    for delivery in deliveries:
        assert delivery.id is not None
        ids = [(delivery.id, attempts_of[delivery.id])]
        if delivery.mail_id is not None:
            mail = mails[delivery.mail_id]
            _deliver(session, ids, mail.to_address, transport, f"mail id={mail.id}",
                     composer.mail, delivery.id, mail, now=now, done=done)
        else:
            note = notes[delivery.notification_id]
            to = people[note.user_id]
            address = to.user.email
            if now - delivery.due_at > STALE_AFTER:  # e.g. a worker down for days
                close(session, delivery.id, ids[0][1], DeliveryStatus.SKIPPED,
                      "stale: not sent within two days", now, done)
                session.commit()
                continue
            if undeliverable(session, address) is not None or not to.user.active \
                    or _turned_off(session, note.user_id, category_of(note.kind)):
                close(session, delivery.id, ids[0][1], DeliveryStatus.SKIPPED,
                      "address undeliverable, account closed or mail turned off", now, done)
                done.skipped.append(delivery.id)
                session.commit()
                continue
            _deliver(session, ids, address, transport, f"notification id={note.id}",
                     composer.notification, delivery.id, note, to, now=now, done=done)
        session.commit()
    return True


def send_due_mail(session: Session, now: datetime, transport: MailTransport,
                  composer: Composer, settings: WorkerSettings | None = None,
                  clock: Callable[[], datetime] | None = None) -> MailRound:
    """Send every e-mail delivery that is due: digests first, then single mails."""
    settings = settings or WorkerSettings()
    clock = clock or (lambda: now)
    done = MailRound()
    _send_digests(session, clock(), transport, composer, settings, done)
    while done.claimed < settings.most_per_call and _send_single(
            session, clock(), transport, composer, settings, done):
        pass
    return done
