"""Moves of a member's base location: recorded, and limited to a few a day.

The base is what a partner's job distances are measured from.  Those distances
are coarse and taken from the job's approximate point (geo.py), yet a rival
that could move its base at will would still probe: move, read, move again.
So every move is kept (who, when, from where to where) for the coordinator,
and an owner may move its base at most MOVES_PER_DAY times in any 24 hours --
plenty for a typo or a new yard, too few to survey a site.  The coordinator,
who sets members up, is recorded but not limited.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Column, func
from sqlmodel import Field, Session, SQLModel, col, select

from marketplace.clusters.models import Member, User
from marketplace.db import UTCDateTime
from marketplace.errors import N_, ValidationError

log = logging.getLogger(__name__)
MOVES_PER_DAY = 3


class BaseLocationMove(SQLModel, table=True):
    """One change of a member's base location (None: not set)."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    moved_by_id: int = Field(foreign_key="user.id")
    moved_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    from_lat: float | None = None
    from_lng: float | None = None
    to_lat: float | None = None
    to_lng: float | None = None


def record_base_move(session: Session, actor: User, member: Member,
                     to: tuple[float | None, float | None], now: datetime) -> None:
    """Record a move of `member`'s base to `to`, or refuse it (nothing written) when
    its owners already moved it MOVES_PER_DAY times in the last 24 hours.  Does
    nothing when the base stays where it is."""
    before = (member.base_lat, member.base_lng)
    if before == to:
        return
    if not actor.is_coordinator:
        recent = session.exec(select(func.count()).select_from(BaseLocationMove).where(
            BaseLocationMove.member_id == member.id,
            col(BaseLocationMove.moved_at) > now - timedelta(hours=24))).one()
        if recent >= MOVES_PER_DAY:
            message = N_("The base location was already moved %(count)s times in the last "
                         "24 hours. Try again tomorrow, or ask your coordinator.")
            raise ValidationError("base_moves_limit", message, fields={"base_lat": message},
                                  params={"count": MOVES_PER_DAY})
    session.add(BaseLocationMove(member_id=member.id, moved_by_id=actor.id, moved_at=now,  # type: ignore[arg-type]
                                 from_lat=before[0], from_lng=before[1],
                                 to_lat=to[0], to_lng=to[1]))
    log.info("base of member_id=%s moved by user_id=%s", member.id, actor.id)
