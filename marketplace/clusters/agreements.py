"""The coopetition charter: versions, acceptance, exit, and the participation gate.

Every agreement names its purpose first, has a scope, a sunset date and an
exit clause.  Terms are never edited in place: changing any term publishes a
new version, and each member must accept the version in force before it may
post, claim, bid or book.  `require_participation` is that gate, the one
function every later domain calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, bindparam, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, aliased
from sqlmodel import Session, col, select

from marketplace.clusters.models import (
    Agreement,
    AgreementAcceptance,
    AgreementProposal,
    Cluster,
    Member,
    MemberFacts,
    ProposalStatus,
    ProposalVote,
    Role,
    User,
)
from marketplace.clusters.service import get_member, require_coordinator
from marketplace.clusters.targets import TARGET_METRICS, goal_refusal
from marketplace.clusters.trades import is_trade
from marketplace.errors import N_, Conflict, DomainError, Forbidden, ValidationError
from marketplace.persisted import id_of

MAX_EXIT_NOTICE_DAYS = 365
#: The largest minimum coverage a trade can require, in minor units (ten billion in
#: major units: more than any liability policy, still far inside a 64-bit column).
MAX_MIN_COVERAGE = 10**12
#: The information rules' k (`Agreement.aggregate_min_group`): by default 3; at least 2
#: (with 1, "totals" could be one rival's own figure); at most 50.
DEFAULT_MIN_GROUP, MIN_GROUP, MAX_GROUP = 3, 2, 50
#: How a change to the charter is decided (clusters/governance/service.py counts by it).
DECISION_RULES = ("majority", "two_thirds", "unanimity")
#: Who decides a dispute between members: the coordinator, or a panel of participating
#: members party to none of it.
DISPUTE_RESOLVERS = ("coordinator", "panel")
DEFAULT_DISPUTE_WINDOW_DAYS, MAX_DISPUTE_WINDOW_DAYS = 14, 90
DEFAULT_DISPUTE_DECIDE_DAYS, MIN_DISPUTE_DECIDE_DAYS, MAX_DISPUTE_DECIDE_DAYS = 14, 3, 60
#: A member whose owners voted against a carried change may leave without the notice
#: period for this long after the outcome (then the ordinary exit clause applies again).
OPPONENT_EXIT_WINDOW = timedelta(days=30)
#: Where a closed proposal keeps the ids of the businesses whose votes counted.
COUNTED_MEMBERS_KEY = "_counted_members"


class Activity(StrEnum):
    """The kinds of cooperation an agreement can cover."""

    OVERFLOW_JOBS = "overflow_jobs"
    EQUIPMENT = "equipment"
    JOINT_BIDS = "joint_bids"


@dataclass(frozen=True)
class AgreementTerms:
    purpose: str
    scope_overflow_jobs: bool
    scope_equipment: bool
    scope_joint_bids: bool
    referral_fee_bp: int
    platform_fee_bp: int
    sunset_on: date
    exit_notice_days: int
    information_rules: str
    aggregate_min_group: int = DEFAULT_MIN_GROUP
    #: Trade -> the verified insurance coverage (minor units) a job in it needs.
    min_coverage: dict[str, int] = field(default_factory=dict)
    decision_rule: str = "majority"
    members_may_propose: bool = False
    secret_votes: bool = False
    dispute_window_days: int = DEFAULT_DISPUTE_WINDOW_DAYS
    dispute_resolver: str = "coordinator"
    dispute_decide_days: int = DEFAULT_DISPUTE_DECIDE_DAYS
    #: Metric code (clusters/targets.py) -> its goal per calendar quarter.
    targets: dict[str, int] = field(default_factory=dict)
    buyout_value_bp: int = 10_000

    @classmethod
    def of(cls, agreement: Agreement) -> AgreementTerms:
        """The terms of an existing version, e.g. to prefill the edit form."""
        return cls(**{f.name: getattr(agreement, f.name) for f in fields(cls)})


def cluster_today(cluster: Cluster, now: datetime) -> date:
    """Today's date where the cluster is: sunsets end at the local midnight."""
    return now.astimezone(ZoneInfo(cluster.timezone)).date()


def _validate_terms(terms: AgreementTerms, today: date) -> None:
    errors: dict[str, str] = {}
    if not terms.purpose.strip() or len(terms.purpose) > 2000:
        errors["purpose"] = N_("State the purpose of the cooperation first (up to 2000 "
                               "characters).")
    if not (terms.scope_overflow_jobs or terms.scope_equipment or terms.scope_joint_bids):
        errors["scope"] = N_("Choose at least one kind of cooperation.")
    for name in ("referral_fee_bp", "platform_fee_bp"):
        if not 0 <= getattr(terms, name) <= 10_000:
            errors[name] = N_("Fees are between 0 and 10000 basis points (0 % to 100 %).")
    if "referral_fee_bp" not in errors and terms.referral_fee_bp + terms.platform_fee_bp > 10_000:
        errors["platform_fee_bp"] = N_("Referral and platform fees together cannot exceed "
                                       "10000 basis points.")
    if terms.sunset_on <= today:
        errors["sunset_on"] = N_("The sunset date must be in the future.")
    if not 0 <= terms.exit_notice_days <= MAX_EXIT_NOTICE_DAYS:
        errors["exit_notice_days"] = N_("The exit notice is between 0 and 365 days.")
    if not terms.information_rules.strip() or len(terms.information_rules) > 5000:
        errors["information_rules"] = N_("Say in plain words what partners may and may not "
                                         "share (up to 5000 characters).")
    if not MIN_GROUP <= terms.aggregate_min_group <= MAX_GROUP:
        errors["aggregate_min_group"] = N_("Cluster totals must combine between 2 and 50 "
                                           "other members.")
    for trade, minimum in terms.min_coverage.items():
        if not is_trade(trade):
            errors["min_coverage"] = N_("Choose trades from the list.")
        elif isinstance(minimum, bool) or not isinstance(minimum, int) \
                or not 0 < minimum <= MAX_MIN_COVERAGE:
            errors[f"min_coverage-{trade}"] = N_("Enter a minimum coverage above zero, or "
                                                 "leave it empty for no minimum.")
    if terms.decision_rule not in DECISION_RULES:
        errors["decision_rule"] = N_("Choose how changes are decided from the list.")
    errors.update(_dispute_and_exit_refusals(terms))
    for code, goal in terms.targets.items():
        refusal = goal_refusal(code, goal)
        if refusal is not None:
            errors[f"target-{code}" if code in TARGET_METRICS else "targets"] = refusal
    if errors:
        raise ValidationError("invalid_agreement", N_("Some fields need your attention."),
                              fields=errors)


def _dispute_and_exit_refusals(terms: AgreementTerms) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not 1 <= terms.dispute_window_days <= MAX_DISPUTE_WINDOW_DAYS:
        errors["dispute_window_days"] = N_("Disputes may be opened for between 1 and 90 "
                                           "days.")
    if terms.dispute_resolver not in DISPUTE_RESOLVERS:
        errors["dispute_resolver"] = N_("Choose who decides disputes from the list.")
    if not MIN_DISPUTE_DECIDE_DAYS <= terms.dispute_decide_days <= MAX_DISPUTE_DECIDE_DAYS:
        errors["dispute_decide_days"] = N_("A dispute is decided within 3 to 60 days.")
    if not 0 <= terms.buyout_value_bp <= 10_000:
        errors["buyout_value_bp"] = N_("The buy-out is between 0 and 100 percent of "
                                       "the machine's agreed value.")
    return errors


def agreement_in_force(session: Session, cluster_id: int) -> Agreement | None:
    """The newest version of the cluster's agreement, if any was published."""
    return session.exec(
        select(Agreement).where(Agreement.cluster_id == cluster_id)
        .order_by(col(Agreement.version).desc())
    ).first()


def minimum_coverage(agreement: Agreement | None, trades: Iterable[str]
                     ) -> tuple[int, list[str]]:
    """The verified insurance coverage a job in `trades` needs under `agreement` (the
    largest of its trades' minima, 0 for none), and the trades that ask that much."""
    minima = agreement.min_coverage if agreement is not None else {}
    if not minima:  # most charters set none: the board asks this for every open job
        return 0, []
    needed = {trade: minima.get(trade, 0) for trade in trades}
    highest = max(needed.values(), default=0)
    return highest, sorted(t for t, amount in needed.items() if amount == highest and highest)


def aggregate_min_group(session: Session, cluster_id: int) -> int:
    """The k of the agreement in force (the default before any is published)."""
    current = agreement_in_force(session, cluster_id)
    return current.aggregate_min_group if current is not None else DEFAULT_MIN_GROUP


def agreement_versions(session: Session, viewer: User) -> list[Agreement]:
    """All versions of the viewer's cluster agreement, newest first."""
    return list(session.exec(
        select(Agreement).where(Agreement.cluster_id == viewer.cluster_id)
        .order_by(col(Agreement.version).desc())
    ))


def publish_agreement(
    session: Session, actor: User, terms: AgreementTerms, now: datetime
) -> Agreement:
    """Publish a new version; every member must then accept it again.

    Refused while a proposal is open: the members are voting on terms written on the
    version in force, and a version published under them would be undone by the
    proposal if it carried (or make it stale if it did not)."""
    require_coordinator(actor)
    open_proposal = session.exec(
        select(AgreementProposal).where(
            AgreementProposal.cluster_id == actor.cluster_id,
            AgreementProposal.status == ProposalStatus.OPEN.value)
        .order_by(col(AgreementProposal.id))).first()
    if open_proposal is not None:
        raise Conflict("proposal_open",
                       N_("Members are voting on proposal %(proposal)d (its vote closes "
                          "on %(deadline)s). A new version must wait for its outcome, or "
                          "be put to the members as a proposal of its own."),
                       params={"proposal": open_proposal.id,
                               "deadline": _cluster_clock(session, actor.cluster_id,
                                                          open_proposal.deadline)})
    try:
        agreement = add_version(session, actor.cluster_id, id_of(actor), terms, now)
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("agreement_version_race",
                       N_("Someone published a new version at the same time. Reload and "
                          "try again.")) from None
    return agreement


def direct_change_refusal(session: Session, cluster_id: int) -> DomainError | None:
    """Why the coordinator may not publish terms directly, or None while it may.

    The coordinator writes the charter and may correct it until a member business
    accepts a version.  From then on the charter is signed: a change takes force only
    if the members carry it by the rule it names (clusters/governance), so the editor
    is closed for good -- also after a carried change no one has accepted yet, which
    would otherwise let the coordinator overwrite the members' vote."""
    signed = session.exec(
        select(AgreementAcceptance.id)
        .join(Agreement, col(Agreement.id) == AgreementAcceptance.agreement_id)
        .where(Agreement.cluster_id == cluster_id).limit(1)).first()
    if signed is None:
        return None
    return Conflict("vote_required",
                    N_("Members have accepted the agreement, so a change takes force only "
                       "if they vote for it. Propose the change, and the members decide."))


def _cluster_clock(session: Session, cluster_id: int, moment: datetime) -> str:
    """A moment as the cluster's clock reads it, for a message."""
    cluster = session.get(Cluster, cluster_id)
    zone = ZoneInfo(cluster.timezone if cluster else "UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def check_terms(session: Session, cluster_id: int, terms: AgreementTerms, now: datetime
                ) -> None:
    """Refuse terms that could not be published now (invalid, or the version in force)."""
    cluster = session.get(Cluster, cluster_id)
    assert cluster is not None
    _validate_terms(terms, cluster_today(cluster, now))
    current = agreement_in_force(session, cluster_id)
    if current is not None and AgreementTerms.of(current) == terms:
        raise ValidationError("agreement_unchanged",
                              N_("Nothing changed: edit a term to publish a new version."))


def add_version(session: Session, cluster_id: int, created_by_id: int,
                terms: AgreementTerms, now: datetime) -> Agreement:
    """Add the next version to the caller's transaction (not committed): the
    coordinator's publishing and a carried vote (clusters/governance/service.py) both go
    through here, so the same terms are refused the same way and every member must
    accept the new version."""
    check_terms(session, cluster_id, terms, now)
    current = agreement_in_force(session, cluster_id)
    agreement = Agreement(
        cluster_id=cluster_id, version=(current.version + 1) if current else 1,
        created_by_id=created_by_id, created_at=now,
        **{f.name: getattr(terms, f.name) for f in fields(AgreementTerms)},
    )
    agreement.purpose = terms.purpose.strip()
    agreement.min_coverage = dict(sorted(terms.min_coverage.items()))
    agreement.targets = dict(sorted(terms.targets.items()))
    agreement.information_rules = terms.information_rules.strip()
    session.add(agreement)
    session.flush()
    return agreement


def accept_agreement(
    session: Session, actor: User, version: int, now: datetime
) -> AgreementAcceptance:
    """An owner accepts the version in force for its business (repeating is harmless)."""
    if actor.role != Role.OWNER or actor.member_id is None:
        raise Forbidden("owner_only", N_("Only an owner of a member business can accept the "
                                         "agreement for it."))
    current = agreement_in_force(session, actor.cluster_id)
    if current is None or current.version != version:
        raise Conflict("agreement_not_current",
                       N_("That is not the version in force. Read the current version and "
                          "accept it."))
    existing = _acceptance(session, current.id, actor.member_id)
    if existing is not None:
        return existing
    acceptance = AgreementAcceptance(agreement_id=id_of(current), member_id=actor.member_id,
                                     user_id=id_of(actor), accepted_at=now)
    session.add(acceptance)
    try:
        session.commit()
    except IntegrityError:  # a co-owner accepted in the same instant: theirs stands
        session.rollback()
        existing = _acceptance(session, current.id, actor.member_id)
        assert existing is not None
        return existing
    return acceptance


def _acceptance(session: Session, agreement_id: int | None, member_id: int
                ) -> AgreementAcceptance | None:
    return session.exec(select(AgreementAcceptance).where(
        AgreementAcceptance.agreement_id == agreement_id,
        AgreementAcceptance.member_id == member_id,
    )).first()


def acceptances(session: Session, viewer: User, agreement_id: int
                ) -> list[tuple[AgreementAcceptance, Member, User]]:
    """Who accepted a version of the viewer's own cluster agreement."""
    rows = session.exec(
        select(AgreementAcceptance, Member, User)
        .join(Member, col(Member.id) == AgreementAcceptance.member_id)
        .join(User, col(User.id) == AgreementAcceptance.user_id)
        .where(AgreementAcceptance.agreement_id == agreement_id,
               Member.cluster_id == viewer.cluster_id)
        .order_by(Member.name)
    )
    return [(acceptance, member, user) for acceptance, member, user in rows]


def give_exit_notice(session: Session, actor: User, member_id: int, now: datetime, *,
                     under_vote: bool = False) -> Member:
    """Start the exit clock: the member leaves after the agreed notice, history kept.

    With `under_vote` (its own button, shown only to entitled members) a member whose
    counted vote was against a change carried within `OPPONENT_EXIT_WINDOW` leaves at
    once, without the notice period, even if it had already given notice: it never
    agreed to the terms it would otherwise be held to while its notice runs.  The
    ordinary notice always keeps the notice period the member page promises."""
    member = get_member(session, actor, member_id)
    if actor.role != Role.OWNER or actor.member_id != member.id:
        raise Forbidden("owner_only", N_("Only an owner of this business can give notice of "
                                         "exit."))
    if member.exit_effective_at is not None and member.exit_effective_at <= now:
        raise Conflict("member_exited", N_("Your business has left the cluster; its history "
                                           "stays visible but it cannot take part."))
    if under_vote:
        if not voted_against_carried_change(session, id_of(member), now):
            raise Forbidden("not_entitled_to_leave_now",
                            N_("Your business may leave without the notice period only "
                               "within 30 days after a change it voted against was carried. "
                               "Give notice of exit instead: the notice period applies."))
        member.exit_noticed_at = member.exit_noticed_at or now
        member.exit_effective_at = now
    else:
        if member.exit_noticed_at is not None:
            raise Conflict("exit_already_noticed",
                           N_("Notice of exit was already given: your business leaves the "
                              "cluster on %(date)s. Nothing more is needed; if it voted "
                              "against a carried change, it may leave now under the vote from "
                              "its page."),
                           params={"date": _cluster_clock(session, member.cluster_id,
                                                          member.exit_effective_at or now)})
        current = agreement_in_force(session, member.cluster_id)
        notice_days = current.exit_notice_days if current else 0
        member.exit_noticed_at = now
        member.exit_effective_at = now + timedelta(days=notice_days)
    session.add(member)
    session.commit()
    return member


def voted_against_carried_change(session: Session, member_id: int, now: datetime) -> bool:
    """Whether this member's counted vote was against a change carried within the exit
    window.  A vote cast but not counted at closing (the business was suspended or had
    left by then) gives no right to leave without notice; the closing keeps which
    businesses counted under `COUNTED_MEMBERS_KEY` of the proposal's stored terms."""
    rows = session.exec(
        select(AgreementProposal.terms)
        .join(ProposalVote, col(AgreementProposal.id) == ProposalVote.proposal_id)
        .where(ProposalVote.member_id == member_id, col(ProposalVote.in_favour).is_(False),
               AgreementProposal.status == ProposalStatus.CARRIED.value,
               col(AgreementProposal.closed_at) > now - OPPONENT_EXIT_WINDOW))
    return any(member_id in (stored or {}).get(COUNTED_MEMBERS_KEY, [member_id])
               for stored in rows)


def _in_force(session: Session, cluster_id: int,
              known: dict[int, Agreement | None] | None) -> Agreement | None:
    """The agreement in force, read once per cluster into `known` when the caller keeps
    it (eligibility reads the same version's minimum coverage without a second query)."""
    if known is None:
        return agreement_in_force(session, cluster_id)
    if cluster_id not in known:
        known[cluster_id] = agreement_in_force(session, cluster_id)
    return known[cluster_id]


#: `session.info` key: the participation facts a read of this transaction brought along
#: (`remember_participation`): member id -> (cluster id, version in force, accepted).
_KNOWN_PARTICIPATION = "marketplace.known_participation"


def with_participation(statement: Select[*tuple[Any, ...]],
                       cluster_id: Mapped[int] | Mapped[int | None],
                       member_id: Mapped[int | None] | ColumnElement[int]
                       ) -> Select[*tuple[Any, ...]]:
    """`statement` with two more columns: the version in force of cluster `cluster_id`
    (None when none was published) and the id of its acceptance by member `member_id`
    (None when not accepted) -- what the participation gate reads.

    A request reads its person first; asking these in the same statement and handing
    them to `remember_participation` saves every gated action (a booking tap, a bid, a
    claim) a statement, on PostgreSQL a round trip."""
    newest = aliased(Agreement)
    in_force_id = (select(newest.id).where(newest.cluster_id == cluster_id)
                   .order_by(col(newest.version).desc()).limit(1).scalar_subquery())
    return (statement.add_columns(Agreement, col(AgreementAcceptance.id))
            .outerjoin(Agreement, col(Agreement.id) == in_force_id)
            .outerjoin(AgreementAcceptance, and_(
                col(AgreementAcceptance.agreement_id) == Agreement.id,
                col(AgreementAcceptance.member_id) == member_id)))


#: The cluster's latest agreement version and the member's acceptance of it, if any
#: (after the cluster's id); built once, since every booking tap and bid asks it.
_IN_FORCE_AND_ACCEPTED = with_participation(
    select(col(Cluster.id)).select_from(Cluster)
    .where(col(Cluster.id) == bindparam("cluster_id")),
    col(Cluster.id), bindparam("member_id"))


def remember_participation(session: Session, cluster_id: int, member: Member,
                           current: Agreement | None, acceptance_id: int | None) -> None:
    """Keep what `with_participation` read for `member` (`current`: cluster
    `cluster_id`'s version in force), for the gate to use instead of asking again.
    Only for this transaction and only until it writes: a change not yet flushed
    makes the gate ask (as its query would have flushed it first), and a flush (an
    acceptance, a new version) or the transaction's end forgets it."""
    session.info[_KNOWN_PARTICIPATION] = {
        id_of(member): (cluster_id, current, acceptance_id is not None)}


@event.listens_for(Session, "after_flush")
def _forget_after_a_write(session: Session, _context: object) -> None:
    session.info.pop(_KNOWN_PARTICIPATION, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_after_the_transaction(session: Session, _transaction: object) -> None:
    session.info.pop(_KNOWN_PARTICIPATION, None)


def _known(session: Session, member: Member | MemberFacts) -> tuple[Agreement | None, bool] | None:
    """The facts remembered for `member` in this transaction, if they still hold: read
    for its own cluster, and nothing written since that a query would flush first."""
    known = session.info.get(_KNOWN_PARTICIPATION, {}).get(member.id)
    if known is None or known[0] != member.cluster_id or \
            session.new or session.dirty or session.deleted:
        return None
    return known[1], known[2]


def participation_refusal(
    session: Session, member: Member | MemberFacts, activity: Activity, now: datetime,
    in_force: dict[int, Agreement | None] | None = None,
) -> DomainError | None:
    """Why this member may not take part in `activity` now, or None if it may.

    The version in force and the member's acceptance of it are one query (every
    booking tap and bid asks this gate first), or none when the request's read of
    its person brought them along (`remember_participation`)."""
    known = _known(session, member)
    if known is not None:
        current, accepted = known
    elif in_force is not None and member.cluster_id in in_force:
        current = in_force[member.cluster_id]
        accepted = current is not None and \
            _acceptance(session, current.id, id_of(member)) is not None
    else:
        row = session.execute(_IN_FORCE_AND_ACCEPTED, {
            "member_id": id_of(member), "cluster_id": member.cluster_id}).first()
        current, accepted = (row[1], row[2] is not None) if row is not None else (None, False)
    if in_force is not None:  # the caller's other gates of this cluster ask no more
        in_force.setdefault(member.cluster_id, current)
    cluster = session.get(Cluster, member.cluster_id)
    assert cluster is not None
    return _refusal(member, cluster, current, accepted, activity, now)


def participation_refusals(
    session: Session, members: Iterable[Member | MemberFacts], activity: Activity,
    now: datetime, in_force: dict[int, Agreement | None] | None = None,
) -> dict[int | None, DomainError | None]:
    """`participation_refusal` for many members at once, in two queries per cluster.

    The fan-out of a job to a thousand members must not ask the database three
    questions per member; the rule itself is the same function either way.
    """
    facts: dict[int, tuple[Cluster, Agreement | None, set[int]]] = {}
    result: dict[int | None, DomainError | None] = {}
    for member in members:
        if member.cluster_id not in facts:
            cluster = session.get(Cluster, member.cluster_id)
            assert cluster is not None
            current = _in_force(session, member.cluster_id, in_force)
            accepted = set(session.exec(select(AgreementAcceptance.member_id).where(
                AgreementAcceptance.agreement_id == current.id))) if current else set()
            facts[member.cluster_id] = (cluster, current, accepted)
        cluster, current, accepted = facts[member.cluster_id]
        result[member.id] = _refusal(member, cluster, current, member.id in accepted,
                                     activity, now)
    return result


def _refusal(member: Member | MemberFacts, cluster: Cluster, current: Agreement | None,
             accepted: bool, activity: Activity, now: datetime) -> DomainError | None:
    """The participation rule on facts already loaded (one rule for one or many members)."""
    if member.exit_effective_at is not None and member.exit_effective_at <= now:
        return Forbidden("member_exited", N_("Your business has left the cluster; its history "
                                             "stays visible but it cannot take part."))
    if member.suspended:
        return Forbidden("member_suspended", N_("Your business is suspended. Contact the "
                                                "cluster coordinator."))
    if current is None:
        return Forbidden("no_agreement", N_("The coordinator has not published the cluster "
                                            "agreement yet; nothing can be shared before it."))
    if current.sunset_on <= cluster_today(cluster, now):
        return Forbidden("agreement_sunset", N_("The cluster agreement reached its sunset date. "
                                                "The coordinator must publish a renewed "
                                                "version."))
    if not accepted:
        return Forbidden("agreement_not_accepted",
                         N_("Your business has not accepted agreement version %(version)d. "
                            "An owner must read and accept it first."),
                         params={"version": current.version})
    if not getattr(current, f"scope_{activity.value}"):
        return Forbidden("outside_agreement_scope",
                         N_("The cluster agreement does not cover this kind of cooperation."))
    return None


def require_participation(
    session: Session, member: Member, activity: Activity, now: datetime
) -> None:
    """Raise the refusal if the member may not post, claim, bid or book now."""
    refusal = participation_refusal(session, member, activity, now)
    if refusal is not None:
        raise refusal
