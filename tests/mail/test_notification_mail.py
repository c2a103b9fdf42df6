"""Notification mails at the wire: new jobs, a closing bid window, an approved month.

Each test drives the real services (or pages), runs the real mail worker against
the SMTP server, and reads the mails as a mail client would: who got one, in which
language and time zone, what it says -- and what it must never say.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

from babel.dates import format_date
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale, gettext
from sqlmodel import Session

from marketplace.clusters.models import User
from marketplace.clusters.service import update_preferences
from marketplace.delivery.models import DeliveryStatus
from marketplace.delivery.preferences import Category, mail_settings
from marketplace.jobs import bidding, completion
from marketplace.jobs import service as jobs
from marketplace.ledger import settlement
from marketplace.money import format_money
from tests.conftest import NOW, World, login
from tests.jobs.conftest import (
    ADDRESS,
    CLOSES_AT,
    CUSTOMER_CONTACT,
    CUSTOMER_NAME,
    ENDS_ON,
    SITE,
    STARTS_ON,
    VALUE,
    add_partner,
    bid_window_draft,
    job_draft,
)
from tests.mail.mail_world import (
    PUBLIC_URL,
    SOON,
    by_recipient,
    fresh,
    html_of,
    link_to,
    mail_rows,
    run_mail,
    subject,
    text_of,
)
from tests.smtp_server import SmtpServer

#: what an eligible partner may not learn from a job before it is theirs
SECRETS = [CUSTOMER_NAME, "Quackenbush", CUSTOMER_CONTACT, "zelda.q@customer.example",
           "555-0199", ADDRESS, "Evergreen Terrace", f"{SITE[0]}", f"{SITE[1]}"]


def everything_in(message: EmailMessage, raw: bytes) -> str:
    """A mail as any reader of it could see it: every header, every part decoded, the
    raw bytes too."""
    parts = [f"{name}: {value}" for name, value in message.items()]
    for part in message.walk():
        if not part.is_multipart():
            parts.append(str(part.get_content()))  # type: ignore[attr-defined]
    parts.append(raw.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def post(session: Session, by: User, **changes: object) -> int:
    session.commit()
    draft = (bid_window_draft if changes.pop("bid_window", False) else job_draft)(**changes)
    job = jobs.post_job(session, by, draft, NOW)
    assert job.id is not None
    return job.id


def test_new_jobs_reach_eligible_partners_by_mail_without_the_customer(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    owner_b = update_preferences(session, world.owner_b, "es", None, None)
    add_partner(session, world, "Gamma Pavers", "g@gamma.test", trades=("paving",))
    post(session, world.owner_a, title="Mow the Evergreen estate")
    post(session, world.owner_a, title="Plant the boulevard", trades=("planting",),
         bid_window=True)

    run_mail(app, SOON)
    mails = smtp.messages
    # B (eligible, never logged in) gets one mail per job; the poster A, A's crew, the
    # ineligible paver, the coordinator and the rival cluster's owner get nothing.
    assert sorted(by_recipient(mails)) == ["b@beta.test"]
    assert len(mails) == 2
    for message, envelope in zip(mails, smtp.envelopes, strict=True):
        seen = everything_in(message, envelope.content)
        for secret in SECRETS:
            assert secret not in seen, (secret, message["Subject"])

    mow, plant = mails
    with app.test_request_context("/"), force_locale("es"):
        assert subject(mow) == gettext("New overflow job near %(locality)s: %(title)s",
                                         locality="Annex, Toronto",
                                         title="Mow the Evergreen estate")
        where, trades, mowing = gettext("Where"), gettext("Trades"), gettext("Mowing")
    assert subject(mow) == "Nuevo trabajo excedente cerca de Annex, Toronto: " \
        "Mow the Evergreen estate"
    body = text_of(mow)
    value = format_money(VALUE, "CAD", "es")
    for line in (f"{where}: Annex, Toronto", f"{trades}: {mowing}",
                 format_date(STARTS_ON, "medium", locale="es"),
                 format_date(ENDS_ON, "medium", locale="es"), value):
        assert line in body, (line, body)
    assert mowing in html_of(mow) and value in html_of(mow)
    assert "Plantación" in text_of(plant)
    assert link_to(mow, "/jobs/").startswith("/jobs/")

    # One-click unsubscribe (RFC 8058), for this kind of mail only.
    assert mow["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(mow["List-Unsubscribe"]).strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC_URL}/mail/unsubscribe/")
    assert unsubscribe in text_of(mow) and unsubscribe in html_of(mow)
    path = urlsplit(unsubscribe).path
    assert owner_b.id is not None
    everything_on = mail_settings(fresh(session), owner_b.id)
    assert all(everything_on.enabled.values())

    anyone = app.test_client()  # a mail provider or the person: no login, no cookie
    confirm = anyone.get(path)  # what a link scanner does: nothing may change
    assert confirm.status_code == 200 and "<form" in confirm.get_data(as_text=True)
    token = path.rsplit("/", 1)[1]
    tampered = path[:-len(token)] + token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert anyone.post(tampered).status_code == 404
    assert anyone.get(tampered).status_code == 404
    assert mail_settings(fresh(session), owner_b.id) == everything_on

    done = anyone.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    after = mail_settings(fresh(session), owner_b.id)
    assert after.enabled[Category.NEW_JOBS] is False
    assert {c: on for c, on in after.enabled.items() if c is not Category.NEW_JOBS} == {
        c: True for c in Category if c is not Category.NEW_JOBS}

    post(session, world.owner_a, title="Mow the school field")
    run_mail(app, SOON)
    assert len(smtp.messages) == 2  # nothing more for B
    assert smtp.recipients_tried == ["b@beta.test", "b@beta.test"]


def test_a_closing_window_is_told_in_each_partners_own_time_zone_once(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    paris = add_partner(session, world, "Gamma Mowing", "g@gamma.test")
    update_preferences(session, paris, "fr", "Europe/Paris", None)  # reads French, in Paris
    bidder = add_partner(session, world, "Delta Lawns", "d@delta.test")
    job_id = post(session, world.owner_a, bid_window=True)  # closes 2026-06-03 15:00 UTC
    bidding.place_bid(session, bidder, job_id, bidding.BidTerms(
        price_minor=1_000_000, crew_size=3, earliest_start=STARTS_ON), NOW + timedelta(hours=1))
    run_mail(app, NOW + timedelta(hours=1))  # the job.posted mails, the bid mail to A
    before = len(smtp.messages)
    posted = by_recipient(smtp.messages)
    # The job card of the announcement shows the deadline in the reader's zone too.
    assert "17:00" in text_of(posted["g@gamma.test"][0])
    assert "11:00" in text_of(posted["b@beta.test"][0])
    assert "17:00" not in text_of(posted["b@beta.test"][0])

    sweep = CLOSES_AT - timedelta(minutes=50)
    assert bidding.remind_closing_windows(session, sweep) == 2
    run_mail(app, sweep)
    reminders = smtp.messages[before:]
    mine = by_recipient(reminders)
    assert sorted(mine) == ["b@beta.test", "g@gamma.test"]  # Delta bid, A posted
    [toronto] = mine["b@beta.test"]
    [in_paris] = mine["g@gamma.test"]
    # 15:00 UTC is 11:00 in Toronto (the cluster's zone, B's) and 17:00 in Paris.
    assert subject(toronto) == ("Bid window closes at 11:00\N{NARROW NO-BREAK SPACE}a.m.: "
                                "Mow the Evergreen estate, Annex, Toronto")
    with app.test_request_context("/"), force_locale("fr"):
        assert subject(in_paris) == gettext(
            "Bid window closes at %(time)s: %(title)s, %(locality)s", time="17:00",
            title="Mow the Evergreen estate", locality="Annex, Toronto")
    assert "17:00" in text_of(in_paris) and "11:00" not in text_of(in_paris)
    assert "11:00" in text_of(toronto) and "17:00" not in text_of(toronto)

    # The sweep runs again (a restart, a second scheduler): nobody is told twice.
    assert bidding.remind_closing_windows(session, sweep + timedelta(minutes=5)) == 0
    run_mail(app, sweep + timedelta(minutes=5))
    assert len(smtp.messages) == before + 2


JUNE = "2026-06"
DONE_AT = NOW + timedelta(days=20)
JULY_2 = NOW + timedelta(days=31, hours=-1)  # 2026-07-02 14:00 UTC: June is over


def _csv_rows(data: bytes | str) -> list[list[str]]:
    text = data.decode() if isinstance(data, bytes) else data
    return list(csv.reader(io.StringIO(text)))


def test_an_approved_month_mails_each_person_their_statement(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    update_preferences(session, world.owner_b, "es", None, None)
    job_id = post(session, world.owner_a)
    jobs.claim_job(session, world.owner_b, job_id, NOW)
    completion.report_done(session, world.owner_b, job_id, DONE_AT)
    completion.confirm_completion(session, world.owner_a, job_id, DONE_AT)
    settlement.draft(session, world.cluster, JUNE, JULY_2)
    run_mail(app, JULY_2)
    before = len(smtp.messages)
    settlement.approve(session, world.coordinator, JUNE, {}, JULY_2)
    run_mail(app, JULY_2)

    approved = smtp.messages[before:]
    mine = by_recipient(approved)
    people = {world.owner_a.email: world.owner_a, world.crew_a.email: world.crew_a,
              world.owner_b.email: world.owner_b}
    assert sorted(mine) == sorted(people)  # every person of both members, once each
    for address, [message] in mine.items():
        person = people[address]
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content_type() == "text/csv"
        client: FlaskClient = app.test_client()
        login(client, person)
        download = client.get(f"/ledger/{JUNE}/statement.csv")
        assert download.status_code == 200
        assert attachment.get_filename() in download.headers["Content-Disposition"]
        mailed = _csv_rows(attachment.get_payload(decode=True))  # type: ignore[arg-type]
        assert mailed == _csv_rows(download.get_data(as_text=True))
        assert len(mailed) >= 4  # header, the entries, a blank line, the net
        printable = link_to(message, f"/ledger/{JUNE}/print")
        assert client.get(printable).status_code == 200
        assert f'href="{PUBLIC_URL}{printable}"' in html_of(message)
        assert message.get_body(preferencelist=("plain",)) is not None
        assert message.get_body(preferencelist=("html",)) is not None
    spanish = _csv_rows(mine[world.owner_b.email][0].iter_attachments().__next__()
                        .get_payload(decode=True))  # type: ignore[arg-type]
    assert spanish[0][0] == "Fecha" and spanish[-1][0] == "Neto del mes"  # B reads Spanish
    with app.test_request_context("/"), force_locale("es"):
        assert subject(mine[world.owner_b.email][0]) == gettext(  # the month by its name
            "The settlement for %(month)s is approved. Your statement is ready.",
            month="junio de 2026")
    assert {r.status for r in mail_rows(session)} <= {DeliveryStatus.SENT,
                                                     DeliveryStatus.SKIPPED}
