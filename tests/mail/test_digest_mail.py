"""The daily digest: new jobs collected into one mail at the person's chosen time.

B chooses it on the account page (07:00, its own time zone: the cluster's,
America/Toronto).  Three jobs are posted through the evening; the worker runs all
night with the clock stepped forward (`send_due_mail(..., clock=...)`).  Nothing
of the jobs is mailed before 07:00; then exactly one mail lists all three.  A bid
window closing within the hour is not held for the digest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import Flask
from flask_babel import force_locale, gettext
from sqlmodel import Session

from marketplace.delivery.preferences import Category, mail_settings, save_mail_settings
from marketplace.jobs import bidding
from marketplace.jobs import service as jobs
from tests.conftest import World, login
from tests.jobs.conftest import bid_window_draft, job_draft
from tests.mail.mail_world import (
    PUBLIC_URL,
    fresh,
    html_of,
    mail_rows,
    run_mail,
    subject,
    text_of,
)
from tests.smtp_server import SmtpServer


def toronto(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A June 2026 wall-clock time in Toronto (EDT, UTC-4), as UTC."""
    return datetime(2026, 6, day, hour + 4, minute, second, tzinfo=UTC) if hour + 4 < 24 \
        else datetime(2026, 6, day + 1, hour + 4 - 24, minute, second, tzinfo=UTC)


SEVEN = toronto(2, 7)


def test_new_jobs_wait_for_the_daily_digest_but_a_closing_window_does_not(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    world = jobs_world
    partner = app.test_client()
    login(partner, world.owner_b)
    saved = partner.post("/account/notifications", data={
        "new_jobs": "y", "job_updates": "y", "bookings": "y", "money": "y",
        "email_new_jobs": "y", "email_job_updates": "y", "email_bookings": "y",
        "email_money": "y", "email_new_jobs_when": "digest", "digest_time": "07:00",
        "quiet_new_jobs": "wait"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert world.owner_b.id is not None
    chosen = mail_settings(session, world.owner_b.id)
    assert chosen.digest_minute == 7 * 60 and chosen.enabled[Category.NEW_JOBS]

    evening = [
        (toronto(1, 18, 30), job_draft(title="Mow the school field")),
        (toronto(1, 20, 15), bid_window_draft(title="Plant the boulevard",
                                              trades=("planting",),
                                              closes_at=toronto(2, 7, 30))),
        (toronto(1, 22, 45), job_draft(title="Mow the hospital lawn")),
    ]
    for posted_at, draft in evening:
        session.commit()
        jobs.post_job(session, world.owner_a, draft, posted_at)
        run_mail(app, posted_at)
        assert smtp.messages == []
    digest_rows = [r for r in mail_rows(session) if r.digest]
    assert len(digest_rows) == 3 and {r.due_at for r in digest_rows} == {SEVEN}

    for night in (toronto(2, 0, 1), toronto(2, 3), toronto(2, 6, 44)):
        run_mail(app, night)
    assert smtp.messages == []

    # 06:45: the bid window closes at 07:30, within the hour: told at once.
    assert bidding.remind_closing_windows(session, toronto(2, 6, 45)) == 1
    run_mail(app, toronto(2, 6, 45))
    [reminder] = smtp.messages
    assert subject(reminder) == ("Bid window closes at 7:30\N{NARROW NO-BREAK SPACE}a.m.: "
                                 "Plant the boulevard, Annex, Toronto")
    run_mail(app, toronto(2, 6, 59, 59))
    assert len(smtp.messages) == 1

    run_mail(app, SEVEN)
    assert len(smtp.messages) == 2
    digest = smtp.messages[1]
    assert digest["To"] == "b@beta.test"
    with app.test_request_context("/"), force_locale("en_CA"):
        first = gettext("New overflow job near %(locality)s: %(title)s",
                        locality="Annex, Toronto", title="Mow the school field")
        assert subject(digest) == gettext("%(count)s new jobs you can take: %(first)s",
                                          count=3, first=first)
    body, html = text_of(digest), html_of(digest)
    for _posted_at, draft in evening:
        assert draft.title in body and draft.title in html
    assert body.index("school field") < body.index("boulevard") < body.index("hospital")
    assert body.count(f"{PUBLIC_URL}/jobs/") == 3
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    for later in (toronto(2, 7, 1), toronto(3, 7)):
        run_mail(app, later)
    assert len(smtp.messages) == 2
    assert all(r.status == "sent" for r in mail_rows(session) if r.notification_id)


def test_stopping_new_job_mails_stops_the_digest_already_collected(
    app: Flask, session: Session, smtp: SmtpServer, jobs_world: World,
) -> None:
    """B is on the 07:00 digest.  At 06:45 the closing-window mail comes; B follows its
    "Stop these e-mails" link.  The jobs collected overnight are new-job mails too:
    the digest does not come."""
    world = jobs_world
    assert world.owner_b.id is not None
    settings = mail_settings(session, world.owner_b.id)
    save_mail_settings(session, world.owner_b, type(settings)(settings.enabled, 7 * 60))
    session.commit()
    jobs.post_job(session, world.owner_a, job_draft(title="Mow the school field"),
                  toronto(1, 18, 30))
    jobs.post_job(session, world.owner_a, bid_window_draft(
        title="Plant the boulevard", closes_at=toronto(2, 7, 30)), toronto(1, 20, 15))
    bidding.remind_closing_windows(session, toronto(2, 6, 45))
    run_mail(app, toronto(2, 6, 45))
    [reminder] = smtp.messages
    stop = urlsplit(str(reminder["List-Unsubscribe"]).strip("<>")).path
    assert app.test_client().post(stop, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert not mail_settings(fresh(session), world.owner_b.id).enabled[Category.NEW_JOBS]

    run_mail(app, SEVEN)
    run_mail(app, toronto(3, 7))
    assert [subject(m) for m in smtp.messages] == [subject(reminder)]  # no digest
    assert smtp.recipients_tried == ["b@beta.test"]
    assert not [r for r in mail_rows(session) if r.status == "pending"]
