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

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask
from sqlmodel import Session

from marketplace.config import PROJECT_ROOT
from marketplace.db import utcnow
from marketplace.delivery.models import DeliveryStatus
from marketplace.jobs import service as jobs
from tests.conftest import SECRET, World
from tests.jobs.conftest import add_partner, job_draft
from tests.mail.mail_world import MAIL_FROM, PUBLIC_URL, mail_rows, subject, until
from tests.smtp_server import SmtpServer

WORKER = Path(__file__).with_name("mail_worker_process.py")
LEASE_SECONDS = 2
HELD = 3  # the server has this many mails when the worker dies; the last one unanswered


@contextmanager
def worker_process(database_url: str, smtp: SmtpServer, log: Path
                   ) -> Iterator[subprocess.Popen[bytes]]:
    """A mail worker process on the test's database; killed on the way out."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
           "PUBLIC_URL": PUBLIC_URL, "MAIL_SERVER": smtp.host, "MAIL_PORT": str(smtp.port),
           "MAIL_FROM": MAIL_FROM, "MAIL_LEASE_SECONDS": str(LEASE_SECONDS),
           "MAIL_TIMEOUT_SECONDS": "30", "MAIL_WORKER_SECONDS": "60",
           "PUSH_ENABLED": "false", "UPLOAD_DIR": str(log.parent / "uploads"),
           "LOG_LEVEL": "WARNING", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("REDIS_URL", None)
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, str(WORKER)], cwd=PROJECT_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


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
    with worker_process(database_url, smtp, log) as first:
        try:
            smtp.wait_holding(timeout=30)
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{worker_log()}") from None
        until(lambda: rows(DeliveryStatus.SENT) == HELD - 1, "the answered mails marked")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(smtp.messages) == HELD
    assert rows(DeliveryStatus.SENT) == HELD - 1
    assert rows(DeliveryStatus.SENDING) == 6 - (HELD - 1)  # in flight, and claimed behind it
    smtp.release()  # the 250 goes to a dead connection

    with worker_process(database_url, smtp, log):
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
    assert sorted(r.attempts for r in final) == [1] * (HELD - 1) + [2] * (6 - HELD + 1)
    assert {f"<delivery-{r.id}@localhost>" for r in final} == set(ids)
