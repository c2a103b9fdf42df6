"""The caller, its cluster, members, the agreement and notifications over the API.

A member's profile details (base location, radius, insurance, certifications)
go only to those who may manage it — its own people and the coordinator — the
same rule as the member page; other members see its name and trades.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import current_app
from pydantic import Field

from marketplace import events
from marketplace.api import tokens
from marketplace.api.fields import (
    Day,
    Latitude,
    Locale,
    Longitude,
    Moment,
    Trade,
    Units,
    decoded_base64,
)
from marketplace.api.spec import RequestModel, ResponseModel, operation
from marketplace.clusters import agreements, invites, service
from marketplace.clusters.insurance import documents
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.models import InsuranceCertificate, Member
from marketplace.clusters.views import invite_link
from marketplace.db import utcnow
from marketplace.errors import N_, NotFound, ValidationError
from marketplace.persisted import id_of
from marketplace.realtime.publisher import render_notification
from marketplace.web import db, viewer

TAG = "cluster"


class MeOut(ResponseModel):
    id: int
    name: str
    email: str
    role: str
    member_id: int | None
    cluster_id: int
    locale: str | None
    timezone: str | None
    unit_system: str | None


class ClusterOut(ResponseModel):
    id: int
    name: str
    currency: str
    default_locale: str
    timezone: str
    unit_system: str


class MemberOut(ResponseModel):
    id: int
    name: str
    trades: list[str]
    exit_effective_at: Moment | None
    base_lat: float | None = None
    base_lng: float | None = None
    service_radius_km: float | None = None
    insurance_expires_on: date | None = Field(
        default=None, description="The verified insurance's expiry (set by the coordinator's "
        "verification of an uploaded certificate; not writable here).")
    insurance_coverage_minor: int | None = Field(
        default=None, description="The verified liability coverage, in minor units of the "
        "cluster's currency.")
    certifications: str | None = None


class MemberList(ResponseModel):
    members: list[MemberOut]


class TermsOut(ResponseModel):
    """An agreement's terms: of a published version, or proposed for the next one."""

    purpose: str
    scope_overflow_jobs: bool
    scope_equipment: bool
    scope_joint_bids: bool
    referral_fee_bp: int
    platform_fee_bp: int
    sunset_on: date
    exit_notice_days: int
    information_rules: str
    min_coverage: dict[str, int] = Field(
        default_factory=dict, description="Trade -> the verified insurance coverage (minor "
        "units) a member needs to take a job in it.")
    decision_rule: Literal["majority", "two_thirds", "unanimity"] = Field(
        description="How a change is decided, among the participating members.")
    members_may_propose: bool = Field(description="Whether member owners may propose "
                                      "changes (otherwise only the coordinator).")
    secret_votes: bool = Field(description="Whether members see only the vote counts.")
    dispute_window_days: int = Field(description="Days after a job's completion or a "
                                     "booking's end during which its parties may dispute "
                                     "its money.")
    dispute_resolver: Literal["coordinator", "panel"] = Field(
        description="Who decides a dispute: the coordinator, or a panel of members party "
        "to none of it.")
    dispute_decide_days: int = Field(description="The resolver's deadline, in days.")
    targets: dict[str, int] = Field(
        default_factory=dict, description="Metric -> its goal per calendar quarter: "
        "overflow_value_kept and equipment_fees_kept in minor units, jobs_handed_over a "
        "count, machine_utilization_bp in basis points.")
    buyout_value_bp: int = Field(description="A leaving co-owner's share of a machine is "
                                 "bought at this fraction (basis points) of its agreed "
                                 "value.")


class AgreementOut(TermsOut):
    version: int
    accepted_by_my_business: bool | None = Field(default=None, description="Members only.")


class NotificationOut(ResponseModel):
    id: int
    kind: str
    text: str
    link: str | None
    data: dict[str, Any]
    created_at: Moment | None


class NotificationList(ResponseModel):
    unread: int
    notifications: list[NotificationOut]


class TokenOut(ResponseModel):
    id: int
    name: str
    prefix: str
    created_at: Moment
    last_used_at: Moment | None


class TokenList(ResponseModel):
    tokens: list[TokenOut]


class PreferencesIn(RequestModel):
    locale: Locale | None = None
    timezone: str | None = Field(default=None, max_length=64,
                                 description="An IANA name such as America/Toronto.")
    unit_system: Units | None = None


class ProfileIn(RequestModel):
    name: str = Field(max_length=120)
    trades: list[Trade] = Field(max_length=20)
    base_lat: Latitude | None = None
    base_lng: Longitude | None = None
    service_radius_km: float | None = Field(default=None, ge=0, le=1000, allow_inf_nan=False)
    certifications: str = Field(default="", max_length=2000)


class CertificateOut(ResponseModel):
    """A certificate of insurance as uploaded and decided (its document: on the member's
    insurance page, to those who may read it)."""

    id: int
    member_id: int
    status: Literal["pending", "verified", "rejected", "replaced"]
    insurer: str
    policy_number: str
    coverage_minor: int | None = Field(description="As stated, in minor units.")
    currency: str
    expires_on: date = Field(description="As stated; the verified one is the member's.")
    has_document: bool
    uploaded_at: Moment
    decided_at: Moment | None
    reason: str


class CertificateList(ResponseModel):
    certificates: list[CertificateOut]


class CertificateIn(RequestModel):
    """A certificate of insurance as the owner reads it, with the document itself."""

    insurer: str = Field(min_length=1, max_length=120)
    policy_number: str = Field(min_length=1, max_length=60)
    coverage_minor: int = Field(ge=1, le=insurance.MAX_COVERAGE,
                                description="The liability coverage, in minor units.")
    expires_on: Day
    document_base64: str = Field(
        max_length=7_200_000, description="The certificate as a PDF or a photo (JPEG, PNG "
        "or WebP), base64-encoded; at most the server's INSURANCE_MAX_BYTES (5 MB by "
        "default). Photos are stored re-encoded, without their metadata.")


class VerifyIn(RequestModel):
    coverage_minor: int = Field(ge=1, le=insurance.MAX_COVERAGE,
                                description="The coverage read on the document.")
    expires_on: Day = Field(description="The expiry read on the document.")


class RejectIn(RequestModel):
    reason: str = Field(min_length=1, max_length=500)


class PersonInviteIn(RequestModel):
    email: str = Field(max_length=254)
    role: Literal["owner", "crew"]


class InviteOut(ResponseModel):
    email: str
    role: str
    expires_at: Moment
    link: str = Field(description="The signed, single-use sign-up link to send.")


class AcceptIn(RequestModel):
    version: int = Field(ge=1, le=1_000_000, description="The version the caller read.")


def _member_out(member: Member) -> dict[str, Any]:
    user, session = viewer(), db()
    data: dict[str, Any] = {"id": member.id, "name": member.name,
                            "trades": service.member_trades(session, id_of(member)),
                            "exit_effective_at": member.exit_effective_at}
    if service.can_manage_member(user, member):
        data.update(base_lat=member.base_lat, base_lng=member.base_lng,
                    service_radius_km=member.service_radius_km,
                    insurance_expires_on=member.insurance_expires_on,
                    insurance_coverage_minor=member.insurance_coverage_minor,
                    certifications=member.certifications)
    return data


@operation("GET", "/me", summary="The caller", tag=TAG, response=MeOut)
def me() -> Any:
    return viewer()


@operation("PUT", "/me/preferences", summary="The caller's language, time zone and units "
           "(null: the cluster's)", tag=TAG, body=PreferencesIn, response=MeOut)
def update_preferences(body: PreferencesIn) -> Any:
    return service.update_preferences(db(), viewer(), body.locale, body.timezone,
                                      body.unit_system)


@operation("GET", "/cluster", summary="The caller's cluster", tag=TAG, response=ClusterOut)
def get_cluster() -> Any:
    return service.get_cluster(db(), viewer())


@operation("GET", "/members", summary="The cluster's member businesses", tag=TAG,
           response=MemberList)
def list_members() -> dict[str, Any]:
    return {"members": [_member_out(m) for m in service.list_members(db(), viewer())]}


@operation("GET", "/members/{member_id}", summary="One member business", tag=TAG,
           response=MemberOut)
def get_member(member_id: int) -> dict[str, Any]:
    return _member_out(service.get_member(db(), viewer(), member_id))


@operation("PUT", "/members/{member_id}", summary="Change a business profile (its owners "
           "or the coordinator)", tag=TAG, body=ProfileIn, response=MemberOut)
def update_member(member_id: int, body: ProfileIn) -> dict[str, Any]:
    profile = service.MemberProfile(**body.model_dump(exclude={"trades"}),
                                    trades=tuple(body.trades))
    return _member_out(service.update_member_profile(db(), viewer(), member_id, profile))


@operation("POST", "/members/{member_id}/people", summary="Invite a person to a business "
           "as owner or crew (its owners)", tag=TAG, body=PersonInviteIn, response=InviteOut,
           status=201)
def invite_person(member_id: int, body: PersonInviteIn) -> dict[str, Any]:
    business = service.get_member(db(), viewer(), member_id)
    invite = invites.create_user_invite(db(), viewer(), id_of(business), body.email,
                                        body.role, utcnow(),
                                        current_app.config["INVITE_VALID_DAYS"])
    return {"email": invite.email, "role": invite.role, "expires_at": invite.expires_at,
            "link": invite_link(invite)}


@operation("POST", "/members/{member_id}/exit", summary="Give notice of the business's exit "
           "(its owner); it leaves after the agreement's notice period", tag=TAG,
           response=MemberOut)
def give_exit_notice(member_id: int) -> dict[str, Any]:
    return _member_out(agreements.give_exit_notice(db(), viewer(), member_id, utcnow()))


def _certificate_out(certificate: InsuranceCertificate) -> dict[str, Any]:
    return {"id": certificate.id, "member_id": certificate.member_id,
            "status": certificate.status, "insurer": certificate.insurer,
            "policy_number": certificate.policy_number,
            "coverage_minor": certificate.coverage_minor, "currency": certificate.currency,
            "expires_on": certificate.expires_on,
            "has_document": certificate.document is not None,
            "uploaded_at": certificate.uploaded_at, "decided_at": certificate.decided_at,
            "reason": certificate.reason}


@operation("GET", "/members/{member_id}/insurance", summary="A business's insurance "
           "certificates, newest first (its people and the coordinator)", tag=TAG,
           response=CertificateList)
def member_certificates(member_id: int) -> dict[str, Any]:
    return {"certificates": [_certificate_out(c)
                             for c in insurance.history(db(), viewer(), member_id)]}


@operation("POST", "/members/{member_id}/insurance", summary="Upload the business's "
           "certificate of insurance for the coordinator to verify (its owners)", tag=TAG,
           body=CertificateIn, response=CertificateOut, status=201)
def upload_certificate(member_id: int, body: CertificateIn) -> dict[str, Any]:
    session, user = db(), viewer()
    insurance.require_uploader(user, service.get_member(session, user, member_id))
    data = decoded_base64(body.document_base64, "document_base64", "invalid_document",
                          N_("Send the document as base64 (RFC 4648, without line breaks)."))
    limit = int(current_app.config.get("INSURANCE_MAX_BYTES", documents.DEFAULT_MAX_BYTES))
    statement = insurance.Statement(body.insurer, body.policy_number, body.coverage_minor,
                                    body.expires_on)
    try:
        checked = documents.check_document(data, limit)
    except ValidationError as refused:  # named after the field this request sent
        refused.fields = {"document_base64": refused.fields[documents.FIELD]}
        raise
    return _certificate_out(insurance.submit_certificate(session, user, member_id, statement,
                                                         checked, utcnow()))


@operation("GET", "/insurance/pending", summary="Certificates waiting for verification "
           "(the coordinator)", tag=TAG, response=CertificateList)
def pending_certificates() -> dict[str, Any]:
    return {"certificates": [_certificate_out(c)
                             for c, _member in insurance.pending(db(), viewer())]}


@operation("POST", "/insurance/{certificate_id}/verify", summary="Verify a certificate with "
           "the coverage and expiry read on it; they become the business's insurance (the "
           "coordinator)", tag=TAG, body=VerifyIn, response=CertificateOut)
def verify_certificate(certificate_id: int, body: VerifyIn) -> dict[str, Any]:
    insurance.decidable(db(), viewer(), certificate_id)
    return _certificate_out(insurance.verify_certificate(
        db(), viewer(), certificate_id, body.coverage_minor, body.expires_on, utcnow()))


@operation("POST", "/insurance/{certificate_id}/reject", summary="Reject a certificate, "
           "saying why (the coordinator)", tag=TAG, body=RejectIn, response=CertificateOut)
def reject_certificate(certificate_id: int, body: RejectIn) -> dict[str, Any]:
    insurance.decidable(db(), viewer(), certificate_id)
    return _certificate_out(insurance.reject_certificate(
        db(), viewer(), certificate_id, body.reason, utcnow()))


@operation("GET", "/agreement", summary="The agreement in force", tag=TAG,
           response=AgreementOut)
def get_agreement() -> dict[str, Any]:
    user, session = viewer(), db()
    current = agreements.agreement_in_force(session, user.cluster_id)
    if current is None:
        message = N_("The coordinator has not published an agreement yet.")
        raise NotFound("no_agreement", message)
    data = AgreementOut.model_validate(current).model_dump()
    if user.member_id is not None:
        accepted = {m.id for _a, m, _u in agreements.acceptances(session, user, id_of(current))}
        data["accepted_by_my_business"] = user.member_id in accepted
    return data


@operation("POST", "/agreement/accept", summary="Accept the agreement in force for the "
           "caller's business (owners)", tag=TAG, body=AcceptIn, response=AgreementOut)
def accept_agreement(body: AcceptIn) -> dict[str, Any]:
    agreements.accept_agreement(db(), viewer(), body.version, utcnow())
    return get_agreement()


@operation("GET", "/notifications", summary="The caller's latest notifications", tag=TAG,
           response=NotificationList)
def list_notifications() -> dict[str, Any]:
    user, session = viewer(), db()
    return {"unread": events.unread_count(session, id_of(user)),
            "notifications": [render_notification(row)
                              for row in events.recent(session, id_of(user))]}


@operation("POST", "/notifications/read", summary="Mark every notification read", tag=TAG)
def mark_read() -> None:
    events.mark_all_read(db(), id_of(viewer()), utcnow())


@operation("GET", "/tokens", summary="The caller's API tokens (never their secrets)",
           tag=TAG, response=TokenList)
def list_tokens() -> dict[str, Any]:
    return {"tokens": tokens.active_tokens(db(), viewer())}


@operation("DELETE", "/tokens/{token_id}", summary="Revoke one of the caller's API tokens",
           tag=TAG)
def revoke_token(token_id: int) -> None:
    tokens.revoke_token(db(), viewer(), token_id, utcnow())
