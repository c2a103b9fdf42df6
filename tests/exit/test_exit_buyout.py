"""The buy-out's money, over random machines: the payers' parts sum exactly to the
price, the new shares to 10 000 basis points, nobody's share or part goes negative,
and each part stays within a cent of its exact proportion."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from marketplace.clusters.exit.buyout import MAX_AGREED_VALUE_MINOR, buy_out, buyout_price


@st.composite
def machines(draw: st.DrawFn) -> dict[int, int]:
    """Owner id -> share in basis points: 2 to 8 owners, every share positive, sum 10 000."""
    owners = draw(st.integers(2, 8))
    cuts = sorted(draw(st.lists(st.integers(1, 9_999), min_size=owners - 1,
                                max_size=owners - 1, unique=True)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 10_000], strict=True)]
    ids = draw(st.lists(st.integers(1, 10**6), min_size=owners, max_size=owners, unique=True))
    return dict(zip(ids, shares, strict=True))


@given(shares=machines(), value=st.none() | st.integers(1, MAX_AGREED_VALUE_MINOR),
       fraction=st.integers(0, 10_000), data=st.data())
def test_the_buyout_adds_up_to_the_cent(shares: dict[int, int], value: int | None,
                                        fraction: int, data: st.DataObject) -> None:
    leaver = data.draw(st.sampled_from(sorted(shares)))
    outcome = buy_out(shares, leaver, value, fraction)
    remaining = set(shares) - {leaver}
    assert set(outcome.parts) == set(outcome.new_shares) == remaining
    assert sum(outcome.parts.values()) == outcome.price_minor
    assert sum(outcome.new_shares.values()) == 10_000
    assert all(part >= 0 for part in outcome.parts.values())
    assert all(outcome.new_shares[m] >= shares[m] > 0 for m in remaining)
    exact_price = Fraction(value or 0) * shares[leaver] * fraction / 10**8
    assert abs(outcome.price_minor - exact_price) <= Fraction(1, 2)
    weight = sum(shares[m] for m in remaining)
    for member in remaining:
        exact = Fraction(outcome.price_minor * shares[member], weight)
        assert abs(outcome.parts[member] - exact) < 1


def test_no_agreed_value_is_a_free_buyout() -> None:
    assert buyout_price(None, 5_000, 10_000) == 0
    outcome = buy_out({1: 5_000, 2: 3_000, 3: 2_000}, 1, None, 10_000)
    assert outcome.parts == {2: 0, 3: 0}
    assert outcome.new_shares == {2: 6_000, 3: 4_000}


def test_rounding_is_half_to_even_once() -> None:
    assert buyout_price(1, 5_000, 10_000) == 0  # 0.5 -> 0
    assert buyout_price(3, 5_000, 10_000) == 2  # 1.5 -> 2
    assert buyout_price(1_000_001, 6_000, 10_000) == 600_001  # 600 000.6
