"""Who may take a job: every reason on its own, and the exact eligible set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlmodel import Session

from marketplace.clusters import agreements
from marketplace.clusters.agreements import participation_refusals
from marketplace.clusters.models import Member, User
from marketplace.errors import Forbidden
from marketplace.jobs.eligibility import (
    Reason,
    cluster_reasons,
    eligible_members,
    ineligibility_reasons,
    reasons_per_job,
    require_eligible,
)
from marketplace.jobs.models import OverflowJob
from tests.conftest import NOW, World, invite_member, make_cluster, terms
from tests.jobs.conftest import ENDS_ON, SITE, add_partner, give_profile

Post = Callable[..., OverflowJob]


def _member(session: Session, user: User) -> Member:
    member = session.get(Member, user.member_id)
    assert member is not None
    session.refresh(member)
    return member


def _codes(session: Session, user: User, job: OverflowJob) -> list[str]:
    return [r.code for r in ineligibility_reasons(session, _member(session, user), job, NOW)]


def test_a_fully_set_up_partner_is_eligible(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()
    assert ineligibility_reasons(session, _member(session, jobs_world.owner_b), job, NOW) == []
    require_eligible(session, _member(session, jobs_world.owner_b), job, NOW)  # no raise


def test_own_job(session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    assert _codes(session, jobs_world.owner_a, job) == ["own_job"]
    with pytest.raises(Forbidden) as refused:
        require_eligible(session, _member(session, jobs_world.owner_a), job, NOW)
    assert refused.value.code == "own_job"


def test_agreement_not_accepted_after_a_new_version(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()
    agreements.publish_agreement(session, jobs_world.coordinator, terms(referral_fee_bp=700), NOW)
    reasons = ineligibility_reasons(session, _member(session, jobs_world.owner_b), job, NOW)
    assert [r.code for r in reasons] == ["agreement_not_accepted"]
    assert reasons[0].params == {"version": 2}
    agreements.accept_agreement(session, jobs_world.owner_b, 2, NOW)
    assert _codes(session, jobs_world.owner_b, job) == []


def test_missing_trade_names_only_the_missing_ones(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post(trades=("mowing", "irrigation"))
    reasons = ineligibility_reasons(session, _member(session, jobs_world.owner_b), job, NOW)
    assert [r.code for r in reasons] == ["missing_trades"]
    assert reasons[0].params == {"trades": ["irrigation"]}
    give_profile(session, jobs_world.owner_b, trades=("irrigation",))
    assert _codes(session, jobs_world.owner_b, job) == ["missing_trades"]
    give_profile(session, jobs_world.owner_b, trades=("irrigation", "mowing"))
    assert _codes(session, jobs_world.owner_b, job) == []


def test_service_radius_is_great_circle(session: Session, jobs_world: World, post: Post) -> None:
    # At 60 degrees north one degree of longitude is ~55.6 km, not ~111 km.
    job = post(site_lat=60.0, site_lng=10.0)
    give_profile(session, jobs_world.owner_b, base=(60.0, 11.0), radius_km=57)
    assert _codes(session, jobs_world.owner_b, job) == []
    # The rule measures from the job's approximate point (up to 1.5 km off the site) and
    # allows 1.5 km more: 52 km is short of 55.6 km whatever the point.
    give_profile(session, jobs_world.owner_b, base=(60.0, 11.0), radius_km=52)
    reasons = ineligibility_reasons(session, _member(session, jobs_world.owner_b), job, NOW)
    assert [r.code for r in reasons] == ["outside_service_area"]
    assert reasons[0].params == {"radius": 52}  # no distance: it is to the exact site


def test_service_radius_across_the_antimeridian(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post(site_lat=-16.0, site_lng=179.95)  # Fiji
    give_profile(session, jobs_world.owner_b, base=(-16.0, -179.95), radius_km=15)
    assert _codes(session, jobs_world.owner_b, job) == []  # ~10.7 km apart, not 359.9 degrees
    give_profile(session, jobs_world.owner_b, base=(-16.0, -179.95), radius_km=7)
    assert _codes(session, jobs_world.owner_b, job) == ["outside_service_area"]  # 7 + 3 < 10.7


def test_far_member_is_outside_the_service_area(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()
    give_profile(session, jobs_world.owner_b, base=(45.5017, -73.5673))  # Montreal
    assert _codes(session, jobs_world.owner_b, job) == ["outside_service_area"]


@pytest.mark.parametrize("base,radius", [(None, 50.0), (SITE, None)])
def test_no_service_area(
    session: Session,
    jobs_world: World,
    post: Post,
    base: tuple[float, float] | None,
    radius: float | None,
) -> None:
    job = post()
    give_profile(session, jobs_world.owner_b, base=base, radius_km=radius)
    assert _codes(session, jobs_world.owner_b, job) == ["no_service_area"]


def test_insurance_must_cover_the_whole_job(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()
    give_profile(session, jobs_world.owner_b, insurance=ENDS_ON - timedelta(days=1))
    reasons = ineligibility_reasons(session, _member(session, jobs_world.owner_b), job, NOW)
    assert [r.code for r in reasons] == ["insurance_expires"]
    give_profile(session, jobs_world.owner_b, insurance=ENDS_ON)  # covers the last day
    assert _codes(session, jobs_world.owner_b, job) == []
    give_profile(session, jobs_world.owner_b, insurance=None)
    assert _codes(session, jobs_world.owner_b, job) == ["no_insurance"]


def test_other_cluster(session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    assert _codes(session, jobs_world.other_owner, job) == ["other_cluster"]


def test_suspended_member(session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    member = _member(session, jobs_world.owner_b)
    member.suspended = True
    session.add(member)
    session.commit()
    assert _codes(session, jobs_world.owner_b, job) == ["member_suspended"]


def test_member_that_left_is_not_eligible(session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    member = _member(session, jobs_world.owner_b)
    member.exit_noticed_at = NOW - timedelta(days=40)
    member.exit_effective_at = NOW + timedelta(days=1)  # still serving its notice
    session.add(member)
    session.commit()
    assert _codes(session, jobs_world.owner_b, job) == []
    member.exit_effective_at = NOW
    session.add(member)
    session.commit()
    assert _codes(session, jobs_world.owner_b, job) == ["member_exited"]


def test_every_missing_setting_is_reported_at_once(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()
    give_profile(session, jobs_world.owner_b, trades=(), base=None, insurance=None)
    assert _codes(session, jobs_world.owner_b, job) == [
        "missing_trades",
        "no_service_area",
        "no_insurance",
    ]


def test_eligible_members_is_exactly_the_eligible_set(
    session: Session, jobs_world: World, post: Post
) -> None:
    w = jobs_world
    also = add_partner(session, w, "Gamma Trees", "g@gamma.test")
    add_partner(session, w, "Delta Drains", "d@delta.test", trades=("drainage",))
    add_partner(session, w, "Far Fields", "f@far.test", base=(45.5017, -73.5673))
    add_partner(session, w, "Lapsed Cover", "l@lapsed.test", insurance=ENDS_ON - timedelta(1))
    suspended = add_partner(session, w, "Paused Co", "p@paused.test")
    member = _member(session, suspended)
    member.suspended = True
    session.add(member)
    session.commit()
    job = post()
    eligible = eligible_members(session, job, NOW)
    assert sorted(m.id for m in eligible) == sorted([w.member_b_id, also.member_id])
    for m in eligible:  # agrees with the one reason function
        assert ineligibility_reasons(session, m, job, NOW) == []


def _one_by_one_agrees(
    session: Session, job: OverflowJob, now: datetime
) -> dict[int | None, list[str]]:
    """The whole-cluster path gives every member the very reasons the one-member path does."""
    batch = cluster_reasons(session, job, now)
    for member, reasons in batch:
        assert reasons == ineligibility_reasons(session, member, job, now), member.name
    return {member.id: [r.code for r in reasons] for member, reasons in batch}


def _set(session: Session, user: User, **fields: object) -> None:
    member = _member(session, user)
    for name, value in fields.items():
        setattr(member, name, value)
    session.add(member)
    session.commit()


def test_whole_cluster_and_one_member_give_the_same_reasons(
    session: Session, jobs_world: World, post: Post
) -> None:
    w = jobs_world
    job = post()
    ok = add_partner(session, w, "Gamma Trees", "g@gamma.test")
    suspended = add_partner(session, w, "Paused Co", "p@paused.test")
    _set(session, suspended, suspended=True)
    gone = add_partner(session, w, "Gone Gardens", "x@gone.test")
    _set(session, gone, exit_noticed_at=NOW - timedelta(days=40), exit_effective_at=NOW)
    leaving = add_partner(session, w, "Leaving Lawns", "l@leaving.test")
    _set(
        session,
        leaving,
        exit_noticed_at=NOW - timedelta(days=1),
        exit_effective_at=NOW + timedelta(days=29),
    )
    unsigned = invite_member(session, w.coordinator, "Unsigned Co", "u@unsigned.test")
    give_profile(session, unsigned)
    drains = add_partner(
        session, w, "Delta Drains", "d@delta.test", trades=("drainage",), insurance=None
    )
    codes = _one_by_one_agrees(session, job, NOW)
    assert w.member_a_id not in codes  # the poster is not a candidate
    assert codes == {
        w.member_b_id: [],
        ok.member_id: [],
        suspended.member_id: ["member_suspended"],
        gone.member_id: ["member_exited"],
        leaving.member_id: [],
        unsigned.member_id: ["agreement_not_accepted"],
        drains.member_id: ["missing_trades", "no_insurance"],
    }
    agreements.publish_agreement(session, w.coordinator, terms(referral_fee_bp=700), NOW)
    agreements.accept_agreement(session, ok, 2, NOW)
    codes = _one_by_one_agrees(session, job, NOW)
    assert codes[ok.member_id] == [] and codes[w.member_b_id] == ["agreement_not_accepted"]
    after_sunset = datetime(2028, 1, 2, 12, tzinfo=UTC)
    codes = _one_by_one_agrees(session, job, after_sunset)
    assert codes[ok.member_id] == codes[w.member_b_id] == ["agreement_sunset"]
    agreements.publish_agreement(
        session, w.coordinator, terms(referral_fee_bp=700, scope_overflow_jobs=False), NOW
    )
    agreements.accept_agreement(session, ok, 3, NOW)
    codes = _one_by_one_agrees(session, job, NOW)
    assert codes[ok.member_id] == ["outside_agreement_scope"]


def test_participation_in_bulk_is_the_gate_member_by_member(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    _no_agreement, coordinator = make_cluster(session, "Unsigned Vale", "c@vale.test")
    newcomer = invite_member(session, coordinator, "Vale Lawns", "v@vale.test")
    paused = add_partner(session, w, "Paused Co", "p@paused.test")
    _set(session, paused, suspended=True)
    members = [_member(session, u) for u in (w.owner_a, w.owner_b, w.other_owner, newcomer, paused)]
    bulk = participation_refusals(session, members, agreements.Activity.OVERFLOW_JOBS, NOW)
    for member in members:
        one = agreements.participation_refusal(
            session, member, agreements.Activity.OVERFLOW_JOBS, NOW
        )
        got = bulk[member.id]
        assert (got and (got.code, got.message, got.params)) == (
            one and (one.code, one.message, one.params)
        ), member.name
    assert bulk[newcomer.member_id].code == "no_agreement"  # type: ignore[union-attr]
    assert bulk[w.member_b_id] is None


def test_the_board_asks_the_same_rule_for_every_job(
    session: Session, jobs_world: World, post: Post
) -> None:
    w = jobs_world
    jobs = [
        post(),
        post(trades=("mowing", "irrigation")),
        post(site_lat=60.0, site_lng=10.0),
        post(by=w.owner_b),
    ]
    for user in (w.owner_a, w.owner_b, w.other_owner):
        member = _member(session, user)
        assert reasons_per_job(session, member, jobs, NOW) == [
            ineligibility_reasons(session, member, job, NOW) for job in jobs
        ]
    b = reasons_per_job(session, _member(session, w.owner_b), jobs, NOW)
    assert [[r.code for r in reasons] for reasons in b] == [
        [],
        ["missing_trades"],
        ["outside_service_area"],
        ["own_job"],
    ]
    assert isinstance(b[1][0], Reason) and b[1][0].params == {"trades": ["irrigation"]}


def test_eligibility_for_a_whole_cluster_takes_a_fixed_number_of_queries(
    session: Session, jobs_world: World, post: Post
) -> None:
    job = post()

    def queries() -> int:
        session.expire_all()  # nothing answered from the identity map by luck
        statements: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            eligible = eligible_members(session, job, NOW)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert eligible  # every partner here is eligible
        return len(statements)

    few = queries()
    for i in range(6):
        add_partner(session, jobs_world, f"Partner {i}", f"p{i}@partners.test")
    # BEGIN, the job and its trades, members, their trades, agreement, cluster, acceptances
    assert queries() == few <= 8
