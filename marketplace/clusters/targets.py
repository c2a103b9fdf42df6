"""The measurable targets an agreement may name: what the cooperation is for, in numbers.

The coopetition literature asks an alliance to measure its outcomes against targets it
set itself, and to review them before its sunset.  An agreement version names a goal per
calendar quarter (in the cluster's time zone) for any of these metrics; what a quarter
actually reached is computed elsewhere (the sunset review's progress), from the jobs,
bookings and ledger, never typed in.

A metric's unit says how its goal is written and shown: an amount of the cluster's
currency in minor units, a count, or basis points of a ratio.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from marketplace.errors import N_


class TargetUnit(StrEnum):
    MONEY = "money"  # minor units of the cluster's currency
    COUNT = "count"
    BASIS_POINTS = "bp"  # 10 000 = 100 %


class TargetMetric(NamedTuple):
    label: str
    unit: TargetUnit
    hint: str


#: Metric code -> what it measures.  The codes are stored in agreement versions: add new
#: ones, never rename one.
TARGET_METRICS: dict[str, TargetMetric] = {
    "overflow_value_kept": TargetMetric(
        N_("Overflow value kept in the cluster"), TargetUnit.MONEY,
        N_("The value of overflow jobs awarded to a partner in the cluster, instead of "
           "turned away.")),
    "jobs_handed_over": TargetMetric(
        N_("Overflow jobs handed to a partner"), TargetUnit.COUNT,
        N_("How many overflow jobs a partner in the cluster was awarded.")),
    "machine_utilization_bp": TargetMetric(
        N_("Machine utilization"), TargetUnit.BASIS_POINTS,
        N_("Hours booked out of the hours the cluster's machines are listed as "
           "available.")),
    "equipment_fees_kept": TargetMetric(
        N_("Equipment fees kept in the cluster"), TargetUnit.MONEY,
        N_("Booking fees members paid each other for machines, instead of a rental "
           "company.")),
}

#: The largest goal anyone can mean: 10^12 minor units, a million jobs, 100 %.
MAX_GOAL = {TargetUnit.MONEY: 10**12, TargetUnit.COUNT: 10**6, TargetUnit.BASIS_POINTS: 10_000}


def goal_refusal(code: str, goal: object) -> str | None:
    """Why `goal` cannot be the quarterly goal of metric `code` (None: it can)."""
    metric = TARGET_METRICS.get(code)
    if metric is None:
        return N_("Choose targets from the list.")
    if isinstance(goal, bool) or not isinstance(goal, int) \
            or not 0 < goal <= MAX_GOAL[metric.unit]:
        if metric.unit is TargetUnit.BASIS_POINTS:
            return N_("Enter a target above 0 and at most 100, or leave it empty for none.")
        return N_("Enter a target above zero, or leave it empty for none.")
    return None
