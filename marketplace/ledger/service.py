"""Writing and reading ledger entries; one place turns a fee into exact entries.

A fee owed to several co-owners is split with `money.allocate` over their
ownership shares, so the parts always add up to the fee.  A payer that is
itself a co-owner keeps its own part: nobody owes itself money, so that part
is simply not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, func, select

from marketplace.clusters.models import Cluster
from marketplace.ledger.models import EntrySource, LedgerEntry
from marketplace.money import allocate


def ledger_month(cluster: Cluster, when: datetime) -> str:
    """The settlement month (YYYY-MM) an entry belongs to, in the cluster's time zone."""
    return when.astimezone(ZoneInfo(cluster.timezone)).strftime("%Y-%m")


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
    odd cent) never depends on dictionary order.  Part of the caller's
    transaction: nothing is committed here.
    """
    if amount_minor <= 0:
        return []
    payees = sorted(payee_shares)
    parts = allocate(amount_minor, [payee_shares[m] for m in payees])
    month = ledger_month(cluster, now)
    entries = []
    for payee, part in zip(payees, parts, strict=True):
        if payee == payer_member_id or part == 0:
            continue
        entry = LedgerEntry(cluster_id=cluster.id, source=source.value, source_id=source_id,
                            payer_member_id=payer_member_id, payee_member_id=payee,
                            amount_minor=part, currency=cluster.currency, month=month,
                            memo=memo[:300], created_at=now)
        session.add(entry)
        entries.append(entry)
    return entries


def reverse(session: Session, cluster: Cluster, source: EntrySource, source_id: int,
            reversal: EntrySource, now: datetime) -> list[LedgerEntry]:
    """Write the mirror image of every entry of (source, source_id) as `reversal` entries.

    Corrections are new entries, never edits: the original stays, and the
    reversal nets it to zero in the month it happens.
    """
    originals = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)).all()
    month = ledger_month(cluster, now)
    entries = []
    for original in originals:
        entry = LedgerEntry(cluster_id=original.cluster_id, source=reversal.value,
                            source_id=source_id, payer_member_id=original.payee_member_id,
                            payee_member_id=original.payer_member_id,
                            amount_minor=original.amount_minor, currency=original.currency,
                            month=month, memo=original.memo, created_at=now)
        session.add(entry)
        entries.append(entry)
    return entries


def entries_for(session: Session, source: EntrySource, source_id: int) -> list[LedgerEntry]:
    """The entries one fact wrote (a booking's fee, its refund, a damage fee ...)."""
    return list(session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)
        .order_by(col(LedgerEntry.id))))


def balance(session: Session, member_id: int) -> int:
    """What the member is owed (positive) or owes (negative), over all its entries."""
    received = session.exec(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                            .where(LedgerEntry.payee_member_id == member_id)).one()
    paid = session.exec(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                        .where(LedgerEntry.payer_member_id == member_id)).one()
    return int(received) - int(paid)
