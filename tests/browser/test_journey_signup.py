"""Journey 1 on phones: invite link -> sign up -> read and accept the agreement ->
complete the profile -> the new member's board offers the jobs it can now take.

The world (cluster, agreement, member A with an open hand-off job) is set up
through the services; the coordinator's invite and everything the newcomer
does happen by tapping through the pages.
"""

from __future__ import annotations

from datetime import date

from flask import Flask
from playwright.sync_api import expect
from sqlmodel import Session

from marketplace.db import utcnow
from marketplace.jobs import service
from tests.browser.conftest import Phones
from tests.browser.steps import (
    accept_agreement,
    complete_profile,
    create_invite,
    go,
    sign_up,
    upload_certificate,
    verify_certificate,
)
from tests.conftest import PASSWORD, World
from tests.jobs.conftest import give_profile, job_draft
from tests.live import live_server

BUSINESS, EMAIL, NAME = "Oakridge Landscaping", "olivia@oakridge.test", "Olivia Oak"


def test_invited_owner_signs_up_accepts_the_agreement_and_completes_the_profile(
        app: Flask, session: Session, world: World, phones: Phones) -> None:
    give_profile(session, world.owner_a)
    today = utcnow().date()
    service.post_job(session, world.owner_a, job_draft(
        title="Weekly mowing on Yonge", starts_on=today, ends_on=today), utcnow())
    with live_server(app) as base:
        coordinator = phones.log_in(base, world.coordinator.email)
        link = create_invite(coordinator, BUSINESS, EMAIL)
        assert link.startswith(f"{base}/invite/")
        phones.shot(coordinator, "1-invite-link")

        newcomer = phones.open(link)
        expect(newcomer.locator("main")).to_contain_text(
            f"You are invited to bring {BUSINESS} into the cluster as its owner.")
        expect(newcomer.locator("main")).to_contain_text(EMAIL)
        phones.shot(newcomer, "2-signup")
        sign_up(newcomer, NAME, "short")
        expect(newcomer.locator("#password-err")).to_have_text(
            "Use at least 10 characters for your password.")
        phones.shot(newcomer, "3-password-too-short")
        sign_up(newcomer, NAME, PASSWORD)

        newcomer.wait_for_url(f"{base}/agreement")
        expect(newcomer.get_by_role("status")).to_contain_text("Welcome!")
        expect(newcomer.locator("article.agreement")).to_contain_text(
            "Share overflow work fairly.")
        expect(newcomer.locator("article.agreement")).to_contain_text(
            "No bid prices across the barrier.")
        phones.shot(newcomer, "4-agreement")
        accept_agreement(newcomer)
        expect(newcomer.get_by_role("status")).to_contain_text("Agreement accepted.")
        phones.shot(newcomer, "5-profile-form")
        expect(newcomer.locator("#unread-badge")).to_be_hidden()  # nothing unread yet
        for box in newcomer.locator("input[name=trades]").all():  # gloves on: no tiny boxes
            size = box.bounding_box()
            assert size is not None and min(size["width"], size["height"]) >= 24, size

        complete_profile(newcomer, ("mowing", "planting"), "Toronto", "40", "ISA arborist")
        expect(newcomer.get_by_role("status")).to_contain_text("Profile saved.")
        facts = newcomer.locator("main")
        expect(facts).to_contain_text("Mowing")
        expect(facts).to_contain_text("Planting")
        expect(facts).to_contain_text("40 km around Toronto")
        expect(facts).to_contain_text("Not verified")
        expect(facts).to_contain_text("ISA arborist")
        phones.shot(newcomer, "6-profile")

        # Insurance counts once the coordinator has verified the uploaded certificate.
        upload_certificate(newcomer, date(2027, 6, 1))
        expect(newcomer.get_by_role("status")).to_contain_text("Certificate uploaded.")
        expect(newcomer.locator("main")).to_contain_text("Waiting for verification")
        verify_certificate(coordinator)
        expect(coordinator.get_by_role("status")).to_contain_text("Certificate verified.")
        newcomer.reload()
        expect(newcomer.locator("main")).to_contain_text("Jun 1, 2027")
        expect(newcomer.locator("main")).not_to_contain_text("Waiting for verification")
        phones.shot(newcomer, "6b-insurance")

        # Now a full member: A's open job is on its board, claimable with one tap.
        go(newcomer, "/jobs")
        card = newcomer.locator(".job-card", has_text="Weekly mowing on Yonge")
        expect(card.locator("button[type=submit]")).to_have_text("Claim this job")
        phones.shot(newcomer, "7-board")

        # The coordinator sees the acceptance; the link cannot be used twice.
        go(coordinator, "/agreement")
        expect(coordinator.locator("main")).to_contain_text(f"{BUSINESS} · {NAME}")
        again = phones.open(link)
        expect(again.locator("main")).to_contain_text(
            "This invite link has already been used.")
        phones.shot(again, "8-link-used")
