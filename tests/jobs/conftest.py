"""Job fixtures: a cluster whose members can actually take jobs.

The shared `world` has members A and B with the agreement accepted but no
trades, base or insurance.  Here both get a profile near the default site
(Toronto), A posts, B and any extra partners take part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from marketplace.clusters import agreements
from marketplace.clusters.models import Member, User
from marketplace.clusters.service import MemberProfile, update_member_profile
from marketplace.jobs import service
from marketplace.jobs.models import JobMode, OverflowJob
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, invite_member

SITE = (43.6532, -79.3832)  # downtown Toronto
NEAR = (43.7000, -79.4000)  # about 5 km north of the site
STARTS_ON = date(2026, 6, 10)
ENDS_ON = date(2026, 6, 20)
INSURED_UNTIL = date(2027, 6, 1)
VALUE = 1_234_570  # 500 bp of it is 61_728.5: half-to-even rounds to 61_728
CUSTOMER_NAME = "Zelda Quackenbush"
CUSTOMER_CONTACT = "zelda.q@customer.example +1-416-555-0199"
ADDRESS = "742 Evergreen Terrace, Unit 9"
CLOSES_AT = NOW + timedelta(days=2)


def give_profile(
    session: Session, owner: User, *, trades: Iterable[str] = ("mowing", "planting"),
    base: tuple[float, float] | None = NEAR, radius_km: float | None = 50.0,
    insurance: date | None = INSURED_UNTIL, now: datetime = NOW,
    member_id: int | None = None, coverage_minor: int | None = None,
) -> Member:
    """Set a member's trades and service area through the real service (as `owner`, for
    its own business or, a coordinator, for `member_id`), and its *verified* insurance
    as the coordinator's verification leaves it (tests/insurance/ drive that path)."""
    member_id = member_id or owner.member_id
    assert member_id is not None
    member = session.get(Member, member_id)
    assert member is not None
    member = update_member_profile(session, owner, member_id, MemberProfile(
        name=member.name, trades=tuple(trades),
        base_lat=base[0] if base else None, base_lng=base[1] if base else None,
        service_radius_km=radius_km, certifications="",
    ), now)
    member.insurance_expires_on = insurance
    member.insurance_coverage_minor = coverage_minor
    session.add(member)
    session.commit()
    return member


def add_partner(session: Session, world: World, name: str, email: str, **profile: Any
                ) -> User:
    """Another member of the world's cluster: invited, profiled, agreement accepted."""
    owner = invite_member(session, world.coordinator, name, email)
    give_profile(session, owner, **profile)
    current = agreements.agreement_in_force(session, world.cluster.id)
    assert current is not None
    agreements.accept_agreement(session, owner, current.version, NOW)
    return owner


def job_draft(**changes: Any) -> service.JobDraft:
    """A valid hand-off job at SITE needing mowing; override any field."""
    base = service.JobDraft(
        title="Mow the Evergreen estate", description="Four acres, weekly.",
        trades=("mowing",), site_lat=SITE[0], site_lng=SITE[1], locality="Annex, Toronto",
        address=ADDRESS, customer_name=CUSTOMER_NAME, customer_contact=CUSTOMER_CONTACT,
        crew_days=6, starts_on=STARTS_ON, ends_on=ENDS_ON, value_minor=VALUE,
        mode=JobMode.HANDOFF.value,
    )
    return replace(base, **changes)


def bid_window_draft(**changes: Any) -> service.JobDraft:
    return job_draft(**{"mode": JobMode.BID_WINDOW.value, "closes_at": CLOSES_AT, **changes})


def count(session: Session, model: type[SQLModel]) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def notifications(session: Session, kind: str | None = None) -> list[Notification]:
    query = select(Notification).order_by(Notification.id)  # type: ignore[arg-type]
    if kind is not None:
        query = query.where(Notification.kind == kind)
    return list(session.exec(query))


def recipients(session: Session, kind: str) -> list[int]:
    """User ids that got a notification of `kind`, sorted (duplicates kept)."""
    return sorted(n.user_id for n in notifications(session, kind))


def dumped(row: Notification) -> str:
    """Everything a notification carries to its recipient, as one string."""
    return json.dumps({"message": row.message, "params": row.params, "payload": row.payload,
                       "link": row.link}, default=str)


@pytest.fixture
def jobs_world(session: Session, world: World) -> World:
    """A posts jobs; B is an eligible partner; the rival cluster's owner is set up too."""
    give_profile(session, world.owner_a)
    give_profile(session, world.owner_b)
    give_profile(session, world.other_owner)
    current = agreements.agreement_in_force(session, world.other_owner.cluster_id)
    assert current is not None
    agreements.accept_agreement(session, world.other_owner, current.version, NOW)
    return world


@pytest.fixture
def post(session: Session, jobs_world: World) -> Callable[..., OverflowJob]:
    """Post a job as A (or `by`), from `job_draft` with overrides."""
    def _post(by: User | None = None, now: datetime = NOW, **changes: Any) -> OverflowJob:
        draft = (bid_window_draft if changes.pop("bid_window", False) else job_draft)(**changes)
        return service.post_job(session, by or jobs_world.owner_a, draft, now)
    return _post
