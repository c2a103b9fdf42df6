"""Hand-off claims: the contract they sign, refusals that write nothing, one winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.clusters.models import Agreement, User
from marketplace.errors import Conflict, DomainError, Forbidden, NotFound
from marketplace.jobs import service
from marketplace.jobs.models import (
    ContractParty,
    JobContract,
    JobStatus,
    OverflowJob,
)
from marketplace.money import apply_basis_points
from marketplace.realtime.models import Notification
from tests.conftest import NOW, World, terms
from tests.jobs.conftest import VALUE, add_partner, count, give_profile, recipients

Post = Callable[..., OverflowJob]


def _nothing_written(session: Session, job: OverflowJob, notes_before: int) -> None:
    session.rollback()
    assert count(session, JobContract) == 0
    assert count(session, ContractParty) == 0
    assert count(session, Notification) == notes_before
    fresh = session.get(OverflowJob, job.id)
    assert fresh is not None
    session.refresh(fresh)
    assert fresh.status == JobStatus.OPEN and fresh.awarded_member_id is None


def test_claim_signs_a_contract_with_the_referral_fee(session: Session, jobs_world: World,
                                                      post: Post) -> None:
    job = post()
    contract = service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    session.expire_all()
    stored = session.exec(select(JobContract)).one()
    assert stored.id == contract.id and stored.job_id == job.id
    assert stored.poster_member_id == jobs_world.member_a_id
    assert stored.bid_id is None
    assert stored.value_minor == VALUE and stored.currency == "CAD"
    assert stored.referral_fee_bp == 500 and stored.platform_fee_bp == 100
    assert stored.referral_fee_minor == apply_basis_points(VALUE, 500) == 61_728
    assert stored.signed_at == NOW
    parties = session.exec(select(ContractParty)).all()
    assert [(p.contract_id, p.member_id, p.share_bp) for p in parties] == [
        (contract.id, jobs_world.member_b_id, 10_000)]
    claimed = session.get(OverflowJob, job.id)
    assert claimed is not None
    assert claimed.status == JobStatus.AWARDED
    assert claimed.awarded_member_id == jobs_world.member_b_id
    # The poster hears who claimed it; the winner that it won.
    assert recipients(session, "job.claimed") == [jobs_world.owner_a.id, jobs_world.crew_a.id]
    assert recipients(session, "job.awarded") == [jobs_world.owner_b.id]


def test_fee_comes_from_the_agreement_in_force(session: Session, jobs_world: World,
                                               post: Post) -> None:
    job = post()
    v2 = agreements.publish_agreement(session, jobs_world.coordinator,
                                      terms(referral_fee_bp=725, platform_fee_bp=50), NOW)
    agreements.accept_agreement(session, jobs_world.owner_b, 2, NOW)
    agreements.accept_agreement(session, jobs_world.owner_a, 2, NOW)  # both sides bound by v2
    contract = service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    assert contract.agreement_id == v2.id
    assert session.get(Agreement, contract.agreement_id).version == 2  # type: ignore[union-attr]
    assert (contract.referral_fee_bp, contract.platform_fee_bp) == (725, 50)
    assert contract.referral_fee_minor == apply_basis_points(VALUE, 725) == 89_506


def test_second_claim_is_already_claimed(session: Session, jobs_world: World,
                                         post: Post) -> None:
    rival = add_partner(session, jobs_world, "Gamma Trees", "g@gamma.test")
    job = post()
    service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    notes = count(session, Notification)
    for late in (rival, jobs_world.owner_b):
        with pytest.raises(Conflict) as refused:
            service.claim_job(session, late, job.id, NOW)
        assert refused.value.code == "already_claimed"
    session.rollback()
    assert count(session, JobContract) == 1 and count(session, ContractParty) == 1
    assert count(session, Notification) == notes
    assert session.get(OverflowJob, job.id).awarded_member_id == jobs_world.member_b_id  # type: ignore[union-attr]


def _refusal(session: Session, job: OverflowJob, actor: User) -> DomainError:
    notes = count(session, Notification)
    with pytest.raises(DomainError) as refused:
        service.claim_job(session, actor, job.id, NOW)
    _nothing_written(session, job, notes)
    return refused.value


def test_claiming_own_job_is_refused(session: Session, jobs_world: World, post: Post) -> None:
    job = post()
    for actor in (jobs_world.owner_a, jobs_world.crew_a):
        error = _refusal(session, job, actor)
        assert isinstance(error, Forbidden) and error.code == "own_job"


def test_ineligible_member_is_refused_with_the_reason(session: Session, jobs_world: World,
                                                      post: Post) -> None:
    job = post()
    give_profile(session, jobs_world.owner_b, trades=("paving",))
    error = _refusal(session, job, jobs_world.owner_b)
    assert isinstance(error, Forbidden) and error.code == "missing_trades"
    assert error.params == {"trades": ["mowing"]}  # codes; the edge shows translated labels
    give_profile(session, jobs_world.owner_b, base=(45.5017, -73.5673))
    error = _refusal(session, job, jobs_world.owner_b)
    assert error.code == "outside_service_area"


def test_bid_window_job_cannot_be_claimed(session: Session, jobs_world: World,
                                          post: Post) -> None:
    job = post(bid_window=True)
    error = _refusal(session, job, jobs_world.owner_b)
    assert isinstance(error, Conflict) and error.code == "not_handoff"


def test_coordinator_and_other_cluster_cannot_claim(session: Session, jobs_world: World,
                                                    post: Post) -> None:
    job = post()
    error = _refusal(session, job, jobs_world.coordinator)
    assert isinstance(error, Forbidden) and error.code == "member_only"
    error = _refusal(session, job, jobs_world.other_owner)
    assert isinstance(error, NotFound)


def test_cancelled_job_cannot_be_claimed(session: Session, jobs_world: World,
                                         post: Post) -> None:
    job = post()
    service.cancel_job(session, jobs_world.owner_a, job.id, "Customer changed plans", NOW)
    with pytest.raises(Conflict) as refused:
        service.claim_job(session, jobs_world.owner_b, job.id, NOW)
    assert refused.value.code == "job_cancelled"
    session.rollback()
    assert count(session, JobContract) == 0


def test_poster_that_left_cannot_hand_over(session: Session, jobs_world: World,
                                           post: Post) -> None:
    from marketplace.clusters import agreements

    job = post()
    agreements.give_exit_notice(session, jobs_world.owner_a, jobs_world.member_a_id, NOW)
    after_exit = NOW + timedelta(days=31)
    with pytest.raises(Conflict) as refused:
        service.claim_job(session, jobs_world.owner_b, job.id, after_exit)
    assert refused.value.code == "poster_cannot_hand_over"
    session.rollback()
    assert count(session, JobContract) == 0


CLAIMANTS = 20


def test_twenty_simultaneous_claims_have_one_winner(app: Flask, session: Session,
                                                    jobs_world: World, post: Post) -> None:
    claimants = [jobs_world.owner_b] + [
        add_partner(session, jobs_world, f"Crew {i:02d}", f"c{i}@claim.test")
        for i in range(CLAIMANTS - 1)]
    job = post()
    job_id = job.id
    session.commit()  # hold no lock or snapshot while the threads run
    engine = app.extensions["engine"]
    barrier = threading.Barrier(CLAIMANTS, timeout=30)
    outcomes: list[tuple[str, int | None, str]] = []
    lock = threading.Lock()

    def claim(user_id: int) -> None:
        with Session(engine, expire_on_commit=False) as own:
            actor = own.get(User, user_id)
            assert actor is not None
            own.commit()  # release SQLite's write lock before everyone starts together
            barrier.wait()
            try:
                contract = service.claim_job(own, actor, job_id, NOW)
                result = ("won", actor.member_id, str(contract.id))
            except Conflict as refused:
                result = ("conflict", actor.member_id, refused.code)
            except Exception as error:  # noqa: BLE001 - reported below, not swallowed
                result = ("error", actor.member_id, repr(error))
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=claim, args=(u.id,)) for u in claimants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(outcomes) == CLAIMANTS
    assert [o for o in outcomes if o[0] == "error"] == []
    winners = [o for o in outcomes if o[0] == "won"]
    losers = [o for o in outcomes if o[0] == "conflict"]
    assert len(winners) == 1
    assert [o[2] for o in losers] == ["already_claimed"] * (CLAIMANTS - 1)

    session.expire_all()
    contracts = session.exec(select(JobContract)).all()
    assert len(contracts) == 1
    winner_member = winners[0][1]
    parties = session.exec(select(ContractParty)).all()
    assert [(p.member_id, p.share_bp) for p in parties] == [(winner_member, 10_000)]
    final = session.get(OverflowJob, job_id)
    assert final is not None and final.status == JobStatus.AWARDED
    assert final.awarded_member_id == winner_member
    assert len(recipients(session, "job.claimed")) == 2  # A's owner and crew, once each
