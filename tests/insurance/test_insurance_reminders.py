"""Reminders 30 and 7 days before a verified expiry and the notice at it: each exactly
once, however often the sweep runs and from however many sessions (a second scheduler)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import Session, select

from marketplace.clusters.insurance.service import remind_expiring
from marketplace.clusters.models import InsuranceNotice
from marketplace.db import make_engine
from marketplace.persisted import id_of
from marketplace.realtime.models import Notification
from marketplace.scheduling.tasks import TASKS
from tests.conftest import NOW, World, invite_user
from tests.jobs.conftest import give_profile

EXPIRES = (NOW + timedelta(days=40)).date()


def told(session: Session) -> list[tuple[int, str, str]]:
    session.rollback()
    return sorted(
        (n.user_id, n.kind, n.params.get("date", ""))
        for n in session.exec(
            select(Notification).where(Notification.kind.startswith("insurance."))
        )
    )


def test_each_notice_goes_out_once_per_person(session: Session, world: World) -> None:
    crew = invite_user(session, world.owner_b, "crew@beta.test")
    give_profile(session, world.owner_b, insurance=EXPIRES)
    people = sorted([id_of(world.owner_b), id_of(crew)])
    assert remind_expiring(session, NOW) == 0  # 40 days ahead: nothing yet
    at_30 = NOW + timedelta(days=10)
    assert remind_expiring(session, at_30) == 2
    assert remind_expiring(session, at_30) == 0  # the rerun sends nothing
    assert remind_expiring(session, at_30 + timedelta(days=1)) == 0
    at_7 = NOW + timedelta(days=34)
    assert remind_expiring(session, at_7) == 2
    assert remind_expiring(session, at_7 + timedelta(hours=1)) == 0
    after = NOW + timedelta(days=42)  # the day after the expiry, in Toronto
    assert remind_expiring(session, after) == 2
    assert remind_expiring(session, after + timedelta(days=3)) == 0
    expected = sorted(
        (user, kind, EXPIRES.isoformat())
        for user in people
        for kind in ("insurance.expiring", "insurance.expiring", "insurance.expired")
    )
    assert told(session) == expected
    kinds = sorted(session.exec(select(InsuranceNotice.kind)))
    assert kinds == ["30", "7", "expired"]


def test_a_renewed_expiry_gets_its_own_reminders(session: Session, world: World) -> None:
    give_profile(session, world.owner_b, insurance=EXPIRES)
    assert remind_expiring(session, NOW + timedelta(days=10)) == 1
    renewed = EXPIRES + timedelta(days=365)
    give_profile(session, world.owner_b, insurance=renewed)
    assert remind_expiring(session, NOW + timedelta(days=34)) == 0  # the old date is gone
    assert remind_expiring(session, NOW + timedelta(days=375)) == 1
    assert [d for _u, _k, d in told(session)] == [EXPIRES.isoformat(), renewed.isoformat()]


def test_a_member_that_lapsed_long_ago_is_not_told_again_and_again(
    session: Session, world: World
) -> None:
    give_profile(session, world.owner_b, insurance=(NOW - timedelta(days=90)).date())
    assert remind_expiring(session, NOW) == 0


def test_two_schedulers_at_once_tell_each_person_once(
    session: Session, world: World, database_url: str
) -> None:
    give_profile(session, world.owner_b, insurance=EXPIRES)
    give_profile(session, world.owner_a, insurance=EXPIRES)
    at_30 = NOW + timedelta(days=10)
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    engine = make_engine(database_url)

    def run() -> None:
        try:
            with Session(engine) as own:  # as the scheduler's: SQLite's lock at BEGIN
                start.wait()
                counts.append(remind_expiring(own, at_30))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    assert errors == []
    assert sum(counts) == 3  # A's owner and crew, B's owner: each once, by either
    assert len(told(session)) == 3


def test_the_scheduler_runs_the_sweep() -> None:
    assert any(task.run is remind_expiring for task in TASKS)
