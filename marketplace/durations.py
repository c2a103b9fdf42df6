"""Lengths of time as people say them: "1 hour 30 minutes", "3 días", "2 Stunden".

Booking rules are stored in minutes (the machine's steps), but "60 to 4320
minutes" is not how a crew lead thinks; this writes a whole number of minutes
exactly, in days, hours and minutes, with the locale's own unit words (CLDR via
Babel) joined the locale's way.  No flask: callers pass the locale.
"""

from __future__ import annotations

from babel.lists import format_list
from babel.units import format_unit

MINUTES_PER_HOUR = 60
MINUTES_PER_DAY = 24 * MINUTES_PER_HOUR


def format_duration(minutes: int, locale: str) -> str:
    """`minutes` written exactly in the largest units that divide it, e.g. 90 ->
    "1 hour and 30 minutes", 4320 -> "3 days" (never rounded: a rule must read true)."""
    if minutes <= 0:
        return format_unit(0, "duration-minute", length="long", locale=locale)
    days, rest = divmod(minutes, MINUTES_PER_DAY)
    hours, mins = divmod(rest, MINUTES_PER_HOUR)
    parts = [format_unit(value, unit, length="long", locale=locale)
             for value, unit in ((days, "duration-day"), (hours, "duration-hour"),
                                 (mins, "duration-minute")) if value]
    return format_list(parts, locale=locale)
