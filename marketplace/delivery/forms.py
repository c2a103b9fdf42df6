"""The account page's notification choices: a row per kind of event, a column per
channel (push, e-mail), the new-job mail at once or as a daily digest, quiet hours."""

from __future__ import annotations

from datetime import time

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, RadioField, TimeField
from wtforms.validators import Optional

from marketplace.delivery.preferences import (
    DEFAULT_DIGEST_MINUTE,
    Category,
    MailSettings,
    PushSettings,
    QuietTime,
)
from marketplace.forms import WebForm


class PushPreferencesForm(WebForm):
    new_jobs = BooleanField(_l("New jobs I can take"))
    job_updates = BooleanField(_l("Bids, awards and claims on my jobs"))
    bookings = BooleanField(_l("Bookings and machine hand-overs"))
    money = BooleanField(_l("Monthly settlements and payments"))
    email_new_jobs = BooleanField(_l("New jobs I can take"))
    email_job_updates = BooleanField(_l("Bids, awards and claims on my jobs"))
    email_bookings = BooleanField(_l("Bookings and machine hand-overs"))
    email_money = BooleanField(_l("Monthly settlements and payments"))
    email_new_jobs_when = RadioField(_l("New jobs by e-mail"), default="now", choices=[
        ("now", _l("At once, one mail per job")),
        ("digest", _l("One mail a day with all of them"))])
    digest_time = TimeField(_l("Daily mail at"), validators=[Optional()])
    quiet = BooleanField(_l("Quiet hours: no pushes at night"))
    quiet_start = TimeField(_l("Quiet from"), validators=[Optional()])
    quiet_end = TimeField(_l("until"), validators=[Optional()])
    quiet_new_jobs = RadioField(_l("New jobs during quiet hours"), default="wait", choices=[
        ("wait", _l("Send them when quiet hours end")),
        ("skip", _l("Skip them (they may be taken by morning)"))])

    def fill(self, settings: PushSettings) -> None:
        for category in Category:
            getattr(self, category.value).data = settings.enabled[category]
        self.quiet.data = settings.quiet is not None
        if settings.quiet is not None:
            start, end = settings.quiet.start_minute, settings.quiet.end_minute
            self.quiet_start.data = time(start // 60, start % 60)
            self.quiet_end.data = time(end // 60, end % 60)
            self.quiet_new_jobs.data = "skip" if settings.quiet.skip_new_jobs else "wait"

    def fill_mail(self, settings: MailSettings) -> None:
        for category in Category:
            getattr(self, f"email_{category.value}").data = settings.enabled[category]
        digest = settings.digest_minute
        self.email_new_jobs_when.data = "now" if digest is None else "digest"
        minute = DEFAULT_DIGEST_MINUTE if digest is None else digest
        self.digest_time.data = time(minute // 60, minute % 60)

    def mail_settings(self) -> MailSettings:
        digest = None
        if self.email_new_jobs_when.data == "digest":
            at = self.digest_time.data
            digest = at.hour * 60 + at.minute if at else -1
        return MailSettings({c: bool(getattr(self, f"email_{c.value}").data) for c in Category},
                            digest)

    def settings(self) -> PushSettings:
        """What was chosen; quiet hours switched on without both times are a 422 later."""
        quiet = None
        if self.quiet.data:
            start, end = self.quiet_start.data, self.quiet_end.data
            quiet = QuietTime(start.hour * 60 + start.minute if start else -1,
                              end.hour * 60 + end.minute if end else -1,
                              self.quiet_new_jobs.data == "skip")
        return PushSettings({c: bool(getattr(self, c.value).data) for c in Category}, quiet)
