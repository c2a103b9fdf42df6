"""Changes of a member's service area (its base and radius): recorded, and limited.

A member's service area decides which jobs it is offered.  The rule measures it
from each job's approximate point, never from the site (jobs/eligibility.py),
so moving the base and watching the board teaches a rival nothing the point
does not already say.  Still, every change of base or radius is kept (who,
when, from what to what) for the coordinator, and an owner may change them at
most CHANGES_PER_DAY times in any 24 hours: plenty for a typo or a new yard,
and a brake on anything that probes.  The coordinator, who sets members up, is
recorded but neither limited nor counted against the owners.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from marketplace.clusters.models import Member, Role, ServiceAreaChange, User
from marketplace.errors import N_, ValidationError
from marketplace.persisted import id_of

log = logging.getLogger(__name__)
CHANGES_PER_DAY = 3


def record_service_area_change(session: Session, actor: User, member: Member,
                               base: tuple[float | None, float | None],
                               radius_km: float | None, now: datetime) -> None:
    """Record a change of `member`'s base or radius, or refuse it (nothing written) when
    its owners already changed them CHANGES_PER_DAY times in the last 24 hours.  Does
    nothing when both stay as they are."""
    # The member's row, locked until commit and read fresh: two saves at once (a double
    # tap) take turns, so the second sees the first's change and its count.
    session.exec(select(Member).where(Member.id == member.id).with_for_update()
                 .execution_options(populate_existing=True)).one()
    before = (member.base_lat, member.base_lng, member.service_radius_km)
    if before == (*base, radius_km):
        return
    if not actor.is_coordinator:
        recent = session.exec(
            select(func.count()).select_from(ServiceAreaChange)
            .join(User, col(User.id) == ServiceAreaChange.changed_by_id)
            .where(ServiceAreaChange.member_id == member.id,
                   col(ServiceAreaChange.changed_at) > now - timedelta(hours=24),
                   col(User.role) != Role.COORDINATOR)).one()
        if recent >= CHANGES_PER_DAY:
            message = N_("The base location and service radius were already changed "
                         "%(count)s times in the last 24 hours. Try again tomorrow, or ask "
                         "your coordinator.")
            raise ValidationError("service_area_changes_limit", message,
                                  fields={"base_lat": message}, params={"count": CHANGES_PER_DAY})
    session.add(ServiceAreaChange(
        member_id=id_of(member), changed_by_id=id_of(actor), changed_at=now,
        from_lat=before[0], from_lng=before[1], from_radius_km=before[2],
        to_lat=base[0], to_lng=base[1], to_radius_km=radius_km))
    log.info("service area of member_id=%s changed by user_id=%s", member.id, actor.id)


def recent_changes(session: Session, member: Member, limit: int = 10
                   ) -> list[tuple[ServiceAreaChange, str]]:
    """The member's latest service-area changes with who made each, newest first (for the
    coordinator and the member's owners; callers check who may see them)."""
    return [(change, name) for change, name in session.exec(
        select(ServiceAreaChange, User.name)
        .join(User, col(User.id) == ServiceAreaChange.changed_by_id)
        .where(ServiceAreaChange.member_id == member.id)
        .order_by(col(ServiceAreaChange.id).desc()).limit(limit))]
