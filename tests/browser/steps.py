"""What a person does on a phone, step by step, shared by the journeys.

Every step taps and types through the pages, the way a person would; it
finds things by ids, names and addresses rather than English labels, so the
same steps work when the page speaks Spanish or French.  Steps end when the
page they lead to has loaded; the journeys assert what is shown there.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


def submit(page: Page, button: Locator) -> None:
    """Tap a form's button and wait for the page the answer brings (even the same URL)."""
    with page.expect_navigation():
        button.tap()


def go(page: Page, path: str) -> None:
    """Tap the navigation's entry leading to `path` (e.g. "/invites"): a tab or the
    bell when one leads there, else the entry in the menu, opened first."""
    link = page.locator(f"header a[href='{path}']").locator("visible=true")
    if link.count() == 0:
        page.locator("header details.menu > summary").tap()
    submit(page, link.first)


def switch_language(page: Page, code: str) -> None:
    """Tap a language in the footer; the same page comes back in that language."""
    submit(page, page.locator(f"footer a[lang='{code}']"))


def create_invite(coordinator: Page, business: str, email: str) -> str:
    """The coordinator invites a member business; returns the link to send its owner."""
    go(coordinator, "/invites")
    coordinator.fill("#business_name", business)
    coordinator.fill("#email", email)
    submit(coordinator, coordinator.locator("main form button[type=submit]"))
    return coordinator.locator("main li", has_text=email).locator("input.copy").input_value()


def sign_up(page: Page, name: str, password: str) -> None:
    """On an invite's page: give a name and a password, and create the account."""
    page.fill("#name", name)
    page.fill("#password", password)
    submit(page, page.locator("main form button[type=submit]"))


def accept_agreement(page: Page) -> None:
    """On the agreement: tick that it was read, and accept the version shown."""
    form = page.locator("form[action$='/agreement/accept']")
    form.locator("#confirm").tap()
    submit(page, form.locator("button[type=submit]"))


def pick_place(page: Page, field: str, typed: str, label: str) -> None:
    """Type into an "Address or town" field (by id) and tap the suggestion that reads
    `label`: the suggestion fills the field and its hidden point."""
    page.locator(f"#{field}").fill(typed)
    page.locator(f"[data-place-text={field}] .place-suggestions button",
                 has_text=label).first.tap()


def complete_profile(page: Page, trades: Iterable[str], base: str,
                     radius: str, certifications: str) -> None:
    """On the profile form: trades, service area (a town, picked from the suggestions)
    and certifications; save.  (Insurance is a certificate: `upload_certificate`.)"""
    for trade in trades:
        box = page.locator(f"input[name=trades][value={trade}]")
        box.tap()
        assert box.is_checked(), f"tapping {trade} did not tick it"
    pick_place(page, "base_place", base, base)
    page.fill("#service_radius", radius)
    page.fill("#certifications", certifications)
    submit(page, page.locator("main form button[type=submit]"))


def upload_certificate(page: Page, insured_until: date, coverage: str = "2000000") -> None:
    """From the business page: open its insurance certificates, attach a photo of the
    certificate, type what it shows, and upload it for the coordinator to verify."""
    import io

    from PIL import Image

    picture = io.BytesIO()
    Image.new("RGB", (120, 160), (250, 250, 245)).save(picture, "PNG")
    submit(page, page.locator("main a[href$='/insurance']").first)
    page.set_input_files("#document", files=[{
        "name": "certificate.png", "mimeType": "image/png", "buffer": picture.getvalue()}])
    page.fill("#insurer", "Valley Mutual")
    page.fill("#policy_number", "VM-2027")
    page.fill("#coverage", coverage)
    page.fill("#expires_on", insured_until.isoformat())
    submit(page, page.locator("#upload button[type=submit]"))


def verify_certificate(coordinator: Page) -> None:
    """The coordinator opens the certificates waiting (from the home page) and verifies
    the first one with the figures it states."""
    go(coordinator, "/")
    submit(coordinator, coordinator.locator("main a[href='/insurance/pending']"))
    submit(coordinator, coordinator.locator("form[action$='/verify'] button[type=submit]").first)


def open_month(page: Page, month: str) -> None:
    """From Money, tap a month (YYYY-MM; the link reads its name): the coordinator's
    settlement page for it."""
    go(page, "/ledger")
    submit(page, page.locator(f"#months a[href$='/ledger/{month}']"))


def draft_month(page: Page, month: str) -> None:
    submit(page, page.locator(f"form[action$='/ledger/{month}/draft'] button"))


def add_adjustment(page: Page, month: str, member_id: int, amount: str, reason: str) -> None:
    """Credit a member `amount` (typed as the viewer's language writes numbers)."""
    page.select_option("#member_id", str(member_id))
    page.locator("input[name=direction][value=credit]").tap()
    page.fill("#amount", amount)
    page.fill("#reason", reason)
    submit(page, page.locator(f"form[action$='/ledger/{month}/adjustments'] button"))


def approve_month(page: Page, month: str, references: dict[int, str]) -> None:
    """Enter each member's bank transfer reference and approve the month."""
    for member_id, reference in references.items():
        page.fill(f"#reference-{member_id}", reference)
    submit(page, page.locator(f"form[action$='/ledger/{month}/approve'] button"))


def download_statement(page: Page, folder: Path) -> list[list[str]]:
    """Tap "Download CSV" on a statement page; the rows of the file, saved in `folder`."""
    with page.expect_download() as download:
        page.locator("a[href*='statement.csv']").tap()
    target = folder / download.value.suggested_filename
    download.value.save_as(target)
    with open(target, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))
