"""Compose mails from templates, in the recipient's language, time zone and currency.

Each mail is rendered inside a request context of its own for its reader
(`as_reader`): Flask-Babel's locale and time zone selectors and the money and
unit helpers then answer for the recipient exactly as they do on the pages the
mail links to.  Notification mails carry only the stored, barrier-cut payload
(a new job: locality, trades, dates, value -- never the customer or address).
Plain text and HTML parts, a Message-ID from the delivery row (a repeat after a
crash folds into the first), and one-click unsubscribe per kind (RFC 8058).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import urlsplit

from flask import Flask, g, render_template, url_for
from flask_babel import force_locale, gettext
from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel import Session

from marketplace.clusters import accounts, invites
from marketplace.clusters.agreements import agreement_in_force
from marketplace.clusters.models import Cluster, Invite, Member, User
from marketplace.clusters.trades import TRADES
from marketplace.db import utcnow
from marketplace.delivery.models import OutboundMail
from marketplace.delivery.preferences import CATEGORY_LABELS, Category, category_of
from marketplace.i18n import notification_text
from marketplace.ledger.statements import statement_rows
from marketplace.mail.outbox import MailKind
from marketplace.mail.worker import Recipient
from marketplace.persisted import id_of
from marketplace.realtime.models import Notification

_UNSUBSCRIBE_SALT = "mail-unsubscribe"
#: notifications whose mail carries the member's statement of the month as CSV
_STATEMENT_KINDS = {"settlement.approved", "settlement.drafted"}


def unsubscribe_token(secret: str, user_id: int, category: Category) -> str:
    return URLSafeSerializer(secret, salt=_UNSUBSCRIBE_SALT).dumps(
        {"u": user_id, "c": category.value})


def read_unsubscribe_token(secret: str, token: str) -> tuple[int, Category] | None:
    """(user id, category) from a link we signed, or None for anything else."""
    try:
        data = URLSafeSerializer(secret, salt=_UNSUBSCRIBE_SALT).loads(token)
        return int(data["u"]), Category(data["c"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None


class MailComposer:
    """The `Composer` the mail worker calls (marketplace/mail/worker.py)."""

    def __init__(self, app: Flask, session: Session) -> None:
        self.app = app
        self.session = session
        self.sender = app.config["MAIL_FROM"]
        self.public_url = app.config["PUBLIC_URL"]
        self.domain = urlsplit(self.public_url).hostname or "localhost"

    @contextmanager
    def as_reader(self, user: User | None, cluster: Cluster | None, locale: str
                  ) -> Iterator[None]:
        # A fresh app context too: `g` belongs to it, and Flask-Babel caches the time
        # zone there, so inside the worker's context every mail would get the zone of
        # the first reader.
        with self.app.app_context(), \
                self.app.test_request_context("/", base_url=self.public_url):
            # Flask-Login's current_user for the selectors: an invitee is nobody yet,
            # which is the anonymous user (None would break every `current_user.x`).
            g._login_user = user if user is not None else \
                self.app.login_manager.anonymous_user()  # type: ignore[attr-defined]  # Flask-Login
            g.viewer_cluster = cluster
            with force_locale(user.locale if user and user.locale else locale):
                yield

    def _message(self, delivery_id: int, to: str, subject: str, template: str,
                 unsubscribe: str | None = None, **context: object) -> EmailMessage:
        """Both parts from `mail/<template>.txt|.html`; the Message-ID names the delivery
        row, so a copy resent after a crash is recognisably the same mail."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        # a title or reason typed with a line break must not break the header
        message["Subject"] = re.sub(r"[\r\n]+", " ", subject).strip()[:200]
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = f"<delivery-{delivery_id}@{self.domain}>"
        message["Auto-Submitted"] = "auto-generated"
        if unsubscribe:
            message["List-Unsubscribe"] = f"<{unsubscribe}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        context["unsubscribe"] = unsubscribe
        message.set_content(render_template(f"mail/{template}.txt", **context))
        message.add_alternative(render_template(f"mail/{template}.html", **context),
                                subtype="html")
        return message

    def _unsubscribe_link(self, user: User, category: Category) -> str:
        token = unsubscribe_token(self.app.config["SECRET_KEY"], id_of(user), category)
        return self.public_url + url_for("mail.unsubscribe", token=token)

    def notification(self, delivery_id: int, notification: Notification, to: Recipient
                     ) -> EmailMessage:
        category = category_of(notification.kind)
        with self.as_reader(to.user, to.cluster, to.cluster.default_locale):
            text = notification_text(notification.message, notification.params)
            context = self._context(to, category, notification)
            month = notification.payload.get("month")
            statement = notification.kind in _STATEMENT_KINDS and to.user.member_id
            if statement and isinstance(month, str):  # the statement to print, as well
                context["printable"] = self.public_url + url_for("ledger.statement_print",
                                                                 month=month)
            message = self._message(delivery_id, to.user.email, text, "notification",
                                    self._unsubscribe_link(to.user, category), text=text,
                                    **context)
            if statement:
                self._attach_statement(message, to.user, month)
            return message

    def digest(self, delivery_id: int, notifications: list[Notification], to: Recipient
               ) -> EmailMessage:
        with self.as_reader(to.user, to.cluster, to.cluster.default_locale):
            items = [(notification_text(n.message, n.params), self._job(n), self.public_url + (
                n.link or "/")) for n in notifications]
            subject = gettext("%(count)s new jobs you can take: %(first)s",
                              count=len(items), first=items[0][0]) if len(items) > 1 \
                else items[0][0]
            return self._message(delivery_id, to.user.email, subject, "digest",
                                 self._unsubscribe_link(to.user, Category.NEW_JOBS),
                                 items=items, **self._context(to, Category.NEW_JOBS, None))

    def _context(self, to: Recipient, category: Category, notification: Notification | None
                 ) -> dict[str, object]:
        return {"cluster": to.cluster, "person": to.user,
                "category_label": gettext(CATEGORY_LABELS[category]),
                "settings_url": self.public_url + url_for("clusters.account") + "#push",
                "job": self._job(notification) if notification else None,
                "link": self.public_url + (notification.link or "/") if notification else None}

    @staticmethod
    def _job(notification: Notification) -> dict[str, object] | None:
        """The barrier-cut job card of a new-job notice, with trade labels."""
        data = notification.payload
        if notification.kind != "job.posted" or "locality" not in data:
            return None
        return {**data, "trade_labels": [gettext(TRADES[t]) if t in TRADES else t
                                         for t in data.get("trades", [])]}

    def _attach_statement(self, message: EmailMessage, user: User, month: object) -> None:
        """The member's statement of the month, the very CSV the page downloads."""
        member = self.session.get(Member, user.member_id)
        if not isinstance(month, str) or member is None:
            return
        buffer = io.StringIO()
        csv.writer(buffer).writerows(statement_rows(self.session, user, member, month))
        message.add_attachment(buffer.getvalue().encode(), maintype="text", subtype="csv",
                               filename=f"statement-{month}-{member.id}.csv")

    def mail(self, delivery_id: int, mail: OutboundMail) -> EmailMessage | None:
        if mail.kind == MailKind.INVITE:
            return self._invite(delivery_id, mail)
        if mail.kind == MailKind.PASSWORD_RESET:
            return self._reset(delivery_id, mail)
        return None

    def _invite(self, delivery_id: int, mail: OutboundMail) -> EmailMessage | None:
        invite = self.session.get(Invite, mail.params.get("invite_id"))
        if invite is None or invite.used_at is not None:
            return None
        cluster = self.session.get(Cluster, invite.cluster_id)
        inviter = self.session.get(User, invite.created_by_id)
        member = self.session.get(Member, invite.member_id) if invite.member_id else None
        agreement = agreement_in_force(self.session, invite.cluster_id)
        with self.as_reader(None, cluster, mail.locale):
            token = invites.invite_token(self.app.config["SECRET_KEY"], invite)
            context = {
                "cluster": cluster, "invite": invite, "member": member,
                "inviter": inviter.name if inviter else "",
                "purpose": agreement.purpose.split(". ")[0].rstrip(".") + "." if agreement
                else "", "link": self.public_url + url_for("auth.accept_invite", token=token),
                "expires_at": invite.expires_at}
            subject = gettext("%(inviter)s invites you to %(cluster)s",
                              inviter=context["inviter"], cluster=cluster.name if cluster else "")
            return self._message(delivery_id, invite.email, subject, "invite", **context)

    def _reset(self, delivery_id: int, mail: OutboundMail) -> EmailMessage | None:
        user = self.session.get(User, mail.user_id)
        if user is None or not user.active:
            return None
        cluster = self.session.get(Cluster, user.cluster_id)
        minutes = self.app.config["PASSWORD_RESET_VALID_MINUTES"]
        with self.as_reader(user, cluster, mail.locale):
            token = accounts.make_reset_token(self.app.config["SECRET_KEY"], user)
            context = {"person": user, "cluster": cluster, "minutes": minutes,
                       "valid_until": utcnow() + timedelta(minutes=minutes),
                       "link": self.public_url + url_for("auth.reset_password", token=token)}
            return self._message(delivery_id, user.email, gettext("Reset your password"),
                                 "password_reset", **context)
