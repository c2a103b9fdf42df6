"""Tables for clusters, members, users, invites, agreements and acceptances, and the
record of service-area changes (its rules: clusters/service_area.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Column, LargeBinary, UniqueConstraint, false
from sqlmodel import Field, SQLModel, col

from marketplace.db import UTCDateTime


class Role(StrEnum):
    """What a user may do: run the cluster, own a member business, or crew for one."""

    COORDINATOR = "coordinator"
    OWNER = "owner"
    CREW = "crew"


class UnitSystem(StrEnum):
    METRIC = "metric"
    IMPERIAL = "imperial"


class Cluster(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    currency: str = Field(max_length=3)
    default_locale: str = Field(max_length=10)
    timezone: str = Field(max_length=64)
    unit_system: str = Field(default=UnitSystem.METRIC.value, max_length=10)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    #: Secret of the cluster's own that fixes each site's approximate point (geo.py):
    #: the same site always gets the same point, and nobody outside can compute it.
    location_key: str = Field(default_factory=lambda: secrets.token_hex(32), max_length=64)


class Member(SQLModel, table=True):
    """A business in a cluster.  Its history stays after it exits."""

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    name: str = Field(max_length=120)
    base_lat: float | None = Field(default=None)
    base_lng: float | None = Field(default=None)
    service_radius_km: float | None = Field(default=None)
    #: The *verified* insurance: the expiry and coverage (minor units of the cluster's
    #: currency) the coordinator last verified on a certificate (clusters/insurance/);
    #: nobody types them into the profile, and eligibility reads only these.
    insurance_expires_on: date | None = Field(default=None)
    insurance_coverage_minor: int | None = Field(
        default=None, sa_column=Column(BigInteger(), nullable=True))
    certifications: str = Field(default="", max_length=2000)
    suspended: bool = Field(default=False)
    exit_noticed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    exit_effective_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


@dataclass(frozen=True, slots=True)
class MemberFacts:
    """What the eligibility and participation rules read about a member business, as
    plain values: the fan-out of one job reads them for every member of the cluster,
    and building a thousand ORM objects cost more than the rules themselves."""

    id: int
    cluster_id: int
    name: str
    base_lat: float | None
    base_lng: float | None
    service_radius_km: float | None
    insurance_expires_on: date | None
    insurance_coverage_minor: int | None
    suspended: bool
    exit_effective_at: datetime | None


#: The columns a MemberFacts is read from, in its fields' order.
MEMBER_FACTS = tuple(col(getattr(Member, name.name)) for name in fields(MemberFacts))


def facts_of(member: Member) -> MemberFacts:
    """The member's facts from a row already loaded: a rule applied to hundreds of jobs
    reads plain attributes, not the ORM's instrumented ones."""
    return MemberFacts(*(getattr(member, name.name) for name in fields(MemberFacts)))


class MemberTrade(SQLModel, table=True):
    """One trade a member offers; a row each so eligibility can query it."""

    member_id: int = Field(foreign_key="member.id", primary_key=True)
    trade: str = Field(primary_key=True, max_length=40)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=120)
    password_hash: str = Field(max_length=255)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    member_id: int | None = Field(default=None, foreign_key="member.id", index=True)
    role: str = Field(max_length=20)
    locale: str | None = Field(default=None, max_length=10)
    timezone: str | None = Field(default=None, max_length=64)
    unit_system: str | None = Field(default=None, max_length=10)
    active: bool = Field(default=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))

    # The four members Flask-Login expects, written out so models need no flask.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_coordinator(self) -> bool:
        return self.role == Role.COORDINATOR


@dataclass(frozen=True, slots=True)
class Addressee:
    """What telling a person something needs: who, whether they still use the product,
    their language and time zone (None: their cluster's), their cluster.  Plain values
    for the same reason as MemberFacts: one post can reach a thousand people."""

    id: int
    cluster_id: int
    active: bool
    locale: str | None
    timezone: str | None


#: The columns an Addressee is read from, in its fields' order.
ADDRESSEE = tuple(col(getattr(User, name.name)) for name in fields(Addressee))


class InviteKind(StrEnum):
    MEMBER = "member"  # a new business joins the cluster; the signer becomes its owner
    USER = "user"  # a person joins an existing member business


class Invite(SQLModel, table=True):
    """A single-use, expiring invitation.  The link carries a signed id + nonce."""

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    kind: str = Field(max_length=10)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    role: str = Field(max_length=20)
    email: str = Field(max_length=254)
    business_name: str | None = Field(default=None, max_length=120)
    nonce: str = Field(max_length=64)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    used_by_id: int | None = Field(default=None, foreign_key="user.id")


class Agreement(SQLModel, table=True):
    """One version of the cluster's charter.  Versions are never edited."""

    __table_args__ = (UniqueConstraint("cluster_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    version: int
    purpose: str = Field(max_length=2000)
    scope_overflow_jobs: bool = Field(default=True)
    scope_equipment: bool = Field(default=True)
    scope_joint_bids: bool = Field(default=True)
    referral_fee_bp: int
    platform_fee_bp: int
    sunset_on: date
    exit_notice_days: int
    information_rules: str = Field(max_length=5000)
    #: The information rules' k: a member sees a cluster total of other members' money or
    #: ratings only when it combines at least this many other members and contracts
    #: (bookings, ratings), for a month that is over (dashboard.disclosure).
    aggregate_min_group: int = Field(default=3, sa_column_kwargs={"server_default": "3"})
    #: Trade code -> the verified insurance coverage (minor units of the cluster's
    #: currency) a member needs to take a job in that trade; a trade not listed needs
    #: none beyond a verified, current certificate.
    min_coverage: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSON(), nullable=False, server_default="{}"))
    #: How a change to this charter is decided (clusters/governance/service.py): "majority",
    #: "two_thirds" or "unanimity" of the participating members; who may propose one
    #: (the coordinator only, or members' owners too); and whether votes are secret.
    decision_rule: str = Field(default="majority", max_length=20,
                               sa_column_kwargs={"server_default": "majority"})
    members_may_propose: bool = Field(default=False,
                                      sa_column_kwargs={"server_default": false()})
    secret_votes: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    #: Disputes between members (issue #20 part 2): a party may open one on a job's or a
    #: booking's money within `dispute_window_days` of the job's completion or the
    #: booking's end; the coordinator or a panel of uninvolved members
    #: (`dispute_resolver`) decides within `dispute_decide_days`.
    dispute_window_days: int = Field(default=14, sa_column_kwargs={"server_default": "14"})
    dispute_resolver: str = Field(default="coordinator", max_length=20,
                                  sa_column_kwargs={"server_default": "coordinator"})
    dispute_decide_days: int = Field(default=14, sa_column_kwargs={"server_default": "14"})
    #: Metric code (clusters/targets.py) -> its goal per calendar quarter.
    targets: dict[str, int] = Field(
        default_factory=dict, sa_column=Column(JSON(), nullable=False, server_default="{}"))
    #: A leaving co-owner's share of a machine is bought by the remaining co-owners at
    #: this fraction (basis points) of the machine's agreed value.
    buyout_value_bp: int = Field(default=10_000,
                                 sa_column_kwargs={"server_default": "10000"})
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class AgreementAcceptance(SQLModel, table=True):
    """Who accepted which version for which member, and when."""

    __table_args__ = (UniqueConstraint("agreement_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    agreement_id: int = Field(foreign_key="agreement.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    accepted_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ServiceAreaChange(SQLModel, table=True):
    """One change of a member's base location or service radius (None: not set)."""

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    changed_by_id: int = Field(foreign_key="user.id")
    changed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    from_lat: float | None = None
    from_lng: float | None = None
    from_radius_km: float | None = None
    to_lat: float | None = None
    to_lng: float | None = None
    to_radius_km: float | None = None


class CertificateStatus(StrEnum):
    PENDING = "pending"  # uploaded (or carried over from the old profile), not yet checked
    VERIFIED = "verified"  # the coordinator checked it; its figures are on the member
    REJECTED = "rejected"  # the coordinator refused it, with a reason
    REPLACED = "replaced"  # a newer certificate of the member was uploaded or verified


class InsuranceCertificate(SQLModel, table=True):
    """A member's certificate of liability insurance, as uploaded and as decided.

    The document is stored in the row (re-encoded pictures, checked PDFs, a few MB
    at most), so a certificate and its file commit or roll back together on SQLite
    and PostgreSQL alike.  `coverage_minor` and `expires_on` are what the member
    stated; the coordinator's verified figures are written onto the member.
    """

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    status: str = Field(default=CertificateStatus.PENDING.value, max_length=20, index=True)
    insurer: str = Field(default="", max_length=120)
    policy_number: str = Field(default="", max_length=60)
    coverage_minor: int | None = Field(default=None, sa_column=Column(BigInteger(),
                                                                      nullable=True))
    currency: str = Field(max_length=3)
    expires_on: date
    #: None for a record carried over from the self-stated expiry (migration 0014).
    document: bytes | None = Field(default=None, sa_column=Column(LargeBinary(),
                                                                  nullable=True))
    media_type: str = Field(default="", max_length=40)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")
    uploaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = Field(default=None,
                                        sa_column=Column(UTCDateTime(), nullable=True))
    reason: str = Field(default="", max_length=500)


class InsuranceNotice(SQLModel, table=True):
    """One insurance notice sent to a member's people: 30 or 7 days before a verified
    expiry, or at it.  The unique key makes each notice happen once per expiry date,
    however many schedulers or reruns try (clusters/insurance/service.py)."""

    __table_args__ = (UniqueConstraint("member_id", "expires_on", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    expires_on: date
    kind: str = Field(max_length=10)
    sent_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ProposalStatus(StrEnum):
    OPEN = "open"  # members vote until the deadline
    CARRIED = "carried"  # the rule was met; its terms were published as a new version
    REJECTED = "rejected"  # the rule was not met
    STALE = "stale"  # carried, but its terms could no longer be published (e.g. sunset)


class AgreementProposal(SQLModel, table=True):
    """A proposed change to the charter: the whole new terms, the reason, the deadline,
    and (once closed) the count and outcome.  Kept forever, as the cluster's record.

    The rule and secrecy are those of the version in force when it was proposed, so a
    vote is counted as its voters were told it would be."""

    id: int | None = Field(default=None, primary_key=True)
    cluster_id: int = Field(foreign_key="cluster.id", index=True)
    proposed_by_id: int = Field(foreign_key="user.id")
    proposed_by_member_id: int | None = Field(default=None, foreign_key="member.id")
    based_on_version: int
    reason: str = Field(max_length=2000)
    #: The proposed `AgreementTerms`, as JSON (dates as ISO strings).
    terms: dict[str, object] = Field(default_factory=dict,
                                     sa_column=Column(JSON(), nullable=False))
    decision_rule: str = Field(max_length=20)
    secret_votes: bool = Field(default=False)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    deadline: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    status: str = Field(default=ProposalStatus.OPEN.value, max_length=10, index=True)
    closed_at: datetime | None = Field(default=None,
                                       sa_column=Column(UTCDateTime(), nullable=True))
    votes_for: int | None = None
    votes_against: int | None = None
    participants: int | None = None
    published_version: int | None = None


class ProposalVote(SQLModel, table=True):
    """One member business's vote on a proposal, cast by one of its owners.  The unique
    key makes it one per business, whichever owner taps first."""

    __table_args__ = (UniqueConstraint("proposal_id", "member_id"),)

    id: int | None = Field(default=None, primary_key=True)
    proposal_id: int = Field(foreign_key="agreementproposal.id", index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    in_favour: bool
    cast_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
