"""The dispute pages fit a 360 px touch phone in all four languages: opening one, a
party's view with its messages, a photo and the message form, and the coordinator's
decision form (no horizontal overflow, every control at least 44x44 px and apart, no
console error), measured with the phone-fit test's own script."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask
from sqlmodel import Session

from marketplace.disputes import service as disputes
from tests.browser.conftest import browser  # noqa: F401 - the fixture
from tests.browser.test_phone_fit import LANGUAGES, MEASURE, SCREEN, SMALL_PHONE
from tests.conftest import PASSWORD
from tests.disputes.conftest import closed_at, damaged_booking
from tests.ledger.conftest import Ledger
from tests.live import live_server
from tests.matrix_world import png_bytes

if TYPE_CHECKING:
    from playwright.sync_api import Browser


def test_the_dispute_pages_fit_a_phone(app: Flask, session: Session, lw: Ledger,
                                       browser: Browser,  # noqa: F811
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from marketplace.disputes import views

    made = damaged_booking(session, lw)
    when = closed_at() + timedelta(days=1)
    monkeypatch.setattr(views, "utcnow", lambda: when)
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id,  # type: ignore[arg-type]
                                    "damage_fee", "The light was cracked at check-out.", when)
    disputes.post_message(session, lw.owner_c, dispute.id, "Our photo from check-out.",  # type: ignore[arg-type]
                          png_bytes(), Path(app.config["UPLOAD_DIR"]) / "disputes", None, when)
    problems: list[str] = []
    errors: list[str] = []
    with live_server(app) as base:
        for user, paths in ((lw.owner_c, ["/disputes/", f"/disputes/{dispute.id}",
                                          f"/disputes/new/booking/{made.id}"]),
                            (lw.coordinator, [f"/disputes/{dispute.id}"])):
            page = browser.new_context(**SMALL_PHONE).new_page()  # type: ignore[arg-type]
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/login")
            page.fill("#email", user.email)
            page.fill("#password", PASSWORD)
            with page.expect_navigation():
                page.locator("main button[type=submit]").tap()
            for lang in LANGUAGES:
                page.goto(f"{base}/lang/{lang}?next=/")
                for path in paths:
                    errors.clear()
                    response = page.goto(base + path, wait_until="load")
                    assert response is not None and response.ok, (lang, path)
                    report: dict[str, Any] = page.evaluate(MEASURE, {"screen": SCREEN["width"]})
                    problems += [f"[{lang}] {path}: {p}" for p in report["problems"]]
                    problems += [f"[{lang}] {path}: console: {e}" for e in errors]
    assert problems == [], "\n".join(problems)
