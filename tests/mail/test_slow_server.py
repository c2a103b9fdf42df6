"""A mail server slow to answer holds up the mail worker, never the site.

The worker waits for the server's reply to a mail it has sent; meanwhile a member
saves their settings.  On SQLite every transaction takes the write lock when it
begins, so a worker that kept a transaction open across the SMTP conversation
would make the member's click wait for the mail server.
"""

from __future__ import annotations

import threading
import time

from flask import Flask
from sqlmodel import Session

from marketplace.delivery.models import DeliveryStatus
from marketplace.jobs import service as jobs
from tests.conftest import NOW, World, login
from tests.jobs.conftest import job_draft
from tests.mail.mail_world import SOON, mail_rows, run_mail
from tests.smtp_server import SmtpServer

SETTINGS = {"new_jobs": "y", "email_new_jobs": "y", "email_new_jobs_when": "now",
            "quiet_new_jobs": "wait"}


def test_a_member_can_act_while_the_mail_server_has_not_answered(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    jobs.post_job(session, world.owner_a, job_draft(), NOW)
    member = app.test_client()
    login(member, world.owner_a)

    smtp.hold_reply(1)
    worker = threading.Thread(target=run_mail, args=(app, SOON), daemon=True)
    worker.start()
    cap = threading.Timer(5, smtp.release)  # however it goes, the test ends soon
    cap.start()
    try:
        smtp.wait_holding()
        started = time.monotonic()
        saved = member.post("/account/notifications", data=SETTINGS)
        took = time.monotonic() - started
        held = smtp.holding
    finally:
        smtp.release()
        cap.cancel()
        worker.join(15)
    assert saved.status_code == 302
    assert held, "the reply was released before the member's click was answered"
    assert took < 2, f"saving waited {took:.1f} s for the mail server"
    assert not worker.is_alive()
    assert [r.status for r in mail_rows(session) if r.notification_id] == [
        DeliveryStatus.SENT]
