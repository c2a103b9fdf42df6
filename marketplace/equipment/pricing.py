"""What a booking costs: the hour rate or the day rate, whichever is cheaper.

Hours are charged pro rata by the minute (a 90-minute slot at 40.00/h costs
60.00), rounded half up to the cent with integer arithmetic; days are charged
whole (any part of a 24-hour day counts as a day).  A rate of zero means the
owner does not offer that kind of rate, so the other one applies.
"""

from __future__ import annotations

from enum import StrEnum

from marketplace.money import apply_basis_points

MINUTES_PER_HOUR = 60
MINUTES_PER_DAY = 24 * 60


def hourly_cost(minutes: int, hour_rate_minor: int) -> int:
    """Pro-rata hour charge, half up to the minor unit."""
    return (minutes * hour_rate_minor * 2 + MINUTES_PER_HOUR) // (2 * MINUTES_PER_HOUR)


def daily_cost(minutes: int, day_rate_minor: int) -> int:
    """Whole days started, times the day rate."""
    days = -(-minutes // MINUTES_PER_DAY)
    return days * day_rate_minor


class Rate(StrEnum):
    """Which rate a slot is charged at (what the price shown before booking names)."""

    HOUR = "hour"  # by the minute at the hour rate
    DAY = "day"  # whole days started at the day rate
    FREE = "free"  # the machine has no rate
    CUSTODY = "custody"  # the booker's own rotation period: no fee


def price_of(minutes: int, hour_rate_minor: int, day_rate_minor: int) -> tuple[Rate, int]:
    """The rate that applies to a slot of `minutes` and its price: the cheaper offered
    one (the hour rate on a tie, as it is charged by the minute)."""
    offers = []
    if hour_rate_minor > 0:
        offers.append((hourly_cost(minutes, hour_rate_minor), 0, Rate.HOUR))
    if day_rate_minor > 0:
        offers.append((daily_cost(minutes, day_rate_minor), 1, Rate.DAY))
    if not offers:
        return Rate.FREE, 0
    price, _order, rate = min(offers)
    return rate, price


def booking_fee(minutes: int, hour_rate_minor: int, day_rate_minor: int) -> int:
    """The cheaper of the offered rates for a slot of `minutes` (0 when the machine is free)."""
    return price_of(minutes, hour_rate_minor, day_rate_minor)[1]


def cancellation_fee(price_minor: int, fee_bp: int) -> int:
    """The late-cancellation fee: a basis-point share of the booking's price."""
    return apply_basis_points(price_minor, fee_bp)
