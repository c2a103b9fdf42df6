"""The money of a dispute, by hypothesis: for every decision (uphold, adjust to an amount,
split by basis points, cancel), whenever months are approved around it and whatever the
cluster's time zone does meanwhile, each party ends -- across all months -- with exactly
what the decision says, to the cent; every disputed entry is held once and settled at
most once; and no approved month's nets ever change."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from marketplace.clusters import service as clusters
from marketplace.clusters.models import Cluster
from marketplace.disputes import service as disputes
from marketplace.errors import Conflict
from marketplace.ledger import settlement
from marketplace.ledger.models import EntrySource, LedgerEntry, Settlement, SettlementStatus
from marketplace.money import allocate, split_by_weights
from tests.disputes.conftest import TUESDAY, closed_at, damaged_booking
from tests.ledger.conftest import Ledger

ZONES = ("America/Toronto", "Pacific/Auckland", "Pacific/Honolulu")


@st.composite
def decisions(draw: st.DrawFn) -> tuple[str, int | None, int | None, int]:
    damage = draw(st.integers(1, 10_000_000))
    outcome = draw(st.sampled_from(["uphold", "adjust", "split", "cancel"]))
    amount = draw(st.integers(0, damage)) if outcome == "adjust" else None
    split_bp = draw(st.integers(0, 10_000)) if outcome == "split" else None
    return outcome, amount, split_bp, damage


def _approved_nets(session: Session, cluster_id: int) -> dict[str, dict[int | None, int]]:
    months = session.exec(select(Settlement.month).where(
        Settlement.cluster_id == cluster_id,
        Settlement.status == SettlementStatus.APPROVED.value)).all()
    return {m: {k: n.net for k, n in settlement.month_nets(session, cluster_id, m).items()}
            for m in months}


def _approve_finished(session: Session, lw: Ledger, now_: object) -> None:
    """The coordinator approves every finished month with entries that is not yet."""
    from datetime import datetime
    assert isinstance(now_, datetime)
    cluster = session.get(Cluster, lw.world.cluster.id)
    assert cluster is not None
    current = settlement.current_month(cluster, now_)
    for month in settlement.months_with_entries(session, lw.world.cluster.id):
        if month >= current:
            continue
        try:
            settlement.draft_for(session, lw.coordinator, month, now_)
            settlement.approve(session, lw.coordinator, month, {}, now_)
        except Conflict:
            session.rollback()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_every_decision_leaves_each_party_exactly_what_it_says(session: Session,
                                                               lw: Ledger,
                                                               data: st.DataObject) -> None:
    week = next(_weeks)
    outcome, amount, split_bp, damage = data.draw(decisions())
    open_after = timedelta(days=data.draw(st.integers(0, 13)), hours=data.draw(
        st.integers(0, 23)))
    decide_after = timedelta(days=data.draw(st.integers(0, 60)))
    approve_before_open = data.draw(st.booleans())
    approve_before_decision = data.draw(st.booleans())
    zone = data.draw(st.sampled_from(ZONES + (None,)))
    cluster_id = lw.world.cluster.id
    assert cluster_id is not None

    day = TUESDAY + timedelta(weeks=week)
    made = damaged_booking(session, lw, day, damage)
    assert made.id is not None
    opened_at = closed_at(day) + open_after
    if approve_before_open:
        _approve_finished(session, lw, opened_at)
    frozen = _approved_nets(session, cluster_id)
    dispute = disputes.open_dispute(session, lw.owner_c, "booking", made.id, "damage_fee",
                                    "Not mine", opened_at)
    assert dispute.id is not None
    assert _approved_nets(session, cluster_id) == frozen  # nothing written into them
    if zone is not None:  # the coordinator moves the cluster mid-dispute
        cluster = session.get(Cluster, cluster_id)
        assert cluster is not None
        clusters.update_cluster(session, lw.coordinator, clusters.ClusterSettings(
            name=cluster.name, currency=cluster.currency,
            default_locale=cluster.default_locale, timezone=zone,
            unit_system=cluster.unit_system))
    decided_at = opened_at + decide_after
    if approve_before_decision:
        _approve_finished(session, lw, decided_at)
    frozen = _approved_nets(session, cluster_id)
    disputes.decide(session, lw.coordinator, dispute.id, outcome, amount, split_bp,
                    "Decided", decided_at)
    assert _approved_nets(session, cluster_id) == frozen

    session.expire_all()
    originals = list(session.exec(select(LedgerEntry).where(
        LedgerEntry.source == EntrySource.DAMAGE_FEE.value, LedgerEntry.source_id == made.id)
        .order_by(col(LedgerEntry.id))))
    ids = [e.id for e in originals]
    assert sum(e.amount_minor for e in originals) == damage
    decided = {"uphold": damage, "cancel": 0, "adjust": amount,
               "split": allocate(damage, [split_bp or 0, 10_000 - (split_bp or 0)])[0]}[outcome]
    parts = split_by_weights(decided, [e.amount_minor for e in originals]) if decided \
        else [0] * len(originals)
    assert sum(parts) == decided and dispute.decided_minor == decided

    expected: dict[int | None, int] = defaultdict(int)
    for entry, part in zip(originals, parts, strict=True):
        assert 0 <= part <= entry.amount_minor
        expected[entry.payee_member_id] += part
        expected[entry.payer_member_id] -= part
    got: dict[int | None, int] = defaultdict(int)
    concerned = list(originals)
    for source in (EntrySource.MEMBER_DISPUTE_HOLD, EntrySource.MEMBER_DISPUTE_SETTLED):
        rows = list(session.exec(select(LedgerEntry).where(
            LedgerEntry.source == source.value, col(LedgerEntry.source_id).in_(ids))))
        held_per_entry = defaultdict(int)
        for row in rows:
            held_per_entry[row.source_id] += 1
        # The hold mirrors each entry once; a decision writes each at most once.
        if source == EntrySource.MEMBER_DISPUTE_HOLD:
            assert sorted(held_per_entry) == sorted(ids) and set(held_per_entry.values()) == {1}
        else:
            assert all(count == 1 for count in held_per_entry.values())
        concerned += rows
    for row in concerned:
        got[row.payee_member_id] += row.amount_minor
        got[row.payer_member_id] -= row.amount_minor
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


_weeks = itertools.count()
