"""Progress against the agreement's targets per quarter (issue #20, part 4): computed from
the jobs, bookings and ledger of the dashboard's spring (tests/dashboard/conftest.py),
in the cluster's time zone, exact to the cent; members see money totals only for
quarters that are over and only when each month is a cell the dashboard shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import Session

from marketplace.clusters import agreements
from marketplace.clusters.models import User
from marketplace.clusters.review import progress
from marketplace.dashboard import disclosure
from marketplace.dashboard.access import CLUSTER, scope_for
from tests.conftest import NOW, terms
from tests.dashboard.conftest import Spring, spring  # noqa: F401 - a fixture
from tests.jobs.conftest import jobs_world  # noqa: F401 - a fixture

TARGETS = {"overflow_value_kept": 200_000, "jobs_handed_over": 2,
           "machine_utilization_bp": 500, "equipment_fees_kept": 30_000}
QUARTERS = ("2025-Q3", "2025-Q4", "2026-Q1", "2026-Q2")
#: 2 July 2026, 08:00 in Toronto: the second quarter is over.
JULY = datetime(2026, 7, 2, 12, tzinfo=UTC)


def with_targets(session: Session, spring: Spring) -> None:  # noqa: F811
    agreements.publish_agreement(session, spring.world.coordinator,
                                 terms(targets=TARGETS), NOW)


def figures(session: Session, viewer: User, now: datetime
            ) -> dict[str, dict[str, int | None]]:
    scope = scope_for(session, viewer, CLUSTER)
    found = progress.target_progress(session, scope, TARGETS, QUARTERS, now)
    return {t.code: {f.quarter: f.value for f in t.quarters} for t in found}


def test_the_coordinator_sees_each_quarter_from_the_rows(session: Session,
                                                         spring: Spring) -> None:  # noqa: F811
    with_targets(session, spring)
    seen = figures(session, spring.world.coordinator, NOW)
    # J1 (1 000.00) signed in March; J2 won at 1 500.00 on 3 April.
    assert seen["overflow_value_kept"] == {"2025-Q3": 0, "2025-Q4": 0, "2026-Q1": 100_000,
                                           "2026-Q2": 150_000}
    assert seen["jobs_handed_over"] == {"2025-Q3": 0, "2025-Q4": 0, "2026-Q1": 1,
                                        "2026-Q2": 1}
    # 15 h booked of 593 h offered (April 131, May 220, June 242): 2.52 %, rounded down.
    assert seen["machine_utilization_bp"]["2026-Q2"] == 15 * 10_000 // 593 == 252
    assert seen["machine_utilization_bp"]["2026-Q1"] is None  # no machine listed yet
    # 160.00 in April; 250.00 + 80.00 - 80.00 refunded + 40.00 late fee in May.
    assert seen["equipment_fees_kept"]["2026-Q2"] == 45_000


def test_progress_is_the_share_of_the_goal(session: Session, spring: Spring) -> None:  # noqa: F811
    with_targets(session, spring)
    scope = scope_for(session, spring.world.coordinator, CLUSTER)
    found = {t.code: t for t in progress.target_progress(session, scope, TARGETS, QUARTERS,
                                                         NOW)}
    value = found["overflow_value_kept"]
    assert [value.reached_bp(f) for f in value.quarters] == [0, 0, 5_000, 7_500]
    assert [f.closed for f in value.quarters] == [True, True, True, False]


def test_a_member_sees_money_only_for_quarters_that_are_over(
        session: Session, spring: Spring) -> None:  # noqa: F811
    with_targets(session, spring)
    seen = figures(session, spring.owner_c, NOW)
    assert seen["overflow_value_kept"]["2026-Q1"] == 100_000  # a hand-off: public
    assert seen["overflow_value_kept"]["2026-Q2"] is None  # running
    assert seen["equipment_fees_kept"]["2026-Q2"] is None
    # Counts and utilization are what the dashboard shows every member, running or not.
    assert seen["jobs_handed_over"]["2026-Q2"] == 1
    assert seen["machine_utilization_bp"]["2026-Q2"] == 252


def test_a_quarter_with_a_withheld_month_is_withheld_whole(
        session: Session, spring: Spring) -> None:  # noqa: F811
    """C cannot know J2's winning bid (April), and only one other member is behind it:
    April is "too few" on C's dashboard, so the second quarter's total is withheld too,
    or it would be J2's price (May and June added nothing)."""
    with_targets(session, spring)
    scope = scope_for(session, spring.owner_c, CLUSTER)
    found = {t.code: t for t in progress.target_progress(session, scope, TARGETS, QUARTERS,
                                                         JULY)}
    q2 = found["overflow_value_kept"].quarters[-1]
    assert q2.closed and q2.value is None and q2.withheld is not None
    assert q2.withheld.reason == disclosure.FEW_MEMBERS
    assert found["equipment_fees_kept"].quarters[-1].value is None  # B's bookings
    # B took part in J2 and in every booking: it knows each amount, so its total shows.
    by_b = figures(session, spring.world.owner_b, JULY)
    assert by_b["overflow_value_kept"]["2026-Q2"] == 150_000
    assert by_b["equipment_fees_kept"]["2026-Q2"] == 45_000


def test_a_member_reads_the_same_closed_quarter_however_often(
        session: Session, spring: Spring) -> None:  # noqa: F811
    with_targets(session, spring)
    first = figures(session, spring.owner_c, JULY)
    later = figures(session, spring.owner_c, JULY + timedelta(days=40))
    assert first["overflow_value_kept"] == later["overflow_value_kept"]


def test_recent_quarters_follow_the_clusters_calendar(session: Session,
                                                       spring: Spring) -> None:  # noqa: F811
    scope = scope_for(session, spring.world.coordinator, CLUSTER)
    # 1 July 2026 02:00 UTC is still 30 June in Toronto: the second quarter runs.
    assert progress.recent_quarters(scope, datetime(2026, 7, 1, 2, tzinfo=UTC)) == QUARTERS
    assert progress.recent_quarters(scope, datetime(2026, 7, 1, 5, tzinfo=UTC))[-1] == \
        "2026-Q3"


# -- properties ---------------------------------------------------------------------------

ZONES = ("America/Toronto", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kolkata",
         "Australia/Lord_Howe", "Europe/Paris", "UTC")
MONTHS = [f"{y}-{m:02d}" for y in (2025, 2026, 2027) for m in range(1, 13)]


@given(zone=st.sampled_from(ZONES),
       instant=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31),
                            timezones=st.just(UTC)))
def test_an_instant_falls_in_the_quarter_of_its_local_date(zone: str,
                                                           instant: datetime) -> None:
    local = instant.astimezone(ZoneInfo(zone)).date()
    expected = f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    quarters = progress.quarters_between("2024-12", "2028-01")
    months = progress.quarter_range(quarters, zone)
    month = months.month_of(instant)
    assert month is not None and progress.quarter_of(month) == expected


@given(amounts=st.dictionaries(st.sampled_from(MONTHS),
                               st.integers(min_value=-10**12, max_value=10**12)))
def test_quarter_sums_are_exact_and_lose_no_cent(amounts: dict[str, int]) -> None:
    quarters = progress.quarters_between(MONTHS[0], MONTHS[-1])
    sums = progress.sum_quarters(amounts, quarters)
    assert sum(sums.values()) == sum(amounts.values())
    for quarter, total in sums.items():
        assert total == sum(v for m, v in amounts.items() if progress.quarter_of(m) == quarter)


@given(part=st.integers(min_value=0, max_value=10**9), whole=st.integers(min_value=1,
                                                                         max_value=10**9))
def test_a_ratio_in_basis_points_never_rounds_up(part: int, whole: int) -> None:
    bp = progress.ratio_bp(part, whole)
    assert bp is not None and bp * whole <= part * 10_000 < (bp + 1) * whole
