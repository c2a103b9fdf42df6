"""Decide, inside the committing transaction, which outside deliveries an event needs.

Called by `events` right after the notifications are stored, so a delivery row
exists exactly when its notification does.  The cost when nobody in the batch
has a push subscription is one indexed query; otherwise three more, whatever
the number of recipients, and one multi-row INSERT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlmodel import Session, col, select

from marketplace.clusters.models import Cluster, User
from marketplace.delivery.models import (
    Channel,
    ChannelPreference,
    Delivery,
    DeliveryStatus,
    PushSubscription,
    QuietHours,
)
from marketplace.delivery.preferences import Category, QuietTime, category_of, quiet_until


@dataclass(frozen=True)
class Planned:
    """One stored notification that may need outside deliveries."""

    notification_id: int
    user_id: int
    kind: str
    created_at: datetime


def plan_deliveries(session: Session, notifications: Sequence[Planned]) -> int:
    """Write the push delivery rows for these notifications; how many were written."""
    user_ids = sorted({n.user_id for n in notifications})
    devices: dict[int, list[int]] = {}
    for sub_id, user_id in session.execute(
            select(PushSubscription.id, PushSubscription.user_id).where(
                col(PushSubscription.user_id).in_(user_ids),
                col(PushSubscription.removed_at).is_(None))
            .order_by(col(PushSubscription.id))):
        devices.setdefault(user_id, []).append(sub_id)
    if not devices:
        return 0
    reached = sorted(devices)
    muted = {(user_id, category) for user_id, category in session.execute(
        select(ChannelPreference.user_id, ChannelPreference.category).where(
            col(ChannelPreference.user_id).in_(reached),
            col(ChannelPreference.channel) == Channel.PUSH,
            col(ChannelPreference.enabled).is_(False)))}
    quiet: dict[int, tuple[QuietTime, ZoneInfo]] = {
        row.user_id: (QuietTime(row.start_minute, row.end_minute, row.skip_new_jobs),
                      ZoneInfo(user_zone or cluster_zone))
        for row, user_zone, cluster_zone in session.execute(
            select(QuietHours, User.timezone, Cluster.timezone)
            .join(User, col(User.id) == col(QuietHours.user_id))
            .join(Cluster, col(Cluster.id) == col(User.cluster_id))
            .where(col(QuietHours.user_id).in_(reached)))}
    rows: list[dict[str, Any]] = []
    for item in notifications:
        category = category_of(item.kind)
        if item.user_id not in devices or (item.user_id, category.value) in muted:
            continue
        status, due = DeliveryStatus.PENDING, item.created_at
        if item.user_id in quiet:
            rule, zone = quiet[item.user_id]
            ends = quiet_until(item.created_at, zone, rule)
            if ends is not None:
                skip = category is Category.NEW_JOBS and rule.skip_new_jobs
                status, due = (DeliveryStatus.SKIPPED if skip else DeliveryStatus.PENDING), ends
        rows.extend({"notification_id": item.notification_id, "channel": Channel.PUSH.value,
                     "subscription_id": sub_id, "status": status.value, "attempts": 0,
                     "due_at": due, "created_at": item.created_at}
                    for sub_id in devices[item.user_id])
    if rows:
        session.execute(insert(Delivery), rows)
    return len(rows)
