"""Scale-out: two app processes share Redis behind Debian's nginx (docs/nginx.conf); a job
posted through one instance reaches the eligible phone connected to the other, and not
the ineligible one -- real processes, real HTTP, websockets through the proxy."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlmodel import Session

from tests.conftest import IN_CI, PASSWORD, SECRET, World
from tests.jobs.conftest import ENDS_ON, STARTS_ON, add_partner, give_profile
from tests.live import socket_client

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'type="hidden" name="csrf_token" value="([^"]+)"')


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError(f"{what} did not start") from None
            time.sleep(0.2)


@contextmanager
def nginx_in_front(tmp_path: Path, *instances: str) -> Iterator[str]:
    """Debian's nginx with docs/nginx.conf, balancing over the given instances."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        if IN_CI:
            pytest.fail("Debian's nginx is missing: make test installs nginx-light in CI")
        pytest.skip("install Debian's nginx-light to run the nginx test")
    port = _free_port()
    servers = "\n".join(f"        server {base.removeprefix('http://')};" for base in instances)
    conf = (ROOT / "docs" / "nginx.conf").read_text().replace("@PREFIX@", str(tmp_path)) \
        .replace("@LISTEN@", f"127.0.0.1:{port}").replace("@UPSTREAM_SERVERS@", servers)
    (tmp_path / "nginx.conf").write_text(conf)
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/login", process, "nginx")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def app_instance(database_url: str, redis_url: str) -> Iterator[str]:
    """`python wsgi.py` in its own process, as one instance behind a load balancer."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "SECRET_KEY": SECRET, "SCHEDULER_IN_PROCESS": "false", "HOST": "127.0.0.1",
           "RATELIMIT_ENABLED": "false",
           "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/login", process, "the app instance")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _csrf(page: str) -> str:
    match = CSRF.search(page)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def _browser_login(base: str, email: str) -> requests.Session:
    """Log in as a browser would: the form's CSRF token, then the POST."""
    http = requests.Session()
    token = _csrf(http.get(f"{base}/login", timeout=10).text)
    response = http.post(f"{base}/login", data={"email": email, "password": PASSWORD,
                                                 "csrf_token": token},
                         allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return http


@pytest.mark.redis
def test_job_posted_on_one_instance_reaches_eligible_phone_on_the_other(
        session: Session, world: World, database_url: str, redis_url: str,
        tmp_path: Path) -> None:
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    add_partner(session, world, "Cedar Fencing", "c@cedar.test", trades=("fencing",))
    session.commit()
    with app_instance(database_url, redis_url) as first, \
            app_instance(database_url, redis_url) as second, \
            nginx_in_front(tmp_path, first, second) as proxy:
        # the phones come in through nginx (websocket upgrade) and land on the second
        # instance only by ip_hash; to be sure which one, the second gets them directly too
        through_proxy = _browser_login(proxy, world.owner_b.email)
        assert "Jobs you can take" in through_proxy.get(f"{proxy}/jobs", timeout=10).text
        proxied_phone = socket_client(proxy, "; ".join(f"{c.name}={c.value}"
                                                       for c in through_proxy.cookies))
        eligible = _browser_login(second, world.owner_b.email)
        ineligible = _browser_login(second, "c@cedar.test")
        phones = {name: socket_client(second, "; ".join(f"{c.name}={c.value}"
                                                        for c in http.cookies))
                  for name, http in (("eligible", eligible), ("ineligible", ineligible))}
        phones["proxied"] = proxied_phone
        got = {name: threading.Event() for name in phones}
        for name, phone in phones.items():
            phone.on("job.posted", lambda message, name=name: got[name].set())
        poster = _browser_login(first, world.owner_a.email)
        token = _csrf(poster.get(f"{first}/jobs/new", timeout=10).text)
        posted = poster.post(f"{first}/jobs/new", timeout=10, allow_redirects=False, data={
            "csrf_token": token, "title": "Cross-instance mowing", "description": "",
            "trades": "mowing", "locality": "Annex, Toronto", "site_lat": "43.67",
            "site_lng": "-79.40", "address": "1 Spadina Rd", "customer_name": "P. Singh",
            "customer_contact": "", "crew_days": "3", "starts_on": STARTS_ON.isoformat(),
            "ends_on": ENDS_ON.isoformat(), "value": "4200.00", "mode": "handoff"})
        assert posted.status_code == 302, posted.text[:2000]
        assert got["eligible"].wait(10), "the eligible phone on the other instance got nothing"
        assert got["proxied"].wait(10), "the phone behind nginx got nothing"
        assert not got["ineligible"].wait(1)
        for phone in phones.values():
            phone.disconnect()
