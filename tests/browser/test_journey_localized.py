"""Journey 6 on phones: the key pages of journeys 1-5 in Spanish and French.

People pick their language with the switcher at the foot of every page
(before signing up it lasts the visit; a logged-in person's choice is saved).
Each page must then speak it: `<html lang>`, headings and messages from the
catalog (a phrase still in English fails), money and dates in the language's
own formats, amounts typed the language's way accepted.  The expected text
comes from the catalogs and Babel, so the test holds whatever the wording.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_decimal
from flask import Flask
from flask_babel import force_locale, gettext
from playwright.sync_api import Page, expect
from sqlmodel import Session

from marketplace.clusters import invites
from marketplace.clusters.insurance import service as insurance
from marketplace.db import utcnow
from marketplace.equipment import booking, listings
from marketplace.i18n import regional
from marketplace.jobs import service
from marketplace.jobs.models import JobMode
from marketplace.ledger import settlement
from marketplace.money import format_money
from tests.browser.conftest import Phones
from tests.browser.steps import (
    accept_agreement,
    add_adjustment,
    approve_month,
    complete_profile,
    download_statement,
    draft_month,
    go,
    open_month,
    sign_up,
    submit,
    switch_language,
    upload_certificate,
)
from tests.conftest import PASSWORD, SECRET, World
from tests.equipment.conftest import HOUR_RATE, anytime_draft
from tests.jobs.conftest import VALUE, give_profile, job_draft
from tests.ledger.conftest import (  # noqa: F401 - fixtures that build the month's world
    JUNE,
    Ledger,
    busy_month,
    co_owned,
    eq,
    jobs_world,
    lw,
)
from tests.live import live_server

TORONTO = ZoneInfo("America/Toronto")
LANGUAGES = ["es", "fr"]
INSURED_UNTIL = date(2027, 6, 1)
FUEL = 1_234_50  # an adjustment, typed with the language's separators


@dataclass(frozen=True)
class Speaks:
    """What a page in `lang` must show: the catalog's phrases, Babel's formats."""

    app: Flask
    lang: str

    def word(self, msgid: str, **params: object) -> str:
        """The catalog's translation (a short word may be the same as in English)."""
        with self.app.test_request_context(), force_locale(self.lang):
            return gettext(msgid, **params)

    def text(self, msgid: str, **params: object) -> str:
        """The catalog's translation of a phrase; one left in English fails here."""
        translated = self.word(msgid, **params)
        assert translated != (msgid % params if params else msgid), \
            f"{msgid!r} has no {self.lang} translation"
        return translated

    @property
    def formats(self) -> str:
        """The locale numbers and dates follow: the language in the cluster's country
        (French in this Canadian cluster is fr_CA; i18n.regional)."""
        return regional(self.lang, SimpleNamespace(default_locale="en_CA", currency="CAD"))

    def money(self, minor: int) -> str:
        return format_money(minor, "CAD", self.formats)

    def number(self, minor: int) -> str:
        """An amount as a person of this language types it ("1.234,50", "1 234,50")."""
        return format_decimal(Decimal(minor) / 100, "#,##0.00", locale=self.formats)

    def day(self, value: date, fmt: str = "medium") -> str:
        return format_date(value, fmt, locale=self.formats)

    def moment(self, value: datetime) -> str:
        return format_datetime(value, "medium", tzinfo=TORONTO, locale=self.formats)

    @property
    def lang_attribute(self) -> re.Pattern[str]:
        """<html lang>: the language, with the cluster's country once the viewer's cluster
        is known ("fr-CA" signed in, "fr" on the invitation page)."""
        return re.compile(rf"^{self.lang}(-[A-Z]{{2}})?$")

    def month(self, month: str) -> str:
        """A YYYY-MM month by its name ("juin 2026")."""
        return format_skeleton("yMMMM", date.fromisoformat(f"{month}-01"), locale=self.formats)

    def check(self, page: Page, heading: str, **params: object) -> None:
        """The page is in this language: <html lang> and its main heading."""
        expect(page.locator("html")).to_have_attribute("lang", self.lang_attribute)
        expect(page.locator("h1").first).to_contain_text(self.text(heading, **params))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_newcomers_pages_speak_its_language(app: Flask, session: Session, world: World,
                                              phones: Phones, lang: str) -> None:
    speaks = Speaks(app, lang)
    give_profile(session, world.owner_a)
    now = utcnow()
    today, tomorrow = now.date(), (now.astimezone(TORONTO) + timedelta(days=1)).date()
    service.post_job(session, world.owner_a, job_draft(
        title="Weekly mowing on Yonge", starts_on=today, ends_on=today), now)
    closes_at = now.replace(microsecond=0) + timedelta(days=2)
    window = service.post_job(session, world.owner_a, job_draft(
        title="Regrade the courtyard", mode=JobMode.BID_WINDOW.value, closes_at=closes_at,
        starts_on=today + timedelta(days=3), ends_on=today + timedelta(days=5)), now)
    machine = listings.list_machine(session, world.owner_a, anytime_draft(), now)
    nine = datetime.combine(tomorrow, datetime.min.time(), TORONTO) + timedelta(hours=9)
    booking.book(session, world.owner_b, machine.id, nine.astimezone(UTC),  # type: ignore[arg-type]
                 (nine + timedelta(hours=2, minutes=30)).astimezone(UTC), now)
    invite = invites.create_member_invite(session, world.coordinator, "o@oak.test",
                                          "Oakridge Landscaping", now, 7)
    with live_server(app) as base:
        page = phones.open(f"{base}/invite/{invites.invite_token(SECRET, invite)}")
        switch_language(page, lang)
        speaks.check(page, "Join the cluster")
        expect(page.locator("main")).to_contain_text(speaks.text(
            "You are invited to bring %(business)s into the cluster as its owner.",
            business="Oakridge Landscaping"))
        phones.shot(page, "1-signup")

        sign_up(page, "Olivia Oak", PASSWORD)
        speaks.check(page, "Purpose")
        expect(page.get_by_role("status")).to_contain_text(speaks.text(
            "Welcome! Read the cluster agreement, then complete your business profile."))
        expect(page.locator("article")).to_contain_text(speaks.text(
            "This agreement ends on %(date)s unless renewed.",
            date=speaks.day(date(2028, 1, 1), "long")))
        phones.shot(page, "2-agreement")

        accept_agreement(page)
        speaks.check(page, "Edit profile")
        complete_profile(page, ("mowing",), "Toronto", "40", "")
        expect(page.get_by_role("status")).to_contain_text(speaks.text("Profile saved."))
        expect(page.locator("main")).to_contain_text(speaks.text("Mowing"))
        phones.shot(page, "3-profile")
        upload_certificate(page, INSURED_UNTIL)
        expect(page.get_by_role("status")).to_contain_text(speaks.text(
            "Certificate uploaded. The coordinator will verify it; you will be told."))
        expect(page.locator("main")).to_contain_text(speaks.day(INSURED_UNTIL))
        phones.shot(page, "3b-insurance")
        session.rollback()
        [waiting] = insurance.pending(session, world.coordinator)
        insurance.verify_certificate(session, world.coordinator, waiting[0].id,  # type: ignore[arg-type]
                                     2_000_000_00, INSURED_UNTIL, utcnow())

        go(page, "/jobs")
        speaks.check(page, "Jobs you can take")
        card = page.locator(".job-card", has_text="Weekly mowing on Yonge")
        expect(card).to_contain_text(speaks.money(VALUE))
        expect(card.locator("button")).to_have_text(speaks.text("Claim this job"))
        phones.shot(page, "4-board")

        submit(page, page.locator(f"[data-job-id='{window.id}'] h2 a"))
        facts = page.locator("#job")
        expect(facts).to_contain_text(speaks.text("Bids close"))
        expect(facts).to_contain_text(speaks.moment(closes_at))
        expect(facts).to_contain_text(f"{speaks.day(window.starts_on)} → "
                                      f"{speaks.day(window.ends_on)}")
        expect(page.locator("#place-bid h2")).to_have_text(speaks.text("Place a bid"))
        phones.shot(page, "5-bid-window")

        go(page, "/equipment")
        submit(page, page.locator(f"main a[href='/equipment/{machine.id}']").first)
        expect(page.locator("#machine")).to_contain_text(speaks.text(
            "%(rate)s per hour", rate=speaks.money(HOUR_RATE)))
        page.fill("#starts_at", f"{tomorrow.isoformat()}T10:00")
        page.fill("#ends_at", f"{tomorrow.isoformat()}T12:00")
        submit(page, page.locator("#book button[type=submit]"))
        expect(page.locator("#book .alert-error")).to_have_text(speaks.text(
            "Someone has booked the machine then (including %(buffer)d minutes to move and "
            "clean it between bookings). Choose another time.", buffer=30))
        expect(page.locator("#week")).to_contain_text(speaks.day(tomorrow, "EEE d MMM"))
        phones.shot(page, "6-machine-refused")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_coordinators_settlement_speaks_its_language(
        app: Flask, session: Session, lw: Ledger, phones: Phones,  # noqa: F811
        lang: str) -> None:
    speaks = Speaks(app, lang)
    busy_month(session, lw)
    session.commit()
    cluster_id = lw.world.cluster.id
    assert cluster_id is not None
    with live_server(app) as base:
        page = phones.log_in(base, lw.coordinator.email)
        go(page, "/invites")
        switch_language(page, lang)  # saved: every later page follows it
        speaks.check(page, "Invite a member business")
        open_month(page, JUNE)
        speaks.check(page, "Settlement %(month)s", month=speaks.month(JUNE))
        draft_month(page, JUNE)
        expect(page.get_by_role("status")).to_contain_text(speaks.text(
            "Settlement drafted. Review it, add adjustments if needed, then approve."))
        add_adjustment(page, JUNE, lw.b, speaks.number(FUEL), "Combustible")
        expect(page.get_by_role("status")).to_contain_text(speaks.text("Adjustment recorded."))
        session.expire_all()
        nets = settlement.month_nets(session, cluster_id, JUNE)
        session.commit()
        row = page.locator("#nets tr", has_text="Beta Stone")
        expect(row.locator("td.num").nth(2)).to_have_text(speaks.money(nets[lw.b].net))
        phones.shot(page, "1-settlement")

        approve_month(page, JUNE, {lw.b: "BANK-B"})
        expect(page.get_by_role("status")).to_contain_text(speaks.text(
            "Month approved and locked. Members have been told their statements are ready."))
        submit(page, page.locator("#nets a", has_text="Beta Stone"))
        speaks.check(page, "Statement %(month)s", month=speaks.month(JUNE))
        expect(page.locator("#net")).to_have_text(speaks.money(nets[lw.b].net))
        phones.shot(page, "2-statement")
        rows = download_statement(page, phones.folder)
        assert rows[0] == [speaks.word("Date"), speaks.word("What"), speaks.word("With"),
                           speaks.word("Note"),
                           speaks.text("Amount (%(currency)s)", currency="CAD")]
        assert rows[-3][1:] == [speaks.text("Adjustment by the coordinator"),
                                speaks.text("the cluster"), "Combustible", "1234.50"]
        assert rows[-1][0] == speaks.text("Net for the month")
        # Spreadsheet amounts stay plain decimals whatever the language.
        assert int(Decimal(rows[-1][4]) * 100) == nets[lw.b].net

        submit(page, page.locator("a[href*='/print']"))
        expect(page.locator("html")).to_have_attribute("lang", speaks.lang_attribute)
        expect(page.locator("h1")).to_have_text(speaks.text("Statement %(month)s",
                                                            month=speaks.month(JUNE)))
        expect(page.locator("#net")).to_have_text(speaks.money(nets[lw.b].net))
        phones.shot(page, "3-printable")
