"""Writing and reading ledger entries; one place turns a fee into exact entries.

A fee owed to several co-owners is split with `money.allocate` over their
ownership shares, so the parts always add up to the fee.  A payer that is
itself a co-owner keeps its own part: nobody owes itself money, so that part
is simply not written.  Entries go into the month they happen in (cluster
time zone); an approved month is locked, so nothing written later can land
in it -- a late fact simply belongs to the month it was recorded in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from marketplace.clusters.models import Cluster
from marketplace.ledger.models import (
    EntrySource,
    LedgerEntry,
    Settlement,
    SettlementStatus,
    entry_key,
)
from marketplace.money import allocate


def ledger_month(cluster: Cluster, when: datetime) -> str:
    """The settlement month (YYYY-MM) an entry belongs to, in the cluster's time zone."""
    return when.astimezone(ZoneInfo(cluster.timezone)).strftime("%Y-%m")


def record(session: Session, cluster: Cluster, source: EntrySource, source_id: int,
           payer: int | None, payee: int | None, amount_minor: int, now: datetime, *,
           memo: str = "", month: str | None = None, created_by_id: int | None = None
           ) -> LedgerEntry | None:
    """One entry: `payer` owes `payee` (None = the platform account).  Part of the
    caller's transaction; nothing for a zero amount or a member paying itself."""
    if amount_minor <= 0 or payer == payee:
        return None
    entry = LedgerEntry(
        cluster_id=cluster.id, source=source.value, source_id=source_id,
        entry_key=entry_key(source.value, source_id, payer, payee), payer_member_id=payer,
        payee_member_id=payee, amount_minor=amount_minor, currency=cluster.currency,
        month=month or ledger_month(cluster, now), memo=memo[:300],
        created_by_id=created_by_id, created_at=now)
    session.add(entry)
    return entry


def record_split(
    session: Session,
    cluster: Cluster,
    source: EntrySource,
    source_id: int,
    payer_member_id: int,
    amount_minor: int,
    payee_shares: Mapping[int, int],
    now: datetime,
    memo: str = "",
) -> list[LedgerEntry]:
    """Write what `payer` owes each payee for `amount_minor`, split by basis-point shares.

    Payees are split in member-id order, so the tie-break (and thus who gets an
    odd cent) never depends on dictionary order.
    """
    if amount_minor <= 0:
        return []
    payees = sorted(payee_shares)
    parts = allocate(amount_minor, [payee_shares[m] for m in payees])
    entries = [record(session, cluster, source, source_id, payer_member_id, payee, part, now,
                      memo=memo) for payee, part in zip(payees, parts, strict=True)]
    return [e for e in entries if e is not None]


def reverse(session: Session, cluster: Cluster, source: EntrySource, source_id: int,
            reversal: EntrySource, now: datetime) -> list[LedgerEntry]:
    """Write the mirror image of every entry of (source, source_id) as `reversal` entries.

    Corrections are new entries, never edits: the original stays, and the
    reversal nets it to zero in the month it happens.
    """
    originals = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)).all()
    entries = [record(session, cluster, reversal, source_id, original.payee_member_id,
                      original.payer_member_id, original.amount_minor, now, memo=original.memo)
               for original in originals]
    return [e for e in entries if e is not None]


def entries_for(session: Session, source: EntrySource, source_id: int) -> list[LedgerEntry]:
    """The entries one fact wrote (a booking's fee, its refund, a damage fee ...)."""
    return list(session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)
        .order_by(col(LedgerEntry.id))))


def balance(session: Session, member_id: int) -> int:
    """What the member is owed (positive) or owes (negative) and is not settled yet.

    An approved month was settled by its transfers, so only entries of months
    without an approved settlement count.
    """
    settled = select(Settlement.month).where(
        Settlement.cluster_id == LedgerEntry.cluster_id,
        Settlement.status == SettlementStatus.APPROVED.value)
    open_entries = col(LedgerEntry.month).not_in(settled.scalar_subquery())
    received = session.exec(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                            .where(LedgerEntry.payee_member_id == member_id, open_entries)).one()
    paid = session.exec(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                        .where(LedgerEntry.payer_member_id == member_id, open_entries)).one()
    return int(received) - int(paid)
