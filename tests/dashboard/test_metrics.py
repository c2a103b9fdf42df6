"""The dashboard's numbers, checked against a small world worked out by hand.

`spring` (conftest) runs March to June 2026 through the real services; every
figure of every chart must be exactly what the rules say, for the cluster and
for each member, with months cut in the cluster's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.figures import Figure, figures
from marketplace.dashboard.periods import month_range
from marketplace.errors import ValidationError
from tests.conftest import NOW
from tests.dashboard.conftest import EXPECTED, J2_POSTED, J5_POSTED, MONTHS, Spring


def _approx(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(pytest.approx(v) if isinstance(v, float) else v for v in row)


def _figures(session: Session, spring: Spring, who: str) -> dict[str, Figure]:
    world = spring.world
    viewer = {"cluster": world.coordinator, "a": world.owner_a, "b": world.owner_b}[who]
    scope = scope_for(session, viewer, CLUSTER if who == "cluster" else None)
    months = month_range(world.cluster, NOW, MONTHS[0], MONTHS[-1])
    return {f.name: f for f in figures(session, scope, months, NOW)}


@pytest.mark.parametrize("who", ["cluster", "a", "b"])
def test_every_figure_is_what_the_rules_say(session: Session, spring: Spring,
                                            who: str) -> None:
    found = _figures(session, spring, who)
    for name, rows in EXPECTED[who].items():
        assert list(found[name].rows) == [_approx(r) for r in rows], name


def test_only_the_coordinator_gets_revenue_per_member(session: Session,
                                                      spring: Spring) -> None:
    assert "members" in _figures(session, spring, "cluster")
    assert "members" not in _figures(session, spring, "a")
    assert "members" not in _figures(session, spring, "b")


def test_months_are_cut_in_the_clusters_time_zone(session: Session, spring: Spring) -> None:
    """J2 and J5 were posted late in the evening in Toronto, already the next month in
    UTC: they count in Toronto's month."""
    assert J2_POSTED.strftime("%Y-%m") == "2026-04" and J5_POSTED.strftime("%Y-%m") == "2026-06"
    months = month_range(spring.world.cluster, NOW, "2026-03", "2026-06")
    assert months.month_of(J2_POSTED) == "2026-03"
    assert months.month_of(J5_POSTED) == "2026-05"
    assert months.start == datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST, UTC-5
    assert months.end == datetime(2026, 7, 1, 4, tzinfo=UTC)  # EDT, UTC-4
    jobs = _figures(session, spring, "cluster")["jobs"]
    assert [row[1] for row in jobs.rows] == [2, 2, 1, 0]


def test_time_spanning_months_is_split_at_local_midnight() -> None:
    """A slot from 31 March 22:00 to 1 April 02:00 in Toronto is two hours of each month,
    although in UTC it lies wholly in April; the spring-forward night (8 March) is an
    hour short."""
    from marketplace.dashboard.periods import MonthRange

    months = MonthRange(("2026-03", "2026-04"), "America/Toronto")
    start = datetime(2026, 4, 1, 2, tzinfo=UTC)  # 31 March 22:00 EDT
    assert dict(months.split(start, start + timedelta(hours=4))) == {
        "2026-03": 120.0, "2026-04": 120.0}
    before = datetime(2026, 3, 8, 5, tzinfo=UTC)  # 8 March 00:00 EST
    assert sum(m for _month, m in months.split(before, before + timedelta(hours=23))) == 23 * 60
    outside = datetime(2026, 2, 27, tzinfo=UTC)
    assert list(months.split(outside, outside + timedelta(days=1))) == []


def test_default_range_is_the_last_twelve_months_where_the_cluster_is(
        session: Session, spring: Spring) -> None:
    # 1 July 03:00 UTC is still 30 June in Toronto.
    months = month_range(spring.world.cluster, datetime(2026, 7, 1, 3, tzinfo=UTC))
    assert (months.first, months.last, len(months.months)) == ("2025-07", "2026-06", 12)
    assert month_range(spring.world.cluster, NOW, "2025-11").last == "2026-10"
    assert month_range(spring.world.cluster, NOW, None, "2026-02").first == "2025-03"


@pytest.mark.parametrize(("first", "last", "field"), [
    ("2026-13", None, "first"), ("june", None, "first"), (None, "2026-1", "last"),
    ("2026-05", "2026-04", "first"), ("2020-01", "2026-01", "last"), ("1999-12", None, "first"),
])
def test_a_bad_range_names_the_field(session: Session, spring: Spring, first: str | None,
                                     last: str | None, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        month_range(spring.world.cluster, NOW, first, last)
    assert field in refused.value.fields
