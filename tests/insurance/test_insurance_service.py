"""Verified insurance, the rules: who uploads, who decides, what eligibility counts,
and who may read a certificate (clusters/insurance/service.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, func, select

from marketplace.clusters import agreements
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.documents import check_document
from marketplace.clusters.models import CertificateStatus, InsuranceCertificate, Member, User
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationError
from marketplace.jobs import service as jobs
from marketplace.jobs.eligibility import ineligibility_reasons
from marketplace.persisted import id_of
from tests.conftest import NOW, World, invite_user, terms
from tests.insurance.conftest import png
from tests.jobs.conftest import ENDS_ON, add_partner, give_profile, job_draft

COVER = 2_000_000_00
UNTIL = ENDS_ON + timedelta(days=200)


def statement(**changes: Any) -> insurance.Statement:
    return replace(insurance.Statement("Valley Mutual", "VM-1", COVER, UNTIL), **changes)


def upload(session: Session, owner: User, **changes: Any) -> InsuranceCertificate:
    assert owner.member_id is not None
    return insurance.submit_certificate(
        session, owner, owner.member_id, statement(**changes), check_document(png()), NOW
    )


def uninsured(session: Session, owner: User) -> Member:
    """The owner's business with trades and area but no verified insurance."""
    return give_profile(session, owner, insurance=None)


def codes(session: Session, member_id: int, job_id: int) -> list[str]:
    member = session.get(Member, member_id)
    job = session.get(jobs.OverflowJob, job_id)
    assert member is not None and job is not None
    return [r.code for r in ineligibility_reasons(session, member, job, NOW)]


def certificates(session: Session) -> int:
    return session.exec(select(func.count()).select_from(InsuranceCertificate)).one()


def test_an_uploaded_certificate_does_not_count_until_the_coordinator_verifies_it(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    uninsured(session, w.owner_b)
    job = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    certificate = upload(session, w.owner_b)
    assert certificate.status == CertificateStatus.PENDING
    assert codes(session, w.member_b_id, id_of(job)) == ["no_insurance"]
    insurance.verify_certificate(
        session,
        w.coordinator,
        id_of(certificate),
        COVER,
        UNTIL,
        NOW,
    )
    member = session.get(Member, w.member_b_id)
    assert member is not None
    session.refresh(member)
    assert (member.insurance_expires_on, member.insurance_coverage_minor) == (UNTIL, COVER)
    assert codes(session, w.member_b_id, id_of(job)) == []


def test_the_coordinator_verifies_the_figures_it_read_not_the_typed_ones(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    certificate = upload(session, w.owner_b, coverage_minor=9_000_000_00)
    insurance.verify_certificate(
        session,
        w.coordinator,
        id_of(certificate),
        1_000_000_00,
        UNTIL - timedelta(days=10),
        NOW,
    )
    member = session.get(Member, w.member_b_id)
    assert member is not None
    session.refresh(member)
    assert member.insurance_coverage_minor == 1_000_000_00
    assert member.insurance_expires_on == UNTIL - timedelta(days=10)


def test_only_the_coordinator_of_the_cluster_decides(session: Session, jobs_world: World) -> None:
    w = jobs_world
    certificate = upload(session, w.owner_b)
    assert id_of(certificate) is not None
    crew = invite_user(session, w.owner_b, "crew@beta.test")
    for who in (w.owner_a, w.owner_b, crew):
        with pytest.raises(Forbidden):
            insurance.verify_certificate(session, who, id_of(certificate), COVER, UNTIL, NOW)
        session.rollback()
        with pytest.raises(Forbidden):
            insurance.reject_certificate(session, who, id_of(certificate), "Blurry", NOW)
        session.rollback()
    with pytest.raises(NotFound):  # the rival's coordinator: as if it did not exist
        insurance.verify_certificate(
            session, w.other_coordinator, id_of(certificate), COVER, UNTIL, NOW
        )
    session.rollback()
    session.refresh(certificate)
    assert certificate.status == CertificateStatus.PENDING
    member = session.get(Member, w.member_b_id)
    assert member is not None
    session.refresh(member)
    assert member.insurance_coverage_minor is None


def test_a_certificate_is_decided_once(session: Session, jobs_world: World) -> None:
    w = jobs_world
    certificate = upload(session, w.owner_b)
    assert id_of(certificate) is not None
    insurance.reject_certificate(
        session, w.coordinator, id_of(certificate), "The policy number is unreadable.", NOW
    )
    with pytest.raises(Conflict):
        insurance.verify_certificate(session, w.coordinator, id_of(certificate), COVER, UNTIL, NOW)
    session.rollback()
    session.refresh(certificate)
    assert certificate.status == CertificateStatus.REJECTED
    assert certificate.reason == "The policy number is unreadable."


def test_a_rejection_needs_a_reason_and_keeps_the_verified_insurance(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    first = upload(session, w.owner_b)
    insurance.verify_certificate(
        session,
        w.coordinator,
        id_of(first),
        COVER,
        UNTIL,
        NOW,
    )
    second = upload(session, w.owner_b, coverage_minor=5_000_000_00)
    with pytest.raises(ValidationError) as refused:
        insurance.reject_certificate(session, w.coordinator, id_of(second), "  ", NOW)
    assert "reason" in refused.value.fields
    session.rollback()
    insurance.reject_certificate(
        session,
        w.coordinator,
        id_of(second),
        "Wrong business name",
        NOW,
    )
    member = session.get(Member, w.member_b_id)
    assert member is not None
    session.refresh(member)
    assert (member.insurance_expires_on, member.insurance_coverage_minor) == (UNTIL, COVER)


def test_only_an_owner_uploads_and_bad_statements_store_nothing(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    crew = invite_user(session, w.owner_b, "crew2@beta.test")
    for who, member_id in (
        (crew, w.member_b_id),
        (w.coordinator, w.member_b_id),
        (w.owner_a, w.member_b_id),
    ):
        with pytest.raises(Forbidden):
            insurance.submit_certificate(
                session, who, member_id, statement(), check_document(png()), NOW
            )
        session.rollback()
    with pytest.raises(NotFound):
        insurance.submit_certificate(
            session, w.other_owner, w.member_b_id, statement(), check_document(png()), NOW
        )
    session.rollback()
    with pytest.raises(ValidationError) as refused:
        upload(
            session,
            w.owner_b,
            insurer=" ",
            coverage_minor=0,
            expires_on=NOW.date() - timedelta(days=1),
        )
    session.rollback()
    assert set(refused.value.fields) == {"insurer", "coverage", "expires_on"}
    assert certificates(session) == 0


def test_a_member_under_the_trade_minimum_is_told_how_much_it_needs(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    agreements.publish_agreement(
        session,
        w.coordinator,
        terms(purpose="With minimum cover.", min_coverage={"mowing": 5_000_000_00}),
        NOW,
    )
    for owner in (w.owner_a, w.owner_b):
        current = agreements.agreement_in_force(session, id_of(w.cluster))
        assert current is not None
        agreements.accept_agreement(session, owner, current.version, NOW)
    give_profile(session, w.owner_b, coverage_minor=COVER)
    mowing = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    planting = jobs.post_job(session, w.owner_a, job_draft(trades=("planting",)), NOW)
    member = session.get(Member, w.member_b_id)
    assert member is not None and id_of(mowing) is not None
    reasons = ineligibility_reasons(session, member, mowing, NOW)
    assert [r.code for r in reasons] == ["insurance_coverage_low"]
    assert reasons[0].params == {"trades": ["mowing"], "minimum": "5000000.00 CAD"}
    assert codes(session, w.member_b_id, id_of(planting)) == []
    give_profile(session, w.owner_b, coverage_minor=5_000_000_00)  # exactly the minimum
    assert codes(session, w.member_b_id, id_of(mowing)) == []


def test_the_agreement_refuses_minimums_that_are_not_coverage(
    session: Session, world: World
) -> None:
    for minima, field in (
        ({"mowing": 0}, "min_coverage-mowing"),
        ({"mowing": -5}, "min_coverage-mowing"),
        ({"rocket_science": 100}, "min_coverage"),
    ):
        with pytest.raises(ValidationError) as refused:
            agreements.publish_agreement(
                session, world.coordinator, terms(purpose="Minimums.", min_coverage=minima), NOW
            )
        assert field in refused.value.fields
        session.rollback()


def test_expired_verified_insurance_stops_eligibility_by_the_date(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    give_profile(session, w.owner_b, insurance=ENDS_ON - timedelta(days=1))
    job = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    assert codes(session, w.member_b_id, id_of(job)) == ["insurance_expires"]


def award_to_b(session: Session, w: World) -> None:
    job = jobs.post_job(session, w.owner_a, job_draft(), NOW)
    jobs.claim_job(session, w.owner_b, id_of(job), NOW)


def test_parties_of_an_awarded_job_may_read_each_others_verified_certificate(
    session: Session, jobs_world: World
) -> None:
    w = jobs_world
    bystander = add_partner(session, w, "Zeta Gardens", "z@zeta.test")
    crew_a = w.crew_a
    theirs = upload(session, w.owner_b)
    ours = upload(session, w.owner_a)
    assert id_of(theirs) is not None and id_of(ours) is not None
    # Before any award: only the business itself and the coordinator.
    insurance.verify_certificate(session, w.coordinator, id_of(theirs), COVER, UNTIL, NOW)
    for who in (w.owner_a, crew_a, bystander, w.other_owner, w.other_coordinator):
        with pytest.raises(NotFound):
            insurance.get_certificate(session, who, id_of(theirs))
    for who in (w.owner_b, w.coordinator):
        assert insurance.get_certificate(session, who, id_of(theirs)).id == id_of(theirs)
    award_to_b(session, w)
    for who in (w.owner_a, crew_a):  # the poster's people see the winner's certificate
        assert insurance.get_certificate(session, who, id_of(theirs)).id == id_of(theirs)
    for who in (bystander, w.other_owner, w.other_coordinator):
        with pytest.raises(NotFound):
            insurance.get_certificate(session, who, id_of(theirs))
    # The poster's certificate: the winner sees it only once it is verified.
    with pytest.raises(NotFound):
        insurance.get_certificate(session, w.owner_b, id_of(ours))
    insurance.verify_certificate(session, w.coordinator, id_of(ours), COVER, UNTIL, NOW)
    assert insurance.get_certificate(session, w.owner_b, id_of(ours)).id == id_of(ours)
    with pytest.raises(NotFound):
        insurance.get_certificate(session, bystander, id_of(ours))
    with pytest.raises(NotFound):
        insurance.get_certificate(session, w.owner_a, 10**9)
