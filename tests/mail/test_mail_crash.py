"""At-least-once across a worker killed between "the server has the mail" and "the row
says sent", with real worker processes.

marketplace/mail/worker.py chose at-least-once: a mail lost is a job nobody hears of,
a mail repeated is a second copy with the same Message-ID, which mail clients fold.
Six mails are due (two partners, three jobs; one worker claims them all).  The SMTP
server stores the third and keeps the worker waiting for its reply; the worker is
killed with SIGKILL right then.  A new worker takes over once the dead one's lease
runs out: every mail arrives, only the one in flight arrives twice, and its repeat
carries the Message-ID of the first copy.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

from flask import Flask
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.delivery.models import DeliveryStatus
from marketplace.jobs import service as jobs
from tests.conftest import SECRET, World
from tests.jobs.conftest import add_partner, job_draft
from tests.mail.mail_world import MAIL_FROM, PUBLIC_URL, mail_rows, subject, until
from tests.smtp_server import SmtpServer
from tests.worker_process import worker_process

LEASE_SECONDS = 2
HELD = 3  # the server has this many mails when the worker dies; the last one unanswered


def mail_worker(database_url: str, smtp: SmtpServer, log: Path
                ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A mail worker process on the test's database; killed on the way out."""
    return worker_process("mail", database_url, log, {
        "SECRET_KEY": SECRET, "PUBLIC_URL": PUBLIC_URL, "MAIL_SERVER": smtp.host,
        "MAIL_PORT": str(smtp.port), "MAIL_FROM": MAIL_FROM,
        "MAIL_LEASE_SECONDS": str(LEASE_SECONDS), "MAIL_TIMEOUT_SECONDS": "30",
        "PUSH_ENABLED": "false"})


def test_a_mail_in_flight_when_the_worker_dies_arrives_again_with_the_same_message_id(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World, database_url: str,
    tmp_path: Path,
) -> None:
    world = jobs_world
    add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    # posted now: the worker processes run on the real clock
    for title in ("Mow the school field", "Mow the hospital lawn", "Mow the church yard"):
        session.commit()
        jobs.post_job(session, world.owner_a, job_draft(title=title), utcnow())
    due = [r for r in mail_rows(session) if r.notification_id is not None]
    assert len(due) == 6 and {r.status for r in due} == {DeliveryStatus.PENDING}

    def rows(status: DeliveryStatus) -> int:
        return sum(r.status == status for r in mail_rows(session) if r.notification_id)

    log = tmp_path / "worker.log"

    def worker_log() -> str:
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""

    smtp.hold_reply(HELD)
    with mail_worker(database_url, smtp, log) as first:
        try:
            smtp.wait_holding(timeout=30)
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{worker_log()}") from None
        until(lambda: rows(DeliveryStatus.SENT) == HELD - 1, "the answered mails marked")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(smtp.messages) == HELD
    assert rows(DeliveryStatus.SENT) == HELD - 1
    claimed = rows(DeliveryStatus.SENDING)  # the one in flight, and those claimed with it
    assert claimed >= 1 and claimed + rows(DeliveryStatus.PENDING) == 6 - (HELD - 1)
    smtp.release()  # the 250 goes to a dead connection

    with mail_worker(database_url, smtp, log):
        try:
            until(lambda: rows(DeliveryStatus.SENT) == 6, "every row sent", timeout=30)
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{worker_log()}") from None

    arrived = smtp.messages
    ids = Counter(str(m["Message-ID"]) for m in arrived)
    assert len(ids) == 6  # every mail arrived: one Message-ID per delivery row
    assert {str(m["To"]) for m in arrived} == {"b@beta.test", "g@gamma.test"}
    twice = [message_id for message_id, n in ids.items() if n > 1]
    assert len(twice) == 1 and ids[twice[0]] == 2  # at most one arrived twice: the one in flight
    held, repeat = [m for m in arrived if str(m["Message-ID"]) == twice[0]]
    assert arrived.index(held) == HELD - 1  # the copy the dead worker never heard back about
    assert (held["To"], subject(held)) == (repeat["To"], subject(repeat))
    final = [r for r in mail_rows(session) if r.notification_id is not None]
    # a row the dead worker had claimed is tried again; one it never took, once
    assert sorted(r.attempts for r in final) == [1] * (6 - claimed) + [2] * claimed
    assert {f"<delivery-{r.id}@localhost>" for r in final} == set(ids)
