"""Journeys on a 360x740 touch phone: a crew lead posts a job without knowing a
coordinate, once by typing a town and tapping its suggestion, once by "I'm at the site"
(the browser's geolocation, granted to the page and pointed at a site through CDP)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from marketplace.db import utcnow
from marketplace.jobs.models import OverflowJob
from tests.browser.conftest import Phones
from tests.browser.steps import pick_place, submit
from tests.conftest import PASSWORD, World
from tests.jobs.conftest import give_profile
from tests.live import live_server

SMALL_PHONE = {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True}
SITE = (45.47720, -75.70140)  # a yard in Gatineau, where the phone says it is


def small_phone(phones: Phones, base: str, email: str, *, at: tuple[float, float] | None
                ) -> Page:
    """A 360x740 touch phone logged in as `email`; with `at`, the page may read its
    position (granted, as if the person said yes) and the position is `at`."""
    page = phones.browser.new_context(**SMALL_PHONE).new_page()  # type: ignore[arg-type]
    if at is not None:
        cdp = page.context.new_cdp_session(page)
        # Permissions belong to the phone's own browser context, named by its id.
        context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        cdp.send("Browser.grantPermissions", {"origin": base, "permissions": ["geolocation"],
                                              "browserContextId": context_id})
        cdp.send("Emulation.setGeolocationOverride",
                 {"latitude": at[0], "longitude": at[1], "accuracy": 12})
    page.goto(f"{base}/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    submit(page, page.locator("button[type=submit]"))
    return page


def fill_the_rest(page: Page, title: str) -> None:
    """Everything but the place, as a person types it."""
    start = (utcnow() + timedelta(days=7)).date().isoformat()
    page.fill("#title", title)
    page.locator("input[name=trades][value=mowing]").tap()
    page.fill("#customer_name", "Quinn Customer")
    page.fill("#crew_days", "2")
    page.fill("#starts_on", start)
    page.fill("#ends_on", start)
    page.fill("#value", "1500.00")


def the_job(session: Session, title: str) -> OverflowJob:
    session.commit()  # a fresh read of what the app wrote
    job = session.exec(select(OverflowJob).where(OverflowJob.title == title)).one()
    return job


def test_a_job_is_posted_by_typing_a_town_and_tapping_its_suggestion(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    with live_server(app) as base:
        page = small_phone(phones, base, world.owner_a.email, at=None)
        page.goto(f"{base}/jobs/new")  # the post form (the navigation is being reshaped)
        expect(page.locator("main")).not_to_contain_text("atitude")
        fill_the_rest(page, "Hedges in Gatineau")
        page.fill("#address", "gatin")
        # The first suggestion of a fresh process loads the gazetteer (about 1 s, more on
        # a busy machine).
        expect(page.locator(".place-suggestions button").first).to_have_text(
            "Gatineau, QC, Canada", timeout=30_000)
        phones.shot(page, "1-suggestions")
        pick_place(page, "address", "gatin", "Gatineau, QC, Canada")
        expect(page.locator("#address")).to_have_value("Gatineau, QC, Canada")
        expect(page.locator("#locality")).to_have_value("Gatineau")
        expect(page.locator(".place-suggestions")).to_be_hidden()
        phones.shot(page, "2-town-picked")
        submit(page, page.locator("main form button[type=submit]"))
        expect(page.get_by_role("status")).to_contain_text("Job posted.")
        phones.shot(page, "3-posted")
    job = the_job(session, "Hedges in Gatineau")
    assert (job.locality, job.address) == ("Gatineau", "Gatineau, QC, Canada")
    assert abs(job.site_lat - 45.48) < 0.05 and abs(job.site_lng + 75.70) < 0.05


def test_a_job_is_posted_from_the_site_with_the_phones_position(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    with live_server(app) as base:
        page = small_phone(phones, base, world.owner_a.email, at=SITE)
        page.goto(f"{base}/jobs/new")  # the post form (the navigation is being reshaped)
        fill_the_rest(page, "Sod at the yard")
        here = page.locator("[data-locate]")
        expect(here).to_be_visible()
        here.tap()
        expect(page.locator("[data-place-status]")).to_contain_text(
            "Using where you are now (within 12 m).")
        page.fill("#address", "Back gate, 12 rue Laval")  # what the winner should know
        phones.shot(page, "1-located")
        submit(page, page.locator("main form button[type=submit]"))
        expect(page.get_by_role("status")).to_contain_text("Job posted.")
    job = the_job(session, "Sod at the yard")
    assert (round(job.site_lat, 5), round(job.site_lng, 5)) == SITE
    assert job.address == "Back gate, 12 rue Laval" and job.locality  # its nearest town
