"""Redis down for a while: pages keep working and notifications keep being stored;
phones catch up by replay when it is back.  Uses a private redis-server process so
the outage is real and harms nothing else."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import redis
import requests
import socketio
from sqlmodel import Session, select

from marketplace import create_app
from marketplace.db import utcnow
from marketplace.jobs import service
from marketplace.realtime.models import Notification
from marketplace.scope import EXTENSION as SCOPE
from marketplace.scope import bind
from tests.conftest import CHEAP_HASHING, IN_CI, PASSWORD, SECRET, World
from tests.jobs.conftest import give_profile, job_draft
from tests.live import live_server, logged_in_cookie

OUTAGE_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError("redis-server did not start") from None
            time.sleep(0.1)
    try:
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.redis
def test_redis_outage_loses_nothing(database_url: str, redis_url: str, session: Session,
                                    world: World) -> None:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("redis-server is missing")
        pytest.skip("needs the redis-server binary")
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    port = _free_port()
    private_url = f"redis://127.0.0.1:{port}/0"
    with private_redis(port):
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                          "WTF_CSRF_ENABLED": False, "REDIS_URL": private_url,
                          "PUBLIC_URL": "http://localhost", **CHEAP_HASHING})
    bind(session, app.extensions[SCOPE])  # the test's session commits as this app's
    # The private server is gone now: Redis is down while the app runs.
    try:
        with live_server(app) as url:
            cookie = logged_in_cookie(url, world.owner_b.email, PASSWORD)
            started = time.monotonic()
            now = utcnow()
            job = service.post_job(session, world.owner_a, job_draft(
                title="Posted during the outage", starts_on=now.date(),
                ends_on=now.date() + timedelta(days=1)), now)
            page = requests.get(f"{url}/jobs", headers={"Cookie": cookie}, timeout=10)
            assert page.status_code == 200 and "Posted during the outage" in page.text
            stored = session.exec(select(Notification).where(
                Notification.user_id == world.owner_b.id,
                Notification.kind == "job.posted")).all()
            assert [n.payload["id"] for n in stored] == [job.id]
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
            with private_redis(port):  # Redis is back
                phone = socketio.Client(reconnection=False)
                received: list[dict[str, object]] = []
                got = threading.Event()

                def on_posted(message: dict[str, object]) -> None:
                    received.append(message)
                    got.set()

                phone.on("job.posted", on_posted)
                phone.connect(url, headers={"Cookie": cookie}, transports=["websocket"],
                              auth={"cursor": 0}, wait_timeout=5)
                assert got.wait(5), "the phone did not catch up"
                assert received[0]["data"]["id"] == job.id  # type: ignore[index]
                phone.disconnect()
    finally:
        app.extensions["engine"].dispose()
