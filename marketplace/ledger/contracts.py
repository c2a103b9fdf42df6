"""What a confirmed job contract puts in the ledger (offline ledger mode).

The lead party (the claimer of a hand-off, the bidder of a joint bid) is paid
by the customer.  It owes the poster the referral fee frozen in the contract,
the platform its fee, and each partner its frozen share of what remains --
split with the one allocation helper, so the parts add up to the cent.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from marketplace.clusters.models import Cluster
from marketplace.jobs.models import Bid, ContractParty, JobContract
from marketplace.ledger.models import PLATFORM, EntrySource, LedgerEntry
from marketplace.ledger.service import record, record_split
from marketplace.money import apply_basis_points


def contract_lead(session: Session, contract: JobContract) -> int:
    """The party the customer pays: the bidder for an awarded bid, else the only party."""
    if contract.bid_id is not None:
        bid = session.get(Bid, contract.bid_id)
        assert bid is not None
        return bid.member_id
    parties = session.exec(select(ContractParty.member_id).where(
        ContractParty.contract_id == contract.id)).all()
    return min(parties)


def record_contract(session: Session, contract: JobContract, now: datetime
                    ) -> list[LedgerEntry]:
    """Entries for a confirmed job; part of the confirmation's transaction."""
    cluster = session.get(Cluster, contract.cluster_id)
    assert cluster is not None and contract.id is not None
    lead = contract_lead(session, contract)
    # Each fee rounds on its own; when they add up to 100 % both may round up, so the
    # platform fee is capped at what the referral fee leaves: the lead never pays more
    # than the contract's value.
    platform_fee = min(apply_basis_points(contract.value_minor, contract.platform_fee_bp),
                       contract.value_minor - contract.referral_fee_minor)
    remaining = contract.value_minor - contract.referral_fee_minor - platform_fee
    shares = {p.member_id: p.share_bp for p in session.exec(
        select(ContractParty).where(ContractParty.contract_id == contract.id))}
    entries = [record(session, cluster, EntrySource.REFERRAL_FEE, contract.id, lead,
                      contract.poster_member_id, contract.referral_fee_minor, now,
                      currency=contract.currency),
               record(session, cluster, EntrySource.PLATFORM_FEE, contract.id, lead, PLATFORM,
                      platform_fee, now, currency=contract.currency)]
    entries += record_split(session, cluster, EntrySource.JOB_SHARE, contract.id, lead,
                            remaining, shares, now, currency=contract.currency)
    return [e for e in entries if e is not None]
