"""What bookings cost and who owes whom: cheaper rate, exact cents, conservation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, select

from marketplace.clusters.models import Cluster, Member
from marketplace.equipment import booking, pricing
from marketplace.equipment.models import Equipment
from marketplace.ledger import service as ledger
from marketplace.ledger.models import EntrySource, LedgerEntry
from marketplace.money import allocate
from tests.conftest import NOW
from tests.equipment.conftest import CO_HOUR_RATE, NEXT_MONDAY, Equip, at, entries

TUESDAY = NEXT_MONDAY + timedelta(days=1)

# --- pricing -------------------------------------------------------------------------


@pytest.mark.parametrize("minutes, rate, cost", [
    (60, 4_000, 4_000),
    (90, 4_000, 6_000),  # pro rata by the minute
    (30, 4_567, 2_284),  # 2283.5 rounds half up
    (1, 30, 1),  # 0.5 rounds half up
    (1, 29, 0),  # 0.483 rounds down
    (45, 1, 1),  # 0.75 rounds up
    (15, 1, 0),  # 0.25 rounds down
    (0, 4_000, 0),
])
def test_hourly_cost_rounds_half_up_to_the_cent(minutes: int, rate: int, cost: int) -> None:
    assert pricing.hourly_cost(minutes, rate) == cost


@pytest.mark.parametrize("minutes, days", [(1, 1), (1_440, 1), (1_441, 2), (2_880, 2),
                                           (4_000, 3)])
def test_daily_cost_counts_every_day_started(minutes: int, days: int) -> None:
    assert pricing.daily_cost(minutes, 25_000) == days * 25_000


@pytest.mark.parametrize("minutes, hour, day, fee", [
    (120, 4_000, 25_000, 8_000),  # two hours beat a day
    (600, 4_000, 25_000, 25_000),  # ten hours cost more than a day
    (375, 4_000, 25_000, 25_000),  # 6.25 h = 250.00 either way
    (1_500, 1_000, 20_000, 25_000),  # 25 h by the hour beats two started days
    (300, 0, 25_000, 25_000),  # no hour rate: the day rate applies
    (300, 4_000, 0, 20_000),  # no day rate: the hour rate applies
    (300, 0, 0, 0),  # a free machine
])
def test_booking_fee_is_the_cheaper_offer(minutes: int, hour: int, day: int, fee: int) -> None:
    assert pricing.booking_fee(minutes, hour, day) == fee


@given(minutes=st.integers(1, 60 * 24 * 60), hour=st.integers(0, 1_000_000_00),
       day=st.integers(0, 1_000_000_00))
def test_booking_fee_never_exceeds_an_offered_rate(minutes: int, hour: int, day: int) -> None:
    fee = pricing.booking_fee(minutes, hour, day)
    exact_hourly = Fraction(minutes * hour, 60)
    assert fee >= 0
    if hour:
        assert fee <= pricing.hourly_cost(minutes, hour)
        assert abs(pricing.hourly_cost(minutes, hour) - exact_hourly) <= Fraction(1, 2)
    if day:
        assert fee <= pricing.daily_cost(minutes, day)
    if not hour and not day:
        assert fee == 0


@pytest.mark.parametrize("price, bp, fee", [(8_000, 5_000, 4_000), (9_135, 5_000, 4_568),
                                            (9_133, 5_000, 4_566), (12_345, 0, 0),
                                            (12_345, 10_000, 12_345)])
def test_cancellation_fee_is_a_share_of_the_price(price: int, bp: int, fee: int) -> None:
    assert pricing.cancellation_fee(price, bp) == fee  # half to even on exact halves


# --- splitting a fee among co-owners -------------------------------------------------


class _Collect:
    """A session on a private in-memory database that holds just the cluster.

    record_split reads the cluster's settings under a lock and the locked
    months, so it needs a real database; nothing is committed, so every
    example starts from the same empty ledger.
    """

    _engine: Engine | None = None

    def __init__(self) -> None:
        if _Collect._engine is None:
            engine = create_engine("sqlite://", poolclass=StaticPool)
            SQLModel.metadata.create_all(engine)
            with Session(engine) as setup:
                setup.add(Cluster(id=1, name="Valley", currency="CAD",
                                  default_locale="en_CA", timezone="America/Toronto",
                                  created_at=NOW))
                setup.commit()
            _Collect._engine = engine
        self.session = Session(_Collect._engine)

    @property
    def added(self) -> list[LedgerEntry]:
        """Every entry written in this (uncommitted) transaction."""
        self.session.flush()
        return list(self.session.exec(select(LedgerEntry)))

    def close(self) -> None:
        self.session.rollback()
        self.session.close()


_CLUSTER = Cluster(id=1, name="Valley", currency="CAD", default_locale="en_CA",
                   timezone="America/Toronto", created_at=NOW)


@st.composite
def share_vectors(draw: Any) -> list[int]:
    """2 to 6 positive basis-point shares summing to 10 000."""
    count = draw(st.integers(2, 6))
    cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=count - 1,
                                max_size=count - 1, unique=True)))
    bounds = [0, *cuts, 10_000]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


@given(price=st.integers(1, 10**9), shares=share_vectors(), payer=st.integers(0, 6))
def test_split_is_exact_to_the_cent(price: int, shares: list[int], payer: int) -> None:
    """Entries add up to the price minus the payer's own part; each within a cent of exact."""
    owners = {100 + i: share for i, share in enumerate(shares)}
    payer_id = 100 + payer  # one of the owners, or (payer >= len) an outsider
    collected = _Collect()
    written = ledger.record_split(collected.session, _CLUSTER, EntrySource.BOOKING, 1,
                                  payer_id, price, owners, NOW, currency="CAD")
    assert sorted(collected.added, key=id) == sorted(written, key=id)
    collected.close()
    own_part = allocate(price, shares)[payer] if payer < len(shares) else 0
    assert sum(e.amount_minor for e in written) == price - own_part
    for entry in written:
        assert entry.payer_member_id == payer_id != entry.payee_member_id
        assert entry.amount_minor > 0
        exact = Fraction(price * owners[entry.payee_member_id], 10_000)
        assert abs(entry.amount_minor - exact) < 1
        assert entry.currency == "CAD" and entry.month == "2026-06"
    assert len({e.payee_member_id for e in written}) == len(written)


def test_split_parts_and_month_follow_the_cluster_time_zone() -> None:
    collected = _Collect()
    # 00:30 UTC on 1 July is still 30 June in Toronto.
    when = datetime(2026, 7, 1, 0, 30, tzinfo=UTC)
    written = ledger.record_split(collected.session, _CLUSTER, EntrySource.DAMAGE_FEE, 7, 3,
                                  100, {1: 3_333, 2: 3_333, 3: 3_334}, when, "dent",
                                  currency="CAD")
    assert [(e.payee_member_id, e.amount_minor) for e in written] == [(1, 33), (2, 33)]
    assert {e.month for e in written} == {"2026-06"}
    assert ledger.record_split(collected.session, _CLUSTER, EntrySource.BOOKING, 8, 3, 0,
                               {1: 5_000, 2: 5_000}, when, currency="CAD") == []
    collected.close()


# --- bookings on the real ledger -----------------------------------------------------


def test_outsider_pays_each_co_owner_its_share_in_exact_cents(session: Session, eq: Equip,
                                                              co_owned: Equipment) -> None:
    world = eq.world
    made = booking.book(session, eq.owner_c, co_owned.id, at(TUESDAY, 9), at(TUESDAY, 11),  # type: ignore[arg-type]
                        NOW)
    assert made.price_minor == 2 * CO_HOUR_RATE == 9_134
    # 60 % is 5480.4 and 40 % is 3653.6: the leftover cent goes to the larger remainder.
    assert entries(session) == [("booking", eq.member_c_id, world.member_a_id, 5_480),
                                ("booking", eq.member_c_id, world.member_b_id, 3_654)]


def test_co_owner_booking_is_not_charged_its_own_share(session: Session, eq: Equip,
                                                       co_owned: Equipment) -> None:
    world = eq.world
    booking.book(session, world.crew_a, co_owned.id, at(TUESDAY, 9), at(TUESDAY, 11), NOW)  # type: ignore[arg-type]
    assert entries(session) == [("booking", world.member_a_id, world.member_b_id, 3_654)]
    booking.book(session, world.owner_b, co_owned.id, at(TUESDAY, 13), at(TUESDAY, 14), NOW)  # type: ignore[arg-type]
    # 45.67: A's 60 % is 27.402 -> 27.40; B keeps its own 18.27.
    assert entries(session, "booking")[1:] == [("booking", world.member_b_id,
                                                world.member_a_id, 2_740)]


def test_damage_on_a_co_owned_machine_is_split_too(session: Session, eq: Equip,
                                                   co_owned: Equipment) -> None:
    world = eq.world
    made = booking.book(session, eq.owner_c, co_owned.id, at(TUESDAY, 9), at(TUESDAY, 10),  # type: ignore[arg-type]
                        NOW)
    booking.check_out(session, eq.owner_c, made.id, None, "", None, at(TUESDAY, 9))  # type: ignore[arg-type]
    booking.return_machine(session, eq.owner_c, made.id, None, "", at(TUESDAY, 10))  # type: ignore[arg-type]
    # The coordinator manages the co-owned machine and so may close it.
    booking.close(session, world.coordinator, made.id, 10_001, "Cracked tail light",  # type: ignore[arg-type]
                  at(TUESDAY, 10))
    assert entries(session, "damage_fee") == [
        ("damage_fee", eq.member_c_id, world.member_a_id, 6_001),
        ("damage_fee", eq.member_c_id, world.member_b_id, 4_000)]


def test_money_is_conserved_across_many_bookings(session: Session, eq: Equip,
                                                 machine: Equipment, co_owned: Equipment
                                                 ) -> None:
    world = eq.world
    made = []
    for day in range(3):
        when = TUESDAY + timedelta(days=day)
        made.append(booking.book(session, world.owner_b, machine.id, at(when, 7),  # type: ignore[arg-type]
                                 at(when, 9, 30), NOW))
        made.append(booking.book(session, eq.owner_c, co_owned.id, at(when, 1),  # type: ignore[arg-type]
                                 at(when, 4), NOW))
        made.append(booking.book(session, world.owner_a, co_owned.id, at(when, 5),  # type: ignore[arg-type]
                                 at(when, 8), NOW))
    booking.cancel(session, world.owner_b, made[0].id, "Rain", at(TUESDAY, 6))  # type: ignore[arg-type]
    booking.cancel(session, eq.owner_c, made[1].id, "Rain", NOW)  # type: ignore[arg-type]
    members = session.exec(select(Member.id)).all()
    balances = {m: ledger.balance(session, m) for m in members}
    assert sum(balances.values()) == 0
    assert balances[eq.member_c_id] < 0 < balances[world.member_a_id]
    total = sum(e.amount_minor for e in session.exec(select(LedgerEntry)))
    assert total > 0
    # Every entry moves money between two different members of the same cluster.
    for entry in session.exec(select(LedgerEntry)):
        assert entry.payer_member_id != entry.payee_member_id
        assert entry.cluster_id == world.cluster.id and entry.amount_minor > 0
