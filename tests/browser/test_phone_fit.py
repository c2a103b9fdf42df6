"""Every page each demo login can reach fits a 360x740 touch phone, in en, es, fr and de.

Real Debian chromium, headless, with touch and mobile emulation: the
smallest common Android screen.  For each of the demo's six logins (the
coordinator and the five firm owners) the test logs in once, then for each
language crawls every same-origin page reachable by links from the home page
(logout, the language switch and downloads are not followed; GET links
change nothing here) and fails, naming page, element and size, on:

* horizontal overflow: the document wider than the 360 px screen.  Measured
  against the screen, not `innerWidth`: a mobile browser widens its layout
  viewport to fit content that overflows, so the window would always "fit";
* a control a person must tap (button, input, select, textarea, a standalone
  link, a tappable chip; a checkbox counts with its label, the real target)
  smaller than 44x44 CSS px, or closer than 8 px to another;
* a link inside running text whose line box is under 24 px high;
* a console error or an uncaught exception (a missing icon is one);
* a link that answers with an error.

On the job board it also checks that the first card's Claim button is above
the fold (not under the bottom bar) without scrolling.

Pages that share a shape (`/jobs/3`, `/jobs/7`; a week's `?week=` links)
are visited at most `PER_SHAPE` times per language: the same template
with other rows of the same demo.  The demo is seeded once per test process
into a SQLite file of its own: layout does not depend on the database, so
the PostgreSQL leg skips it (`TEST_DATABASE_URL` set) instead of paying for
it twice.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from marketplace import create_app
from marketplace.db import make_engine, session_scope, utcnow
from marketplace.demo import COORDINATOR_EMAIL, DEMO_PASSWORD, FIRMS, seed_demo
from tests.browser.conftest import ARTIFACTS
from tests.conftest import CHEAP_HASHING, SECRET
from tests.live import live_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCREEN = {"width": 360, "height": 740}
SMALL_PHONE = {"viewport": SCREEN, "screen": SCREEN, "has_touch": True, "is_mobile": True}
LANGUAGES = ("en", "es", "fr", "de")
VISITOR = "visitor"  # nobody logged in: the login page and the pages it leads to
LOGINS = (VISITOR, COORDINATOR_EMAIL, *(firm.email for firm in FIRMS))
PER_SHAPE = 2
MAX_PAGES = 80  # per login and language: a crawl that runs away fails instead of hanging
# Not pages: leaving, switching language (the test does it on purpose), files.
SKIP = re.compile(r"^/(logout|lang/|static/|vendor/|sw\.js|manifest)|\.(csv|ics|png|jpe?g|webp)$"
                  r"|/calendar|/feed|/insurance/\d+/document$")

MEASURE = Path(__file__).with_name("phone_fit.js").read_text()


@dataclass
class Findings:
    """What went wrong for one login: each problem with the pages it was seen on (the
    navigation's problems show on every page, and are reported once)."""

    pages: dict[str, list[str]] = field(default_factory=dict)
    visited: Counter[str] = field(default_factory=Counter)
    paths: set[str] = field(default_factory=set)

    def add(self, lang: str, path: str, problem: str) -> None:
        self.pages.setdefault(problem, []).append(f"[{lang}] {path}")

    def report(self) -> list[str]:
        return [f"{problem}\n    on {len(where)} page(s): {', '.join(where[:6])}"
                f"{' ...' if len(where) > 6 else ''}" for problem, where in self.pages.items()]


def demo_app(folder: Path) -> Flask:
    """An app on a fresh SQLite file in `folder`, seeded with the demo cluster
    (`flask seed-demo`'s data) as of now; layout checks need no other database."""
    database_url = f"sqlite:///{folder / 'demo.db'}"
    from sqlmodel import SQLModel

    engine = make_engine(database_url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    app = create_app({
        "UPLOAD_DIR": str(folder / "uploads"), "MAIL_FOLDER": str(folder / "mail"),
        "RATELIMIT_ENABLED": False, "TESTING": True, "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET, "REDIS_URL": None, "PUBLIC_URL": "http://localhost",
        **CHEAP_HASHING,
    })
    with app.app_context(), session_scope(app.extensions["engine"]) as session:
        seed_demo(session, SECRET, utcnow())
    return app


@pytest.fixture(scope="session")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo cluster (`flask seed-demo`'s data) served on a loopback port."""
    if os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("layout does not depend on the database: the SQLite leg checks it")
    app = demo_app(tmp_path_factory.mktemp("phone-fit"))
    with live_server(app) as base:
        yield base
    app.extensions["engine"].dispose()


def shape(path: str) -> str:
    """`/jobs/12?week=2026-12-07` -> `/jobs/#?week`: pages drawn by the same template."""
    parts = urlsplit(path)
    keys = sorted(k.split("=")[0] for k in parts.query.split("&") if k)
    return re.sub(r"\d+", "#", parts.path) + ("?" + "&".join(keys) if keys else "")


def open_phone(browser: Browser, base: str, who: str) -> Page:
    """A fresh phone; logged in with the form unless `who` is the visitor."""
    page = browser.new_context(**SMALL_PHONE).new_page()  # type: ignore[arg-type]
    if who == VISITOR:
        return page
    page.goto(f"{base}/login")
    page.fill("#email", who)
    page.fill("#password", DEMO_PASSWORD)
    with page.expect_navigation():
        page.locator("main button[type=submit]").tap()
    assert urlsplit(page.url).path == "/", f"{who} could not log in"
    return page


def crawl(page: Page, base: str, start: str, lang: str, findings: Findings) -> None:
    """Visit every page reachable from `start` in `lang`, measuring each."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.goto(f"{base}/lang/{lang}?next={start}")
    queue, seen, shapes = [start], {start}, Counter[str]()
    while queue:
        path = queue.pop(0)
        if findings.visited[lang] >= MAX_PAGES:
            findings.add(lang, path, f"more than {MAX_PAGES} pages: the crawl stopped here")
            break
        errors.clear()
        response = page.goto(base + path, wait_until="load")
        findings.visited[lang] += 1
        findings.paths.add(path)
        if response is None or not response.ok:
            findings.add(lang, path, f"answered HTTP {response.status if response else '?'}")
            continue
        if "text/html" not in (response.headers.get("content-type") or ""):
            continue
        report: dict[str, Any] = page.evaluate(MEASURE, {"screen": SCREEN["width"]})
        for problem in report["problems"]:
            findings.add(lang, path, problem)
        if path == "/" and start == "/":  # the menu's entries, once per language
            menu = page.locator("header details.menu > summary")
            menu.tap()
            for problem in page.evaluate(MEASURE, {"screen": SCREEN["width"]})["problems"]:
                findings.add(lang, "/ (menu open)", problem)
            menu.tap()
        page.wait_for_timeout(50)  # let late console errors (sockets, images) arrive
        for error in errors:
            findings.add(lang, path, f"console error: {error}")
        for href in report["links"]:
            parts = urlsplit(href)
            if parts.netloc != urlsplit(base).netloc:
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if target in seen or SKIP.search(parts.path):
                continue
            seen.add(target)
            if shapes[shape(target)] >= PER_SHAPE:
                continue
            shapes[shape(target)] += 1
            queue.append(target)


@pytest.mark.parametrize("who", LOGINS)
def test_every_page_fits_a_360_px_phone(browser: Browser, demo_site: str, who: str) -> None:
    started = time.monotonic()
    page = open_phone(browser, demo_site, who)
    findings = Findings()
    for lang in LANGUAGES:
        crawl(page, demo_site, "/login" if who == VISITOR else "/", lang, findings)
    page.context.close()
    folder = ARTIFACTS / "phone-fit"
    folder.mkdir(parents=True, exist_ok=True)
    took = time.monotonic() - started
    summary = (f"{who}: {sum(findings.visited.values())} pages "
               f"({dict(findings.visited)}) in {took:.1f} s\n")
    rows = findings.report()
    (folder / f"{who.split('@')[0]}.txt").write_text(
        summary + "\n".join(rows) + "\n\nvisited:\n" + "\n".join(sorted(findings.paths)) + "\n")
    assert not rows, summary + "\n".join(rows)


CLAIM_IN_VIEW = """() => {
  const button = document.querySelector("#job-board .job-card form button");
  if (!button) return null;
  const r = button.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {top: r.top, bottom: r.bottom, screen: innerHeight, tappable: button.contains(hit)};
}"""


def test_the_first_claim_button_shows_without_scrolling(browser: Browser, demo_site: str) -> None:
    """On the board at 360x740, in each language, the first card's Claim button is on the
    screen and not under the tab bar (the element at its centre is the button itself)."""
    for firm in FIRMS:
        page = open_phone(browser, demo_site, firm.email)
        page.goto(f"{demo_site}/jobs")
        if page.evaluate(CLAIM_IN_VIEW) is not None:
            break
        page.context.close()
    else:
        pytest.fail("no demo member has a job to claim on its board: did the demo change?")
    for lang in LANGUAGES:
        page.evaluate("localStorage.clear()")  # a first visit: no offer of notifications yet
        page.goto(f"{demo_site}/lang/{lang}?next=/jobs")
        seen = page.evaluate(CLAIM_IN_VIEW)
        assert seen["bottom"] <= seen["screen"] and seen["tappable"], f"[{lang}] {seen}"
    page.context.close()


def test_the_page_with_a_new_invite_link_fits(browser: Browser, demo_site: str) -> None:
    """The crawl follows links only; the one long word a page shows after a form is the
    invite link the coordinator just made (it ran 800 px past the screen, in the notice)."""
    page = open_phone(browser, demo_site, COORDINATOR_EMAIL)
    page.goto(f"{demo_site}/invites")
    page.fill("#business_name", "Phone Fit Landscaping")
    page.fill("#email", "owner@phonefit.example")
    with page.expect_navigation():
        page.locator("main form button[type=submit]").tap()
    problems = page.evaluate(MEASURE, {"screen": SCREEN["width"]})["problems"]
    page.context.close()
    assert problems == []
