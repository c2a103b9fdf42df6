"""What each dashboard chart shows: its columns, its rows and the series it plots.

One `Figure` is the single source of a chart, its table view and its CSV, so
the three can never disagree: the page draws the plotted columns, lists every
column as a table and writes the same cells to the CSV.  Cells hold raw
values (months as YYYY-MM, counts, minor units, minutes, fractions); only the
edge turns them into text -- the viewer's language for the page
(`views.py`), and `plain` here for the CSV and the table's machine-readable
`data-value`, so a test can hold the table and the CSV to the same numbers.
Labels are msgids, translated at the edge.

In a member's view of the cluster's totals (`Scope.pooled`), the cells that
sum other members' money or ratings come from `disclosure` instead: withheld
cells hold None (an empty CSV cell, no bar or point) and say why in
`Figure.withheld`; the counts stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from marketplace.dashboard import disclosure, metrics
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
    #: (row, column) -> why that cell is not shown (a pooled view only); its value is None
    withheld: dict[tuple[int, int], disclosure.Withheld] = field(default_factory=dict,
                                                                 compare=False)
    #: The pooled view's k: the hint then states the rule
    pooled_k: int | None = None

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
    columns = (MONTH, Column(N_("Kept in the cluster"), Kind.MONEY),
               Column(N_("Not taken by anyone"), Kind.MONEY))
    if scope.pooled:
        return jobs, _pooled_value(session, scope, months, now, columns)
    value = Figure(
        "value", N_("Contract value kept in the cluster"),
        N_("The value of the jobs posted in the month that a partner took, against the "
           "value of those nobody in the cluster took."),
        Plot.STACKED, columns,
        tuple((r.month, r.kept_minor, r.turned_away_minor) for r in rows),
        (1, 2))
    return jobs, value


class _Cells:
    """A pooled figure's rows being built: each pool becomes its value or None, and a
    withheld pool leaves its reason."""

    def __init__(self, rule: disclosure.Rule, months: MonthRange) -> None:
        self.rule, self.months = rule, months
        self.withheld: dict[tuple[int, int], disclosure.Withheld] = {}

    def cell(self, row: int, column: int, pool: disclosure.Pool, items: str,
             value: Cell) -> Cell:
        why = self.rule.withheld(self.months, self.months.months[row], pool, items)
        if why is None:
            return value
        self.withheld[(row, column)] = why
        return None


def _pooled_value(session: Session, scope: Scope, months: MonthRange, now: datetime,
                  columns: tuple[Column, ...]) -> Figure:
    rule = disclosure.Rule.of(scope, now)
    pools = disclosure.value_pools(session, scope, months, rule)
    cells = _Cells(rule, months)
    rows = tuple((m, cells.cell(i, 1, kept, disclosure.CONTRACTS, kept.total),
                  cells.cell(i, 2, untaken, disclosure.JOBS, untaken.total))
                 for i, (m, (kept, untaken)) in enumerate(pools.items()))
    return Figure(
        "value", N_("Contract value kept in the cluster"),
        N_("The value of the contracts signed in the month, against the value of the jobs "
           "nobody had taken by their start date, in the month of that date."),
        Plot.STACKED, columns, rows, (1, 2), cells.withheld, scope.min_group)


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
    fee_rows: tuple[tuple[Cell, ...], ...] = tuple((r.month, r.fees_minor) for r in rows)
    withheld: dict[tuple[int, int], disclosure.Withheld] = {}
    if scope.pooled:
        rule = disclosure.Rule.of(scope, now)
        cells = _Cells(rule, months)
        fee_rows = tuple((m, cells.cell(i, 1, pool, disclosure.BOOKINGS, pool.total))
                         for i, (m, pool) in enumerate(
                             disclosure.fee_pools(session, scope, months, rule).items()))
        withheld = cells.withheld
    fees = Figure(
        "fees", N_("Equipment fees earned"),
        N_("Booking and late-cancellation fees owed to the machines' owners in the month, "
           "less refunded fees."),
        Plot.STACKED,
        (MONTH, Column(N_("Fees earned"), Kind.MONEY)),
        fee_rows, (1,), withheld, scope.min_group if scope.pooled else None)
    return utilization, fees


def _money(session: Session, scope: Scope, months: MonthRange, now: datetime
           ) -> tuple[Figure, ...]:
    sums = metrics.settled_sums(session, scope, months)
    if scope.pooled:
        return (_pooled_revenue(session, scope, months, now, sums.approved),)
    revenue = Figure(
        "revenue", N_("Revenue settled"),
        N_("Money received through the cluster (shares, referral and equipment fees, "
           "adjustments) in months the coordinator has settled; open months show nothing "
           "yet."),
        Plot.STACKED,
        REVENUE_COLUMNS,
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


REVENUE_COLUMNS = (MONTH, Column(N_("Settled"), Kind.FLAG), Column(N_("Received"), Kind.MONEY),
                   Column(N_("Paid"), Kind.MONEY), Column(N_("Net"), Kind.MONEY))


def _pooled_revenue(session: Session, scope: Scope, months: MonthRange, now: datetime,
                    approved: set[str]) -> Figure:
    """Received and paid as pools; net only where both are shown (it is one minus the
    other).  Months not settled show nothing, as for everyone."""
    rule = disclosure.Rule.of(scope, now)
    cells = _Cells(rule, months)
    rows: list[tuple[Cell, ...]] = []
    for i, (m, (received, paid)) in enumerate(
            disclosure.revenue_pools(session, scope, months, rule, approved).items()):
        if m not in approved:
            rows.append((m, False, None, None, None))
            continue
        shown_in = cells.cell(i, 2, received, disclosure.FACTS, received.total)
        shown_out = cells.cell(i, 3, paid, disclosure.FACTS, paid.total)
        net: Cell = None
        if shown_in is not None and shown_out is not None:
            net = received.total - paid.total
        else:
            cells.withheld[(i, 4)] = cells.withheld.get((i, 2)) or cells.withheld[(i, 3)]
        rows.append((m, True, shown_in, shown_out, net))
    return Figure(
        "revenue", N_("Revenue settled"),
        N_("Money received through the cluster (shares, referral and equipment fees, "
           "adjustments) in months the coordinator has settled; open months show nothing "
           "yet."),
        Plot.STACKED, REVENUE_COLUMNS, tuple(rows), (2,), cells.withheld, scope.min_group)


def _reliability(session: Session, scope: Scope, months: MonthRange, now: datetime
                 ) -> tuple[Figure, Figure]:
    rows = metrics.reliability_by_month(session, scope, months, now)
    rating_rows: tuple[tuple[Cell, ...], ...] = tuple(
        (r.month, r.average_rating, r.ratings, r.on_time_rate) for r in rows)
    withheld: dict[tuple[int, int], disclosure.Withheld] = {}
    if scope.pooled:
        rule = disclosure.Rule.of(scope, now)
        cells = _Cells(rule, months)
        rating_rows = tuple(
            (m, cells.cell(i, 1, scores, disclosure.RATINGS, scores.average), scores.count,
             cells.cell(i, 3, punctual, disclosure.RATINGS, punctual.average))
            for i, (m, (scores, punctual)) in enumerate(
                disclosure.rating_pools(session, scope, months, rule).items()))
        withheld = cells.withheld
    rating = Figure(
        "rating", N_("Average rating received") if scope.member else N_("Average rating"),
        N_("Ratings partners gave each other after confirmed jobs, in the month they were "
           "given (1 to 5)."),
        Plot.LINES,
        (MONTH, Column(N_("Average rating"), Kind.RATING), Column(N_("Ratings"), Kind.COUNT),
         Column(N_("Ratings saying on time"), Kind.PERCENT)),
        rating_rows, (1,), withheld, scope.min_group if scope.pooled else None)
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
