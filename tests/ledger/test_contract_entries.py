"""What a confirmed job puts in the ledger: the referral fee to the poster, the
platform fee, and each partner's frozen share of what remains -- to the cent."""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from marketplace.clusters import agreements
from marketplace.jobs import completion, service
from marketplace.jobs.models import (
    Bid,
    ContractParty,
    JobContract,
    JobMode,
    JobStatus,
    OverflowJob,
)
from marketplace.jobs.service import MAX_VALUE_MINOR
from marketplace.ledger.contracts import record_contract
from marketplace.ledger.models import LedgerEntry
from marketplace.money import apply_basis_points
from tests.conftest import NOW, invite_member
from tests.ledger.conftest import (
    DONE_AT,
    JOINT_PRICE,
    JUNE,
    Ledger,
    all_entries,
    handoff_job,
    joint_job,
    lettered,
)


def test_handoff_pays_the_referral_fee_and_the_platform_fee_only(session: Session,
                                                                 lw: Ledger) -> None:
    job = handoff_job(session, lw)
    contract = session.exec(select(JobContract).where(JobContract.job_id == job.id)).one()
    assert (contract.value_minor, contract.referral_fee_minor) == (1_234_570, 61_728)
    # B (the claimer) was paid 12 345.70 by the customer; it owes A 5 % (61 728.5 rounds
    # half to even) and the platform 1 % (12 345.7 -> 12 346), and keeps the rest.
    assert lettered(session, lw) == [("referral_fee", "B", "A", 61_728),
                                     ("platform_fee", "B", "P", 12_346)]
    rows = all_entries(session)
    assert {(e.source_id, e.month, e.created_at) for e in rows} == {(contract.id, JUNE,
                                                                      DONE_AT)}


def test_no_entries_until_the_poster_confirms(session: Session, lw: Ledger) -> None:
    job = service.post_job(session, lw.world.owner_a, _draft(), NOW)
    service.claim_job(session, lw.world.owner_b, job.id, NOW)  # type: ignore[arg-type]
    completion.report_done(session, lw.world.owner_b, job.id, DONE_AT)  # type: ignore[arg-type]
    assert all_entries(session) == []
    completion.confirm_completion(session, lw.world.owner_a, job.id, DONE_AT)  # type: ignore[arg-type]
    session.expire_all()
    assert session.get(OverflowJob, job.id).status == JobStatus.CONFIRMED  # type: ignore[union-attr]
    assert len(all_entries(session)) == 2


def _draft() -> Any:
    from tests.ledger.conftest import job_draft
    return job_draft(title="Edge the paths")


def test_joint_bid_lead_pays_each_partner_its_frozen_share(session: Session,
                                                           lw: Ledger) -> None:
    joint_job(session, lw)
    # 9 999.99 awarded to C (lead, 66.67 %) and D (33.33 %).  Referral 499.9995 -> 500.00,
    # platform 99.9999 -> 100.00; the 9 399.99 that remains splits 6 266.973333 /
    # 3 133.016667: the leftover cent goes to D's larger remainder.
    assert lettered(session, lw) == [("referral_fee", "C", "A", 50_000),
                                     ("platform_fee", "C", "P", 10_000),
                                     ("job_share", "C", "D", 313_302)]
    outflows = sum(e.amount_minor for e in all_entries(session) if e.payer_member_id == lw.c)
    kept = JOINT_PRICE - outflows
    assert kept == 626_697
    assert 50_000 + 10_000 + 313_302 + kept == JOINT_PRICE


# --- property: any value, any fees, any share vector -----------------------------------


# Any value a job accepts (MAX_VALUE_MINOR keeps it inside PostgreSQL's 32-bit columns).


@st.composite
def share_vectors(draw: Any, size: int) -> list[int]:
    """`size` positive basis-point shares summing to 10 000."""
    cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=size - 1,
                                max_size=size - 1, unique=True)))
    bounds = [0, *cuts, 10_000]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


@st.composite
def contracts(draw: Any) -> dict[str, Any]:
    parties = draw(st.integers(1, 4))
    referral_bp = draw(st.integers(0, 10_000))
    return {
        "value": draw(st.one_of(st.integers(1, 1_000), st.integers(1, MAX_VALUE_MINOR))),
        "referral_bp": referral_bp,
        "platform_bp": draw(st.integers(0, 10_000 - referral_bp)),
        "shares": draw(share_vectors(parties)) if parties > 1 else [10_000],
        "lead": draw(st.integers(0, parties - 1)),
        "by_bid": draw(st.booleans()),
    }


@pytest.fixture
def partners(session: Session, lw: Ledger) -> list[tuple[int, int]]:
    """(member id, its owner's user id) of four possible contract parties (not A)."""
    owner_e = invite_member(session, lw.coordinator, "Echo Fences", "e@echo.test")
    users = [lw.world.owner_b, lw.owner_c, lw.owner_d, owner_e]
    return [(u.member_id, u.id) for u in users]  # type: ignore[misc]


def _contract(session: Session, lw: Ledger, partners: list[tuple[int, int]],
              case: dict[str, Any]) -> tuple[JobContract, int, dict[int, int]]:
    """Write a signed contract straight into the tables; (contract, lead id, shares)."""
    value, shares = case["value"], case["shares"]
    chosen = partners[:len(shares)]
    agreement = agreements.agreement_in_force(session, lw.world.cluster.id)
    assert agreement is not None
    job = OverflowJob(
        cluster_id=lw.world.cluster.id, poster_member_id=lw.a, posted_by_id=lw.world.owner_a.id,  # type: ignore[arg-type]
        title="Property job", description="", mode=JobMode.BID_WINDOW.value,
        status=JobStatus.DONE.value, site_lat=43.65, site_lng=-79.38, approx_lat=43.66,
        approx_lng=-79.39, locality="Annex",
        address="1 Main St", customer_name="C", customer_contact="c", crew_days=1,
        starts_on=date(2026, 6, 10), ends_on=date(2026, 6, 11), value_minor=value,
        currency="CAD", created_at=NOW)
    session.add(job)
    session.flush()
    lead, lead_user = chosen[case["lead"]] if case["by_bid"] else min(chosen)
    bid_id = None
    if case["by_bid"]:
        bid = Bid(job_id=job.id, member_id=lead, placed_by_id=lead_user, price_minor=value,  # type: ignore[arg-type]
                  crew_size=2, earliest_start=date(2026, 6, 10), is_joint=len(shares) > 1,
                  created_at=NOW, submitted_at=NOW)
        session.add(bid)
        session.flush()
        bid_id = bid.id
    contract = JobContract(
        job_id=job.id, cluster_id=lw.world.cluster.id, poster_member_id=lw.a, bid_id=bid_id,  # type: ignore[arg-type]
        value_minor=value, currency="CAD", referral_fee_bp=case["referral_bp"],
        referral_fee_minor=apply_basis_points(value, case["referral_bp"]),
        platform_fee_bp=case["platform_bp"], agreement_id=agreement.id, signed_at=NOW)  # type: ignore[arg-type]
    session.add(contract)
    session.flush()
    by_member = {member: share for (member, _user), share in zip(chosen, shares, strict=True)}
    for member, share in by_member.items():
        session.add(ContractParty(contract_id=contract.id, member_id=member, share_bp=share))  # type: ignore[arg-type]
    session.flush()
    return contract, lead, by_member


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=contracts())
@example(case={"value": 3, "referral_bp": 5_000, "platform_bp": 5_000, "shares": [10_000],
               "lead": 0, "by_bid": False})
def test_contract_parts_always_add_up_to_the_value(session: Session, lw: Ledger,
                                                   partners: list[tuple[int, int]],
                                                   case: dict[str, Any]) -> None:
    try:
        contract, lead, shares = _contract(session, lw, partners, case)
        record_contract(session, contract, DONE_AT)
        session.flush()
        rows = list(session.exec(select(LedgerEntry).where(
            LedgerEntry.source_id == contract.id,
            LedgerEntry.source.in_(("referral_fee", "platform_fee", "job_share")))))  # type: ignore[attr-defined]
        value = case["value"]
        referral = contract.referral_fee_minor
        platform = sum(e.amount_minor for e in rows if e.source == "platform_fee")
        remaining = value - referral - platform

        # Every entry is the lead paying someone else a positive amount.
        assert all(e.payer_member_id == lead != e.payee_member_id for e in rows)
        assert all(e.amount_minor > 0 for e in rows)
        by_source = {(e.source, e.payee_member_id): e.amount_minor for e in rows}
        assert len(by_source) == len(rows)
        assert by_source.get(("referral_fee", lw.a), 0) == referral
        assert abs(platform - Fraction(value * case["platform_bp"], 10_000)) <= Fraction(1, 2)
        assert set(by_source) <= {("referral_fee", lw.a), ("platform_fee", None)} | {
            ("job_share", m) for m in shares if m != lead}

        # What the lead pays out plus what it keeps is the whole value ...
        outflows = sum(e.amount_minor for e in rows)
        kept = value - outflows
        parts = {m: by_source.get(("job_share", m), 0) for m in shares if m != lead}
        parts[lead] = kept
        assert remaining >= 0 and kept >= 0
        assert referral + platform + sum(parts.values()) == value
        # ... and every party's part (the lead's kept one too) is within a cent of exact.
        for member, share in shares.items():
            assert abs(parts[member] - Fraction(remaining * share, 10_000)) < 1
    finally:
        session.rollback()
