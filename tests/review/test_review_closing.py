"""The review closes at the one closing moment the exits use (issue #20 part 4, the
adversarial review's findings): the first instant of the sunset date in the cluster's
time zone *now* (`exit.service.sunset_moment`), however often the time zone moved since
the review opened; a renewal is refused once that moment passed; one cluster's failing
opening does not keep the others' reviews closed."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.exit import service as exits
from marketplace.clusters.models import Cluster
from marketplace.clusters.review import service as review
from marketplace.clusters.review.models import ReviewAnswer, SunsetReview
from marketplace.errors import Conflict
from tests.conftest import NOW, World, terms
from tests.review.test_review import CLOSES, DURING, SUNSET, ZONES, opened, sunset_on


def move(session: Session, world: World, zone: str) -> Cluster:
    cluster = session.get(Cluster, world.cluster.id)
    assert cluster is not None
    cluster.timezone = zone
    session.add(cluster)
    session.commit()
    return cluster


def test_a_cluster_moved_west_keeps_its_review_open_until_its_new_local_sunset(
        session: Session, world: World) -> None:
    """Toronto -> Honolulu: an hour after Toronto's midnight no exit is due, so the review
    is still open, answers are taken and the renewal is published."""
    found = opened(session, world)
    cluster = move(session, world, "Pacific/Honolulu")
    later = CLOSES + timedelta(hours=1)
    assert exits.due_exits(session, later) == []
    assert review.close_due_reviews(session, later) == 0
    session.refresh(found)
    assert found.status == "open"
    for owner in (world.owner_a, world.owner_b):
        review.answer(session, owner, found.id, "renew", "", later)  # type: ignore[arg-type]
    published = review.renew(session, world.coordinator, found.id, date(2027, 8, 1), later)
    assert published.sunset_on == date(2027, 8, 1)
    assert exits.due_exits(session, exits.sunset_moment(cluster, SUNSET)) == []


def test_a_cluster_moved_west_winds_its_review_down_with_its_exits(
        session: Session, world: World) -> None:
    found = opened(session, world)
    cluster = move(session, world, "Pacific/Honolulu")
    moment = exits.sunset_moment(cluster, SUNSET)
    assert moment > CLOSES
    assert review.close_due_reviews(session, moment - timedelta(microseconds=1)) == 0
    assert exits.due_exits(session, moment - timedelta(microseconds=1)) == []
    assert review.close_due_reviews(session, moment) == 1
    assert exits.due_exits(session, moment) != []
    session.refresh(found)
    assert (found.status, found.outcome, found.closed_at) == ("closed", "wound_down", moment)


def test_the_review_reports_the_closing_moment_of_the_clusters_time_zone_now(
        session: Session, world: World) -> None:
    found = opened(session, world)
    cluster = move(session, world, "Europe/Paris")
    moment = exits.sunset_moment(cluster, SUNSET)
    view = review.review_view(session, world.owner_a, found, DURING)
    assert view.closes_at == moment
    assert review.review_summary(session, found)["closes_at"] == moment.isoformat()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.sampled_from(ZONES), after=st.sampled_from((*ZONES, "Pacific/Honolulu")),
       offset=st.integers(min_value=-30 * 3600, max_value=30 * 3600))
def test_the_review_and_the_exits_agree_on_one_closing_moment_in_any_time_zones(
        session: Session, world: World, before: str, after: str, offset: int) -> None:
    """Opened in `before`, the cluster moved to `after`: at any instant near the sunset
    the review takes answers and renewals exactly while no wind-down exit is due, and
    the sweep closes it exactly when one is."""
    session.rollback()
    for row in session.exec(select(ReviewAnswer)):
        session.delete(row)
    for found in session.exec(select(SunsetReview)):
        session.delete(found)
    session.commit()
    move(session, world, before)
    if agreements.agreement_in_force(session, world.cluster.id).sunset_on != SUNSET:  # type: ignore[union-attr]
        sunset_on(session, world)
    assert review.open_due_reviews(session, DURING) == 1
    found = review.current_review(session, world.cluster.id)
    assert found is not None
    cluster = move(session, world, after)
    now = exits.sunset_moment(cluster, SUNSET) + timedelta(seconds=offset)
    wound_down = bool(exits.due_exits(session, now))
    assert wound_down == (now >= review.closing_moment(session, found))
    refusal = review.answer_refusal(session, world.owner_a, found, now)
    assert (refusal is not None) == wound_down
    assert review.close_due_reviews(session, now) == int(wound_down)
    session.refresh(found)
    assert found.status == ("closed" if wound_down else "open")


def test_no_renewal_once_the_sunset_began(session: Session, world: World) -> None:
    """The scheduler has not swept yet: the renewal is still refused, as answers are."""
    found = opened(session, world)
    for owner in (world.owner_a, world.owner_b):
        review.answer(session, owner, found.id, "renew", "", DURING)  # type: ignore[arg-type]
    with pytest.raises(Conflict) as refused:
        review.renew(session, world.coordinator, found.id, date(2027, 8, 1), CLOSES)
    assert refused.value.code == "review_closed"
    session.refresh(found)
    assert found.status == "open"  # the sweep records the wind-down
    assert review.close_due_reviews(session, CLOSES) == 1
    session.refresh(found)
    assert found.outcome == "wound_down"


def test_a_renewal_a_moment_before_the_sunset_is_published(session: Session,
                                                           world: World) -> None:
    found = opened(session, world)
    for owner in (world.owner_a, world.owner_b):
        review.answer(session, owner, found.id, "renew", "", DURING)  # type: ignore[arg-type]
    published = review.renew(session, world.coordinator, found.id, date(2027, 8, 1),
                             CLOSES - timedelta(microseconds=1))
    assert published.sunset_on == date(2027, 8, 1)


def test_one_failing_cluster_does_not_keep_the_others_reviews_closed(
        session: Session, world: World, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    sunset_on(session, world)
    other = world.other_coordinator
    agreements.publish_agreement(session, other, terms(purpose="Rival charter.",
                                                       sunset_on=SUNSET), NOW)
    real = review.open_review
    failing = min(world.cluster.id, other.cluster_id)  # type: ignore[type-var]

    def flaky(session: Session, cluster_id: int, *args: object) -> bool:
        if cluster_id == failing:
            raise RuntimeError("boom")
        return real(session, cluster_id, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(review, "open_review", flaky)
    with caplog.at_level(logging.ERROR, logger=review.__name__):
        assert review.open_due_reviews(session, DURING) == 1
    assert f"cluster {failing}" in caplog.text
    monkeypatch.setattr(review, "open_review", real)
    assert review.open_due_reviews(session, DURING) == 1  # the next run opens it
    assert len(list(session.exec(select(SunsetReview)))) == 2


def test_one_failing_close_does_not_keep_the_other_reviews_open(
        session: Session, world: World, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    sunset_on(session, world)
    other = world.other_coordinator
    agreements.publish_agreement(session, other, terms(purpose="Rival charter.",
                                                       sunset_on=SUNSET), NOW)
    assert review.open_due_reviews(session, DURING) == 2
    ids = sorted(r.id for r in session.exec(select(SunsetReview)))  # type: ignore[type-var]
    real = review.close_review

    def flaky(session: Session, review_id: int, now: datetime) -> bool:
        if review_id == ids[0]:
            raise RuntimeError("boom")
        return real(session, review_id, now)

    monkeypatch.setattr(review, "close_review", flaky)
    late = CLOSES + timedelta(hours=12)  # past both clusters' sunsets
    with caplog.at_level(logging.ERROR, logger=review.__name__):
        assert review.close_due_reviews(session, late) == 1
    assert f"review {ids[0]}" in caplog.text
    monkeypatch.setattr(review, "close_review", real)
    assert review.close_due_reviews(session, late) == 1  # the next run closes it
    assert {r.status for r in session.exec(select(SunsetReview))} == {"closed"}
