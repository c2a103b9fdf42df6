"""What the mail servers answer: a mailbox refused for good (550) stops our mail to it
until its owner asks to try again; a server that says "later" (451) gets the mail
again after the back-off, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from sqlmodel import Session

from marketplace.clusters.models import User
from marketplace.delivery.models import DeliveryStatus
from marketplace.delivery.preferences import mail_settings, save_mail_settings
from marketplace.jobs import bidding
from marketplace.jobs import service as jobs
from marketplace.mail.outbox import undeliverable
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, login
from tests.jobs.conftest import bid_window_draft, job_draft
from tests.mail.mail_world import SOON, fresh, mail_rows, run_mail, subject
from tests.smtp_server import SmtpServer

B = "b@beta.test"


def post(session: Session, by: User, title: str, at: datetime = NOW, **changes: Any
         ) -> None:
    session.commit()
    draft = (bid_window_draft if changes.pop("bid_window", False) else job_draft)(
        title=title, **changes)
    jobs.post_job(session, by, draft, at)


def rows_of(session: Session, user: User) -> list[str]:
    """The status of each of the person's notification mails, in order."""
    return [r.status for r in mail_rows(session) if r.notification_id is not None
            and session.get(Notification, r.notification_id).user_id == user.id]  # type: ignore[union-attr]


def test_a_refused_mailbox_gets_no_more_mail_until_its_owner_asks_again(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    smtp.refuse(B, 550)
    post(session, world.owner_a, "Mow the school field")
    post(session, world.owner_a, "Mow the hospital lawn")  # queued before anyone knew
    run_mail(app, SOON)
    assert smtp.messages == []
    assert smtp.recipients_tried == [B]  # the second mail was not even tried
    assert rows_of(session, world.owner_b) == [DeliveryStatus.FAILED, DeliveryStatus.SKIPPED]
    refused = undeliverable(fresh(session), "B@Beta.test")
    assert refused is not None and refused.code == 550

    own = app.test_client()
    login(own, world.owner_b)
    page = own.get("/account").get_data(as_text=True)
    assert 'data-testid="mail-refused"' in page and "550" in page and B in page
    coordinator = app.test_client()
    login(coordinator, world.coordinator)
    assert "Mail does not reach: Beta Stone owner" in coordinator.get("/members").get_data(
        as_text=True)

    post(session, world.owner_a, "Mow the church yard")
    run_mail(app, SOON)
    assert smtp.recipients_tried == [B]  # later notices are not attempted at all

    smtp.allow(B)  # the owner fixed the mailbox ...
    asked = own.post("/account/mail/retry")  # ... and says so
    assert asked.status_code == 302
    assert undeliverable(fresh(session), B) is None
    page = own.get("/account").get_data(as_text=True)
    assert 'data-testid="mail-refused"' not in page
    assert "Mail does not reach" not in coordinator.get("/members").get_data(as_text=True)
    post(session, world.owner_a, "Mow the town hall lawn")
    run_mail(app, SOON)
    [arrived] = smtp.wait_for(1)
    assert arrived["To"] == B and "town hall" in subject(arrived)


def test_a_digest_collected_before_the_address_bounced_is_not_attempted(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    """B is on the 07:00 digest (11:00 UTC).  Overnight its address bounces an urgent
    mail; the digest due in the morning must not be tried either."""
    world = jobs_world
    assert world.owner_b.id is not None
    settings = mail_settings(session, world.owner_b.id)
    save_mail_settings(session, world.owner_b, type(settings)(settings.enabled, 7 * 60))
    session.commit()
    evening = NOW.replace(hour=23)  # 19:00 in Toronto
    post(session, world.owner_a, "Mow the school field", evening)
    post(session, world.owner_a, "Plant the boulevard", evening, bid_window=True,
         closes_at=NOW.replace(day=2, hour=10, minute=30))
    smtp.refuse(B, 550)
    bidding.remind_closing_windows(session, NOW.replace(day=2, hour=10))
    run_mail(app, NOW.replace(day=2, hour=10))
    assert smtp.recipients_tried == [B]  # the reminder, refused
    assert undeliverable(fresh(session), B) is not None

    run_mail(app, NOW.replace(day=2, hour=11))
    assert smtp.recipients_tried == [B]  # the digest was not tried
    assert smtp.messages == []
    assert DeliveryStatus.PENDING not in rows_of(session, world.owner_b)


def test_a_temporary_failure_is_retried_after_the_back_off_and_arrives_once(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    smtp.fail_next(1, 451)
    post(session, world.owner_a, "Mow the school field")
    first = NOW + timedelta(minutes=1)
    run_mail(app, first)
    assert smtp.messages == [] and len(smtp.rejected) == 1
    [row] = [r for r in mail_rows(session) if r.notification_id is not None]
    assert row.status == DeliveryStatus.PENDING and row.attempts == 1
    assert row.due_at == first + timedelta(seconds=30)  # the first back-off step
    assert "451" in (row.last_error or "")

    run_mail(app, first + timedelta(seconds=29))
    assert smtp.messages == []
    run_mail(app, first + timedelta(seconds=30))
    run_mail(app, first + timedelta(minutes=5))
    [arrived] = smtp.messages
    assert arrived["To"] == B
    [row] = [r for r in mail_rows(session) if r.notification_id is not None]
    assert row.status == DeliveryStatus.SENT and row.attempts == 2
    assert undeliverable(fresh(session), B) is None
