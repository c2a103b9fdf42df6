"""Writing and reading ledger entries; one place turns a fee into exact entries.

A fee owed to several co-owners is split with `money.allocate` over their
ownership shares, so the parts always add up to the fee.  A payer that is
itself a co-owner keeps its own part: nobody owes itself money, so that part
is simply not written.

The month and currency of an entry are fixed when it is written, by the fact
it records: the month it happens in (cluster time zone, read under a lock at
that moment) and the fact's own currency.  An approved month is locked: an
entry that would fall into one -- because the coordinator changed the time
zone after approving, or approved while the fact was being written -- goes to
the next open month and keeps the month it belonged to (`late_from`), which
its statement line shows.  Nothing is ever written into a locked month.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlmodel import Session, col, func, select

from marketplace.clusters.models import Cluster
from marketplace.clusters.service import lock_cluster_settings
from marketplace.ledger.models import (
    EntrySource,
    LedgerEntry,
    Settlement,
    SettlementStatus,
    entry_key,
)
from marketplace.money import CurrencyMismatch, allocate
from marketplace.persisted import id_of


def ledger_month(cluster: Cluster, when: datetime) -> str:
    """The settlement month (YYYY-MM) an entry belongs to, in the cluster's time zone."""
    return when.astimezone(ZoneInfo(cluster.timezone)).strftime("%Y-%m")


def next_month(month: str) -> str:
    """The month after `month` (YYYY-MM)."""
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + 1}-01" if number == 12 else f"{year}-{number + 1:02d}"


def open_month(session: Session, cluster_id: int, month: str) -> str:
    """`month`, or the first month after it whose settlement is not approved."""
    locked = set(session.exec(select(Settlement.month).where(
        Settlement.cluster_id == cluster_id, Settlement.month >= month,
        Settlement.status == SettlementStatus.APPROVED.value)))
    while month in locked:
        month = next_month(month)
    return month


def entry_month(session: Session, cluster: Cluster, now: datetime, currency: str) -> str:
    """The open month an entry written now goes to, once its currency is checked."""
    timezone, cluster_currency = lock_cluster_settings(session, id_of(cluster))
    if currency != cluster_currency:  # update_cluster refuses a switch once money exists
        raise CurrencyMismatch(f"a {currency} entry in a {cluster_currency} cluster")
    return now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m")


def record(session: Session, cluster: Cluster, source: EntrySource, source_id: int,
           payer: int | None, payee: int | None, amount_minor: int, now: datetime, *,
           currency: str, memo: str = "", month: str | None = None,
           created_by_id: int | None = None) -> LedgerEntry | None:
    """One entry: `payer` owes `payee` (None = the platform account).  Part of the
    caller's transaction; nothing for a zero amount or a member paying itself.

    `month` is given only by callers that checked it is open (adjustments);
    otherwise it is the month of `now`, moved past any locked month.
    """
    if amount_minor <= 0 or payer == payee:
        return None
    belongs_to = month or entry_month(session, cluster, now, currency)
    written_to = month or open_month(session, id_of(cluster), belongs_to)
    entry = LedgerEntry(
        cluster_id=id_of(cluster), source=source.value, source_id=source_id,
        entry_key=entry_key(source.value, source_id, payer, payee), payer_member_id=payer,
        payee_member_id=payee, amount_minor=amount_minor, currency=currency,
        month=written_to, late_from="" if written_to == belongs_to else belongs_to,
        memo=memo[:300], created_by_id=created_by_id, created_at=now)
    session.add(entry)
    return entry


def record_split(
    session: Session,
    cluster: Cluster,
    source: EntrySource,
    source_id: int,
    payer_member_id: int | None,
    amount_minor: int,
    payee_shares: Mapping[int, int],
    now: datetime,
    memo: str = "",
    *,
    currency: str,
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
                      memo=memo, currency=currency)
               for payee, part in zip(payees, parts, strict=True)]
    return [e for e in entries if e is not None]


def reverse(session: Session, cluster: Cluster, source: EntrySource, source_id: int,
            reversal: EntrySource, now: datetime) -> list[LedgerEntry]:
    """Write the mirror image of every entry of (source, source_id) as `reversal` entries.

    Corrections are new entries, never edits: the original stays, and the
    reversal nets it to zero in the month it happens, in the original's currency.
    """
    originals = session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)).all()
    entries = [record(session, cluster, reversal, source_id, original.payee_member_id,
                      original.payer_member_id, original.amount_minor, now, memo=original.memo,
                      currency=original.currency)
               for original in originals]
    return [e for e in entries if e is not None]


def entries_for(session: Session, source: EntrySource, source_id: int) -> list[LedgerEntry]:
    """The entries one fact wrote (a booking's fee, its refund, a damage fee ...)."""
    return list(session.exec(select(LedgerEntry).where(
        LedgerEntry.source == source.value, LedgerEntry.source_id == source_id)
        .order_by(col(LedgerEntry.id))))


def net_between(session: Session, sources: tuple[EntrySource, ...], source_id: int,
                member_id: int) -> int:
    """What the member received less what it paid in the entries of these sources for
    one fact (a booking's fee and what exits passed on of it)."""
    amount = col(LedgerEntry.amount_minor)
    net = func.coalesce(func.sum(case(
        (col(LedgerEntry.payee_member_id) == member_id, amount),
        (col(LedgerEntry.payer_member_id) == member_id, -amount), else_=0)), 0)
    return int(session.exec(select(net).where(
        col(LedgerEntry.source).in_([s.value for s in sources]),
        LedgerEntry.source_id == source_id)).one())


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
