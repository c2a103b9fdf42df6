"""Monthly settlement: statements, netting to one transfer per member, approval.

Every member's month nets to one number: what it is owed minus what it owes.
Settling through the cluster's platform account (hub and spoke) needs one
transfer per member whose net is not zero -- the fewest possible when each
member must end at zero and members do not pay each other directly -- and the
platform's own net is exactly minus the sum of the members' (every entry moves
money between two accounts), which the coordinator's page checks.

The scheduler drafts the previous month on the 1st (cluster time zone; a
sweep, so a month missed while the app was down is drafted at the next
start).  The coordinator may add adjustments with a reason, then approves:
the conditional update from draft to approved happens once, records the
transfers (offline: manual bank transfers with a reference) and locks the
month.  Only a month that is over can be approved, and nothing is ever written
into an approved month: an entry that belongs to one (the time zone changed
after the approval) goes to the next open month (see `service.record`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import insert, literal, union_all, update
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from marketplace import events
from marketplace.clusters.agreements import cluster_today
from marketplace.clusters.models import ADDRESSEE, Addressee, Cluster, Member, User
from marketplace.clusters.service import (
    active_users_of,
    get_cluster,
    lock_cluster_settings,
    require_coordinator,
)
from marketplace.errors import N_, Conflict, ValidationError, not_found
from marketplace.ledger.models import (
    EntrySource,
    LedgerEntry,
    Settlement,
    SettlementStatus,
    SettlementTransfer,
    TransferDirection,
)
from marketplace.ledger.service import record
from marketplace.persisted import id_of

MAX_ADJUSTMENT_MINOR = 10_000_000_00


@dataclass(frozen=True)
class Net:
    """One account's month: what it is owed (credits) and owes (debits)."""

    member_id: int | None  # None: the platform account
    credits: int
    debits: int

    @property
    def net(self) -> int:
        return self.credits - self.debits


def parse_month(text: str) -> str:
    """A YYYY-MM month, or a ValidationError saying how to write it."""
    message = N_("Give the month as YYYY-MM, for example 2026-11.")
    try:
        parsed = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ValidationError("invalid_month", message, fields={"month": message}) from None
    if not 2000 <= parsed.year <= 2999:  # no ledger outside; month arithmetic stays in range
        raise ValidationError("invalid_month", message, fields={"month": message})
    return f"{parsed.year:04d}-{parsed.month:02d}"


def previous_month(month: str) -> str:
    """The month before `month` (YYYY-MM)."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if number == 1 else f"{year}-{number - 1:02d}"


def current_month(cluster: Cluster, now: datetime) -> str:
    """The month it is now where the cluster is."""
    return cluster_today(cluster, now).strftime("%Y-%m")


def month_nets(session: Session, cluster_id: int, month: str) -> dict[int | None, Net]:
    """Every account's credits and debits in the month, in one grouped query.

    Each entry is one credit (its payee's) and one debit (its payer's): the two
    sides are read as one stream (UNION ALL) and summed per account, the least
    any netting must read (bench/settlement.py compares it with that query
    written by hand).
    """
    where = (col(LedgerEntry.cluster_id) == cluster_id, col(LedgerEntry.month) == month)
    moves = union_all(
        select(col(LedgerEntry.payee_member_id).label("account"),
               col(LedgerEntry.amount_minor).label("credit"), literal(0).label("debit"))
        .where(*where),
        select(col(LedgerEntry.payer_member_id), literal(0), col(LedgerEntry.amount_minor))
        .where(*where)).subquery()
    rows = session.execute(select(moves.c.account, func.sum(moves.c.credit),
                                  func.sum(moves.c.debit)).group_by(moves.c.account))
    return {account: Net(account, int(credits), int(debits))
            for account, credits, debits in rows}


@dataclass(frozen=True)
class PlannedTransfer:
    member_id: int
    direction: TransferDirection
    amount_minor: int


def netting(nets: dict[int | None, Net]) -> list[PlannedTransfer]:
    """One transfer per member with a non-zero net, through the platform, by member id."""
    transfers = []
    for member_id in sorted(m for m in nets if m is not None):
        net = nets[member_id].net
        if net > 0:
            transfers.append(PlannedTransfer(member_id, TransferDirection.TO_MEMBER, net))
        elif net < 0:
            transfers.append(PlannedTransfer(member_id, TransferDirection.FROM_MEMBER, -net))
    return transfers


def statement(session: Session, cluster_id: int, member_id: int, month: str
              ) -> list[LedgerEntry]:
    """The member's entries of the month, oldest first (its statement lines)."""
    return list(session.exec(select(LedgerEntry).where(
        LedgerEntry.cluster_id == cluster_id, LedgerEntry.month == month,
        (col(LedgerEntry.payer_member_id) == member_id)
        | (col(LedgerEntry.payee_member_id) == member_id))
        .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))))


def months_with_entries(session: Session, cluster_id: int, member_id: int | None = None
                        ) -> list[str]:
    """Months that have entries (for the member, if given), newest first."""
    query = select(LedgerEntry.month).where(LedgerEntry.cluster_id == cluster_id).distinct()
    if member_id is not None:
        query = query.where((col(LedgerEntry.payer_member_id) == member_id)
                            | (col(LedgerEntry.payee_member_id) == member_id))
    return sorted(session.exec(query).all(), reverse=True)


def settlement_for(session: Session, cluster_id: int, month: str) -> Settlement | None:
    """The month's settlement, if drafted."""
    return session.exec(select(Settlement).where(Settlement.cluster_id == cluster_id,
                                                 Settlement.month == month)).first()


def draft(session: Session, cluster: Cluster, month: str, now: datetime) -> Settlement:
    """Draft the month's settlement once (a second call returns the same one)."""
    existing = settlement_for(session, id_of(cluster), month)
    if existing is not None:
        return existing
    settlement = Settlement(cluster_id=id_of(cluster), month=month, drafted_at=now)
    session.add(settlement)
    with_entries = set(session.exec(select(LedgerEntry.payer_member_id).where(
        LedgerEntry.cluster_id == cluster.id, LedgerEntry.month == month)))
    with_entries |= set(session.exec(select(LedgerEntry.payee_member_id).where(
        LedgerEntry.cluster_id == cluster.id, LedgerEntry.month == month)))
    events.notify(session, active_users_of(session, sorted(m for m in with_entries if m),
                                           include_former=True),  # its statements: still its
                  "settlement.drafted",
                  N_("The statement for %(month)s is drafted: check it before the "
                     "coordinator approves the month."),
                  now=now, params={"month": month}, payload={"month": month},
                  link=f"/ledger/{month}")
    try:
        session.commit()
    except IntegrityError:  # drafted at the same moment elsewhere
        session.rollback()
        found = settlement_for(session, id_of(cluster), month)
        assert found is not None
        return found
    return settlement


def draft_for(session: Session, actor: User, month: str, now: datetime) -> Settlement:
    """The coordinator drafts a finished month by hand (the scheduler does it on the 1st)."""
    require_coordinator(actor)
    cluster = get_cluster(session, actor)
    month = parse_month(month)
    if month >= current_month(cluster, now):
        raise Conflict("month_not_over", N_("A month can be settled only after it ends."))
    return draft(session, cluster, month, now)


def draft_due(session: Session, now: datetime) -> int:
    """Scheduler sweep: draft every cluster's previous month that has entries and no draft."""
    drafted = 0
    for cluster in session.exec(select(Cluster)).all():
        month = previous_month(current_month(cluster, now))
        if settlement_for(session, id_of(cluster), month) is not None:
            continue
        if session.exec(select(LedgerEntry.id).where(LedgerEntry.cluster_id == cluster.id,
                                                     LedgerEntry.month == month)).first():
            draft(session, cluster, month, now)
            drafted += 1
    return drafted


def _require_open(session: Session, cluster: Cluster, month: str, now: datetime) -> str:
    """The cluster's currency, read under its lock, once `month` is open for an entry."""
    # Share the cluster's lock until the entry is committed, so an approval running
    # meanwhile waits and then settles the entry with the rest of the month; the
    # settings are read under it too, not from the row read before it was taken.
    timezone, currency = lock_cluster_settings(session, id_of(cluster))
    settlement = settlement_for(session, id_of(cluster), month)
    if settlement is not None and settlement.status == SettlementStatus.APPROVED:
        raise Conflict("month_locked", N_("This month is settled and locked. Add the "
                                          "correction to the current month instead."))
    if month > now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m"):
        raise Conflict("month_in_future", N_("That month has not started yet."))
    return currency


def add_adjustment(session: Session, actor: User, month: str, member_id: int,
                   amount_minor: int, reason: str, now: datetime) -> LedgerEntry:
    """The coordinator credits (positive) or charges (negative) a member, with a reason.

    The adjustment moves money between the member and the platform account, in
    the given month if it is not locked; who made it and why are kept.
    """
    require_coordinator(actor)
    cluster = get_cluster(session, actor)
    month = parse_month(month)
    member = session.get(Member, member_id)
    if member is None or member.cluster_id != cluster.id:
        raise not_found()
    errors: dict[str, str] = {}
    if amount_minor == 0 or abs(amount_minor) > MAX_ADJUSTMENT_MINOR:
        errors["amount"] = N_("Enter an amount other than zero: positive to credit the "
                              "member, negative to charge it.")
    if not 0 < len(reason.strip()) <= 300:
        errors["reason"] = N_("Say why (up to 300 characters); the member sees it on its "
                              "statement.")
    if errors:
        raise ValidationError("invalid_adjustment", N_("Some fields need your attention."),
                              fields=errors)
    currency = _require_open(session, cluster, month, now)
    number = session.exec(select(func.coalesce(func.max(LedgerEntry.source_id), 0)).where(
        LedgerEntry.cluster_id == cluster.id,
        LedgerEntry.source == EntrySource.ADJUSTMENT.value)).one() + 1
    payer, payee = (None, member_id) if amount_minor > 0 else (member_id, None)
    entry = record(session, cluster, EntrySource.ADJUSTMENT, number, payer, payee,
                   abs(amount_minor), now, memo=reason.strip(), month=month,
                   currency=currency, created_by_id=actor.id)
    assert entry is not None
    try:
        session.commit()
    except IntegrityError:  # another adjustment took the number at the same moment
        session.rollback()
        raise Conflict("adjustment_race", N_("Another adjustment was saved at the same "
                                             "moment. Submit yours again.")) from None
    return entry


def approve(session: Session, actor: User, month: str, references: dict[int, str],
            now: datetime, *, by_stripe: bool = False) -> Settlement:
    """Approve the month once: record one transfer per member and lock the month.

    With Stripe, what the platform pays members is queued for the scheduler to
    transfer to their connected accounts; what members owe is collected by
    bank transfer and recorded with its reference, as offline.
    """
    require_coordinator(actor)
    cluster = get_cluster(session, actor)
    month = parse_month(month)
    if month >= current_month(cluster, now):
        raise Conflict("month_not_over", N_("A month can be settled only after it ends."))
    settlement = settlement_for(session, id_of(cluster), month)
    if settlement is None:
        raise Conflict("not_drafted", N_("Draft the month's settlement before approving it."))
    # Wait for every entry being written to commit, and make later ones wait for us
    # and then see the month locked (clusters.service.lock_cluster_settings is the
    # other side).
    session.exec(select(Cluster.id).where(Cluster.id == cluster.id)
                 .with_for_update(key_share=True)).one()
    approved = session.exec(
        update(Settlement).where(col(Settlement.id) == settlement.id,
                                 col(Settlement.status) == SettlementStatus.DRAFT)
        .values(status=SettlementStatus.APPROVED.value, approved_at=now,
                approved_by_id=actor.id))
    if approved.rowcount != 1:
        session.rollback()
        raise Conflict("already_approved", N_("This month is already approved and locked."))
    plan = netting(month_nets(session, id_of(cluster), month))
    if plan:
        # One multi-row INSERT for every transfer, not an ORM object per member.
        session.execute(insert(SettlementTransfer), [
            _transfer_row(settlement, transfer, references, cluster.currency, now,
                          by_stripe=by_stripe)
            for transfer in plan])
    events.notify(session, _people_with_transfers(session, id_of(settlement)),
                  "settlement.approved",
                  N_("The settlement for %(month)s is approved. Your statement is ready."),
                  now=now, params={"month": month}, payload={"month": month},
                  link=f"/ledger/{month}")
    session.commit()
    session.refresh(settlement)
    return settlement


def _transfer_row(settlement: Settlement, transfer: PlannedTransfer, references: dict[int, str],
                  currency: str, now: datetime, *, by_stripe: bool) -> dict[str, object]:
    """The SettlementTransfer row of one planned transfer.  With Stripe, what the platform
    pays is queued for the scheduler; everything else is recorded as a bank transfer with
    the coordinator's reference, or one made of the month, settlement and member."""
    if by_stripe and transfer.direction == TransferDirection.TO_MEMBER:
        method, status, reference = "stripe", "pending", ""
    else:
        method, status = "manual", "recorded"
        reference = (references.get(transfer.member_id) or "").strip()[:120] or \
            f"{settlement.month}-{settlement.id}-{transfer.member_id}"
    return {"settlement_id": settlement.id, "member_id": transfer.member_id,
            "direction": transfer.direction.value, "amount_minor": transfer.amount_minor,
            "currency": currency, "method": method, "status": status,
            "reference": reference, "created_at": now}


def _people_with_transfers(session: Session, settlement_id: int) -> list[Addressee]:
    """The active people of every member with a transfer in the settlement: one query
    against the transfers just written, reading only what a notification needs (all of
    it: a column left out was loaded again person by person, 1 250 queries)."""
    with_transfer = select(SettlementTransfer.member_id).where(
        SettlementTransfer.settlement_id == settlement_id)
    return [Addressee(*row) for row in session.execute(sa_select(*ADDRESSEE).where(
        col(User.member_id).in_(with_transfer), col(User.active).is_(True)))]


def transfers_of(session: Session, settlement: Settlement) -> dict[int, SettlementTransfer]:
    """Member id -> its transfer for an approved month."""
    return {t.member_id: t for t in session.exec(select(SettlementTransfer).where(
        SettlementTransfer.settlement_id == settlement.id))}
