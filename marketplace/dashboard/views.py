"""The dashboard page and a CSV per chart: the cooperation, measured.

Views stay thin: the filter (months, member) goes to `access.scope_for` and
`periods.month_range`, which refuse what the viewer may not see or did not
type right; `figures` reads the numbers; here they become text in the
viewer's language and currency, SVG charts, tables and CSV files.  The
table and the CSV are written from the same cells (the table keeps each
cell's CSV value in `data-value`).  A cell `disclosure` withholds from a
member reads "too few to show" with its reason, is empty in the CSV and
leaves a gap in the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from babel.numbers import format_compact_currency, format_compact_decimal
from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, format_percent, get_locale
from flask_babel import gettext as _
from flask_login import login_required
from markupsafe import Markup

from marketplace.clusters.review.views import dashboard_targets
from marketplace.dashboard import charts, disclosure
from marketplace.dashboard.access import CLUSTER, Scope, scope_for
from marketplace.dashboard.figures import Cell, Figure, Kind, Plot, figure, figures, plain
from marketplace.dashboard.periods import MonthRange, month_range
from marketplace.db import utcnow
from marketplace.errors import ValidationError
from marketplace.i18n import money, month_name
from marketplace.money import minor_digits
from marketplace.web import csv_download, db, translate, viewer

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")

#: Series colours per chart (palette indexes), so "not taken" and "turned away" share one.
TONES = {"jobs": (0, 1, 2, 3), "value": (0, 2), "members": (4,), "fees": (4,),
         "revenue": (1,), "utilization": (0,), "rating": (5,), "completion": (1,)}


@bp.before_request
@login_required
def _require_login() -> None:
    """The dashboard is for logged-in people only."""


def _locale() -> str:
    return str(get_locale() or "en")


def shown(kind: Kind, value: Cell, currency: str) -> str:
    """A cell as the viewer reads it: their language's numbers, money and month names."""
    if value is None:
        return "–"
    if kind == Kind.MONTH:
        return month_name(str(value))
    if kind == Kind.MONEY:
        return money(int(value), currency)
    if kind == Kind.HOURS:
        return format_decimal(float(value) / 60, format="#,##0.0")
    if kind == Kind.PERCENT:
        return format_percent(float(value), format="#,##0.0%")
    if kind == Kind.RATING:
        return format_decimal(float(value), format="0.00")
    if kind == Kind.FLAG:
        return _("yes") if value else _("no")
    if kind == Kind.COUNT:
        return format_decimal(int(value))
    return str(value)


def _scale(kind: Kind, currency: str) -> charts.Scale:
    """Ratings run 0 to 5; the rest to a round number above the data (whole counts)."""
    if kind == Kind.RATING:
        return charts.Scale(top=5.0, steps=5)
    if kind == Kind.COUNT:
        return charts.Scale(whole=True, empty_top=4.0)
    if kind == Kind.MONEY:
        return charts.Scale(empty_top=100.0 * 10 ** minor_digits(currency))
    if kind == Kind.HOURS:
        return charts.Scale(empty_top=4.0 * 60)
    return charts.Scale(empty_top=1.0)


def _tick(kind: Kind, currency: str) -> charts.Format:
    """Axis labels: short ("$12K", "40 %"), in the viewer's locale."""
    if kind == Kind.MONEY:
        digits = minor_digits(currency)
        return lambda v: format_compact_currency(Decimal(round(v)).scaleb(-digits), currency,
                                                 locale=_locale(), fraction_digits=1)
    if kind == Kind.PERCENT:
        return lambda v: format_percent(v, format="#,##0.#%")
    if kind == Kind.HOURS:
        return lambda v: format_compact_decimal(v / 60, locale=_locale(), fraction_digits=1)
    return lambda v: format_decimal(v, format="#,##0.#")


@dataclass(frozen=True)
class Rendered:
    """A figure ready for the page: texts translated, chart drawn, cells formatted."""

    figure: Figure
    title: str
    hint: str
    headers: tuple[str, ...]
    rows: tuple[tuple[tuple[str, str, str], ...], ...]  # (shown, plain, why withheld)
    svg: Markup
    legend: Markup
    csv_url: str


def _description(fig: Figure, title: str, months: MonthRange, labels: tuple[str, ...],
                 series: list[charts.Series], full: charts.Format) -> str:
    """What the chart shows, in words: the key figure of every series."""
    if fig.plot == Plot.ROWS:
        sentences = [_("%(title)s, %(first)s to %(last)s.", title=title,
                       first=month_name(months.first), last=month_name(months.last))]
    else:
        sentences = [_("%(title)s by month, %(first)s to %(last)s.", title=title,
                       first=labels[0], last=labels[-1])]
    for one in series:
        values = [(v, i) for i, v in enumerate(one.values) if v is not None]
        if not values:
            sentences.append(_("%(series)s: no figures in this period.", series=one.label))
        elif fig.plot == Plot.LINES:
            value, index = values[-1]
            sentences.append(_("%(series)s: %(value)s in %(month)s, the latest month with a "
                               "figure.", series=one.label, value=full(value),
                               month=labels[index]))
        else:
            value, index = max(values, key=lambda pair: (pair[0], -pair[1]))
            sentences.append(_("%(series)s: %(total)s in total, the most for %(label)s "
                               "(%(value)s).", series=one.label,
                               total=full(sum(v for v, _i in values)), label=labels[index],
                               value=full(value)))
    return " ".join(sentences)


def _draw(fig: Figure, title: str, months: MonthRange, currency: str
          ) -> tuple[Markup, Markup]:
    kind = fig.axis
    tones = TONES.get(fig.name, ())
    series = [charts.Series(_(fig.columns[c].label),
                            tuple(None if cell is None else float(cell)
                                  for cell in (row[c] for row in fig.rows)),
                            tones[n] if n < len(tones) else n)
              for n, c in enumerate(fig.series)]
    full: charts.Format = partial(shown, kind, currency=currency)
    if fig.plot == Plot.ROWS:
        labels = tuple(str(row[0]) for row in fig.rows)
        years = ("",) * len(labels)
        chart_labels = labels
    else:
        chart_labels = tuple(month_name(m, "MMM") for m in months.months)
        years = tuple(month_name(m, "y") for m in months.months)
        labels = tuple(month_name(m) for m in months.months)
    frame = charts.Frame(f"chart-{fig.name}", title,
                         _description(fig, title, months, labels, series, full),
                         chart_labels, years, _tick(kind, currency), full)
    if fig.plot == Plot.ROWS:
        svg = charts.row_bars(frame, series[0])
    elif fig.plot == Plot.LINES:
        svg = charts.lines(frame, series, _scale(kind, currency))
    else:
        svg = charts.stacked_bars(frame, series, _scale(kind, currency))
    return svg, charts.legend(series)


def _filter_args(scope: Scope, months: MonthRange) -> dict[str, Any]:
    """The query string that shows this scope and range again (page and CSV links)."""
    member = str(scope.member_id) if scope.member_id is not None else CLUSTER
    return {"first": months.first, "last": months.last, "member": member}


def _cell(fig: Figure, row: int, column: int, currency: str) -> tuple[str, str, str]:
    """A table cell: as the viewer reads it, as the CSV writes it, and why it is withheld
    (empty when it is shown)."""
    kind, value = fig.columns[column].kind, fig.rows[row][column]
    why = fig.withheld.get((row, column))
    if why is not None:
        return _(disclosure.TOO_FEW), "", _(why.reason, **why.params)
    return shown(kind, value, currency), plain(kind, value, currency), ""


def _render(fig: Figure, scope: Scope, months: MonthRange) -> Rendered:
    currency = scope.cluster.currency
    title = _(fig.title)
    svg, legend = _draw(fig, title, months, currency)
    hint = _(fig.hint)
    if fig.pooled_k is not None:
        hint = f"{hint} {_(disclosure.RULE, k=fig.pooled_k)}"
    return Rendered(
        fig, title, hint, tuple(_(c.label) for c in fig.columns),
        tuple(tuple(_cell(fig, r, c, currency) for c in range(len(fig.columns)))
              for r in range(len(fig.rows))),
        svg, legend,
        url_for("dashboard.chart_csv", chart=fig.name, **_filter_args(scope, months)))


def _asked() -> tuple[str | None, str | None, str | None]:
    return request.args.get("first"), request.args.get("last"), request.args.get("member")


def _scope_and_months(now: datetime) -> tuple[Scope, MonthRange]:
    first, last, member = _asked()
    scope = scope_for(db(), viewer(), member)
    return scope, month_range(scope.cluster, now, first, last)


@bp.route("")
def index() -> ResponseReturnValue:
    now = utcnow()
    first, last, member = _asked()
    try:
        scope, months = _scope_and_months(now)
    except ValidationError as error:
        db().rollback()
        scope = scope_for(db(), viewer(), None if "member" in error.fields else member)
        errors = {name: translate(error, text) for name, text in error.fields.items()}
        return render_template("dashboard/index.html", scope=scope, charts=[], errors=errors,
                               asked={"first": first or "", "last": last or "",
                                      "member": member or ""}), 422
    rendered = [_render(fig, scope, months) for fig in figures(db(), scope, months, now)]
    # The agreement's targets are the cluster's: shown with the cluster's totals only.
    targets, targets_rule = dashboard_targets(db(), scope, now) if scope.member is None \
        else ([], "")
    return render_template("dashboard/index.html", scope=scope, charts=rendered, errors={},
                           asked=_filter_args(scope, months), rows=targets,
                           targets_rule=targets_rule)


@bp.route("/<chart>.csv")
def chart_csv(chart: str) -> ResponseReturnValue:
    now = utcnow()
    scope, months = _scope_and_months(now)
    fig = figure(db(), chart, scope, months, now)
    currency = scope.cluster.currency
    header = [_("%(label)s (%(currency)s)", label=_(c.label), currency=currency)
              if c.kind == Kind.MONEY else _(c.label) for c in fig.columns]
    rows: list[list[Any]] = [header]
    rows += [[plain(c.kind, cell, currency) for c, cell in zip(fig.columns, row, strict=True)]
             for row in fig.rows]
    who = f"member-{scope.member_id}" if scope.member_id is not None else CLUSTER
    return csv_download(rows, f"{fig.name}-{who}-{months.first}-{months.last}.csv")
