"""Money is integers (DESIGN rule 3): exact splits, half-even fees, locale parsing."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from babel.numbers import format_decimal
from hypothesis import given
from hypothesis import strategies as st

from marketplace.money import (
    BASIS_POINTS_WHOLE,
    CurrencyMismatch,
    InvalidAmount,
    InvalidShares,
    Money,
    allocate,
    apply_basis_points,
    format_money,
    minor_digits,
    parse_minor,
    validate_shares,
)

amounts = st.one_of(
    st.integers(min_value=-10_000, max_value=10_000),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.sampled_from([0, 1, -1, 10**12, -(10**12), 10**18 + 7]),
)


@st.composite
def share_vectors(draw: st.DrawFn) -> list[int]:
    """1..12 non-negative basis-point shares summing to exactly 10 000."""
    count = draw(st.integers(min_value=1, max_value=12))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(min_value=0, max_value=BASIS_POINTS_WHOLE),
                min_size=count - 1,
                max_size=count - 1,
            )
        )
    )
    bounds = [0, *cuts, BASIS_POINTS_WHOLE]
    return [high - low for low, high in zip(bounds, bounds[1:], strict=False)]


@st.composite
def equal_share_vectors(draw: st.DrawFn) -> list[int]:
    """Shares as equal as possible: the case where tie-breaking matters most."""
    count = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
    base, extra = divmod(BASIS_POINTS_WHOLE, count)
    return [base + (1 if index < extra else 0) for index in range(count)]


any_shares = st.one_of(share_vectors(), equal_share_vectors())


# --- allocate ---------------------------------------------------------------


@given(amount=amounts, shares=any_shares)
def test_parts_sum_to_amount_and_stay_within_one_unit(amount: int, shares: list[int]) -> None:
    parts = allocate(amount, shares)
    assert len(parts) == len(shares)
    assert all(type(part) is int for part in parts)
    assert sum(parts) == amount
    for part, share in zip(parts, shares, strict=True):
        assert abs(part * BASIS_POINTS_WHOLE - amount * share) < BASIS_POINTS_WHOLE


@given(amount=amounts, shares=any_shares)
def test_refund_reverses_payment_exactly(amount: int, shares: list[int]) -> None:
    assert allocate(-amount, shares) == [-part for part in allocate(amount, shares)]


@given(amount=amounts, shares=any_shares)
def test_allocation_is_deterministic_and_matches_exact_hamilton(
    amount: int, shares: list[int]
) -> None:
    parts = allocate(amount, shares)
    assert parts == allocate(amount, list(shares))
    # Independent oracle with Fractions: floors, then leftovers by largest
    # remainder, lower index first on ties.
    magnitude = abs(amount)
    exact = [Fraction(magnitude * share, BASIS_POINTS_WHOLE) for share in shares]
    floors = [int(value) for value in exact]
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in order[: magnitude - sum(floors)]:
        floors[index] += 1
    sign = -1 if amount < 0 else 1
    assert parts == [sign * part for part in floors]


@given(amount=amounts, shares=any_shares)
def test_zero_share_gets_nothing(amount: int, shares: list[int]) -> None:
    for part, share in zip(allocate(amount, shares), shares, strict=True):
        if share == 0:
            assert part == 0


def test_stable_tie_break_gives_lower_index_first() -> None:
    assert allocate(1, [5000, 5000]) == [1, 0]
    assert allocate(-1, [5000, 5000]) == [-1, 0]
    assert allocate(2, [3334, 3333, 3333]) == [1, 1, 0]
    assert allocate(100, [3334, 3333, 3333]) == [34, 33, 33]
    assert allocate(-100, [3334, 3333, 3333]) == [-34, -33, -33]
    assert allocate(0, [2500, 7500]) == [0, 0]
    assert allocate(10**12, [10_000]) == [10**12]


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ([], "at least one"),
        ([5000, 4999], "sum to 10000"),
        ([10_001, -1], "negative"),
        ([5000, 5001], "sum to 10000"),
    ],
)
def test_invalid_shares_rejected(shares: list[int], message: str) -> None:
    with pytest.raises(InvalidShares, match=message):
        validate_shares(shares)
    with pytest.raises(InvalidShares):
        allocate(100, shares)
    assert issubclass(InvalidShares, ValueError)


def test_non_integer_shares_and_amounts_rejected() -> None:
    with pytest.raises(InvalidShares):
        validate_shares([5000.0, 5000.0])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        allocate(1.5, [10_000])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        allocate(True, [10_000])  # bool is an int subclass, still refused


# --- apply_basis_points -----------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bp", "fee"),
    [
        (10_000, 250, 250),  # 2.5 % of 100.00 is 2.50
        (123_456, 1000, 12_346),  # 12345.6 rounds up
        (123_454, 1000, 12_345),  # 12345.4 rounds down
        (5, 1000, 0),  # 0.5 rounds to even 0
        (15, 1000, 2),  # 1.5 rounds to even 2
        (25, 1000, 2),  # 2.5 rounds to even 2
        (-15, 1000, -2),  # symmetric for refunds
        (-25, 1000, -2),
        (999, 0, 0),
        (999, 10_000, 999),
        (0, 500, 0),
    ],
)
def test_apply_basis_points_examples(amount: int, bp: int, fee: int) -> None:
    assert apply_basis_points(amount, bp) == fee


@given(amount=amounts, bp=st.integers(min_value=0, max_value=BASIS_POINTS_WHOLE))
def test_apply_basis_points_is_half_even_and_symmetric(amount: int, bp: int) -> None:
    # round() on a Fraction rounds half to even.
    assert apply_basis_points(amount, bp) == round(Fraction(amount * bp, BASIS_POINTS_WHOLE))
    assert apply_basis_points(-amount, bp) == -apply_basis_points(amount, bp)


@pytest.mark.parametrize("bp", [-1, 10_001])
def test_apply_basis_points_out_of_range(bp: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 10000"):
        apply_basis_points(100, bp)


# --- Money ------------------------------------------------------------------


def test_money_arithmetic_same_currency() -> None:
    total = Money(150, "USD") + Money(250, "USD")
    assert total == Money(400, "USD")
    assert Money(150, "USD") - Money(250, "USD") == Money(-100, "USD")
    assert -Money(5, "EUR") == Money(-5, "EUR")


def test_money_refuses_currency_mismatch() -> None:
    with pytest.raises(CurrencyMismatch, match="USD.*CAD"):
        Money(1, "USD") + Money(1, "CAD")
    with pytest.raises(CurrencyMismatch):
        Money(1, "USD") - Money(1, "EUR")
    assert issubclass(CurrencyMismatch, ValueError)


def test_money_is_frozen_and_validated() -> None:
    money = Money(1, "MXN")
    with pytest.raises(AttributeError):
        money.minor = 2  # type: ignore[misc]
    for currency in ("usd", "US", "USDX", "U$D", ""):
        with pytest.raises(ValueError, match="ISO 4217"):
            Money(1, currency)
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]


def test_minor_digits() -> None:
    assert minor_digits("USD") == 2
    assert minor_digits("EUR") == 2
    assert minor_digits("JPY") == 0


# --- parse_minor ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "locale", "minor"),
    [
        ("1,234.56", "USD", "en_US", 123_456),
        ("1234.56", "USD", "en_US", 123_456),
        ("  12  ", "USD", "en_US", 1200),
        ("0.5", "USD", "en_US", 50),
        ("1\u00a0234,56", "CAD", "fr_CA", 123_456),  # the no-break space fr_CA prints
        ("1 234,56", "CAD", "fr_CA", 123_456),  # the plain space people type
        ("1\u202f234,56", "CAD", "fr_CA", 123_456),  # narrow no-break space (fr_FR style)
        ("1.234,56", "EUR", "de_DE", 123_456),
        ("1 234,56", "EUR", "de_DE", 123_456),
        ("-12.30", "USD", "en_US", -1230),
        ("1,234.56", "MXN", "es_MX", 123_456),
    ],
)
def test_parse_minor_examples(text: str, currency: str, locale: str, minor: int) -> None:
    assert parse_minor(text, currency, locale) == minor


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("12.345", "en_US"),  # more decimals than USD has
        ("0.001", "en_US"),
        ("1,234.56", "de_DE"),  # en_US-style input in de_DE is not silently 1.23456
        ("abc", "en_US"),
        ("", "en_US"),
        ("   ", "en_US"),
        ("NaN", "en_US"),
        ("Infinity", "en_US"),
        ("1e3", "en_US"),
        ("12..5", "en_US"),
        ("$12", "en_US"),
    ],
)
def test_parse_minor_rejects(text: str, locale: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_minor(text, "USD", locale)


def test_parse_minor_too_many_decimals_message() -> None:
    with pytest.raises(InvalidAmount, match="more decimals than USD allows"):
        parse_minor("12.345", "USD", "en_US")
    assert parse_minor("1,234", "JPY", "en_US") == 1234
    with pytest.raises(InvalidAmount):
        parse_minor("12.5", "JPY", "en_US")


@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    locale=st.sampled_from(["en_US", "fr_CA", "de_DE", "fr_FR", "de_CH", "es_MX", "en_IN"]),
)
def test_parse_minor_reads_what_babel_writes(minor: int, locale: str) -> None:
    text = format_decimal(Decimal(minor).scaleb(-2), locale=locale)
    assert parse_minor(text, "USD", locale) == minor


# --- format_money -----------------------------------------------------------


def test_format_money_examples() -> None:
    assert format_money(123_456, "USD", "en_US") == "$1,234.56"
    assert format_money(-123_456, "USD", "en_US") == "-$1,234.56"
    assert format_money(5, "USD", "en_US") == "$0.05"
    assert format_money(123_456, "EUR", "de_DE") == "1.234,56\xa0€"
    canadian = format_money(123_456, "CAD", "fr_CA")
    assert "1" in canadian
    assert "234,56" in canadian
    assert "$" in canadian
    assert format_money(1234, "JPY", "en_US") == "¥1,234"
