"""Disputes between members over a completed job's or a finished booking's money.

A party (an owner of a member business whose money it is) opens a dispute within the
agreement's `dispute_window_days` of the job's confirmed completion or the booking's
end, on one kind of money of it (a damage fee, a share, a referral fee, the booking
fee, a late-cancellation fee): every ledger entry of that kind between its business
and another member.

Held out of settlement: the ledger is never edited, so opening writes, for each
disputed entry, its mirror image (MEMBER_DISPUTE_HOLD, keyed by the entry's id) in the
entry's own month when that month is still open, otherwise in the first open month
after it.  The held month then nets the disputed money to zero and can be approved
without it; money already settled in an approved month is taken back in an open one.
The decision writes what the payer finally owes of each entry (MEMBER_DISPUTE_SETTLED)
in the month the dispute is decided: uphold = all of it, adjust = an amount, split =
a fraction in basis points, cancel = nothing.  The decided amount is shared over the
disputed entries in proportion to their amounts (largest remainder, exact to the
cent).  So across months each party ends with exactly what the decision says.

Who decides: the coordinator, or (agreement `dispute_resolver` = "panel") up to three
participating member businesses with no part in the job or booking (not a party, not
its poster, bidder or co-bidder, not the machine's owner or booker), drawn when the
dispute opens.  Each panel business's owner casts one decision (`DisputeVote`, one per
business); the panel decides when more than half of its businesses cast the same one
(the same outcome and amount owed).  A panel that has not decided by the deadline
leaves the decision to the coordinator.  The first decision stands: a conditional
UPDATE ... WHERE status = 'open' decides exactly once.

The barrier: a dispute is read only by its parties' people, its panel's people and the
coordinator; anyone else gets the same NotFound as a dispute that does not exist.  Its
messages, photos and per-entry money (who pays whom how much: for a job share, the
winning bid's price and shares) are the parties' and the coordinator's only: the panel
(rival businesses) sees the disputed total, the reason and the outcomes to choose.
A business that left the cluster no longer sits on a panel nor counts towards its
majority; its people no longer read its disputes (their money settles as decided, in
its statements) and are told nothing more except, as a party, the outcome.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from marketplace import events
from marketplace.clusters.agreements import agreement_in_force
from marketplace.clusters.governance.service import participating_member_ids
from marketplace.clusters.models import Addressee, Cluster, Member, Role, User
from marketplace.clusters.service import active_users_of, lock_cluster_settings
from marketplace.db import utcnow
from marketplace.disputes.models import (
    DisputedEntry,
    DisputeMessage,
    DisputePanelist,
    DisputeParty,
    DisputeStatus,
    DisputeVote,
    MemberDispute,
    Outcome,
)
from marketplace.equipment.access import owner_shares
from marketplace.equipment.models import Booking, BookingStatus, Equipment
from marketplace.equipment.photos import store_photo
from marketplace.errors import N_, Conflict, Forbidden, ValidationError, not_found
from marketplace.jobs.models import (
    Bid,
    BidShare,
    ContractParty,
    JobContract,
    JobStatus,
    OverflowJob,
)
from marketplace.ledger.models import EntrySource, JobPayment, LedgerEntry
from marketplace.ledger.refunds import coordinators_of
from marketplace.ledger.service import open_month, record
from marketplace.money import allocate, split_by_weights
from marketplace.persisted import id_of
from marketplace.rows import in_cluster

MAX_TEXT = 2000
PANEL_SIZE = 3

#: What money of a job or a booking may be disputed (the ledger sources), in order.
DISPUTABLE: dict[str, tuple[EntrySource, ...]] = {
    "job": (EntrySource.JOB_SHARE, EntrySource.REFERRAL_FEE),
    "booking": (EntrySource.BOOKING, EntrySource.DAMAGE_FEE, EntrySource.CANCELLATION_FEE),
}

_JOB_MONEY = (EntrySource.JOB_SHARE, EntrySource.REFERRAL_FEE, EntrySource.PLATFORM_FEE)

MONEY_LABELS = {
    EntrySource.JOB_SHARE.value: N_("A share of the job"),
    EntrySource.REFERRAL_FEE.value: N_("The referral fee"),
    EntrySource.BOOKING.value: N_("The booking fee"),
    EntrySource.DAMAGE_FEE.value: N_("The damage fee"),
    EntrySource.CANCELLATION_FEE.value: N_("The late cancellation fee"),
}

OUTCOME_LABELS = {
    Outcome.UPHOLD.value: N_("Upheld: the money stands as recorded"),
    Outcome.ADJUST.value: N_("Adjusted to an amount"),
    Outcome.SPLIT.value: N_("Split between the parties"),
    Outcome.CANCEL.value: N_("Cancelled: nothing is owed"),
}


# -- what can be disputed -------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """A finished job or booking as a dispute sees it."""

    kind: str  # job | booking
    id: int
    cluster_id: int
    title: str
    source_id: int  # the ledger entries' source id (the contract's, the booking's)
    finished_at: datetime | None  # None while not finished
    involved: frozenset[int]  # every member with a part in it (never on its panel)


def subject_of(session: Session, viewer: User, kind: str, subject_id: int) -> Subject:
    """The job or booking of the viewer's cluster, or NotFound."""
    if kind == "job":
        job = session.get(OverflowJob, subject_id)
        if job is None or job.cluster_id != viewer.cluster_id:
            raise not_found()
        contract = session.exec(select(JobContract).where(JobContract.job_id == job.id)).first()
        if contract is None:
            raise not_found()
        involved = {contract.poster_member_id, job.poster_member_id}
        involved |= set(session.exec(select(ContractParty.member_id).where(
            ContractParty.contract_id == contract.id)))
        bids = list(session.exec(select(Bid.id, Bid.member_id).where(Bid.job_id == job.id)))
        involved |= {member for _bid, member in bids}
        involved |= set(session.exec(select(BidShare.member_id).where(
            col(BidShare.bid_id).in_([bid for bid, _m in bids]))))
        finished = None
        if job.status == JobStatus.CONFIRMED.value:  # confirmed when its money was written
            finished = session.exec(select(func.min(LedgerEntry.created_at)).where(
                LedgerEntry.cluster_id == job.cluster_id,
                col(LedgerEntry.source).in_([s.value for s in _JOB_MONEY]),
                LedgerEntry.source_id == contract.id)).one()
        return Subject("job", id_of(job), job.cluster_id, job.title, id_of(contract),
                       finished, frozenset(involved))
    if kind == "booking":
        booking = session.get(Booking, subject_id)
        if booking is None or booking.cluster_id != viewer.cluster_id:
            raise not_found()
        equipment = session.get(Equipment, booking.equipment_id)
        assert equipment is not None
        involved = {booking.member_id, *owner_shares(session, id_of(equipment))}
        ended = booking.status in (BookingStatus.RETURNED.value, BookingStatus.CLOSED.value,
                                   BookingStatus.CANCELLED.value)
        return Subject("booking", id_of(booking), booking.cluster_id, equipment.name,
                       id_of(booking), booking.ends_at if ended else None,
                       frozenset(involved))
    raise not_found()


def _entries(session: Session, subject: Subject, source: str, member_id: int
             ) -> list[LedgerEntry]:
    """The entries of that money between the member and another member.  A booking fee
    already refunded (a cancelled booking) is not there to dispute: holding it would
    give the booker its fee back a second time."""
    if source == EntrySource.BOOKING.value and session.exec(select(LedgerEntry.id).where(
            LedgerEntry.cluster_id == subject.cluster_id,
            LedgerEntry.source == EntrySource.BOOKING_REFUND.value,
            LedgerEntry.source_id == subject.source_id)).first() is not None:
        return []
    return list(session.exec(select(LedgerEntry).where(
        LedgerEntry.cluster_id == subject.cluster_id, LedgerEntry.source == source,
        LedgerEntry.source_id == subject.source_id,
        col(LedgerEntry.payer_member_id).is_not(None),
        col(LedgerEntry.payee_member_id).is_not(None),
        (col(LedgerEntry.payer_member_id) == member_id)
        | (col(LedgerEntry.payee_member_id) == member_id))
        .order_by(col(LedgerEntry.id))))


PAID_BY_CARD = N_("This job was paid by card through the platform, which transferred each "
                  "party's part, so its money cannot be held in a dispute. Ask the "
                  "coordinator to correct it in the current month.")


def paid_by_card(session: Session, subject: Subject) -> bool:
    """Whether the customer paid the job on the platform (Stripe): its parts then move
    from the platform, not between the members, and were transferred by Stripe."""
    return session.exec(select(JobPayment.id).where(
        JobPayment.contract_id == subject.source_id)).first() is not None


def _fee_passed_on(session: Session, subject: Subject) -> bool:
    """Whether a leaving co-owner passed on its part of the booking's fee: holding the
    booker's entry to it would have it pay back what it no longer has."""
    return subject.kind == "booking" and session.exec(select(LedgerEntry.id).where(
        LedgerEntry.cluster_id == subject.cluster_id,
        LedgerEntry.source == EntrySource.BOOKING_HANDOVER.value,
        LedgerEntry.source_id == subject.source_id)).first() is not None


@dataclass(frozen=True)
class Disputable:
    source: str
    amount_minor: int  # the total of the entries (what is disputed)
    dispute_id: int | None  # the dispute already holding (part of) it
    currency: str


def window_end(session: Session, subject: Subject, source: str | None = None
               ) -> datetime | None:
    """Until when a party may open a dispute on that money (None while the job or
    booking runs).  A booking's window runs from its end or, when the money was written
    later (a damage fee charged at a late inspection), from when it was written; without
    a source, the latest window of the booking's money."""
    if subject.finished_at is None:
        return None
    agreement = agreement_in_force(session, subject.cluster_id)
    days = agreement.dispute_window_days if agreement is not None else 14
    start = subject.finished_at
    if subject.kind == "booking":
        sources = [source] if source is not None else [s.value for s in DISPUTABLE["booking"]]
        written = session.exec(select(func.min(LedgerEntry.created_at)).where(
            LedgerEntry.cluster_id == subject.cluster_id,
            col(LedgerEntry.source).in_(sources),
            LedgerEntry.source_id == subject.source_id)
            .group_by(col(LedgerEntry.source))).all()
        start = max([start, *(w for w in written if w is not None)])
    return start + timedelta(days=days)


def disputable_money(session: Session, actor: User, subject: Subject) -> list[Disputable]:
    """The kinds of money of the subject the actor's business could dispute."""
    if actor.member_id is None:
        return []
    found = []
    for source in DISPUTABLE[subject.kind]:
        entries = _entries(session, subject, source.value, actor.member_id)
        if not entries:
            continue
        held = session.exec(select(DisputedEntry.dispute_id).where(
            col(DisputedEntry.entry_id).in_([e.id for e in entries]))).first()
        found.append(Disputable(source.value, sum(e.amount_minor for e in entries), held,
                                entries[0].currency))
    return found


# -- opening --------------------------------------------------------------------------------


def open_dispute(session: Session, actor: User, kind: str, subject_id: int, source: str,
                 reason: str, now: datetime) -> MemberDispute:
    """Open a dispute and hold its money out of settlement; every reader is told."""
    subject = subject_of(session, actor, kind, subject_id)
    if actor.member_id is None or actor.member_id not in subject.involved:
        raise not_found()  # not a party: as if there were nothing to dispute here
    if actor.role != Role.OWNER:
        raise Forbidden("owner_only", N_("Only an owner of a member business can open a "
                                         "dispute on its money. Ask an owner of your "
                                         "business."))
    errors: dict[str, str] = {}
    if source not in {s.value for s in DISPUTABLE[kind]}:
        errors["source"] = N_("Choose which money you dispute.")
    if not reason.strip() or len(reason) > MAX_TEXT:
        errors["reason"] = N_("Say what is wrong with it (up to 2000 characters).")
    if errors:
        raise ValidationError("invalid_dispute", N_("Some fields need your attention."),
                              fields=errors)
    if kind == "job" and paid_by_card(session, subject):
        raise Conflict("paid_by_card", PAID_BY_CARD)
    ends = window_end(session, subject, source)
    if ends is None:
        raise Conflict("not_finished", N_("A dispute can be opened once the job is confirmed "
                                          "complete or the booking has ended."))
    if now > ends:
        raise Conflict("window_closed", N_(
            "The agreement allows disputes until %(date)s, which has passed. Talk to the "
            "coordinator, who can add a correction to the current month."),
            params={"date": ends.date().isoformat()})
    if source == EntrySource.BOOKING.value and _fee_passed_on(session, subject):
        raise Conflict("fee_passed_on", N_(
            "Part of this booking's fee passed to the remaining co-owners when a co-owner "
            "left the cluster, so it cannot be held in a dispute. Ask the coordinator to "
            "correct it in the current month."))
    entries = _entries(session, subject, source, actor.member_id)
    if not entries:
        message = N_("Your business has no such money on this job or booking.")
        raise ValidationError("nothing_to_dispute", message, fields={"source": message})
    _timezone, _currency = lock_cluster_settings(session, subject.cluster_id)
    agreement = agreement_in_force(session, subject.cluster_id)
    resolver = agreement.dispute_resolver if agreement is not None else "coordinator"
    decide_days = agreement.dispute_decide_days if agreement is not None else 14
    dispute = MemberDispute(
        cluster_id=subject.cluster_id, subject=kind, subject_id=subject.id, source=source,
        title=subject.title[:200], opened_by_id=id_of(actor),
        opened_by_member_id=actor.member_id, reason=reason.strip(),
        disputed_minor=sum(e.amount_minor for e in entries), currency=entries[0].currency,
        resolver=resolver, opened_at=now, deadline=now + timedelta(days=decide_days))
    session.add(dispute)
    session.flush()
    parties = {actor.member_id}
    for entry in entries:
        session.add(DisputedEntry(dispute_id=id_of(dispute), entry_id=id_of(entry),
                                  amount_minor=entry.amount_minor))
        parties |= {entry.payer_member_id or 0, entry.payee_member_id or 0} - {0}
    try:
        session.flush()  # the unique key on the entry: this money is disputed once
    except IntegrityError:
        session.rollback()
        raise Conflict("already_disputed", N_("This money is already in dispute. Follow "
                                              "that dispute on the disputes page.")) from None
    for member_id in sorted(parties):
        session.add(DisputeParty(dispute_id=id_of(dispute), member_id=member_id))
    if resolver == "panel":
        panel = _draw_panel(session, subject, parties, id_of(dispute), now)
        for member_id in panel:
            session.add(DisputePanelist(dispute_id=id_of(dispute), member_id=member_id))
        if not panel:  # nobody uninvolved takes part: the coordinator decides
            dispute.resolver = "coordinator"
    cluster = _cluster(session, subject.cluster_id)
    for entry in entries:  # the mirror image, in the entry's month while it is open
        record(session, cluster, EntrySource.MEMBER_DISPUTE_HOLD, id_of(entry),
               entry.payee_member_id, entry.payer_member_id, entry.amount_minor, now,
               currency=entry.currency, memo=dispute.title,
               month=open_month(session, subject.cluster_id, entry.month))
    _tell(session, dispute, N_(
        "A dispute was opened on money of %(title)s. The money is held out of "
        "settlement until it is decided (by %(deadline)s)."), now)
    try:
        session.commit()
    except IntegrityError:  # the hold's key: another dispute held the same entry meanwhile
        session.rollback()
        raise Conflict("already_disputed", N_("This money is already in dispute. Follow "
                                              "that dispute on the disputes page.")) from None
    return dispute


def _draw_panel(session: Session, subject: Subject, parties: set[int], dispute_id: int,
                now: datetime) -> list[int]:
    """Up to three participating businesses with no part in the subject, drawn at random
    (seeded by the dispute, so a rerun draws the same)."""
    candidates = sorted(participating_member_ids(session, subject.cluster_id, now)
                        - parties - subject.involved)
    return sorted(random.Random(dispute_id).sample(candidates,
                                                   min(PANEL_SIZE, len(candidates))))


def _cluster(session: Session, cluster_id: int) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    assert cluster is not None
    return cluster


# -- reading (the barrier) ------------------------------------------------------------------


def _member_ids(session: Session, model: type[DisputeParty] | type[DisputePanelist],
                dispute_id: int) -> set[int]:
    return set(session.exec(select(model.member_id).where(model.dispute_id == dispute_id)))


def may_read(session: Session, viewer: User, dispute: MemberDispute,
             now: datetime | None = None) -> bool:
    """Its parties' people, its panel's people, the coordinator: nobody else.  A business
    that left keeps only its statements: its people read none of its disputes any more
    (their money still settles as decided, in the statements)."""
    if dispute.cluster_id != viewer.cluster_id:
        return False
    if viewer.role == Role.COORDINATOR:
        return True
    return viewer.member_id is not None and not _has_left(session, viewer, now) \
        and viewer.member_id in (
        _member_ids(session, DisputeParty, id_of(dispute))
        | _member_ids(session, DisputePanelist, id_of(dispute)))


def may_read_talk(session: Session, viewer: User, dispute: MemberDispute,
                  now: datetime | None = None) -> bool:
    """Its messages, photos and per-entry money: its parties' people and the
    coordinator only.  The panel (rival businesses) decides on the disputed total and
    the reason, and never reads what the parties say to each other, nor a bid's price
    or shares behind the entries."""
    if dispute.cluster_id != viewer.cluster_id:
        return False
    if viewer.role == Role.COORDINATOR:
        return True
    return viewer.member_id is not None and not _has_left(session, viewer, now) \
        and viewer.member_id in _member_ids(session, DisputeParty, id_of(dispute))


def get_dispute(session: Session, viewer: User, dispute_id: int,
                now: datetime | None = None) -> MemberDispute:
    """A dispute the viewer may read, or the NotFound a missing one answers."""
    dispute = session.get(MemberDispute, dispute_id)
    if dispute is None or not may_read(session, viewer, dispute, now):
        raise not_found()
    return dispute


def list_disputes(session: Session, viewer: User, now: datetime | None = None
                  ) -> list[MemberDispute]:
    """The disputes the viewer may read, open ones first, newest first."""
    query = select(MemberDispute).where(MemberDispute.cluster_id == viewer.cluster_id)
    if viewer.role != Role.COORDINATOR:
        if viewer.member_id is None or _has_left(session, viewer, now):
            return []
        mine = select(DisputeParty.dispute_id).where(DisputeParty.member_id == viewer.member_id)
        panel = select(DisputePanelist.dispute_id).where(
            DisputePanelist.member_id == viewer.member_id)
        query = query.where(col(MemberDispute.id).in_(mine) | col(MemberDispute.id).in_(panel))
    rows = list(session.exec(query.order_by(col(MemberDispute.id).desc())))
    return sorted(rows, key=lambda d: d.status != DisputeStatus.OPEN.value)


def _former_ids(session: Session, cluster_id: int, now: datetime) -> set[int]:
    """The cluster's businesses that have left by `now` (their exit took effect)."""
    return {id_of(m) for m in session.exec(select(Member).where(
        Member.cluster_id == cluster_id, col(Member.exit_effective_at).is_not(None),
        col(Member.exit_effective_at) <= now))}


def _has_left(session: Session, viewer: User, now: datetime | None) -> bool:
    """Whether the viewer's business has left by `now` (by default, this moment)."""
    return viewer.member_id in _former_ids(session, viewer.cluster_id, now or utcnow())


def current_panel(session: Session, dispute: MemberDispute, now: datetime) -> set[int]:
    """The panel's businesses that are still members: one that left no longer sits (nor
    counts towards the majority)."""
    return _member_ids(session, DisputePanelist, id_of(dispute)) - _former_ids(
        session, dispute.cluster_id, now)


def may_decide(session: Session, viewer: User, dispute: MemberDispute, now: datetime) -> bool:
    """The coordinator (always for its own disputes; for a panel's once its deadline has
    passed or every business on it has left); an owner of a panel business that is still
    a member for a panel's."""
    if dispute.status != DisputeStatus.OPEN.value or dispute.cluster_id != viewer.cluster_id:
        return False
    if viewer.role == Role.COORDINATOR:
        return dispute.resolver == "coordinator" or dispute.deadline <= now \
            or not current_panel(session, dispute, now)
    return (dispute.resolver == "panel" and viewer.role == Role.OWNER
            and viewer.member_id is not None
            and viewer.member_id in current_panel(session, dispute, now)
            and session.get(DisputeVote, (dispute.id, viewer.member_id)) is None)


def may_post(session: Session, viewer: User, dispute: MemberDispute,
             now: datetime | None = None) -> bool:
    return dispute.status == DisputeStatus.OPEN.value and may_read_talk(session, viewer,
                                                                         dispute, now)


@dataclass(frozen=True)
class EntryLine:
    payer: str
    payee: str
    amount_minor: int
    month: str
    settled_minor: int | None


@dataclass(frozen=True)
class MessageView:
    id: int
    author: str
    business: str
    body: str
    photo: str | None
    created_at: datetime


@dataclass(frozen=True)
class DisputeView:
    """A dispute as one reader sees it: built only for those `may_read` lets in."""

    dispute: MemberDispute
    money_label: str
    opened_by: str
    parties: tuple[str, ...]
    panel: tuple[str, ...]
    entries: tuple[EntryLine, ...]
    messages: tuple[MessageView, ...]
    may_decide: bool
    may_post: bool
    panel_votes: int
    decided_by: str  # who recorded the decision (the audit trail), once decided
    #: Whether the viewer reads the parties' conversation and the per-entry money (a
    #: party's people, the coordinator); the panel reads neither: `entries` and
    #: `messages` are then empty.
    talk: bool = False


def dispute_view(session: Session, viewer: User, dispute: MemberDispute, now: datetime
                 ) -> DisputeView:
    if not may_read(session, viewer, dispute, now):
        raise not_found()
    talk = may_read_talk(session, viewer, dispute, now)
    names = {m.id: m.name for m in session.exec(
        select(Member).where(Member.cluster_id == dispute.cluster_id))}
    lines = tuple(
        EntryLine(names.get(entry.payer_member_id or 0, ""),
                  names.get(entry.payee_member_id or 0, ""), held.amount_minor, entry.month,
                  held.settled_minor)
        for held, entry in session.exec(
            select(DisputedEntry, LedgerEntry)
            .join(LedgerEntry, col(LedgerEntry.id) == DisputedEntry.entry_id)
            .where(DisputedEntry.dispute_id == dispute.id).order_by(col(LedgerEntry.id)))
    ) if talk else ()
    people = {u.id: u.name for u in session.exec(select(User).where(
        User.cluster_id == dispute.cluster_id))}
    messages = tuple(
        MessageView(id_of(m), people.get(m.author_id, ""),
                    names.get(m.author_member_id or 0, ""), m.body, m.photo, m.created_at)
        for m in session.exec(select(DisputeMessage).where(
            DisputeMessage.dispute_id == dispute.id).order_by(col(DisputeMessage.id)))
    ) if talk else ()
    return DisputeView(
        dispute=dispute,
        money_label=MONEY_LABELS.get(dispute.source, dispute.source),
        opened_by=names.get(dispute.opened_by_member_id, ""),
        parties=tuple(sorted(names.get(m, "") for m in _member_ids(
            session, DisputeParty, id_of(dispute)))),
        panel=tuple(sorted(names.get(m, "") for m in current_panel(session, dispute, now))),
        entries=lines, messages=messages,
        may_decide=may_decide(session, viewer, dispute, now),
        may_post=may_post(session, viewer, dispute, now),
        panel_votes=panel_votes(session, dispute, now),
        decided_by=people.get(dispute.decided_by_id or 0, ""), talk=talk)


# -- messages -------------------------------------------------------------------------------


def post_message(session: Session, actor: User, dispute_id: int, body: str,
                 photo: bytes | None, photo_dir: Path, request_key: str | None,
                 now: datetime) -> DisputeMessage:
    """A message, a photo or both; the other readers are told.  The photo is stored
    re-encoded without its metadata (where it was taken, the phone).  The same form
    sent twice (its one-time key) is stored once."""
    dispute = get_dispute(session, actor, dispute_id, now)
    if not may_read_talk(session, actor, dispute, now):
        raise not_found()  # the panel: as if there were no conversation to join
    if dispute.status != DisputeStatus.OPEN.value:
        raise Conflict("dispute_decided", N_("This dispute is decided; its messages are "
                                             "kept as they were."))
    body = body.strip()
    if len(body) > MAX_TEXT or (not body and not photo):
        message = N_("Write a message (up to 2000 characters) or add a photo.")
        raise ValidationError("invalid_message", message, fields={"body": message})
    if request_key is not None and len(request_key) > 64:
        request_key = None
    if request_key:
        found = session.exec(select(DisputeMessage).where(
            DisputeMessage.dispute_id == dispute_id, DisputeMessage.author_id == actor.id,
            DisputeMessage.request_key == request_key)).first()
        if found is not None:
            return found
    name = store_photo(photo, photo_dir) if photo else None
    message_row = DisputeMessage(
        dispute_id=dispute_id, author_id=id_of(actor),
        author_member_id=actor.member_id if actor.role != Role.COORDINATOR else None,
        body=body, photo=name, request_key=request_key or None, created_at=now)
    session.add(message_row)
    _tell(session, dispute, N_("There is a new message in the dispute over "
                               "%(title)s."), now, leave_out=id_of(actor), talk=True)
    try:
        session.commit()
    except IntegrityError:  # the same form sent twice at once
        session.rollback()
        found = session.exec(select(DisputeMessage).where(
            DisputeMessage.dispute_id == dispute_id, DisputeMessage.author_id == actor.id,
            DisputeMessage.request_key == request_key)).first()
        if found is None:
            raise
        return found
    return message_row


def photo_of(session: Session, viewer: User, message_id: int) -> str:
    """The stored name of a message's photo in a dispute whose messages the viewer may
    read; NotFound otherwise (the panel and anyone else answer as a missing message)."""
    message = session.get(DisputeMessage, message_id)
    if message is None or not message.photo:
        raise not_found()
    dispute = get_dispute(session, viewer, message.dispute_id)
    if not may_read_talk(session, viewer, dispute):
        raise not_found()
    return message.photo


# -- deciding -------------------------------------------------------------------------------


def decided_amount(disputed_minor: int, outcome: str, amount_minor: int | None,
                   split_bp: int | None) -> int:
    """What the payers owe of the disputed money under the outcome."""
    if outcome == Outcome.UPHOLD.value:
        return disputed_minor
    if outcome == Outcome.CANCEL.value:
        return 0
    if outcome == Outcome.ADJUST.value:
        assert amount_minor is not None
        return amount_minor
    assert split_bp is not None
    return allocate(disputed_minor, [split_bp, 10_000 - split_bp])[0]


def decide(session: Session, actor: User, dispute_id: int, outcome: str,
           amount_minor: int | None, split_bp: int | None, note: str, now: datetime
           ) -> MemberDispute:
    """Decide once: write what each disputed entry finally owes in the current open
    month, keep who decided, how and why, and tell every reader."""
    dispute = get_dispute(session, actor, dispute_id, now)
    if not may_decide(session, actor, dispute, now):
        if actor.member_id is not None and session.get(
                DisputeVote, (dispute_id, actor.member_id)) is not None:
            raise Conflict("already_voted", N_("Your business has already cast its decision "
                                               "on this dispute; its first one stands."))
        if dispute.status != DisputeStatus.OPEN.value:
            raise Conflict("already_decided", N_("This dispute is already decided; the "
                                                 "first decision stands."))
        raise Forbidden("may_not_decide", N_(
            "Only the dispute's resolver can decide it: the coordinator, or the panel the "
            "agreement names (the coordinator once the panel's deadline has passed)."))
    errors: dict[str, str] = {}
    if outcome not in {o.value for o in Outcome}:
        errors["outcome"] = N_("Choose a decision.")
    if outcome == Outcome.ADJUST.value and (
            amount_minor is None or not 0 <= amount_minor <= dispute.disputed_minor):
        errors["amount"] = N_("Enter an amount between zero and the disputed amount.")
    if outcome == Outcome.SPLIT.value and (split_bp is None or not 0 <= split_bp <= 10_000):
        errors["split_percent"] = N_("Enter the payer's part as a percentage from 0 to 100.")
    if not note.strip() or len(note) > MAX_TEXT:
        errors["note"] = N_("Say why (up to 2000 characters); the parties read it.")
    if errors:
        raise ValidationError("invalid_decision", N_("Some fields need your attention."),
                              fields=errors)
    total = decided_amount(dispute.disputed_minor, outcome, amount_minor, split_bp)
    lock_cluster_settings(session, dispute.cluster_id)  # an approval waits for the entries
    if actor.role != Role.COORDINATOR and not _panel_carries(
            session, actor, dispute_id, outcome, total, split_bp, note, now):
        session.commit()
        return dispute
    claimed = session.execute(update(MemberDispute).where(
        col(MemberDispute.id) == dispute_id,
        col(MemberDispute.status) == DisputeStatus.OPEN.value).values(
        status=DisputeStatus.DECIDED.value, outcome=outcome, decided_minor=total,
        split_bp=split_bp if outcome == Outcome.SPLIT.value else None,
        decision_note=note.strip(), decided_by_id=id_of(actor), decided_at=now))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # a DML result has rowcount
        session.rollback()
        raise Conflict("already_decided", N_("This dispute is already decided; the first "
                                             "decision stands."))
    session.refresh(dispute)
    held = list(session.exec(select(DisputedEntry, LedgerEntry).join(
        LedgerEntry, col(LedgerEntry.id) == DisputedEntry.entry_id).where(
        DisputedEntry.dispute_id == dispute_id).order_by(col(LedgerEntry.id))))
    parts = split_by_weights(total, [row.amount_minor for row, _e in held]) if total \
        else [0] * len(held)
    cluster = _cluster(session, dispute.cluster_id)
    for (row, entry), part in zip(held, parts, strict=True):
        row.settled_minor = part
        session.add(row)
        record(session, cluster, EntrySource.MEMBER_DISPUTE_SETTLED, id_of(entry),
               entry.payer_member_id, entry.payee_member_id, part, now,
               currency=entry.currency, memo=dispute.title)
    _tell(session, dispute, DECIDED_MESSAGES[outcome], now, outcome=True)
    session.commit()
    return dispute


def _panel_carries(session: Session, actor: User, dispute_id: int, outcome: str, total: int,
                   split_bp: int | None, note: str, now: datetime) -> bool:
    """Record the panel business's decision; whether more than half of the panel's
    businesses have now cast this same one (the same outcome and amount owed).

    The dispute's row is locked first, so two panellists voting at once are counted one
    after the other (on SQLite the one writer does the same)."""
    dispute = in_cluster(session, MemberDispute, dispute_id, actor.cluster_id, for_update=True)
    if dispute.status != DisputeStatus.OPEN.value:
        session.rollback()
        raise Conflict("already_decided", N_("This dispute is already decided; the first "
                                             "decision stands."))
    assert actor.member_id is not None
    session.add(DisputeVote(dispute_id=dispute_id, member_id=actor.member_id,
                            user_id=id_of(actor), outcome=outcome, decided_minor=total,
                            split_bp=split_bp if outcome == Outcome.SPLIT.value else None,
                            note=note.strip(), cast_at=now))
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("already_voted", N_("Your business has already cast its decision "
                                           "on this dispute; its first one stands.")) from None
    panel = current_panel(session, dispute, now)
    agreeing = set(session.exec(select(DisputeVote.member_id).where(
        DisputeVote.dispute_id == dispute_id, DisputeVote.outcome == outcome,
        DisputeVote.decided_minor == total))) & panel
    if 2 * len(agreeing) > len(panel):
        return True
    _tell(session, dispute, N_("A member of the panel has cast its decision on the dispute "
                               "over %(title)s. The panel decides when more than half of "
                               "it agrees."), now)
    return False


def panel_votes(session: Session, dispute: MemberDispute, now: datetime) -> int:
    """How many of the panel's businesses still members have cast a decision (not
    which: that is the panel's); a business that left no longer counts."""
    return len(set(session.exec(select(DisputeVote.member_id).where(
        DisputeVote.dispute_id == dispute.id))) & current_panel(session, dispute, now))


DECIDED_MESSAGES = {
    Outcome.UPHOLD.value: N_("The dispute over %(title)s is decided: upheld, "
                             "the money stands. It settles with this month."),
    Outcome.ADJUST.value: N_("The dispute over %(title)s is decided: adjusted "
                             "to another amount. It settles with this month."),
    Outcome.SPLIT.value: N_("The dispute over %(title)s is decided: split "
                            "between the parties. It settles with this month."),
    Outcome.CANCEL.value: N_("The dispute over %(title)s is decided: "
                             "cancelled, nothing is owed."),
}


# -- the scheduler ----------------------------------------------------------------------------


def mark_overdue(session: Session, now: datetime) -> int:
    """Scheduler: tell every reader once when a dispute's deadline passed undecided (a
    panel's then passes to the coordinator); how many it marked."""
    due = list(session.exec(select(MemberDispute.id).where(
        MemberDispute.status == DisputeStatus.OPEN.value, col(MemberDispute.deadline) <= now,
        col(MemberDispute.overdue_at).is_(None)).order_by(col(MemberDispute.id))))
    session.commit()
    marked = 0
    for dispute_id in due:
        claimed = session.execute(update(MemberDispute).where(
            col(MemberDispute.id) == dispute_id,
            col(MemberDispute.status) == DisputeStatus.OPEN.value,
            col(MemberDispute.overdue_at).is_(None)).values(overdue_at=now))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]  # a DML result has rowcount
            session.rollback()
            continue
        dispute = session.get(MemberDispute, dispute_id, populate_existing=True)
        assert dispute is not None
        _tell(session, dispute, N_(
            "The dispute over %(title)s was not decided by its deadline. "
            "The coordinator decides it now."), now)
        session.commit()
        marked += 1
    return marked


# -- telling --------------------------------------------------------------------------------


def readers(session: Session, dispute: MemberDispute, now: datetime, *, talk: bool = False,
            outcome: bool = False) -> list[User | Addressee]:
    """Every active person told of the dispute: the coordinator, the parties' people and
    (unless it is the parties' conversation, `talk`) the panel's.  A business that left
    is told nothing more, except a party of the outcome (its money)."""
    former = _former_ids(session, dispute.cluster_id, now)
    parties = _member_ids(session, DisputeParty, id_of(dispute))
    members = parties - former
    if not talk:
        members |= current_panel(session, dispute, now)
    people: list[User | Addressee] = [*active_users_of(session, sorted(members))]
    if outcome:  # the decision moves a former party's money: its last statements show it
        people += active_users_of(session, sorted(parties & former), include_former=True)
    people += coordinators_of(session, dispute.cluster_id)
    return people


def _tell(session: Session, dispute: MemberDispute, message: str, now: datetime, *,
          leave_out: int | None = None, talk: bool = False, outcome: bool = False) -> None:
    told: Iterable[User | Addressee] = (
        p for p in readers(session, dispute, now, talk=talk, outcome=outcome)
        if p.id != leave_out)
    events.notify(session, told, "payment.member_dispute", message, now=now,
                  params={"title": dispute.title,
                          "deadline": dispute.deadline.date().isoformat()},
                  payload={"id": dispute.id}, link=f"/disputes/{dispute.id}")
