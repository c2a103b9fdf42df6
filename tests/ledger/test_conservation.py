"""Conservation: a busy month end to end, and netting over any set of entries.

Every entry moves money between two accounts, so the nets of all accounts (the
members and the platform) sum to zero; each entry is on exactly the statements
of the members it touches; netting gives one transfer per member with a
non-zero net, and making those transfers brings everyone to zero.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from marketplace.clusters.models import Cluster
from marketplace.ledger import service as ledger
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, SettlementTransfer, TransferDirection
from marketplace.ledger.settlement import Net, PlannedTransfer, netting
from tests.conftest import World, invite_member
from tests.ledger.conftest import (
    BUSY_ENTRIES,
    JULY_2,
    JUNE,
    Ledger,
    all_entries,
    busy_month,
    lettered,
)

FIRST_JULY_TORONTO = datetime(2026, 7, 1, 4, 30, tzinfo=UTC)


def _settle(nets: dict[int | None, int], plan: list[PlannedTransfer]) -> dict[int | None, int]:
    """Each account's net after the planned transfers are made through the platform."""
    after = dict(nets)
    after.setdefault(None, 0)
    for transfer in plan:
        moved = transfer.amount_minor
        if transfer.direction == TransferDirection.TO_MEMBER:  # the platform pays the member
            after[transfer.member_id] -= moved
            after[None] += moved
        else:  # the member pays the platform
            after[transfer.member_id] += moved
            after[None] -= moved
    return after


def test_a_busy_month_conserves_every_cent_and_settles_to_zero(session: Session,
                                                               lw: Ledger) -> None:
    busy_month(session, lw)
    assert settlement.draft_due(session, FIRST_JULY_TORONTO) == 1
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.b, 2_500,
                              "Fuel reimbursement", JULY_2)
    settlement.add_adjustment(session, lw.coordinator, JUNE, lw.d, -1_000, "Late paperwork",
                              JULY_2)
    assert sorted(lettered(session, lw)) == sorted(
        [*BUSY_ENTRIES, ("adjustment", "P", "B", 2_500), ("adjustment", "D", "P", 1_000)])
    entries = all_entries(session)
    assert {e.month for e in entries} == {JUNE}
    assert {e.currency for e in entries} == {"CAD"}
    cluster_id = lw.world.cluster.id
    members = (lw.a, lw.b, lw.c, lw.d)

    # The nets, worked out by hand from the entries above.
    nets = settlement.month_nets(session, cluster_id, JUNE)  # type: ignore[arg-type]
    expected = {lw.a: 128_689, lw.b: -64_833, lw.c: -392_437, lw.d: 307_735, None: 20_846}
    assert {account: n.net for account, n in nets.items()} == expected
    assert sum(n.net for n in nets.values()) == 0
    assert nets[None].credits == 12_346 + 10_000 + 1_000

    # Each entry is on exactly the statements of the members it touches ...
    statements = {m: settlement.statement(session, cluster_id, m, JUNE) for m in members}  # type: ignore[arg-type]
    for entry in entries:
        on = {m for m, lines in statements.items() if entry.id in {e.id for e in lines}}
        assert on == {entry.payer_member_id, entry.payee_member_id} - {None}, entry
    # ... a statement's lines add up to that member's net and balance ...
    for member, lines in statements.items():
        signed = sum(e.amount_minor if e.payee_member_id == member else -e.amount_minor
                     for e in lines)
        assert signed == nets[member].net == ledger.balance(session, member)
    # ... and every cent of every source is received by exactly one account and paid
    # by exactly one account (the platform's share is what no member statement holds).
    for source in {e.source for e in entries}:
        total = sum(e.amount_minor for e in entries if e.source == source)
        received = sum(e.amount_minor for m, lines in statements.items() for e in lines
                       if e.source == source and e.payee_member_id == m)
        paid = sum(e.amount_minor for m, lines in statements.items() for e in lines
                   if e.source == source and e.payer_member_id == m)
        platform_in = sum(e.amount_minor for e in entries
                          if e.source == source and e.payee_member_id is None)
        platform_out = sum(e.amount_minor for e in entries
                           if e.source == source and e.payer_member_id is None)
        assert received + platform_in == total == paid + platform_out, source

    # Netting: one transfer per member, and making them settles everyone.
    plan = netting(nets)
    assert [(t.member_id, t.direction, t.amount_minor) for t in plan] == sorted([
        (lw.a, TransferDirection.TO_MEMBER, 128_689),
        (lw.b, TransferDirection.FROM_MEMBER, 64_833),
        (lw.c, TransferDirection.FROM_MEMBER, 392_437),
        (lw.d, TransferDirection.TO_MEMBER, 307_735)])
    assert set(_settle(expected, plan).values()) == {0}

    settlement.approve(session, lw.coordinator, JUNE, {lw.c: "CHQ 118"}, JULY_2)
    session.expire_all()
    recorded = session.exec(select(SettlementTransfer)).all()
    assert sorted((t.member_id, t.direction, t.amount_minor, t.currency) for t in recorded) \
        == sorted((t.member_id, t.direction.value, t.amount_minor, "CAD") for t in plan)
    assert {t.member_id: t.reference for t in recorded}[lw.c] == "CHQ 118"


# --- netting over any entries -------------------------------------------------------------

ACCOUNTS = (None, 1, 2, 3, 4, 5)


@st.composite
def entry_sets(draw: Any) -> list[tuple[int | None, int | None, int]]:
    """(payer, payee, amount) with two different accounts, at least one a member."""
    pairs = [(p, q) for p in ACCOUNTS for q in ACCOUNTS if p != q]
    return draw(st.lists(st.tuples(st.sampled_from(pairs), st.integers(1, 10**9)).map(
        lambda t: (t[0][0], t[0][1], t[1])), max_size=40))


def _nets(entries: list[tuple[int | None, int | None, int]]) -> dict[int | None, Net]:
    credits: Counter[int | None] = Counter()
    debits: Counter[int | None] = Counter()
    for payer, payee, amount in entries:
        debits[payer] += amount
        credits[payee] += amount
    return {a: Net(a, credits[a], debits[a]) for a in set(credits) | set(debits)}


@given(entries=entry_sets())
def test_netting_settles_any_entries_with_one_transfer_per_non_zero_member(
        entries: list[tuple[int | None, int | None, int]]) -> None:
    nets = _nets(entries)
    assert sum(n.net for n in nets.values()) == 0
    plan = netting(nets)
    non_zero = sorted(m for m, n in nets.items() if m is not None and n.net != 0)
    assert [t.member_id for t in plan] == non_zero  # one each, by member id, none for zero
    for transfer in plan:
        assert transfer.amount_minor == abs(nets[transfer.member_id].net) > 0
        assert (transfer.direction == TransferDirection.TO_MEMBER) == (
            nets[transfer.member_id].net > 0)
    after = _settle({a: n.net for a, n in nets.items()}, plan)
    assert set(after.values()) <= {0}


@pytest.fixture
def three(session: Session, world: World) -> list[int]:
    """The ids of our cluster's members A, B and a third, C."""
    owner_c = invite_member(session, world.coordinator, "Gamma Trees", "c@gamma.test")
    return [world.member_a_id, world.member_b_id, owner_c.member_id]  # type: ignore[list-item]


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3),
                                st.integers(1, 10**9), st.sampled_from(["june", "july",
                                                                        "rival"])),
                      max_size=25))
def test_month_nets_and_statements_over_any_stored_entries(
        session: Session, world: World, three: list[int],
        picks: list[tuple[int, int, int, str]]) -> None:
    """Entries stored in the database: June's nets, statements and netting agree, and
    neither July's entries nor the rival cluster's leak into them."""
    ours = session.get(Cluster, world.cluster.id)
    rival = session.get(Cluster, world.other_owner.cluster_id)
    assert ours is not None and rival is not None
    accounts: list[int | None] = [None, *three]
    june_at, july_at = datetime(2026, 6, 20, tzinfo=UTC), datetime(2026, 7, 3, tzinfo=UTC)
    kept: list[tuple[int | None, int | None, int]] = []
    try:
        for number, (p, q, amount, where) in enumerate(picks):
            payer, payee = accounts[p], accounts[q]
            if where == "rival":
                payer, payee = (world.other_owner.member_id, None) if p <= q else (
                    None, world.other_owner.member_id)
            if payer == payee:
                continue
            cluster = rival if where == "rival" else ours
            ledger.record(session, cluster, EntrySource.ADJUSTMENT, number, payer, payee,
                          amount, july_at if where == "july" else june_at,
                          currency=cluster.currency)
            if where == "june":
                kept.append((payer, payee, amount))
        session.flush()
        nets = settlement.month_nets(session, ours.id, JUNE)  # type: ignore[arg-type]
        assert {a: (n.credits, n.debits) for a, n in nets.items()} == {
            a: (n.credits, n.debits) for a, n in _nets(kept).items()}
        assert sum(n.net for n in nets.values()) == 0
        for member in three:
            lines = settlement.statement(session, ours.id, member, JUNE)  # type: ignore[arg-type]
            assert len(lines) == sum(1 for p, q, _a in kept if member in (p, q))
            net = nets.get(member)
            assert sum(e.amount_minor if e.payee_member_id == member else -e.amount_minor
                       for e in lines) == (net.net if net else 0)
        after = _settle({a: n.net for a, n in nets.items()}, netting(nets))
        assert set(after.values()) <= {0}
    finally:
        session.rollback()
