"""The sunset review (issue #20, part 4): opened once, 30 days before the sunset in the
cluster's time zone; one answer per business, changeable until the close; closed once,
at the sunset (wound down) or by a renewal; what each viewer may read of it."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from marketplace.clusters import agreements
from marketplace.clusters.governance import service as governance
from marketplace.clusters.models import Agreement, Cluster
from marketplace.clusters.review import service as review
from marketplace.clusters.review.models import ReviewAnswer, ReviewStatus, SunsetReview
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, invite_member, invite_user, terms
from tests.races import at_once

SUNSET = date(2026, 8, 1)
#: 2 July 2026 00:00 in Toronto (EDT, UTC-4): the review of a 1 August sunset opens.
OPENS = datetime(2026, 7, 2, 4, 0, tzinfo=UTC)
#: 1 August 2026 00:00 in Toronto: the sunset.
CLOSES = datetime(2026, 8, 1, 4, 0, tzinfo=UTC)
DURING = OPENS + timedelta(days=3)


def recipients(session: Session, kind: str) -> list[int]:
    return sorted(n.user_id for n in session.exec(
        select(Notification).where(Notification.kind == kind)))


def sunset_on(session: Session, world: World, day: date = SUNSET, **changes: object
              ) -> Agreement:
    """Publish a version ending on `day`, accepted by A and B."""
    version = agreements.publish_agreement(
        session, world.coordinator, terms(purpose="Charter.", sunset_on=day, **changes), NOW)
    for owner in (world.owner_a, world.owner_b):
        agreements.accept_agreement(session, owner, version.version, NOW)
    return version


def opened(session: Session, world: World, now: datetime = DURING) -> SunsetReview:
    sunset_on(session, world)
    assert review.open_due_reviews(session, now) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    return found


# -- opening ------------------------------------------------------------------------------


def test_the_review_opens_thirty_days_before_the_sunset_in_the_clusters_time_zone(
        session: Session, world: World) -> None:
    sunset_on(session, world)
    assert review.open_due_reviews(session, OPENS - timedelta(seconds=1)) == 0
    assert review.current_review(session, world.cluster.id) is None
    assert review.open_due_reviews(session, OPENS) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    assert (found.sunset_on, found.agreement_version) == (SUNSET, 2)
    assert review.closing_moment(session, found) == CLOSES
    assert recipients(session, "review.opened") == sorted(
        [world.coordinator.id, world.owner_a.id, world.owner_b.id])  # crew do not answer


def test_running_twice_opens_one_review_and_tells_everyone_once(
        session: Session, world: World) -> None:
    sunset_on(session, world)
    assert review.open_due_reviews(session, OPENS) == 1
    assert review.open_due_reviews(session, OPENS + timedelta(hours=1)) == 0
    assert len(list(session.exec(select(SunsetReview)))) == 1
    assert len(recipients(session, "review.opened")) == 3


def test_a_sunset_already_near_opens_the_review_at_once_and_a_past_one_none(
        session: Session, world: World) -> None:
    sunset_on(session, world, date(2026, 6, 10))  # nine days after NOW
    assert review.open_due_reviews(session, NOW) == 1
    assert review.open_due_reviews(session, datetime(2026, 6, 10, 5, tzinfo=UTC)) == 0


def test_no_review_opens_once_the_sunset_has_come(session: Session, world: World) -> None:
    sunset_on(session, world, date(2026, 6, 10))
    assert review.open_due_reviews(session, datetime(2026, 6, 10, 4, tzinfo=UTC)) == 0


def test_a_rival_clusters_sunset_opens_its_own_review_only(
        session: Session, world: World) -> None:
    found = opened(session, world)
    with pytest.raises(NotFound):
        review.get_review(session, world.other_owner, found.id)  # type: ignore[arg-type]
    assert len(list(session.exec(select(SunsetReview)))) == 1  # its sunset is 2028


ZONES = ("America/Toronto", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Paris",
         "Asia/Kolkata", "Australia/Lord_Howe", "UTC")


@given(zone=st.sampled_from(ZONES),
       sunset=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
       offset=st.integers(min_value=-3 * 86_400, max_value=40 * 86_400))
def test_the_review_is_due_from_local_midnight_thirty_days_before_until_the_sunset(
        zone: str, sunset: date, offset: int) -> None:
    """In any time zone: due exactly from the first instant of the day 30 days before
    the sunset (where the cluster is) until the sunset's first instant."""
    opens = review.local_midnight(sunset - timedelta(days=30), zone)
    closes = review.local_midnight(sunset, zone)
    now = opens + timedelta(seconds=offset)
    today = now.astimezone(ZoneInfo(zone)).date()
    assert review.due_to_open(sunset, today) == (opens <= now < closes)
    assert (closes - opens) <= timedelta(days=30, hours=2)  # DST moves it an hour at most


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_the_scheduler_opens_at_the_local_midnight_of_far_time_zones(
        session: Session, world: World, zone: str) -> None:
    cluster = session.get(Cluster, world.cluster.id)
    assert cluster is not None
    cluster.timezone = zone
    session.add(cluster)
    session.commit()
    sunset_on(session, world)
    opens = review.local_midnight(date(2026, 7, 2), zone)
    assert review.open_due_reviews(session, opens - timedelta(microseconds=1)) == 0
    assert review.open_due_reviews(session, opens) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    assert review.closing_moment(session, found) == review.local_midnight(SUNSET, zone)


def test_two_schedulers_at_once_open_one_review(app: Flask, session: Session,
                                                world: World) -> None:
    sunset_on(session, world)
    results = at_once(app.extensions["engine"], 4,
                      lambda own: review.open_due_reviews(own, OPENS))
    assert sorted(results, key=repr) == [0, 0, 0, 1], results
    session.rollback()
    assert len(list(session.exec(select(SunsetReview)))) == 1
    assert len(recipients(session, "review.opened")) == 3


# -- answering ----------------------------------------------------------------------------


def test_an_owner_answers_and_may_change_the_answer_until_the_close(
        session: Session, world: World) -> None:
    found = opened(session, world)
    first = review.answer(session, world.owner_a, found.id, "renew", "  Hand-offs paid. ",
                          DURING)
    assert (first.choice, first.lessons) == ("renew", "Hand-offs paid.")
    again = review.answer(session, world.owner_a, found.id, "change", "Fees too high.",
                          DURING + timedelta(days=1))
    assert again.id == first.id and again.answered_at == DURING
    rows = list(session.exec(select(ReviewAnswer)))
    assert [(r.choice, r.lessons) for r in rows] == [("change", "Fees too high.")]
    assert review.close_review(session, found.id, CLOSES)
    with pytest.raises(Conflict):
        review.answer(session, world.owner_a, found.id, "leave", "", CLOSES)
    session.expire_all()
    assert session.exec(select(ReviewAnswer.choice)).one() == "change"


def test_only_owners_of_participating_businesses_answer(session: Session,
                                                        world: World) -> None:
    found = opened(session, world)
    for outsider in (world.crew_a, world.coordinator):
        with pytest.raises(Forbidden):
            review.answer(session, outsider, found.id, "renew", "", DURING)
    late = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    with pytest.raises(Forbidden):  # never accepted the version in force
        review.answer(session, late, found.id, "renew", "", DURING)
    with pytest.raises(NotFound):
        review.answer(session, world.other_owner, found.id, "renew", "", DURING)
    assert list(session.exec(select(ReviewAnswer))) == []


@pytest.mark.parametrize("choice,lessons", [("stay", ""), ("", ""), ("renew", "x" * 4001)])
def test_bad_answers_change_nothing(session: Session, world: World, choice: str,
                                    lessons: str) -> None:
    found = opened(session, world)
    with pytest.raises(ValidationError):
        review.answer(session, world.owner_a, found.id, choice, lessons, DURING)
    session.rollback()
    assert list(session.exec(select(ReviewAnswer))) == []


# -- closing ------------------------------------------------------------------------------


def test_at_the_sunset_the_review_closes_once_as_wound_down(session: Session,
                                                            world: World) -> None:
    found = opened(session, world)
    assert review.close_due_reviews(session, CLOSES - timedelta(seconds=1)) == 0
    assert review.close_due_reviews(session, CLOSES) == 1
    assert review.close_due_reviews(session, CLOSES + timedelta(hours=1)) == 0
    session.refresh(found)
    assert (found.status, found.outcome, found.closed_at) == ("closed", "wound_down", CLOSES)
    assert len(recipients(session, "review.closed")) == 3


def test_two_closers_at_once_close_once(app: Flask, session: Session, world: World) -> None:
    found = opened(session, world)
    review_id = found.id
    results = at_once(app.extensions["engine"], 4,
                      lambda own: review.close_review(own, review_id, CLOSES))  # type: ignore[arg-type]
    assert sorted(results, key=repr) == [False, False, False, True], results
    session.rollback()  # a fresh read of what the racers committed
    assert len(recipients(session, "review.closed")) == 3


def both_renew(session: Session, world: World, found: SunsetReview) -> None:
    for owner in (world.owner_a, world.owner_b):
        review.answer(session, owner, found.id, "renew", "", DURING)  # type: ignore[arg-type]


def test_the_coordinator_renews_with_a_later_sunset_and_the_review_closes(
        session: Session, world: World) -> None:
    found = opened(session, world)
    both_renew(session, world, found)
    published = review.renew(session, world.coordinator, found.id, date(2027, 8, 1), DURING)
    assert (published.version, published.sunset_on) == (3, date(2027, 8, 1))
    assert published.purpose == "Charter."  # every other term as members accepted it
    session.refresh(found)
    assert (found.status, found.outcome, found.renewed_version) == ("closed", "renewed", 3)
    assert found.renewed_sunset_on == date(2027, 8, 1)
    assert len(recipients(session, "review.closed")) == 3
    assert review.close_due_reviews(session, CLOSES) == 0  # nothing left to wind down
    with pytest.raises(Conflict):
        review.renew(session, world.coordinator, found.id, date(2028, 8, 1), DURING)


@pytest.mark.parametrize("day", [None, SUNSET, date(2026, 7, 1)])
def test_a_renewal_must_move_the_sunset_later(session: Session, world: World,
                                              day: date | None) -> None:
    found = opened(session, world)
    with pytest.raises(ValidationError) as refused:
        review.renew(session, world.coordinator, found.id, day, DURING)
    assert "sunset_on" in refused.value.fields
    session.rollback()
    session.refresh(found)
    assert found.status == ReviewStatus.OPEN
    assert agreements.agreement_in_force(session, world.cluster.id).version == 2  # type: ignore[union-attr]


def test_only_the_coordinator_renews_and_not_while_members_vote(
        session: Session, world: World) -> None:
    found = opened(session, world)
    with pytest.raises(Forbidden):
        review.renew(session, world.owner_a, found.id, date(2027, 8, 1), DURING)
    governance.propose_change(session, world.coordinator,
                              terms(purpose="Charter.", sunset_on=date(2027, 8, 1),
                                    referral_fee_bp=700), "Cheaper hand-offs.", 7, DURING)
    with pytest.raises(Conflict):
        review.renew(session, world.coordinator, found.id, date(2027, 8, 1), DURING)


@pytest.mark.parametrize("rule,renewing,carries", [
    ("majority", 1, False), ("majority", 2, True), ("unanimity", 2, False),
    ("unanimity", 3, True), ("two_thirds", 2, True), ("two_thirds", 1, False)])
def test_a_renewal_is_published_only_when_renew_answers_carry_it_by_the_charters_rule(
        session: Session, world: World, rule: str, renewing: int, carries: bool) -> None:
    """Three participating businesses; `renewing` of them answer renew, the rest leave."""
    sunset_on(session, world, decision_rule=rule)
    gamma = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    agreements.accept_agreement(session, gamma, 2, NOW)
    assert review.open_due_reviews(session, DURING) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    for n, owner in enumerate((world.owner_a, world.owner_b, gamma)):
        review.answer(session, owner, found.id, "renew" if n < renewing else "leave", "",
                      DURING)
    view = review.review_view(session, world.coordinator, found, DURING)
    assert (view.renew_votes, view.renewal_carried) == (renewing, carries)
    if carries:
        assert review.renew(session, world.coordinator, found.id, date(2027, 8, 1),
                            DURING).version == 3
    else:
        with pytest.raises(Conflict) as refused:
            review.renew(session, world.coordinator, found.id, date(2027, 8, 1), DURING)
        assert refused.value.code == "renewal_not_carried"
        session.rollback()
        assert agreements.agreement_in_force(session, world.cluster.id).version == 2  # type: ignore[union-attr]
        session.refresh(found)
        assert found.status == "open"


def test_a_version_published_in_the_editor_with_a_new_sunset_closes_it_as_renewed(
        session: Session, world: World) -> None:
    found = opened(session, world)
    agreements.publish_agreement(session, world.coordinator,
                                 terms(purpose="Charter.", sunset_on=date(2027, 3, 1)), DURING)
    assert review.close_due_reviews(session, DURING) == 1
    session.refresh(found)
    assert (found.outcome, found.renewed_version) == ("renewed", 3)


# -- what each viewer sees ----------------------------------------------------------------


def test_members_read_what_others_learned_but_not_their_choice(
        session: Session, world: World) -> None:
    found = opened(session, world)
    review.answer(session, world.owner_a, found.id, "leave", "Too few jobs came.", DURING)
    review.answer(session, world.owner_b, found.id, "renew", "The digger paid off.", DURING)
    seen_by_b = review.review_view(session, world.owner_b, found, DURING)
    assert {(a.member_name, a.choice, a.lessons) for a in seen_by_b.answers} == {
        ("Alpha Lawns", None, "Too few jobs came."),
        ("Beta Stone", "renew", "The digger paid off.")}
    assert seen_by_b.tally is None and seen_by_b.mine is not None
    assert seen_by_b.may_answer and not seen_by_b.may_renew
    coordinator = review.review_view(session, world.coordinator, found, DURING)
    assert coordinator.tally == {"renew": 1, "change": 0, "leave": 1}
    assert {a.choice for a in coordinator.answers} == {"leave", "renew"}
    assert coordinator.may_renew and not coordinator.may_answer
    crew = review.review_view(session, world.crew_a, found, DURING)
    assert {a.choice for a in crew.answers} == {"leave", None}  # its own business's only
    assert not crew.may_answer


def test_the_closed_tally_is_shown_to_members_only_when_each_choice_hides_k(
        session: Session, world: World) -> None:
    found = opened(session, world)
    for owner in (world.owner_a, world.owner_b):
        review.answer(session, owner, found.id, "renew", "", DURING)
    assert review.review_view(session, world.owner_a, found, DURING).tally is None  # open
    assert review.close_review(session, found.id, CLOSES)
    assert review.review_view(session, world.owner_a, found, CLOSES).tally is None  # 2 < k
    with pytest.raises(NotFound):
        review.review_view(session, world.other_owner, found, CLOSES)


def test_the_closed_tally_is_shown_when_every_choice_has_k(session: Session,
                                                           world: World) -> None:
    found = opened(session, world, DURING)
    gamma = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    agreements.accept_agreement(session, gamma, 2, DURING)
    for owner in (world.owner_a, world.owner_b, gamma):
        review.answer(session, owner, found.id, "renew", "", DURING)
    assert review.close_review(session, found.id, CLOSES)
    assert review.review_view(session, world.owner_a, found, CLOSES).tally == {
        "renew": 3, "change": 0, "leave": 0}


@given(counts=st.lists(st.integers(min_value=0, max_value=6), min_size=3, max_size=3),
       k=st.integers(min_value=2, max_value=5))
def test_a_shown_tally_never_has_a_choice_made_by_fewer_than_k(counts: list[int],
                                                               k: int) -> None:
    tally = dict(zip(review.CHOICES, counts, strict=True))
    if review.tally_may_be_shown(tally, k):
        assert all(c == 0 or c >= k for c in counts)
    else:
        assert any(0 < c < k for c in counts)


def test_reviews_are_listed_newest_first(session: Session, world: World) -> None:
    found = opened(session, world)
    both_renew(session, world, found)
    review.renew(session, world.coordinator, found.id, date(2026, 9, 1), DURING)
    assert review.open_due_reviews(session, DURING) == 0
    assert review.open_due_reviews(session, datetime(2026, 8, 2, 4, tzinfo=UTC)) == 1
    listed = review.list_reviews(session, world.owner_a)
    assert [r.sunset_on for r in listed] == [date(2026, 9, 1), SUNSET]
    assert list(session.exec(select(SunsetReview.id).order_by(col(SunsetReview.id))))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone=st.sampled_from(ZONES),
       offset=st.integers(min_value=-2 * 86_400, max_value=31 * 86_400))
def test_the_scheduler_opens_exactly_from_the_local_opening_instant(
        session: Session, world: World, zone: str, offset: int) -> None:
    """The real sweep, in a cluster moved to `zone`: run twice at `now`, it opens one
    review if `now` is between 00:00 on the 30th day before the sunset and the sunset
    (both where the cluster is), and none otherwise."""
    session.rollback()
    for row in session.exec(select(SunsetReview)):
        session.delete(row)
    cluster = session.get(Cluster, world.cluster.id)
    assert cluster is not None
    cluster.timezone = zone
    session.add(cluster)
    session.commit()
    if agreements.agreement_in_force(session, world.cluster.id).sunset_on != SUNSET:  # type: ignore[union-attr]
        sunset_on(session, world)
    opens = review.local_midnight(date(2026, 7, 2), zone)
    now = opens + timedelta(seconds=offset)
    due = opens <= now < review.local_midnight(SUNSET, zone)
    assert review.open_due_reviews(session, now) == int(due)
    assert review.open_due_reviews(session, now) == 0
    assert len(list(session.exec(select(SunsetReview)))) == int(due)


def test_two_owners_of_one_business_answering_at_once_leave_one_answer(
        app: Flask, session: Session, world: World) -> None:
    """The unique key on (review, business) settles it: the second writer changes the
    first one's row instead of adding one."""
    found = opened(session, world)
    review_id = found.id
    co_owner = invite_user(session, world.owner_a, "second@alpha.test", "owner")
    owners = {0: world.owner_a, 1: co_owner}
    turn = iter(range(2))
    lock = threading.Lock()

    def answer(own: Session) -> object:
        with lock:
            mine = owners[next(turn)]
        actor = own.get(type(mine), mine.id)
        return review.answer(own, actor, review_id, "renew", f"by {mine.email}", DURING).id  # type: ignore[arg-type]

    results = at_once(app.extensions["engine"], 2, answer)
    assert all(isinstance(r, int) for r in results), results
    session.rollback()
    rows = list(session.exec(select(ReviewAnswer)))
    assert len(rows) == 1 and rows[0].member_id == world.member_a_id
