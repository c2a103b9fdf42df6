"""The mail tests' shared pieces: the app's mail settings, running the real worker,
reading what arrived at the SMTP server the way a mail client reads it.

A plain module, not conftest.py, so tests and the worker subprocess import one copy
(see tests/delivery/push_world.py for why).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlmodel import Session, col, select

from marketplace.db import session_scope
from marketplace.delivery.models import Delivery
from marketplace.delivery.worker import WorkerSettings
from marketplace.mail.composer import MailComposer
from marketplace.mail.runner import mail_transport
from marketplace.mail.worker import MailRound, send_due_mail
from tests.conftest import CHEAP_HASHING, NOW, SECRET

PUBLIC_URL = "http://localhost"
MAIL_FROM = "Valley cluster <no-reply@marketplace.test>"
#: the worker's clock for what the fixtures did at NOW (mid-2026): a minute later, so it
#: is due and still news (the worker drops notices days old as stale)
SOON = NOW + timedelta(minutes=1)
_LINK = re.compile(r"https?://[^\s<>\"']+")


def mail_config(database_url: str, tmp_path: Path, smtp_port: int | None) -> dict[str, Any]:
    """tests/conftest.py's app settings plus mail: SMTP to the test server, or (no
    port) the embedded default, .eml files in a folder of the test's own."""
    return {
        "UPLOAD_DIR": str(tmp_path / "uploads"), "RATELIMIT_ENABLED": False,
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
        "WTF_CSRF_ENABLED": False, "REDIS_URL": None, "PUBLIC_URL": PUBLIC_URL,
        "MAIL_SERVER": "127.0.0.1" if smtp_port else None, "MAIL_PORT": smtp_port or 25,
        "MAIL_FROM": MAIL_FROM, "MAIL_FOLDER": str(tmp_path / "mail"),
        "MAIL_TIMEOUT_SECONDS": 10.0, "MAIL_LEASE_SECONDS": 60,
        **CHEAP_HASHING,
    }


# -- running the worker ------------------------------------------------------------------


def run_mail(app: Flask, at: datetime | None = None) -> MailRound:
    """One round of the real mail worker with the app's real transport and composer.

    Without `at`: the scheduled task itself (`send_due_mails`, real clock).  With `at`:
    `send_due_mail` with the clock standing at `at`, to step through a day without
    sleeping.
    """
    from marketplace.db import utcnow
    from marketplace.mail.runner import send_due_mails

    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        if at is None:
            return send_due_mails(session, utcnow())
        settings = WorkerSettings(batch=20, lease=timedelta(
            seconds=app.config["MAIL_LEASE_SECONDS"]))
        return send_due_mail(session, at, mail_transport(app), MailComposer(app, session),
                             settings, clock=lambda: at)


# -- reading what happened ---------------------------------------------------------------


def fresh(session: Session) -> Session:
    """End the test session's transaction so its next read sees every commit."""
    session.commit()
    session.expire_all()
    return session


def mail_rows(session: Session) -> list[Delivery]:
    return list(fresh(session).exec(select(Delivery).where(Delivery.channel == "email")
                                    .order_by(col(Delivery.id))))


def text_of(message: EmailMessage) -> str:
    """The plain-text part, as a mail client shows it (line ends normalised)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "no text/html part"
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def links(text: str) -> list[str]:
    return [link.rstrip(".,)") for link in _LINK.findall(text)]


def link_to(message: EmailMessage, path_start: str) -> str:
    """The one link of the text part whose path starts so, as a path the test client
    can open ("/invite/<token>")."""
    found = {urlsplit(link).path for link in links(text_of(message))
             if urlsplit(link).path.startswith(path_start)}
    assert len(found) == 1, (path_start, text_of(message))
    [path] = found
    assert links(text_of(message))[0].startswith(PUBLIC_URL)
    return path


def subject(message: EmailMessage) -> str:
    """The Subject as a mail client shows it.  A subject that fits on a line of its own
    but not after "Subject: " is folded right after the colon ("Subject:\r\n Nuevo…");
    unfolded that is exactly "Subject: Nuevo…", but the email package's parser keeps
    the space then, where it drops it otherwise.  Clients show neither."""
    return str(message["Subject"]).lstrip()


def to_of(message: EmailMessage) -> str:
    return str(message["To"])


def by_recipient(messages: list[EmailMessage]) -> dict[str, list[EmailMessage]]:
    mine: dict[str, list[EmailMessage]] = {}
    for message in messages:
        mine.setdefault(to_of(message), []).append(message)
    return mine


def until(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
