"""Verified insurance: upload, verification, who may download, and the reminders.

A member's owner uploads its certificate of liability insurance (a checked PDF
or a re-encoded photo, documents.py) with what it states: insurer, policy
number, coverage and expiry.  Only the coordinator's verification makes it
count: the verified expiry and coverage are written onto the member
(`Member.insurance_expires_on`, `Member.insurance_coverage_minor`), which is all
eligibility reads, so a stated date never opens a job to anyone.

Decisions are conditional updates (`... WHERE status = 'pending'`): two
coordinators clicking at once, or a double tap, decide a certificate once.

Who may download a document: the member's own people and the coordinator (any
certificate of their own cluster), and the parties to an awarded job (its poster
and the members of its contract) each other's *verified* certificate -- the
audiences `barrier.job_audience` names POSTER and PARTY of a job with a
contract.  Anybody else gets the same NotFound as for an id that does not exist.

Reminders (`remind_expiring`, a scheduler task): 30 and 7 days before a
verified expiry, and once on the day after it (the member stops being
eligible then, by the date alone).  Each is claimed by inserting an
`InsuranceNotice` row whose unique key is (member, expiry, kind) in the same
transaction as the notifications, so a rerun or a second scheduler sends nothing
twice; a renewed certificate has a new expiry and so new reminders.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from marketplace import events
from marketplace.barrier import Audience, job_audience
from marketplace.clusters.insurance.documents import CheckedDocument
from marketplace.clusters.models import (
    CertificateStatus,
    Cluster,
    InsuranceCertificate,
    InsuranceNotice,
    Member,
    Role,
    User,
)
from marketplace.clusters.service import (
    active_users_of,
    get_member,
    require_coordinator,
)
from marketplace.db import on_postgresql
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.jobs.models import ContractParty, JobContract, OverflowJob
from marketplace.persisted import id_of

#: Coverage above this (minor units) is a typing mistake, not a policy.
MAX_COVERAGE = 10**12
#: Days before the verified expiry each reminder goes out, by kind.
REMINDERS = {"30": 30, "7": 7}
EXPIRED = "expired"
#: An expiry further back than this is not announced (a member that let its cover lapse
#: long ago was told then; a fresh install does not tell it again).
EXPIRED_ANNOUNCED_FOR = timedelta(days=30)


@dataclass(frozen=True)
class Statement:
    """What the member says its certificate shows."""

    insurer: str
    policy_number: str
    coverage_minor: int | None
    expires_on: date | None


def _today(session: Session, cluster_id: int, now: datetime) -> date:
    cluster = session.get(Cluster, cluster_id)
    assert cluster is not None
    return now.astimezone(ZoneInfo(cluster.timezone)).date()


def _check_figures(
    coverage_minor: int | None, expires_on: date | None, today: date, errors: dict[str, str]
) -> None:
    if coverage_minor is None or not 0 < coverage_minor <= MAX_COVERAGE:
        errors["coverage"] = N_("Enter the coverage amount the certificate shows, above zero.")
    if expires_on is None:
        errors["expires_on"] = N_("Enter the date the policy expires.")
    elif expires_on <= today:
        errors["expires_on"] = N_("This certificate has expired. Upload the current one.")


def _raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(
            "invalid_input", N_("Some fields need your attention."), fields=errors
        )


def require_uploader(actor: User, member: Member) -> None:
    """Only an owner of the business uploads its certificate (the coordinator verifies
    it, so it does not also state it)."""
    if actor.role != Role.OWNER or actor.member_id != member.id:
        raise Forbidden(
            "owner_only", N_("Only an owner of this business can upload its insurance certificate.")
        )


def _coordinators(session: Session, cluster_id: int) -> list[User]:
    return list(
        session.exec(
            select(User).where(
                User.cluster_id == cluster_id,
                User.role == Role.COORDINATOR,
                col(User.active).is_(True),
            )
        )
    )


def submit_certificate(
    session: Session,
    actor: User,
    member_id: int,
    statement: Statement,
    document: CheckedDocument,
    now: datetime,
) -> InsuranceCertificate:
    """An owner uploads its business's certificate; the coordinator is told.  A pending
    certificate uploaded earlier is replaced (one waits for a decision at a time)."""
    member = get_member(session, actor, member_id)
    require_uploader(actor, member)
    errors: dict[str, str] = {}
    if not 0 < len(statement.insurer.strip()) <= 120:
        errors["insurer"] = N_("Enter the insurer's name (up to 120 characters).")
    if not 0 < len(statement.policy_number.strip()) <= 60:
        errors["policy_number"] = N_("Enter the policy number (up to 60 characters).")
    _check_figures(
        statement.coverage_minor,
        statement.expires_on,
        _today(session, member.cluster_id, now),
        errors,
    )
    _raise_if(errors)
    assert statement.expires_on is not None
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    session.exec(
        update(InsuranceCertificate)
        .where(
            col(InsuranceCertificate.member_id) == member.id,
            col(InsuranceCertificate.status) == CertificateStatus.PENDING,
        )
        .values(status=CertificateStatus.REPLACED)
    )
    certificate = InsuranceCertificate(
        cluster_id=member.cluster_id,
        member_id=id_of(member),
        insurer=statement.insurer.strip(),
        policy_number=statement.policy_number.strip(),
        coverage_minor=statement.coverage_minor,
        currency=cluster.currency,
        expires_on=statement.expires_on,
        document=document.content,
        media_type=document.media_type,
        uploaded_by_id=id_of(actor),
        uploaded_at=now,
    )
    session.add(certificate)
    session.flush()
    events.notify(
        session,
        _coordinators(session, member.cluster_id),
        "insurance.submitted",
        N_("%(member)s uploaded an insurance certificate to verify."),
        now=now,
        params={"member": member.name},
        link="/insurance/pending",
    )
    session.commit()
    return certificate


def get_certificate(session: Session, viewer: User, certificate_id: int) -> InsuranceCertificate:
    """A certificate the viewer may read, or NotFound (whatever the reason)."""
    certificate = session.get(InsuranceCertificate, certificate_id)
    if certificate is None or not may_read(session, viewer, certificate):
        raise not_found()
    return certificate


def may_read(session: Session, viewer: User, certificate: InsuranceCertificate) -> bool:
    """Whether the viewer may see this certificate and download its document."""
    if certificate.cluster_id != viewer.cluster_id:
        return False
    if viewer.role == Role.COORDINATOR or viewer.member_id == certificate.member_id:
        return True
    if certificate.status != CertificateStatus.VERIFIED or viewer.member_id is None:
        return False
    return shares_awarded_job(session, viewer, certificate.member_id)


def shares_awarded_job(session: Session, viewer: User, member_id: int) -> bool:
    """Whether the viewer's business and `member_id` are both poster or party of one job
    with a contract (the barrier's POSTER and PARTY audiences of that job)."""
    if viewer.member_id is None or viewer.member_id == member_id:
        return False
    inside = {Audience.POSTER, Audience.PARTY}
    jobs: dict[int, tuple[OverflowJob, set[int]]] = {}
    for job, party in session.exec(
        select(OverflowJob, ContractParty.member_id)
        .join(JobContract, col(JobContract.job_id) == OverflowJob.id)
        .join(ContractParty, col(ContractParty.contract_id) == JobContract.id)
        .where(OverflowJob.cluster_id == viewer.cluster_id)
    ):
        jobs.setdefault(id_of(job), (job, set()))[1].add(party)
    for job, parties in jobs.values():

        def audience(of: int, job: OverflowJob = job, parties: set[int] = parties) -> Audience:
            return job_audience(
                viewer_member_id=of,
                viewer_cluster_id=viewer.cluster_id,
                job_cluster_id=job.cluster_id,
                poster_member_id=job.poster_member_id,
                parties=parties,
                on_offer=False,
            )

        if audience(viewer.member_id) in inside and audience(member_id) in inside:
            return True
    return False


def verified_certificate(session: Session, member_id: int) -> InsuranceCertificate | None:
    """The member's certificate in force: the one whose figures are on the member."""
    return session.exec(
        select(InsuranceCertificate)
        .where(
            InsuranceCertificate.member_id == member_id,
            InsuranceCertificate.status == CertificateStatus.VERIFIED,
        )
        .order_by(col(InsuranceCertificate.id).desc())
    ).first()


def history(session: Session, viewer: User, member_id: int) -> list[InsuranceCertificate]:
    """Every certificate of a member, newest first (its own people and the coordinator)."""
    member = get_member(session, viewer, member_id)
    if viewer.role != Role.COORDINATOR and viewer.member_id != member.id:
        raise Forbidden(
            "not_member_owner",
            N_("Only this business and the coordinator can see its insurance certificates."),
        )
    return list(
        session.exec(
            select(InsuranceCertificate)
            .where(InsuranceCertificate.member_id == member.id)
            .order_by(col(InsuranceCertificate.id).desc())
        )
    )


def pending(session: Session, coordinator: User) -> list[tuple[InsuranceCertificate, Member]]:
    """The certificates of the coordinator's cluster waiting for a decision, oldest first."""
    require_coordinator(coordinator)
    return [
        (c, m)
        for c, m in session.exec(
            select(InsuranceCertificate, Member)
            .join(Member, col(Member.id) == InsuranceCertificate.member_id)
            .where(
                InsuranceCertificate.cluster_id == coordinator.cluster_id,
                InsuranceCertificate.status == CertificateStatus.PENDING,
            )
            .order_by(col(InsuranceCertificate.id))
        )
    ]


def decidable(session: Session, actor: User, certificate_id: int) -> InsuranceCertificate:
    """A certificate the coordinator may decide: of its own cluster, or NotFound (asked
    before a form is read, so another cluster's id and a missing one answer alike)."""
    require_coordinator(actor)
    certificate = session.get(InsuranceCertificate, certificate_id)
    if certificate is None or certificate.cluster_id != actor.cluster_id:
        raise not_found()
    return certificate


def _decide(
    session: Session,
    actor: User,
    certificate_id: int,
    status: CertificateStatus,
    now: datetime,
    reason: str = "",
) -> InsuranceCertificate:
    """Move a pending certificate of the actor's cluster to `status`, once."""
    certificate = decidable(session, actor, certificate_id)
    decided = session.exec(
        update(InsuranceCertificate)
        .where(
            col(InsuranceCertificate.id) == certificate_id,
            col(InsuranceCertificate.status) == CertificateStatus.PENDING,
        )
        .values(status=status, decided_by_id=id_of(actor), decided_at=now, reason=reason)
    )
    if decided.rowcount != 1:
        raise Conflict(
            "certificate_decided",
            N_("This certificate was already decided or replaced by a newer one. Reload the list."),
        )
    session.refresh(certificate)
    return certificate


def verify_certificate(
    session: Session,
    actor: User,
    certificate_id: int,
    coverage_minor: int | None,
    expires_on: date | None,
    now: datetime,
) -> InsuranceCertificate:
    """The coordinator checked the document: the figures it confirms (as read on the
    document, which may differ from what was typed) become the member's verified
    insurance, and the member's people are told."""
    require_coordinator(actor)
    errors: dict[str, str] = {}
    _check_figures(coverage_minor, expires_on, _today(session, actor.cluster_id, now), errors)
    _raise_if(errors)
    assert coverage_minor is not None and expires_on is not None
    certificate = _decide(session, actor, certificate_id, CertificateStatus.VERIFIED, now)
    session.exec(
        update(InsuranceCertificate)
        .where(
            col(InsuranceCertificate.member_id) == certificate.member_id,
            col(InsuranceCertificate.status) == CertificateStatus.VERIFIED,
            col(InsuranceCertificate.id) != certificate.id,
        )
        .values(status=CertificateStatus.REPLACED)
    )
    member = session.get(Member, certificate.member_id)
    assert member is not None
    member.insurance_expires_on = expires_on
    member.insurance_coverage_minor = coverage_minor
    session.add(member)
    events.notify(
        session,
        active_users_of(session, [member.id]),
        "insurance.verified",
        N_("Your insurance certificate was verified; it is valid until %(date)s."),
        now=now,
        params={"date": expires_on.isoformat()},
        link=f"/members/{member.id}/insurance",
    )
    session.commit()
    return certificate


def reject_certificate(
    session: Session, actor: User, certificate_id: int, reason: str, now: datetime
) -> InsuranceCertificate:
    """The coordinator refuses a certificate, saying why; the member's people are told.
    The member's verified insurance (if any) stays as it was."""
    require_coordinator(actor)
    reason = reason.strip()
    if not 0 < len(reason) <= 500:
        message = N_(
            "Say why the certificate is rejected (up to 500 characters), so the "
            "business knows what to send."
        )
        raise ValidationError("invalid_input", message, fields={"reason": message})
    certificate = _decide(session, actor, certificate_id, CertificateStatus.REJECTED, now, reason)
    events.notify(
        session,
        active_users_of(session, [certificate.member_id]),
        "insurance.rejected",
        N_("Your insurance certificate was rejected: %(reason)s"),
        now=now,
        params={"reason": reason},
        link=f"/members/{certificate.member_id}/insurance",
    )
    session.commit()
    return certificate


def _claim_notice(
    session: Session, member_id: int, expires_on: date, kind: str, now: datetime
) -> bool:
    """Record that this notice goes out; False if it went out before (or is going out in
    a concurrent transaction, which then holds the key until it commits)."""
    dialect = postgresql if on_postgresql(session) else sqlite
    table = InsuranceNotice.__table__  # type: ignore[attr-defined]  # a table model
    statement = (
        dialect.insert(table)
        .values(
            member_id=member_id,
            expires_on=expires_on,
            kind=kind,
            sent_at=now,
        )
        .on_conflict_do_nothing()
        .returning(table.c.id)
    )
    return session.execute(statement).first() is not None


def _notice_due(expires_on: date, today: date) -> str | None:
    """Which notice a verified expiry calls for today, if any (the most urgent one)."""
    if expires_on < today:
        return EXPIRED if today - expires_on <= EXPIRED_ANNOUNCED_FOR else None
    days = (expires_on - today).days
    for kind, before in sorted(REMINDERS.items(), key=lambda item: item[1]):
        if days <= before:
            return kind
    return None


def remind_expiring(session: Session, now: datetime) -> int:
    """Scheduler sweep: the 30- and 7-day reminders and the expiry notice, each once per
    member and expiry date; how many people were told."""
    low = now.date() - EXPIRED_ANNOUNCED_FOR - timedelta(days=2)
    high = now.date() + timedelta(days=max(REMINDERS.values()) + 2)
    candidates = list(
        session.exec(
            select(col(Member.id), col(Member.cluster_id), col(Member.insurance_expires_on))
            .where(
                col(Member.insurance_expires_on).is_not(None),
                col(Member.insurance_expires_on) >= low,
                col(Member.insurance_expires_on) <= high,
                col(Member.exit_effective_at).is_(None) | (col(Member.exit_effective_at) > now),
            )
            .order_by(col(Member.id))
        )
    )
    session.commit()
    told = 0
    for member_id, cluster_id, expires_on in candidates:
        assert member_id is not None and expires_on is not None
        kind = _notice_due(expires_on, _today(session, cluster_id, now))
        if kind is None or not _claim_notice(session, member_id, expires_on, kind, now):
            session.rollback()
            continue
        people = active_users_of(session, [member_id])
        link = f"/members/{member_id}/insurance"
        if kind == EXPIRED:
            told += events.notify(
                session,
                people,
                "insurance.expired",
                N_(
                    "Your verified insurance expired on %(date)s, so your business cannot "
                    "take overflow jobs now. Upload your current certificate; once the "
                    "coordinator verifies it, you can take jobs again."
                ),
                now=now,
                params={"date": expires_on.isoformat()},
                link=link,
            )
        else:
            told += events.notify(
                session,
                people,
                "insurance.expiring",
                N_(
                    "Your verified insurance expires on %(date)s. Upload the renewed "
                    "certificate so the coordinator can verify it in time: after that "
                    "date your business cannot take overflow jobs."
                ),
                now=now,
                params={"date": expires_on.isoformat()},
                link=link,
            )
        session.commit()
    return told
