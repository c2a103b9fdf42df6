"""Decide, inside the committing transaction, which outside deliveries an event needs.

Called by `events` right after the notifications are stored, so a delivery row
exists exactly when its notification does.  This runs inside the member's
request (a post to a thousand partners writes a thousand rows per channel),
so the common case is left to the database: one `INSERT ... SELECT` per
channel and kind of event, joining the new notifications to the devices and
preferences that want them, with no row built in Python.  Only the people
whose rows need a clock -- quiet hours (push) and the daily digest (e-mail),
both in their own time zone -- are planned row by row here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, func, insert, literal, not_, null
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import (
    Channel,
    ChannelPreference,
    Delivery,
    DeliveryStatus,
    PushSubscription,
    QuietHours,
    UndeliverableAddress,
)
from marketplace.delivery.preferences import (
    DIGEST_KINDS,
    URGENT_KINDS,
    Category,
    QuietTime,
    category_of,
    next_daily,
    quiet_until,
)
from marketplace.realtime.models import Notification

_COLUMNS = ["notification_id", "channel", "subscription_id", "status", "attempts", "digest",
            "due_at", "created_at"]


@dataclass(frozen=True)
class Planned:
    """One stored notification that may need outside deliveries."""

    notification_id: int
    user_id: int
    kind: str
    created_at: datetime


def plan_deliveries(session: Session, notifications: Sequence[Planned]) -> int:
    """Write the push and e-mail delivery rows for these notifications; how many."""
    by_category: dict[Category, list[Planned]] = defaultdict(list)
    for item in notifications:
        by_category[category_of(item.kind)].append(item)
    return _plan_push(session, by_category) + _plan_mail(session, by_category)


def _muted(channel: Channel, category: Category) -> ColumnElement[bool]:
    """The notification's person switched this category off for this channel."""
    return exists().where(
        col(ChannelPreference.user_id) == col(Notification.user_id),
        col(ChannelPreference.channel) == channel.value,
        col(ChannelPreference.category) == category.value,
        col(ChannelPreference.enabled).is_(False))


def _insert_selected(session: Session, rows: Any) -> int:
    result = session.exec(insert(Delivery).from_select(_COLUMNS, rows))
    return int(result.rowcount or 0)


def _plan_push(session: Session, by_category: dict[Category, list[Planned]]) -> int:
    """One row per device that wants the category; people in quiet hours wait."""
    user_ids = sorted({n.user_id for items in by_category.values() for n in items})
    reached = sorted(set(session.execute(
        select(PushSubscription.user_id).where(
            col(PushSubscription.user_id).in_(user_ids),
            col(PushSubscription.removed_at).is_(None))).scalars()))
    if not reached:
        return 0
    quiet: dict[int, tuple[QuietTime, ZoneInfo]] = {
        row.user_id: (QuietTime(row.start_minute, row.end_minute, row.skip_new_jobs),
                      ZoneInfo(user_zone or cluster_zone))
        for row, user_zone, cluster_zone in session.execute(
            select(QuietHours, User.timezone, Cluster.timezone)
            .join(User, col(User.id) == col(QuietHours.user_id))
            .join(Cluster, col(Cluster.id) == col(User.cluster_id))
            .where(col(QuietHours.user_id).in_(reached)))}
    written = 0
    for category, items in by_category.items():
        ids = [n.notification_id for n in items if n.user_id not in quiet]
        if ids:
            written += _insert_selected(session, sa_select(
                col(Notification.id), literal(Channel.PUSH.value), col(PushSubscription.id),
                literal(DeliveryStatus.PENDING.value), literal(0), false(),
                col(Notification.created_at), col(Notification.created_at))
                .join(PushSubscription, and_(
                    col(PushSubscription.user_id) == col(Notification.user_id),
                    col(PushSubscription.removed_at).is_(None)))
                .where(col(Notification.id).in_(ids), not_(_muted(Channel.PUSH, category))))
        held = [n for n in items if n.user_id in quiet]
        if held:
            written += _plan_quiet(session, category, held, quiet)
    return written


def _plan_quiet(session: Session, category: Category, items: list[Planned],
                quiet: dict[int, tuple[QuietTime, ZoneInfo]]) -> int:
    """Push rows for people with quiet hours: due when they end (or skipped)."""
    user_ids = sorted({n.user_id for n in items})
    devices: dict[int, list[int]] = defaultdict(list)
    for sub_id, user_id in session.execute(
            select(PushSubscription.id, PushSubscription.user_id).where(
                col(PushSubscription.user_id).in_(user_ids),
                col(PushSubscription.removed_at).is_(None)).order_by(col(PushSubscription.id))):
        devices[user_id].append(sub_id)
    muted = set(session.execute(select(ChannelPreference.user_id).where(
        col(ChannelPreference.user_id).in_(user_ids),
        col(ChannelPreference.channel) == Channel.PUSH,
        col(ChannelPreference.category) == category.value,
        col(ChannelPreference.enabled).is_(False))).scalars())
    rows: list[dict[str, Any]] = []
    for item in items:
        if item.user_id in muted:
            continue
        rule, zone = quiet[item.user_id]
        status, due = DeliveryStatus.PENDING, item.created_at
        ends = quiet_until(item.created_at, zone, rule)
        if ends is not None:
            skip = category is Category.NEW_JOBS and rule.skip_new_jobs
            status, due = (DeliveryStatus.SKIPPED if skip else DeliveryStatus.PENDING), ends
        rows.extend({"notification_id": item.notification_id, "channel": Channel.PUSH.value,
                     "subscription_id": sub_id, "status": status.value, "attempts": 0,
                     "digest": False, "due_at": due, "created_at": item.created_at}
                    for sub_id in devices.get(item.user_id, []))
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)


def _plan_mail(session: Session, by_category: dict[Category, list[Planned]]) -> int:
    """One e-mail row per notification whose category the person gets by mail (all, by
    default), unless their address bounced for good.  New jobs for a person on the
    daily digest wait for its time, marked to be sent together."""
    digesting: dict[int, int] = {}
    new_jobs = by_category.get(Category.NEW_JOBS, [])
    if new_jobs:
        digesting = {user_id: minute for user_id, minute in session.execute(
            select(ChannelPreference.user_id, ChannelPreference.digest_minute).where(
                col(ChannelPreference.user_id).in_(sorted({n.user_id for n in new_jobs})),
                col(ChannelPreference.channel) == Channel.EMAIL,
                col(ChannelPreference.category) == Category.NEW_JOBS.value,
                col(ChannelPreference.enabled).is_(True),
                col(ChannelPreference.digest_minute).is_not(None)))}
    bounced = exists().where(
        col(UndeliverableAddress.address) == func.lower(col(User.email)))
    written = 0
    for category, items in by_category.items():
        ids = [n.notification_id for n in items
               if category is not Category.NEW_JOBS or n.user_id not in digesting]
        if ids:
            written += _insert_selected(session, sa_select(
                col(Notification.id), literal(Channel.EMAIL.value), null(),
                literal(DeliveryStatus.PENDING.value), literal(0), false(),
                col(Notification.created_at), col(Notification.created_at))
                .join(User, col(User.id) == col(Notification.user_id))
                .where(col(Notification.id).in_(ids), not_(_muted(Channel.EMAIL, category)),
                       not_(bounced)))
    digest_items = [n for n in new_jobs if n.user_id in digesting]
    if digest_items:
        written += _plan_digest(session, digest_items, digesting)
    return written


def _plan_digest(session: Session, items: list[Planned], digesting: dict[int, int]) -> int:
    """New jobs for people on the daily digest: collected until their minute of the day;
    a window closing within the hour still goes at once; a job gone is not mailed."""
    zones = {user_id: ZoneInfo(user_zone or cluster_zone)
             for user_id, user_zone, cluster_zone in session.execute(
                 select(User.id, User.timezone, Cluster.timezone)
                 .join(Cluster, col(Cluster.id) == col(User.cluster_id))
                 .where(col(User.id).in_(sorted(digesting)),
                        not_(exists().where(col(UndeliverableAddress.address)
                                            == func.lower(col(User.email))))))}
    rows: list[dict[str, Any]] = []
    for item in items:
        zone = zones.get(item.user_id)
        if zone is None or item.kind not in DIGEST_KINDS | URGENT_KINDS:
            continue  # address bounced, or "no longer available" for an untold job
        digest = item.kind in DIGEST_KINDS
        rows.append({"notification_id": item.notification_id, "channel": Channel.EMAIL.value,
                     "subscription_id": None, "status": DeliveryStatus.PENDING.value,
                     "attempts": 0, "digest": digest, "created_at": item.created_at,
                     "due_at": next_daily(item.created_at, zone, digesting[item.user_id])
                     if digest else item.created_at})
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)
