"""What a booking costs: the hour rate or the day rate, whichever is cheaper.

Hours are charged pro rata by the minute (a 90-minute slot at 40.00/h costs
60.00), rounded half up to the cent with integer arithmetic; days are charged
whole (any part of a 24-hour day counts as a day).  A rate of zero means the
owner does not offer that kind of rate, so the other one applies.
"""

from __future__ import annotations

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


def booking_fee(minutes: int, hour_rate_minor: int, day_rate_minor: int) -> int:
    """The cheaper of the offered rates for a slot of `minutes` (0 when the machine is free)."""
    offers = []
    if hour_rate_minor > 0:
        offers.append(hourly_cost(minutes, hour_rate_minor))
    if day_rate_minor > 0:
        offers.append(daily_cost(minutes, day_rate_minor))
    return min(offers, default=0)


def cancellation_fee(price_minor: int, fee_bp: int) -> int:
    """The late-cancellation fee: a basis-point share of the booking's price."""
    return apply_basis_points(price_minor, fee_bp)
