"""Progress against the agreement's targets, quarter by quarter (issue #20 part 4).

A target is a goal per calendar quarter for one metric of `clusters.targets`; what a
quarter reached is computed here from the rows the rest of the app writes (jobs and
contracts, machines and bookings, the ledger), never typed in or stored, by the very
functions the dashboard uses:

* overflow value kept: the value of the contracts *signed* in the quarter (a contract
  is a job a partner in the cluster was awarded) -- `disclosure.value_pools`' "kept";
* jobs handed over: how many contracts were signed in it (`metrics.jobs_by_month`);
* machine utilization: booked minutes of the cluster's machines over the minutes they
  were listed as available, in basis points, rounded down (`metrics.equipment_by_month`);
* equipment fees kept: booking and late-cancellation fees owners were owed, less
  refunded fees, by ledger month (`disclosure.fee_pools` / the coordinator's metrics).

A quarter is three of the cluster's months (`periods.MonthRange`), so its boundaries
are the cluster's local midnights, as the ledger's and the dashboard's months are.

Who sees what.  Targets are the cluster's: every figure here is a cluster total.  The
coordinator sees them all, live, the running quarter included.  A member sees the
counts and the utilization as the dashboard shows them to it (public: the board and
the calendar show them to every member).  Money -- value kept and fees -- is a pool of
other members' amounts, so a member sees a quarter's total only when the quarter is
over and *each* of its months is a cell the dashboard itself would show it
(`disclosure.Rule.withheld`, closed months as first stored).  The quarter's total is
then the sum of three figures the member can already read: it adds nothing a second
read could be subtracted from, and a month withheld on the dashboard can never be
recovered as "quarter minus the other two".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from marketplace.clusters.targets import TARGET_METRICS, TargetUnit
from marketplace.dashboard import disclosure, metrics
from marketplace.dashboard.access import Scope
from marketplace.dashboard.periods import MonthRange, months_back
from marketplace.errors import N_
from marketplace.ledger.settlement import current_month

#: Why a member does not see a quarter's money yet.
QUARTER_RUNNING = N_("the quarter is not over yet")
#: The rule for members, said once under the targets.
RULE = N_("Money totals are shown to members only for quarters that are over, and only "
          "when each of their months is shown on the dashboard's charts.")
VALUE, HANDED_OVER, UTILIZATION, FEES = ("overflow_value_kept", "jobs_handed_over",
                                         "machine_utilization_bp", "equipment_fees_kept")
#: The metrics that pool other members' money (members see them under the rule).
POOLED = (VALUE, FEES)


def quarter_of(month: str) -> str:
    """The quarter (YYYY-Qn) a month (YYYY-MM) belongs to."""
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def quarter_months(quarter: str) -> tuple[str, str, str]:
    """The three months (YYYY-MM) of a quarter (YYYY-Qn)."""
    year, number = quarter[:4], int(quarter[6:])
    first = (number - 1) * 3 + 1
    return (f"{year}-{first:02d}", f"{year}-{first + 1:02d}", f"{year}-{first + 2:02d}")


def quarters_between(first_month: str, last_month: str) -> tuple[str, ...]:
    """The quarters from the one holding `first_month` to the one holding `last_month`."""
    found: list[str] = []
    month = quarter_months(quarter_of(first_month))[0]
    while month <= last_month:
        found.append(quarter_of(month))
        month = months_back(month, -3)
    return tuple(found)


def recent_quarters(cluster_scope: Scope, now: datetime, count: int = 4) -> tuple[str, ...]:
    """The running quarter where the cluster is and the `count - 1` before it."""
    month = current_month(cluster_scope.cluster, now)
    return quarters_between(months_back(month, 3 * (count - 1)), month)


def quarter_range(quarters: Sequence[str], timezone: str) -> MonthRange:
    """The months of consecutive quarters as one range, in the cluster's time zone."""
    return MonthRange(tuple(m for q in quarters for m in quarter_months(q)), timezone)


@dataclass(frozen=True)
class QuarterFigure:
    """What one quarter reached on one metric: `value` (None when withheld or not
    measurable, e.g. no machine hours listed) and, if withheld, why."""

    quarter: str
    value: int | None
    closed: bool
    withheld: disclosure.Withheld | None = None


@dataclass(frozen=True)
class TargetProgress:
    """One target of the agreement: its metric, its goal per quarter and each quarter."""

    code: str
    label: str  # msgid
    hint: str  # msgid
    unit: TargetUnit
    goal: int
    quarters: tuple[QuarterFigure, ...]

    def reached_bp(self, figure: QuarterFigure) -> int | None:
        """How much of the goal the quarter reached, in basis points (rounded down)."""
        if figure.value is None or self.goal <= 0:
            return None
        return figure.value * 10_000 // self.goal


def sum_quarters(per_month: dict[str, int], quarters: Iterable[str]) -> dict[str, int]:
    """Monthly amounts added up per quarter (integers: exact to the cent)."""
    return {q: sum(per_month.get(m, 0) for m in quarter_months(q)) for q in quarters}


def ratio_bp(part: float, whole: float) -> int | None:
    """`part` of `whole` in basis points, rounded down (None when `whole` is nothing)."""
    if whole <= 0:
        return None
    return int(part * 10_000 // whole)


def _closed(months: MonthRange, quarter: str, now: datetime) -> bool:
    last = quarter_months(quarter)[2]
    return months.starts[months.months.index(last) + 1] <= now


def _pooled_quarters(months: MonthRange, quarters: Sequence[str], rule: disclosure.Rule,
                     pools: dict[str, disclosure.Pool], items: str, now: datetime
                     ) -> tuple[QuarterFigure, ...]:
    """A member's view of a pooled money figure: each month as the dashboard rules it."""
    figures: list[QuarterFigure] = []
    for quarter in quarters:
        closed = _closed(months, quarter, now)
        if not closed:
            figures.append(QuarterFigure(quarter, None, False,
                                         disclosure.Withheld(QUARTER_RUNNING, rule.k)))
            continue
        why = next((w for w in (rule.withheld(months, m, pools[m], items)
                                for m in quarter_months(quarter)) if w is not None), None)
        total = sum(pools[m].total for m in quarter_months(quarter))
        figures.append(QuarterFigure(quarter, None if why else total, True, why))
    return tuple(figures)


def _plain(months: MonthRange, quarters: Sequence[str], values: dict[str, int | None],
           now: datetime) -> tuple[QuarterFigure, ...]:
    return tuple(QuarterFigure(q, values[q], _closed(months, q, now)) for q in quarters)


def quarter_figures(session: Session, scope: Scope, quarters: Sequence[str], now: datetime,
                    codes: Iterable[str]) -> dict[str, tuple[QuarterFigure, ...]]:
    """Per metric code asked for, each quarter's figure as `scope` may see it.

    `scope` is the viewer's view of the cluster's totals (`access.scope_for(..., CLUSTER)`):
    the coordinator's (everything, live) or a member's pooled one.  Each group of rows is
    read once for all quarters."""
    wanted = [c for c in codes if c in TARGET_METRICS]
    if not wanted or not quarters:
        return {}
    assert scope.member is None, "targets are the cluster's: pass the cluster's scope"
    months = quarter_range(quarters, scope.cluster.timezone)
    rule = disclosure.Rule.of(scope, now)
    found: dict[str, tuple[QuarterFigure, ...]] = {}
    if VALUE in wanted or HANDED_OVER in wanted:
        if HANDED_OVER in wanted:
            contracts = {r.month: r.contracts
                         for r in metrics.jobs_by_month(session, scope, months, now)}
            found[HANDED_OVER] = _plain(months, quarters, dict(sum_quarters(contracts, quarters)),
                                        now)
        if VALUE in wanted:
            if scope.pooled:
                kept = {m: pair[0] for m, pair in
                        disclosure.value_pools(session, scope, months, rule).items()}
                found[VALUE] = _pooled_quarters(months, quarters, rule, kept,
                                                disclosure.CONTRACTS, now)
            else:
                live = disclosure.live_value_pools(session, scope, months, rule)
                found[VALUE] = _plain(months, quarters, dict(sum_quarters(
                    {m: pools[0].total for m, pools in live.items()}, quarters)), now)
    if UTILIZATION in wanted or (FEES in wanted and not scope.pooled):
        rows = metrics.equipment_by_month(session, scope, months, now)
        if UTILIZATION in wanted:
            by_month = {r.month: r for r in rows}
            found[UTILIZATION] = _plain(months, quarters, {
                q: ratio_bp(sum(by_month[m].booked_minutes for m in quarter_months(q)),
                            sum(by_month[m].available_minutes for m in quarter_months(q)))
                for q in quarters}, now)
        if FEES in wanted and not scope.pooled:
            found[FEES] = _plain(months, quarters, dict(sum_quarters(
                {r.month: r.fees_minor for r in rows}, quarters)), now)
    if FEES in wanted and scope.pooled:
        found[FEES] = _pooled_quarters(months, quarters, rule,
                                       disclosure.fee_pools(session, scope, months, rule),
                                       disclosure.BOOKINGS, now)
    return found


def target_progress(session: Session, scope: Scope, targets: dict[str, int],
                    quarters: Sequence[str], now: datetime) -> list[TargetProgress]:
    """The agreement's targets (code -> goal per quarter), in the metrics' order, with
    what each quarter reached as `scope` may see it."""
    codes = [c for c in TARGET_METRICS if c in targets]
    figures = quarter_figures(session, scope, quarters, now, codes)
    return [TargetProgress(code, TARGET_METRICS[code].label, TARGET_METRICS[code].hint,
                           TARGET_METRICS[code].unit, int(targets[code]), figures[code])
            for code in codes]
