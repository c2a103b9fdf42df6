"""The months a dashboard covers, in the cluster's time zone.

A month is the cluster's wall-clock month ("2026-03" in America/Toronto runs
from 1 March 00:00 Toronto time), the same rule the ledger files entries
under (`ledger.service.ledger_month`), so a job posted at 23:30 on 31 March in
Toronto counts in March even though it is already April in UTC.  The range
is checked here once, for the page and every CSV alike: bad input is a
ValidationError naming the field, never a silently different range.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from marketplace.clusters.models import Cluster
from marketplace.errors import N_, ValidationError
from marketplace.ledger.service import next_month
from marketplace.ledger.settlement import current_month, parse_month

DEFAULT_MONTHS = 12
MAX_MONTHS = 36  # three years: beyond that a phone-width chart has no room per month
MIN_YEAR, MAX_YEAR = 2000, 2999  # keeps every month boundary a valid instant


def months_back(month: str, count: int) -> str:
    """The month `count` months before `month`."""
    year, number = int(month[:4]), int(month[5:7])
    index = year * 12 + number - 1 - count
    return f"{index // 12}-{index % 12 + 1:02d}"


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


@dataclass(frozen=True)
class MonthRange:
    """Consecutive months, oldest first, and where each begins as a UTC instant."""

    months: tuple[str, ...]
    timezone: str

    @property
    def first(self) -> str:
        return self.months[0]

    @property
    def last(self) -> str:
        return self.months[-1]

    def _start_of(self, month: str) -> datetime:
        local = datetime.combine(first_day(month), datetime.min.time(),
                                 tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    @cached_property
    def starts(self) -> tuple[datetime, ...]:
        """Each month's first instant, then the instant the range ends (len(months) + 1)."""
        return tuple(self._start_of(m) for m in (*self.months, next_month(self.last)))

    @property
    def start(self) -> datetime:
        return self.starts[0]

    @property
    def end(self) -> datetime:
        return self.starts[-1]

    @property
    def first_date(self) -> date:
        return first_day(self.first)

    @property
    def end_date(self) -> date:
        """The day after the range (exclusive bound for date columns)."""
        return first_day(next_month(self.last))

    def month_of(self, instant: datetime) -> str | None:
        """The range's month an instant falls in (cluster time zone), or None outside it."""
        index = bisect_right(self.starts, instant) - 1
        return self.months[index] if 0 <= index < len(self.months) else None

    def split(self, start: datetime, end: datetime) -> Iterator[tuple[str, float]]:
        """How many minutes of [start, end) fall in each month of the range."""
        starts = self.starts
        index = max(bisect_right(starts, start) - 1, 0)
        while index < len(self.months) and starts[index] < end:
            lower, upper = max(start, starts[index]), min(end, starts[index + 1])
            if upper > lower:
                yield self.months[index], (upper - lower).total_seconds() / 60
            index += 1


def _month_field(text: str | None, field: str, errors: dict[str, str]) -> str | None:
    """A YYYY-MM month typed in `field`, or None (blank, or wrong: noted in `errors`)."""
    if text is None or not text.strip():
        return None
    try:
        month = parse_month(text.strip())
    except ValidationError as error:
        errors[field] = error.message
        return None
    if not MIN_YEAR <= int(month[:4]) <= MAX_YEAR:
        errors[field] = N_("Choose a month between the years %(first)d and %(last)d.")
        return None
    return month


def month_range(cluster: Cluster, now: datetime, first: str | None = None,
                last: str | None = None) -> MonthRange:
    """The months from `first` to `last` (YYYY-MM, both included); by default the last
    DEFAULT_MONTHS months up to the current one, where the cluster is."""
    errors: dict[str, str] = {}
    chosen_first = _month_field(first, "first", errors)
    chosen_last = _month_field(last, "last", errors)
    if errors:
        raise ValidationError("invalid_range", N_("Some fields need your attention."),
                              fields=errors, params={"first": MIN_YEAR, "last": MAX_YEAR})
    if chosen_last is None:
        chosen_last = (months_back(chosen_first, 1 - DEFAULT_MONTHS) if chosen_first
                       else current_month(cluster, now))
    start = chosen_first or months_back(chosen_last, DEFAULT_MONTHS - 1)
    end = chosen_last
    if start > end:
        message = N_("The first month must not come after the last one.")
        raise ValidationError("invalid_range", message, fields={"first": message})
    months = [start]
    while months[-1] < end:
        months.append(next_month(months[-1]))
        if len(months) > MAX_MONTHS:
            message = N_("Choose at most %(count)d months.")
            raise ValidationError("invalid_range", message, fields={"last": message},
                                  params={"count": MAX_MONTHS})
    return MonthRange(tuple(months), cluster.timezone)
