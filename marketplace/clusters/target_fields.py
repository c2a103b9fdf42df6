"""The agreement editor's targets: one input per metric, written the way its unit reads.

A money goal is typed as an amount of the cluster's currency in the viewer's language
("1 234,56" in French), a count as a whole number, a ratio as a percent with up to two
decimals; blank means the agreement sets no target for that metric.  Every unreadable
input is named in one refusal, so nothing is published from half the targets.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import request

from marketplace.clusters.insurance.views import typed_amount
from marketplace.clusters.targets import TARGET_METRICS, TargetUnit, goal_refusal
from marketplace.errors import N_, ValidationError
from marketplace.web import money_from_form

FIELD_PREFIX = "target-"


def typed_targets(goals: dict[str, int] | None, currency: str) -> dict[str, str]:
    """What each input shows: what was typed (after a refusal) or the goals in force."""
    if goals is None:
        return {code: request.form.get(FIELD_PREFIX + code, "")[:40] for code in TARGET_METRICS}
    return {code: _as_typed(code, goals.get(code), currency) for code in TARGET_METRICS}


def _as_typed(code: str, goal: int | None, currency: str) -> str:
    if goal is None:
        return ""
    unit = TARGET_METRICS[code].unit
    if unit is TargetUnit.MONEY:
        return typed_amount(goal, currency)
    if unit is TargetUnit.BASIS_POINTS:
        return f"{Decimal(goal) / 100:f}".rstrip("0").rstrip(".")
    return str(goal)


UNREADABLE = N_("Write each target as a number, the way your language writes numbers, or "
                "leave it empty for no target.")


def targets_from_form(currency: str) -> dict[str, int]:
    """The goals typed in the editor, in the units the agreement stores; every unreadable
    one is named in one refusal (the service refuses readable goals out of range)."""
    goals, unreadable = _readings(currency)
    if unreadable:
        raise ValidationError("invalid_target", N_("Some fields need your attention."),
                              fields={FIELD_PREFIX + code: UNREADABLE for code in unreadable})
    return goals


def target_refusals(currency: str) -> dict[str, str]:
    """Metric code -> why its typed goal was refused (untranslated), so the editor can
    mark each refused input where it stands, not only in the list above the form."""
    goals, unreadable = _readings(currency)
    refusals = {code: UNREADABLE for code in unreadable}
    for code, goal in goals.items():
        refusal = goal_refusal(code, goal)
        if refusal is not None:
            refusals[code] = refusal
    return refusals


def _readings(currency: str) -> tuple[dict[str, int], list[str]]:
    goals: dict[str, int] = {}
    unreadable: list[str] = []
    for code, metric in TARGET_METRICS.items():
        text = request.form.get(FIELD_PREFIX + code, "").strip()
        if not text:
            continue
        try:
            goals[code] = _read(text, code, metric.unit, currency)
        except (ValidationError, InvalidOperation, ValueError):
            unreadable.append(code)
    return goals, unreadable


def _read(text: str, code: str, unit: TargetUnit, currency: str) -> int:
    if unit is TargetUnit.MONEY:
        return money_from_form(text, FIELD_PREFIX + code, currency)
    if unit is TargetUnit.COUNT:
        if not text.isdigit() or len(text) > 9:
            raise ValueError(text)
        return int(text)
    percent = Decimal(text.replace(",", "."))
    if not percent.is_finite() or percent != percent.quantize(Decimal("0.01")):
        raise ValueError(text)
    return int(percent * 100)
