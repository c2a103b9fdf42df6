"""What each dashboard chart shows: its columns, its rows and the series it plots.

One `Figure` is the single source of a chart, its table view and its CSV, so
the three can never disagree: the page draws the plotted columns, lists every
column as a table and writes the same cells to the CSV.  Cells hold raw
values (months as YYYY-MM, counts, minor units, minutes, fractions); only the
edge turns them into text -- the viewer's language for the page
(`views.py`), and `plain` here for the CSV and the table's machine-readable
`data-value`, so a test can hold the table and the CSV to the same numbers.
Labels are msgids, translated at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from marketplace.dashboard import metrics
from marketplace.dashboard.access import Scope
from marketplace.dashboard.periods import MonthRange
from marketplace.errors import N_, Forbidden, not_found
from marketplace.money import plain_decimal
from marketplace.spreadsheet import spreadsheet_text


class Kind(StrEnum):
    """What a column holds, which decides how it is written."""

    MONTH = "month"  # YYYY-MM
    NAME = "name"  # text typed by people (a member's name)
    FLAG = "flag"  # yes / no
    COUNT = "count"
    MONEY = "money"  # minor units of the cluster currency
    HOURS = "hours"  # stored as minutes
    PERCENT = "percent"  # a fraction, 0.5 = 50 %
    RATING = "rating"  # 1 to 5


class Plot(StrEnum):
    STACKED = "stacked"  # bars per month, series stacked
    LINES = "lines"  # a line per series over the months
    ROWS = "rows"  # one horizontal bar per row (members)


Cell = str | int | float | bool | None


@dataclass(frozen=True)
class Column:
    label: str  # msgid
    kind: Kind


@dataclass(frozen=True)
class Figure:
    name: str  # in the CSV's address: /dashboard/<name>.csv
    title: str  # msgid
    hint: str  # msgid: what is counted, and when
    plot: Plot
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    series: tuple[int, ...]  # the plotted columns, by index

    @property
    def axis(self) -> Kind:
        """The kind of the plotted values (every plotted column has the same)."""
        return self.columns[self.series[0]].kind


def plain(kind: Kind, value: Cell, currency: str) -> str:
    """A cell as plain text any spreadsheet reads in any locale: 1234.56, 12.5, 2026-06
    (people's text made formula-safe).  Empty for a value that does not exist (a rate
    with nothing to divide by)."""
    if value is None:
        return ""
    if kind == Kind.MONEY:
        return plain_decimal(int(value), currency)
    if kind == Kind.HOURS:
        return f"{float(value) / 60:.1f}"
    if kind == Kind.PERCENT:
        return f"{float(value) * 100:.1f}"
    if kind == Kind.RATING:
        return f"{float(value):.2f}"
    if kind == Kind.FLAG:
        return "1" if value else "0"
    if kind == Kind.NAME:
        return spreadsheet_text(str(value))
    return str(value)


# --- the figures -------------------------------------------------------------------------

MONTH = Column(N_("Month"), Kind.MONTH)


def _jobs(session: Session, scope: Scope, months: MonthRange, now: datetime
          ) -> tuple[Figure, Figure]:
    rows = metrics.jobs_by_month(session, scope, months, now)
    won = N_("Jobs won from partners") if scope.member else N_("Contracts signed")
    jobs = Figure(
        "jobs", N_("Overflow jobs"),
        N_("Each job counts in the month it was posted, with what became of it: claimed "
           "(a hand-off), awarded (a bid window), not taken (cancelled, or nobody took it "
           "before its start date) or still waiting. Contracts count in the month they "
           "were signed."),
        Plot.STACKED,
        (MONTH, Column(N_("Posted"), Kind.COUNT), Column(N_("Claimed"), Kind.COUNT),
         Column(N_("Awarded"), Kind.COUNT), Column(N_("Not taken"), Kind.COUNT),
         Column(N_("Still waiting"), Kind.COUNT), Column(won, Kind.COUNT)),
        tuple((r.month, r.posted, r.claimed, r.awarded, r.not_taken, r.waiting, r.contracts)
              for r in rows),
        (2, 3, 4, 5))
    value = Figure(
        "value", N_("Contract value kept in the cluster"),
        N_("The value of the jobs posted in the month that a partner took, against the "
           "value of those nobody in the cluster took."),
        Plot.STACKED,
        (MONTH, Column(N_("Kept in the cluster"), Kind.MONEY),
         Column(N_("Not taken by anyone"), Kind.MONEY)),
        tuple((r.month, r.kept_minor, r.turned_away_minor) for r in rows),
        (1, 2))
    return jobs, value


def _equipment(session: Session, scope: Scope, months: MonthRange, now: datetime
               ) -> tuple[Figure, Figure]:
    rows = metrics.equipment_by_month(session, scope, months, now)
    utilization = Figure(
        "utilization", N_("Equipment utilization"),
        N_("Booked hours as a share of the hours machines were offered: their weekly "
           "hours from the day they were listed, minus blackouts."),
        Plot.LINES,
        (MONTH, Column(N_("Utilization"), Kind.PERCENT), Column(N_("Booked hours"), Kind.HOURS),
         Column(N_("Available hours"), Kind.HOURS)),
        tuple((r.month, r.utilization, r.booked_minutes, r.available_minutes) for r in rows),
        (1,))
    fees = Figure(
        "fees", N_("Equipment fees earned"),
        N_("Booking and late-cancellation fees owed to the machines' owners in the month, "
           "less refunded fees."),
        Plot.STACKED,
        (MONTH, Column(N_("Fees earned"), Kind.MONEY)),
        tuple((r.month, r.fees_minor) for r in rows),
        (1,))
    return utilization, fees


def _money(session: Session, scope: Scope, months: MonthRange, _now: datetime
           ) -> tuple[Figure, ...]:
    sums = metrics.settled_sums(session, scope, months)
    revenue = Figure(
        "revenue", N_("Revenue settled"),
        N_("Money received through the cluster (shares, referral and equipment fees, "
           "adjustments) in months the coordinator has settled; open months show nothing "
           "yet."),
        Plot.STACKED,
        (MONTH, Column(N_("Settled"), Kind.FLAG), Column(N_("Received"), Kind.MONEY),
         Column(N_("Paid"), Kind.MONEY), Column(N_("Net"), Kind.MONEY)),
        tuple((r.month, r.settled, *((r.received_minor, r.paid_minor, r.net_minor)
                                     if r.settled else (None, None, None)))
              for r in metrics.revenue_by_month(sums, scope, months)),
        (2,))
    if not scope.sees_every_member:
        return (revenue,)
    members = Figure(
        "members", N_("Revenue settled per member"),
        N_("Each member's money received through the cluster over the settled months of "
           "the period."),
        Plot.ROWS,
        (Column(N_("Member"), Kind.NAME), Column(N_("Received"), Kind.MONEY),
         Column(N_("Paid"), Kind.MONEY), Column(N_("Net"), Kind.MONEY)),
        tuple((r.name, r.received_minor, r.paid_minor, r.net_minor)
              for r in metrics.revenue_by_member(sums, scope)),
        (1,))
    return revenue, members


def _reliability(session: Session, scope: Scope, months: MonthRange, now: datetime
                 ) -> tuple[Figure, Figure]:
    rows = metrics.reliability_by_month(session, scope, months, now)
    rating = Figure(
        "rating", N_("Average rating received") if scope.member else N_("Average rating"),
        N_("Ratings partners gave each other after confirmed jobs, in the month they were "
           "given (1 to 5)."),
        Plot.LINES,
        (MONTH, Column(N_("Average rating"), Kind.RATING), Column(N_("Ratings"), Kind.COUNT),
         Column(N_("Ratings saying on time"), Kind.PERCENT)),
        tuple((r.month, r.average_rating, r.ratings, r.on_time_rate) for r in rows),
        (1,))
    completion = Figure(
        "completion", N_("Jobs completed"),
        N_("Of the taken jobs due to end in the month (and already over), the share "
           "reported done. Jobs still within their dates are not counted yet."),
        Plot.LINES,
        (MONTH, Column(N_("Completion rate"), Kind.PERCENT), Column(N_("Due to end"), Kind.COUNT),
         Column(N_("Reported done"), Kind.COUNT), Column(N_("Confirmed by the poster"),
                                                         Kind.COUNT)),
        tuple((r.month, r.completion_rate, r.due, r.completed, r.confirmed) for r in rows),
        (1,))
    return rating, completion


Builder = Callable[[Session, Scope, MonthRange, datetime], Sequence[Figure]]

#: Chart names, in page order, and what builds them (several from one read of the rows).
BUILDERS: dict[str, Builder] = {
    "jobs": _jobs, "value": _jobs, "utilization": _equipment, "fees": _equipment,
    "revenue": _money, "members": _money, "rating": _reliability,
    "completion": _reliability,
}


def figures(session: Session, scope: Scope, months: MonthRange, now: datetime
            ) -> list[Figure]:
    """Every chart the scope may see, in page order (each group of rows read once)."""
    built = {f.name: f for builder in dict.fromkeys(BUILDERS.values())
             for f in builder(session, scope, months, now)}
    return [built[name] for name in BUILDERS if name in built]


def figure(session: Session, name: str, scope: Scope, months: MonthRange, now: datetime
           ) -> Figure:
    """One chart by name (a CSV download): NotFound for a name that is not a chart,
    Forbidden for one the scope may not see (revenue per member, to a member)."""
    builder = BUILDERS.get(name)
    if builder is None:
        raise not_found()
    found = [f for f in builder(session, scope, months, now) if f.name == name]
    if not found:
        raise Forbidden("coordinator_only", N_("Only the cluster coordinator can do this."))
    return found[0]
