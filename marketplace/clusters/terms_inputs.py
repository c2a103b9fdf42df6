"""The agreement's terms typed in inputs that are not WTForms fields, for the editor and
a proposal alike: one minimum insurance coverage per trade and one target per metric.

An amount is typed in the cluster's currency the viewer's way ("1 234,56" in French),
a count as a whole number, a ratio as a percent with up to two decimals; blank means
none.  Every unreadable input is named in one refusal, so nothing is published or put
to the vote from half the terms.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import request

from marketplace.clusters.agreements import DEFAULT_MIN_GROUP, AgreementTerms
from marketplace.clusters.forms import AgreementForm
from marketplace.clusters.insurance.views import typed_amount
from marketplace.clusters.models import Agreement
from marketplace.clusters.targets import TARGET_METRICS, TargetUnit, goal_refusal
from marketplace.clusters.trades import TRADES
from marketplace.errors import N_, ValidationError
from marketplace.web import money_from_form

FIELD_PREFIX = "target-"
COVERAGE_PREFIX = "min_coverage-"


def typed_terms(form: AgreementForm, current: Agreement | None, currency: str
                ) -> AgreementTerms:
    """The whole terms typed: the form's fields and the per-trade and per-metric inputs.
    Call it inside the view's action, so a refusal is shown on the form."""
    if form.aggregate_min_group.data is not None:
        min_group = int(form.aggregate_min_group.data)
    else:  # left blank: the version in force's
        min_group = current.aggregate_min_group if current else DEFAULT_MIN_GROUP
    return form.terms(min_group, min_coverage_from_form(currency), targets_from_form(currency))


def inputs_context(form: AgreementForm, current: Agreement | None, currency: str
                   ) -> dict[str, object]:
    """What the terms partial needs beyond the form: the coverage and target inputs as
    typed (after a refusal) or as in force, and the refused targets to mark."""
    submitted = form.is_submitted()
    if submitted:
        minima = {code: request.form.get(COVERAGE_PREFIX + code, "")[:40] for code in TRADES}
    else:
        in_force = current.min_coverage if current is not None else {}
        minima = {code: typed_amount(in_force.get(code), currency) for code in TRADES}
    goals = None if submitted else (current.targets if current is not None else {})
    return {"trades": TRADES, "min_coverage": minima, "currency": currency,
            "metrics": TARGET_METRICS, "targets": typed_targets(goals, currency),
            "target_refusals": target_refusals(currency) if submitted else {}}


def min_coverage_from_form(currency: str) -> dict[str, int]:
    """The minimum verified coverage per trade typed (empty: none); the trades whose
    amount does not parse are named in one refusal."""
    minima: dict[str, int] = {}
    unreadable: list[str] = []
    for code in TRADES:
        text = request.form.get(COVERAGE_PREFIX + code, "").strip()
        if text:
            try:
                minima[code] = money_from_form(text, COVERAGE_PREFIX + code, currency)
            except ValidationError:
                unreadable.append(code)
    if unreadable:
        message = N_("Write each minimum coverage as an amount such as 1234.56, the way "
                     "your language writes numbers, or leave it empty: %(trades)s.")
        raise ValidationError("invalid_amount", N_("Some fields need your attention."),
                              fields={"min_coverage": message}, params={"trades": unreadable})
    return minima


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
        percent = f"{Decimal(goal) / 100:f}"  # 5000 -> "50", 1250 -> "12.50"
        return percent.rstrip("0").rstrip(".") if "." in percent else percent
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
