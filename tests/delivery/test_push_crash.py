"""Exactly once across a worker crash, with real worker processes.

Twenty pushes are due (two partners, two phones each, five jobs).  The push
service accepts seven, then stops answering; the worker is killed with SIGKILL
while its other requests hang.  A new worker process takes over once the dead
one's lease runs out: every (notification, phone) pair reaches the push service
exactly once -- none lost with the crash, none sent twice -- and every row ends
`sent`.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from flask import Flask
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.delivery.models import DeliveryStatus
from tests.conftest import SECRET, World
from tests.delivery.push_world import VAPID_PEM, deliveries, post_job, subscribe
from tests.jobs.conftest import add_partner
from tests.push_service import FakePushService
from tests.worker_process import worker_process

LEASE_SECONDS = 2
ACCEPTED_BEFORE_CRASH = 7


def push_worker(database_url: str, log: Path) -> AbstractContextManager[
        subprocess.Popen[bytes]]:
    """A push worker process on the test's database; killed on the way out."""
    return worker_process("push", database_url, log, {
        "VAPID_PRIVATE_KEY": VAPID_PEM, "PUSH_SERVICE_HOSTS": "127.0.0.1",
        "PUSH_LEASE_SECONDS": str(LEASE_SECONDS), "SECRET_KEY": SECRET,
        "PUSH_TIMEOUT_SECONDS": "20"})


def wait_until(what: str, condition: Callable[[], bool], log: Path,
               refused: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; refused: {refused()}; "
                                 "worker log:\n"
                                 f"{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)


def test_every_push_goes_exactly_once_across_a_killed_worker(
    app: Flask, session: Session, jobs_world: World, push: FakePushService,
    database_url: str, tmp_path: Path,
) -> None:
    world = jobs_world
    gamma = add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    session.commit()
    phones = [push.subscriber() for _ in range(4)]
    ids = subscribe(app, world.owner_b, *phones[:2]) + subscribe(app, gamma, *phones[2:])
    token_of = dict(zip(ids, (phone.token for phone in phones), strict=True))
    for n in range(5):
        post_job(session, world.owner_a, utcnow(), title=f"Lawn {n}")
    rows = deliveries(session)
    assert len(rows) == 20 and {r.status for r in rows} == {DeliveryStatus.PENDING}
    expected = {(token_of[r.subscription_id], r.notification_id) for r in rows}  # type: ignore[index]
    assert len(expected) == 20

    def sent() -> int:
        return sum(r.status == DeliveryStatus.SENT for r in deliveries(session))

    log = tmp_path / "worker.log"
    push.hold(after=ACCEPTED_BEFORE_CRASH)
    with push_worker(database_url, log) as first:
        wait_until("7 rows sent and more requests hanging",
                   lambda: sent() == ACCEPTED_BEFORE_CRASH and push.held_count > 0, log,
                   lambda: push.rejected[:3])
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(push.received) == ACCEPTED_BEFORE_CRASH
    stranded = [r for r in deliveries(session) if r.status == DeliveryStatus.SENDING]
    assert stranded, "the crash left no claimed-but-unanswered rows: nothing was tested"
    push.release(accept=False)  # what was in flight is lost, as with a dropped connection

    with push_worker(database_url, log):
        wait_until("every row sent", lambda: sent() == 20, log, lambda: push.rejected[:3])

    final = deliveries(session)
    assert {r.status for r in final} == {DeliveryStatus.SENT}
    counts = Counter((m.token, m.payload["id"]) for m in push.received)
    assert [k for k, v in counts.items() if v > 1] == []  # nothing twice
    assert set(counts) == expected  # nothing lost
    assert sorted(r.attempts for r in final) == (
        [1] * ACCEPTED_BEFORE_CRASH + [2] * (20 - ACCEPTED_BEFORE_CRASH))
