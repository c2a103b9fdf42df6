"""Which events reach a person by which outside channel, and when they are quiet.

Kinds of event are grouped into the few categories a person can reason about
("new jobs I can take", "my jobs", "bookings", "money"); every category is on
by default, since a channel reaches a person only after they opted in on a
device anyway.  Quiet hours are kept in the person's own time zone, so they
follow daylight saving time and a change of time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import Channel, ChannelPreference, QuietHours
from marketplace.errors import N_, ValidationError


class Category(StrEnum):
    NEW_JOBS = "new_jobs"
    JOB_UPDATES = "job_updates"
    BOOKINGS = "bookings"
    MONEY = "money"


CATEGORY_LABELS: dict[Category, str] = {
    Category.NEW_JOBS: N_("New jobs I can take"),
    Category.JOB_UPDATES: N_("Bids, awards and claims on my jobs"),
    Category.BOOKINGS: N_("Bookings and machine hand-overs"),
    Category.MONEY: N_("Monthly settlements and payments"),
}
#: what a push notification's title says for each category
CATEGORY_TITLES: dict[Category, str] = {
    Category.NEW_JOBS: N_("New job"),
    Category.JOB_UPDATES: N_("Your jobs"),
    Category.BOOKINGS: N_("Equipment"),
    Category.MONEY: N_("Money"),
}
# A job that is gone ("taken", "cancelled") replaces the notice that announced it,
# so it belongs with the announcement.
_NEW_JOB_KINDS = {"job.posted", "job.taken", "job.cancelled", "window.closing"}
#: what a daily digest collects; the rest of the category comes at once (a window
#: closing in an hour) or, for a person on the digest, not by mail at all (a job gone)
DIGEST_KINDS = {"job.posted"}
URGENT_KINDS = {"window.closing"}
_PREFIXES = {"booking": Category.BOOKINGS, "custody": Category.BOOKINGS,
             "settlement": Category.MONEY, "payment": Category.MONEY}


def category_of(kind: str) -> Category:
    """The category a kind of notification belongs to."""
    if kind in _NEW_JOB_KINDS:
        return Category.NEW_JOBS
    return _PREFIXES.get(kind.split(".", 1)[0], Category.JOB_UPDATES)


@dataclass(frozen=True)
class QuietTime:
    start_minute: int
    end_minute: int
    skip_new_jobs: bool


def quiet_until(now: datetime, zone: ZoneInfo, quiet: QuietTime) -> datetime | None:
    """When the quiet time that `now` falls in ends (UTC), or None outside it.

    Local wall-clock minutes decide, so 21:00-06:30 means that in the person's
    zone on every night of the year.  An end that falls into a daylight-saving
    gap (02:30 on the spring-forward night) is read with the offset before the
    change (02:30 EST, which the wall clock shows as 03:30 EDT), so it is never
    before the wall clock has passed the end.  An end the wall clock shows twice
    (01:30 on the fall-back night) is the first one after `now`: at the second
    01:15 the window still has a quarter of an hour to go.
    """
    start, end = quiet.start_minute, quiet.end_minute
    if start == end:
        return None
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    end_day: date = local.date() if minute < end else local.date() + timedelta(days=1)
    end_local = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=zone)
    ends = end_local.astimezone(UTC)
    if ends <= now:  # clocks fell back past the end and `now` is in the repeated hour
        ends = end_local.replace(fold=1).astimezone(UTC)
    return max(ends, now)


def next_daily(now: datetime, zone: ZoneInfo, minute: int) -> datetime:
    """The next moment after `now` at which the person's wall clock shows `minute`
    (their daily digest).  A minute the clocks skip that day comes an hour late."""
    local = now.astimezone(zone)
    for days in (0, 1, 2):
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, time(minute // 60, minute % 60),
                                     tzinfo=zone).astimezone(UTC)
        if candidate > now:
            return candidate
    raise AssertionError("a day always has that minute within two days")


def zone_of(user: User, cluster: Cluster) -> ZoneInfo:
    """The person's own time zone, else the cluster's."""
    return ZoneInfo(user.timezone or cluster.timezone)


@dataclass(frozen=True)
class PushSettings:
    """What the account page shows and saves."""

    enabled: dict[Category, bool]
    quiet: QuietTime | None


@dataclass(frozen=True)
class MailSettings:
    """Which categories reach the person by e-mail; new jobs either at once or
    collected into one mail a day at `digest_minute` of their day."""

    enabled: dict[Category, bool]
    digest_minute: int | None


DEFAULT_DIGEST_MINUTE = 7 * 60


def mail_settings(session: Session, user_id: int) -> MailSettings:
    rows = {row.category: row for row in session.exec(select(ChannelPreference).where(
        ChannelPreference.user_id == user_id, ChannelPreference.channel == Channel.EMAIL))}
    new_jobs = rows.get(Category.NEW_JOBS.value)
    return MailSettings(
        {category: rows[category.value].enabled if category.value in rows else True
         for category in Category},
        new_jobs.digest_minute if new_jobs else None)


def save_mail_settings(session: Session, user: User, settings: MailSettings) -> None:
    """Replace the person's e-mail choices (committed with the push choices)."""
    if settings.digest_minute is not None and not 0 <= settings.digest_minute < 24 * 60:
        message = N_("Give the time of day the daily digest should come.")
        raise ValidationError("digest_time", message, fields={"digest_time": message})
    _set_channel(session, user, Channel.EMAIL, settings.enabled,
                 {Category.NEW_JOBS: settings.digest_minute})


def _set_channel(session: Session, user: User, channel: Channel,
                 enabled: Mapping[Category, bool],
                 digest_minute: Mapping[Category, int | None] | None = None) -> None:
    """Replace the person's choices for one channel: which categories come that way
    (and, by e-mail, at which minute a category's digest comes)."""
    assert user.id is not None
    session.execute(delete(ChannelPreference).where(
        col(ChannelPreference.user_id) == user.id, col(ChannelPreference.channel) == channel))
    for category, on in enabled.items():
        session.add(ChannelPreference(
            user_id=user.id, channel=channel, category=category.value, enabled=on,
            digest_minute=(digest_minute or {}).get(category)))


def mute_mail(session: Session, user_id: int, category: Category) -> None:
    """One-click unsubscribe: this category no longer comes by e-mail.  A mail
    provider's one-click POST racing the person's own tap is the same wish: the
    second one to commit finds the row and sets it again."""
    for attempt in (1, 2):
        row = session.get(ChannelPreference, (user_id, Channel.EMAIL.value, category.value))
        if row is None:
            row = ChannelPreference(user_id=user_id, channel=Channel.EMAIL,
                                    category=category.value)
        row.enabled = False
        session.add(row)
        try:
            session.commit()
            return
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise


def push_settings(session: Session, user_id: int) -> PushSettings:
    rows = session.exec(select(ChannelPreference).where(
        ChannelPreference.user_id == user_id, ChannelPreference.channel == Channel.PUSH))
    chosen = {row.category: row.enabled for row in rows}
    quiet = session.get(QuietHours, user_id)
    return PushSettings(
        {category: chosen.get(category.value, True) for category in Category},
        QuietTime(quiet.start_minute, quiet.end_minute, quiet.skip_new_jobs)
        if quiet else None)


def save_push_settings(session: Session, user: User, settings: PushSettings,
                       mail: MailSettings | None = None) -> None:
    """Replace the person's push (and e-mail) choices; quiet hours of no length are
    refused.  A double tap saves the same choices twice at once: the later commit
    meets the earlier one's rows, so it is done again on top of them."""
    for attempt in (1, 2):
        try:
            _replace_choices(session, user, settings, mail)
            return
        except IntegrityError:
            session.rollback()
            if attempt == 2:
                raise


def _replace_choices(session: Session, user: User, settings: PushSettings,
                     mail: MailSettings | None) -> None:
    if mail is not None:
        save_mail_settings(session, user, mail)
    if settings.quiet is not None:
        for minute in (settings.quiet.start_minute, settings.quiet.end_minute):
            if not 0 <= minute < 24 * 60:
                message = N_("Give the time quiet hours start and the time they end.")
                raise ValidationError("quiet_hours", message, fields={"quiet_start": message})
        if settings.quiet.start_minute == settings.quiet.end_minute:
            message = N_("Quiet hours must start and end at different times.")
            raise ValidationError("quiet_hours", message, fields={"quiet_end": message})
    assert user.id is not None
    _set_channel(session, user, Channel.PUSH, settings.enabled)
    quiet = session.get(QuietHours, user.id)
    if settings.quiet is None:
        if quiet is not None:
            session.delete(quiet)
    else:
        quiet = quiet or QuietHours(user_id=user.id, start_minute=0, end_minute=0)
        quiet.start_minute = settings.quiet.start_minute
        quiet.end_minute = settings.quiet.end_minute
        quiet.skip_new_jobs = settings.quiet.skip_new_jobs
        session.add(quiet)
    session.commit()
