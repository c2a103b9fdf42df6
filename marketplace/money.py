"""Money as integers: minor units, exact share allocation, locale parsing and formatting.

DESIGN rule 3: money is an integer count of minor units (cents) plus an ISO 4217
currency code, and no float ever touches it.  Floats cannot represent 0.10
exactly, so float arithmetic quietly creates or loses cents; integers cannot.

Shares and fees are basis points (1 bp = 0.01 %), so a whole is 10 000.  When
an amount is split between members the parts must add up to exactly the
amount: the largest-remainder (Hamilton) method gives each member the floor of
its exact share and hands the few leftover cents to the largest remainders.
That keeps every part within one cent of its exact proportion while never
creating or losing money.  Ties are broken by position (lower index first),
never by anything unstable such as hash order, so the same inputs always give
the same cents to the same members -- and a refund, split the same way and
negated, reverses the original payment cent for cent.

This module is deliberately free of Flask so that the ledger, background jobs
and tests can use it without an application context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from babel.numbers import (
    NumberFormatError,
    format_currency,
    get_currency_precision,
    get_group_symbol,
    parse_decimal,
)

BASIS_POINTS_WHOLE = 10_000

# Spaces people type or paste between digit groups.  Locales such as fr_CA and
# fr_FR group digits with a no-break or narrow no-break space, which nobody can
# type on an ordinary keyboard, so all of these are read as the group symbol.
_SPACES = (" ", "\u00a0", "\u202f", "\u2009")


class CurrencyMismatch(ValueError):
    """Arithmetic between two different currencies, which has no exact answer."""


class InvalidShares(ValueError):
    """Shares that cannot split money: empty, negative, or not summing to 10 000."""


class InvalidAmount(ValueError):
    """Text that is not an amount of money in the given currency and locale."""


def _check_currency(currency: str) -> str:
    """Refuse anything that is not shaped like an ISO 4217 code (three letters A-Z)."""
    if not (
        isinstance(currency, str)
        and len(currency) == 3
        and currency.isascii()
        and currency.isalpha()
        and currency.isupper()
    ):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code like 'USD'")
    return currency


def _check_int(value: object, what: str) -> int:
    """Only true integers are money; bool and float are refused, not coerced."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: `minor` units (cents) of `currency` (ISO 4217, upper case).

    Adding or subtracting different currencies raises CurrencyMismatch rather
    than guessing an exchange rate.
    """

    minor: int
    currency: str

    def __post_init__(self) -> None:
        _check_int(self.minor, "minor")
        _check_currency(self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)


def minor_digits(currency: str) -> int:
    """How many decimals the currency has (2 for CAD, 0 for JPY), from CLDR via Babel.

    Looked up rather than assumed, so a zero-decimal currency is never shown or
    parsed with cents it does not have.
    """
    return int(get_currency_precision(_check_currency(currency)))


def validate_shares(shares_bp: Sequence[int]) -> None:
    """Refuse share vectors that would create or lose money.

    Shares must be non-negative integers in basis points summing to exactly
    10 000: anything else would pay out more or less than was received.
    """
    if len(shares_bp) == 0:
        raise InvalidShares("give at least one share")
    for share in shares_bp:
        if isinstance(share, bool) or not isinstance(share, int):
            raise InvalidShares(f"shares must be whole basis points, not {share!r}")
        if share < 0:
            raise InvalidShares(f"shares cannot be negative (got {share})")
    total = sum(shares_bp)
    if total != BASIS_POINTS_WHOLE:
        raise InvalidShares(
            f"shares must sum to {BASIS_POINTS_WHOLE} basis points (100 %), not {total}"
        )


def allocate(amount: int, shares_bp: Sequence[int]) -> list[int]:
    """Split `amount` minor units by basis-point shares so the parts sum to `amount`.

    Largest remainder (Hamilton): each part starts as the floor of its exact
    value amount * share / 10 000; the leftover units (fewer than the number of
    parts) go one each to the parts with the largest remainders.  So every part
    is within one minor unit of its exact proportion and nothing is lost to
    rounding.  Equal remainders go to the lower index first: a stable rule, so
    the same split always pays the same cents to the same member.

    A negative amount (a refund) is split as its absolute value and negated, so
    refunding a payment gives back exactly what each member received.
    """
    _check_int(amount, "amount")
    validate_shares(shares_bp)
    return split_by_weights(amount, shares_bp)


def split_by_weights(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` in proportion to positive integer weights, exactly.

    The same largest-remainder rule as `allocate`, for weights that are not
    basis points (a refund clawed back in proportion to what each party was
    actually transferred).
    """
    _check_int(amount, "amount")
    if not weights or any(_check_int(w, "weight") < 0 for w in weights) or not sum(weights):
        raise InvalidShares("give at least one positive weight")
    if amount < 0:
        return [-part for part in split_by_weights(-amount, weights)]
    total = sum(weights)
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        quotient, remainder = divmod(amount * weight, total)
        parts.append(quotient)
        remainders.append(remainder)
    leftover = amount - sum(parts)
    # Sort key (-remainder, index): largest remainder first, lower index on ties.
    order = sorted(range(len(parts)), key=lambda i: (-remainders[i], i))
    for index in order[:leftover]:
        parts[index] += 1
    return parts


def apply_basis_points(amount: int, bp: int) -> int:
    """A fee of `bp` basis points of `amount` minor units, rounded half to even.

    Half-to-even (banker's rounding) has no upward bias, so many small
    referral or platform fees do not drift in the platform's favour; it is
    also symmetric, so the fee on a refund is exactly minus the original fee.
    """
    _check_int(amount, "amount")
    _check_int(bp, "basis points")
    if not 0 <= bp <= BASIS_POINTS_WHOLE:
        raise ValueError(f"basis points must be between 0 and {BASIS_POINTS_WHOLE}, not {bp}")
    quotient, remainder = divmod(amount * bp, BASIS_POINTS_WHOLE)
    twice = 2 * remainder
    if twice > BASIS_POINTS_WHOLE or (twice == BASIS_POINTS_WHOLE and quotient % 2 == 1):
        quotient += 1
    return quotient


def parse_minor(text: str, currency: str, locale: str) -> int:
    """Read an amount typed in the viewer's locale ("1 234,56" in fr_CA) into minor units.

    Parsing follows the locale's own decimal and group symbols (strictly, so
    "1,234.56" typed in de_DE is an error rather than 1.23456), and any space
    is read as the locale's group symbol because people type ordinary spaces
    where fr_CA prints a no-break one.  More decimals than the currency has are
    refused rather than rounded: silently dropping a typed fraction of a cent
    would change the amount the user meant.
    """
    digits = minor_digits(currency)
    if not isinstance(text, str) or not text.strip():
        raise InvalidAmount("enter an amount")
    cleaned = text.strip()
    group = get_group_symbol(locale)
    for space in _SPACES:
        cleaned = cleaned.replace(space, group)
    # Decimal would otherwise accept "NaN", "Infinity" and exponents like "1e9".
    if any(char.isalpha() for char in cleaned):
        raise InvalidAmount(f"{text.strip()!r} is not a number")
    try:
        value = parse_decimal(cleaned, locale=locale, strict=True)
    except (NumberFormatError, InvalidOperation):
        raise InvalidAmount(f"{text.strip()!r} is not a number") from None
    if not value.is_finite():
        raise InvalidAmount(f"{text.strip()!r} is not a number")
    scaled = value.scaleb(digits)
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{text.strip()!r} has more decimals than {currency} allows ({digits})")
    return int(scaled)


def format_money(minor: int, currency: str, locale: str) -> str:
    """Minor units written as the locale writes money ("$1,234.56", "1.234,56 €").

    The amount is shifted by the currency's own number of decimals with
    Decimal.scaleb, which is exact, so what is shown is exactly what is stored.
    """
    _check_int(minor, "minor")
    amount = Decimal(minor).scaleb(-minor_digits(currency))
    return format_currency(amount, currency, locale=locale)


def plain_decimal(minor: int, currency: str) -> str:
    """Minor units as a plain signed decimal that a spreadsheet reads in any locale
    ("-12.50", "1234.56"; "1234" for a currency without decimals): CSV exports, where
    the viewer's "1 234,56 $" would be read as text or as the wrong number."""
    _check_int(minor, "minor")
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, part = divmod(abs(minor), 10 ** digits)
    return f"{sign}{whole}.{part:0{digits}d}" if digits else f"{sign}{whole}"
