"""Wire the mail transport into an app, and run the mail worker as a scheduled task."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.delivery.worker import WorkerSettings
from marketplace.mail.composer import MailComposer
from marketplace.mail.transport import MailTransport, transport_from_config
from marketplace.mail.worker import MailRound, send_due_mail

EXTENSION = "marketplace.mail"


def init_mail(app: Flask) -> None:
    """SMTP when MAIL_SERVER is set, else .eml files under instance/mail/."""
    app.extensions[EXTENSION] = transport_from_config(app.config)


def mail_transport(app: Flask | None = None) -> MailTransport:
    return (app or current_app).extensions[EXTENSION]


def send_due_mails(session: Session, now: datetime) -> MailRound:
    """The scheduled task: compose and send what is due, in each reader's language.

    Five mails a claim: even if each SMTP conversation ran to its time limit, the
    batch ends long before its lease, so no other worker takes a mail in flight."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # a LocalProxy
    return send_due_mail(session, now, mail_transport(app), MailComposer(app, session),
                         WorkerSettings(batch=5, lease=_lease(app)), clock=utcnow)


def _lease(app: Flask) -> timedelta:
    return timedelta(seconds=app.config["MAIL_LEASE_SECONDS"])
