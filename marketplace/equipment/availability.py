"""When a machine can be booked: weekly hours in its own time zone, minus blackouts.

Weekly hours are wall-clock times where the machine lives ("Mon 07:00-18:00
in America/Toronto"), so they are turned into UTC intervals date by date:
across a daylight-saving change the same 07:00 is a different UTC instant.
Windows that touch (a day ending at 24:00 and the next starting at 00:00)
merge, so a machine open around the clock can be booked over several days.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]


class WeeklyWindow(Protocol):
    """Weekly hours as the rule reads them: an `AvailabilityWindow`, or just its three
    columns where a hot path (every booking tap) loads no more."""

    @property
    def weekday(self) -> int: ...
    @property
    def start_minute(self) -> int: ...
    @property
    def end_minute(self) -> int: ...


@dataclass(frozen=True)
class WeeklyHours:
    """One weekly window as a listing states it (and the booking rule reads it)."""

    weekday: int  # 0 = Monday
    start_minute: int
    end_minute: int  # up to 1440 (midnight at the end of the day)


def _local_instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of `minute` after local midnight on `day` (1440 = next midnight)."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def open_intervals(windows: Iterable[WeeklyWindow], timezone: str, start: datetime,
                   end: datetime) -> list[Interval]:
    """The machine's bookable hours overlapping [start, end), merged, in UTC."""
    zone = ZoneInfo(timezone)
    by_weekday: dict[int, list[WeeklyWindow]] = {}
    for window in windows:
        by_weekday.setdefault(window.weekday, []).append(window)
    first = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    raw: list[Interval] = []
    day = first
    while day <= last:
        for window in by_weekday.get(day.weekday(), []):
            opens = _local_instant(day, window.start_minute, zone)
            closes = _local_instant(day, window.end_minute, zone)
            if closes > start and opens < end:
                raw.append((opens, closes))
        day += timedelta(days=1)
    return merge(raw)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same time (touching ones joined)."""
    merged: list[Interval] = []
    for opens, closes in sorted(intervals):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        else:
            merged.append((opens, closes))
    return merged


def covers(intervals: Sequence[Interval], start: datetime, end: datetime) -> bool:
    """True when one merged interval contains all of [start, end)."""
    return any(opens <= start and end <= closes for opens, closes in intervals)


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open intervals [a_start, a_end) and [b_start, b_end) share an instant."""
    return a_start < b_end and b_start < a_end


def on_granularity(moment: datetime, timezone: str, minutes: int) -> bool:
    """The local wall-clock time is a whole multiple of `minutes` past midnight."""
    local = moment.astimezone(ZoneInfo(timezone))
    since_midnight = local.hour * 60 + local.minute
    return local.second == 0 and local.microsecond == 0 and since_midnight % minutes == 0


def subtract(intervals: Sequence[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """`intervals` with every hole cut out (used to show what is still free)."""
    result = list(intervals)
    for hole_start, hole_end in holes:
        pieces: list[Interval] = []
        for opens, closes in result:
            if not overlaps(opens, closes, hole_start, hole_end):
                pieces.append((opens, closes))
                continue
            if opens < hole_start:
                pieces.append((opens, hole_start))
            if hole_end < closes:
                pieces.append((hole_end, closes))
        result = pieces
    return result
