"""Queue a mail in the caller's transaction; the delivery worker sends it after commit.

Only what is needed to compose the mail is stored (which invite, which person),
never the text or a secret: an invite or reset link is signed when the mail is
composed, so a copy of the database holds no working link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from marketplace.clusters.accounts import normalise_email
from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import (
    Channel,
    Delivery,
    DeliveryStatus,
    OutboundMail,
    UndeliverableAddress,
)


class MailKind(StrEnum):
    INVITE = "invite"
    PASSWORD_RESET = "password_reset"


def queue_mail(session: Session, kind: MailKind, to_address: str, locale: str, now: datetime,
               *, user_id: int | None = None, params: dict[str, Any] | None = None
               ) -> OutboundMail:
    """One mail and its e-mail delivery row, part of the current transaction."""
    mail = OutboundMail(kind=kind.value, to_address=to_address, user_id=user_id,
                        locale=locale, params=params or {}, created_at=now)
    session.add(mail)
    session.flush()
    session.add(Delivery(channel=Channel.EMAIL.value, mail_id=mail.id,
                         status=DeliveryStatus.PENDING.value, due_at=now, created_at=now))
    return mail


RESET_MAIL_EVERY = timedelta(minutes=5)


def queue_password_reset(session: Session, user: User, now: datetime) -> OutboundMail | None:
    """The reset link goes to the person's own address, in the person's language; at
    most one such mail every few minutes, whoever keeps asking (a stranger typing the
    address again and again must not fill the person's inbox)."""
    recent = session.exec(select(OutboundMail.id).where(
        OutboundMail.kind == MailKind.PASSWORD_RESET.value, OutboundMail.user_id == user.id,
        col(OutboundMail.created_at) > now - RESET_MAIL_EVERY)).first()
    if recent is not None:
        session.rollback()
        return None
    cluster = session.get(Cluster, user.cluster_id)
    locale = user.locale or (cluster.default_locale if cluster else "en")
    mail = queue_mail(session, MailKind.PASSWORD_RESET, user.email, locale, now,
                      user_id=user.id)
    session.commit()
    return mail


def undeliverable(session: Session, address: str) -> UndeliverableAddress | None:
    """Why mail to this address stopped, if it did."""
    return session.get(UndeliverableAddress, normalise_email(address))


def undeliverable_among(session: Session, addresses: list[str]) -> dict[str, UndeliverableAddress]:
    """The refused addresses among these (normalised), for the coordinator's list."""
    wanted = sorted({normalise_email(a) for a in addresses})
    if not wanted:
        return {}
    rows = session.exec(select(UndeliverableAddress).where(
        col(UndeliverableAddress.address).in_(wanted)))
    return {row.address: row for row in rows}


def mark_undeliverable(session: Session, address: str, code: int | None, reason: str,
                       now: datetime) -> None:
    """A mail server refused this address for good."""
    key = normalise_email(address)
    row = session.get(UndeliverableAddress, key) or UndeliverableAddress(address=key, since=now)
    row.code, row.reason = code, reason[:300]
    session.add(row)


def try_again(session: Session, user: User) -> bool:
    """The person fixed their mailbox: send to it again."""
    row = undeliverable(session, user.email)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True
