"""The demo cluster gives the dashboard half a year to show, through the services."""

from __future__ import annotations

from sqlmodel import Session, select

from marketplace.clusters.models import User
from marketplace.dashboard.access import CLUSTER, scope_for
from marketplace.dashboard.figures import figures
from marketplace.dashboard.periods import month_range
from marketplace.demo import COORDINATOR_EMAIL, HISTORY_MONTHS, seed_demo
from tests.conftest import NOW, SECRET


def test_the_demo_fills_every_chart(session: Session) -> None:
    assert seed_demo(session, SECRET, NOW)
    coordinator = session.exec(select(User).where(User.email == COORDINATOR_EMAIL)).one()
    scope = scope_for(session, coordinator, CLUSTER)
    found = {f.name: f for f in figures(session, scope, month_range(scope.cluster, NOW), NOW)}

    def months_with(chart: str, column: int) -> int:
        return sum(1 for row in found[chart].rows if row[column])

    assert months_with("jobs", 1) >= HISTORY_MONTHS  # posted
    assert months_with("jobs", 4) >= 2  # not taken: cancelled or nobody took it
    assert months_with("value", 1) >= HISTORY_MONTHS  # value kept in the cluster
    assert months_with("utilization", 1) >= HISTORY_MONTHS
    assert months_with("fees", 1) >= HISTORY_MONTHS
    assert months_with("revenue", 1) >= HISTORY_MONTHS - 2  # settled, the last ones open
    assert not found["revenue"].rows[-1][1]  # the coordinator still has months to settle
    assert sum(1 for row in found["members"].rows if row[1]) >= 3
    assert months_with("rating", 2) >= HISTORY_MONTHS
    assert months_with("completion", 2) >= HISTORY_MONTHS
