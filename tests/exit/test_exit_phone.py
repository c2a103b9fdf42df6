"""The exit's pages on a 360 px phone, in en, es, fr and de: a demo firm that co-owns
the cluster's skid steer leaves (its share bought out, its bookings refunded), then its
owner's every reachable page and the coordinator's exit pages are measured the way
tests/browser/test_phone_fit.py measures the rest of the product."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from sqlmodel import select

from marketplace.clusters.exit import service as exits
from marketplace.clusters.models import Member, User
from marketplace.db import session_scope, utcnow
from marketplace.demo import COORDINATOR_EMAIL, DEMO_PASSWORD, FIRMS
from marketplace.equipment.models import Equipment, EquipmentOwner
from tests.browser.conftest import browser  # noqa: F401 - the fixture, shared
from tests.browser.test_phone_fit import (
    LANGUAGES,
    MEASURE,
    SCREEN,
    SMALL_PHONE,
    Findings,
    crawl,
    demo_app,
)
from tests.live import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

LEAVER = FIRMS[0].email  # Maple Ridge: co-owns the skid steer, books the grinder


@pytest.fixture(scope="module")
def site_after_an_exit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("layout does not depend on the database: the SQLite leg checks it")
    app = demo_app(tmp_path_factory.mktemp("exit-phone"))
    now = utcnow()
    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        owner = session.exec(select(User).where(User.email == LEAVER)).one()
        member = session.get(Member, owner.member_id)
        assert member is not None
        for machine_id in session.exec(select(EquipmentOwner.equipment_id).where(
                EquipmentOwner.member_id == member.id)):
            machine = session.get(Equipment, machine_id)
            assert machine is not None
            machine.agreed_value_minor = 48_500_00
            session.add(machine)
        member.exit_effective_at = now - timedelta(minutes=1)
        session.add(member)
        session.commit()
        assert exits.take_due_exits(session, now) >= 1
        member_id = member.id
    assert member_id is not None
    with live_server(app) as base:
        yield base, member_id
    app.extensions["engine"].dispose()


def _phone(browser: Browser, base: str, email: str) -> Page:  # noqa: F811 - the fixture's name
    page = browser.new_context(**SMALL_PHONE).new_page()  # type: ignore[arg-type]
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").tap()
    return page


def test_a_former_members_pages_fit_a_phone(browser: Browser,  # noqa: F811
                                            site_after_an_exit: tuple[str, int]) -> None:
    base, _member_id = site_after_an_exit
    page = _phone(browser, base, LEAVER)
    assert urlsplit(page.url).path == "/exit"
    findings = Findings()
    for lang in LANGUAGES:
        crawl(page, base, "/exit", lang, findings)
    page.context.close()
    assert "/exit" in findings.paths and any(p.startswith("/ledger/") for p in findings.paths)
    assert not any(p.startswith(("/jobs", "/equipment", "/members")) for p in findings.paths)
    assert not findings.report(), "\n".join(findings.report())


def test_the_coordinators_exit_pages_fit_a_phone(browser: Browser,  # noqa: F811
                                                 site_after_an_exit: tuple[str, int]) -> None:
    base, member_id = site_after_an_exit
    page = _phone(browser, base, COORDINATOR_EMAIL)
    problems = []
    for lang in LANGUAGES:
        page.goto(f"{base}/lang/{lang}?next=/exits")
        for path in ("/exits", f"/exit/members/{member_id}"):
            response = page.goto(base + path)
            assert response is not None and response.ok, path
            problems += [f"[{lang}] {path}: {p}" for p in
                         page.evaluate(MEASURE, {"screen": SCREEN["width"]})["problems"]]
    page.context.close()
    assert problems == []
