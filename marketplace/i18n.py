"""Which language, time zone and units a viewer gets, and how values look to them.

Locale: the user's saved preference, else `?lang=`, else the language chosen
with the switcher this session, else the browser's Accept-Language, else the
cluster default.  Time zone: the user's, else the cluster's.  Everything is
stored in UTC and minor units; only here does it become local text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton
from babel.dates import format_timedelta as babel_timedelta
from flask import Flask, g, request, session
from flask_babel import (
    Babel,
    format_date,
    format_datetime,
    format_decimal,
    format_timedelta,
    get_locale,
    get_translations,
    gettext,
)
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from marketplace.clusters.service import SUPPORTED_LOCALES
from marketplace.money import format_money

LANGUAGES: dict[str, str] = {"en": "English", "es": "Español", "fr": "Français", "de": "Deutsch"}
_KM_PER_MILE = 1.609344
_SQ_FEET_PER_M2 = 10.763910417
_M2_PER_ACRE = 4046.8564224
_M2_PER_HECTARE = 10_000


def _viewer_cluster() -> Any:
    return getattr(g, "viewer_cluster", None)


#: Where a cluster is when its default locale names no country: by its currency.
_CURRENCY_TERRITORY = {"CAD": "CA", "USD": "US", "MXN": "MX"}


def cluster_territory(cluster: Any) -> str | None:
    """The country a cluster works in: its default locale's ("en_CA" -> CA), else its
    currency's (CAD -> CA); None when neither says (EUR spans many countries)."""
    if cluster is None:
        return None
    territory = Locale.parse(cluster.default_locale).territory
    return territory or _CURRENCY_TERRITORY.get(cluster.currency)


def regional(locale: str, cluster: Any = None) -> str:
    """A bare language in the cluster's country, where we offer that pair: "en" in a
    Canadian cluster is en_CA, so dates read 2026-12-16 and not 12/16/26; "fr" there is
    fr_CA.  A locale that already names a country is the person's explicit choice."""
    if "_" in locale:
        return locale
    territory = cluster_territory(cluster)
    candidate = f"{locale}_{territory}" if territory else locale
    return candidate if candidate in SUPPORTED_LOCALES else locale


def select_locale() -> str:
    """Pick the viewer's locale, most explicit choice first; a bare language takes the
    cluster's country (`regional`)."""
    cluster = _viewer_cluster()
    if current_user.is_authenticated and current_user.locale:
        return regional(str(current_user.locale), cluster)
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return regional(asked, cluster)
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return regional(str(chosen), cluster)
    browser = _from_accept_language()
    if browser:
        return regional(browser, cluster)
    return cluster.default_locale if cluster is not None else "en"


def _from_accept_language() -> str | None:
    """The browser's first language we speak, keeping its region when we format it
    ("fr-CA" -> fr_CA, so money reads "1 234,56 $"; "fr-BE" -> fr)."""
    for tag, _quality in request.accept_languages:
        code = tag.replace("-", "_")
        parts = code.split("_")
        regional = f"{parts[0].lower()}_{parts[1].upper()}" if len(parts) > 1 else code
        if regional in SUPPORTED_LOCALES:
            return regional
        if parts[0].lower() in LANGUAGES:
            return parts[0].lower()
    return None


def select_timezone() -> str:
    """The viewer's own time zone, else the cluster's, else UTC."""
    if current_user.is_authenticated and current_user.timezone:
        return str(current_user.timezone)
    cluster = _viewer_cluster()
    return cluster.timezone if cluster is not None else "UTC"


def unit_system() -> str:
    """metric or imperial: the user's override, else the cluster's region."""
    if current_user.is_authenticated and current_user.unit_system:
        return str(current_user.unit_system)
    cluster = _viewer_cluster()
    return cluster.unit_system if cluster is not None else "metric"


def format_distance(km: float | None) -> str:
    """A distance in the viewer's units, e.g. "25 km" or "15.5 mi"."""
    if km is None:
        return ""
    if unit_system() == "imperial":
        return f"{format_decimal(round(km / _KM_PER_MILE, 1))} mi"
    return f"{format_decimal(round(km, 1))} km"


def format_area(square_metres: float | None) -> str:
    """An area in the viewer's units: m² or ha (metric), sq ft or acres (imperial)."""
    if square_metres is None:
        return ""
    if unit_system() == "imperial":
        if square_metres >= _M2_PER_ACRE / 4:
            return f"{format_decimal(round(square_metres / _M2_PER_ACRE, 2))} ac"
        return f"{format_decimal(round(square_metres * _SQ_FEET_PER_M2))} sq ft"
    if square_metres >= _M2_PER_HECTARE:
        return f"{format_decimal(round(square_metres / _M2_PER_HECTARE, 2))} ha"
    return f"{format_decimal(round(square_metres))} m²"


def first_weekday() -> int:
    """The first day of a calendar week for the viewer (0 = Monday, 6 = Sunday)."""
    return int(Locale.parse(str(get_locale() or "en")).first_week_day)


def km_from_display(value: float) -> float:
    """Turn a distance typed in the viewer's units back into kilometres."""
    return value * _KM_PER_MILE if unit_system() == "imperial" else value


def km_to_display(km: float) -> float:
    """A distance in kilometres in the viewer's units (miles or km), unrounded: what a
    form field shows for `km_from_display` to read back."""
    return km / _KM_PER_MILE if unit_system() == "imperial" else km


def money(minor: int, currency: str) -> str:
    """Money in the viewer's locale and the given (cluster) currency."""
    return format_money(minor, currency, str(get_locale() or "en"))


def when(value: datetime | None, fmt: str = "medium") -> str:
    """A stored UTC instant shown in the viewer's time zone."""
    return format_datetime(value, fmt) if value is not None else ""


def day(value: date | None, fmt: str = "medium") -> str:
    """A calendar date in the viewer's locale."""
    return format_date(value, fmt) if value is not None else ""


def isoday(value: str | None, fmt: str = "medium") -> str:
    """A date carried as ISO text (barrier-filtered dicts) shown in the viewer's locale."""
    return day(date.fromisoformat(value), fmt) if value else ""


def isowhen(value: str | None, fmt: str = "medium") -> str:
    """An instant carried as ISO text (barrier-filtered dicts) in the viewer's time zone."""
    return when(datetime.fromisoformat(value), fmt) if value else ""


def locale_display_name(code: str) -> str:
    """A locale's own name ("français (Canada)"), for pickers."""
    return Locale.parse(code).get_display_name(code) or code


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a daylight-saving change (e.g. 02:30 in spring)."""


def local_to_utc(local: datetime, timezone: str | None = None) -> datetime:
    """A naive wall-clock time typed by the viewer, as an aware UTC instant.

    A repeated hour (autumn) means its first occurrence; a skipped hour
    (spring) does not exist and is refused rather than silently shifted.
    """
    zone = ZoneInfo(timezone or select_timezone())
    aware = local.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise NonexistentLocalTime(local.isoformat())
    return utc


def utc_to_local_input(value: datetime | None) -> str:
    """An instant as the value of a datetime-local input in the viewer's zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(select_timezone())).strftime("%Y-%m-%dT%H:%M")


def relative(value: datetime | None) -> str:
    """ "in 2 hours" / "3 minutes ago" in the viewer's language."""
    if value is None:
        return ""
    return format_timedelta(value - datetime.now(UTC), add_direction=True, threshold=1.1)


#: How long a past moment reads as "3 min ago"; older ones show their date and time.
RECENT = timedelta(hours=12)


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """When something happened, as the viewer reads it: "3 min ago" for the last hours,
    else the date and time in their zone ("Dec 1, 2026, 12:11 p.m.")."""
    if value is None:
        return ""
    elapsed = (now or datetime.now(UTC)) - value
    if timedelta(0) <= elapsed < RECENT:
        if elapsed < timedelta(minutes=1):
            return gettext("just now")
        return babel_timedelta(-elapsed, add_direction=True, format="short", threshold=1.1,
                               locale=str(get_locale() or "en"))
    return format_datetime(value, "medium")


_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def month_name(month: str | None, skeleton: str = "yMMMM") -> str:
    """A YYYY-MM month by its name in the viewer's language ("novembre 2026"); `skeleton`
    picks a shorter form ("yMMM": "nov. 2026", "MMM": "nov.")."""
    if not month or not _MONTH.match(month):
        return month or ""
    first = date(int(month[:4]), int(month[5:7]), 1)
    return format_skeleton(skeleton, first, locale=str(get_locale() or "en"))


def notification_text(message: str, params: Mapping[str, Any]) -> str:
    """A stored message (msgid + parameters) in the current language; a `month`
    parameter is stored as YYYY-MM and read by its name."""
    shown = {name: month_name(value) if name == "month" and isinstance(value, str) else value
             for name, value in params.items()}
    return gettext(message, **shown)


#: What each internal status is called on a chip, per kind of thing.  Every template
#: shows a status through `status_label`, so no internal word reaches a page.
STATUS_LABELS: dict[str, dict[str | None, Any]] = {
    "job": {
        "open": _l("Open"), "window_closed": _l("Bids closed"), "awarded": _l("Taken"),
        "done": _l("Done, awaiting confirmation"), "confirmed": _l("Completed"),
        "cancelled": _l("Cancelled"), "expired": _l("Expired: nobody took it in time"),
    },
    "bid": {"submitted": _l("Bid sent"), "draft": _l("Waiting for partners")},
    "settlement": {"draft": _l("Draft: to review"), "approved": _l("Approved"),
                   None: _l("Not drafted yet")},
}


def status_label(status: str | None, kind: str = "job") -> str:
    """The translated label of a job's, bid's or settlement's status."""
    label = STATUS_LABELS.get(kind, {}).get(status)
    return str(label) if label is not None else (status or "")


#: The render context's key for the translations of the language it renders in.
_TRANSLATIONS = "_render_translations"


def _render_translations() -> dict[str, Any]:
    """Each render's translations, looked up once: Flask-Babel's own template gettext
    looks them up again for every text (four context lookups and the catalogue key
    each time, about half of each `_()`; a page holds about sixty).  A render inside
    `force_locale` (mail, notices) gets the forced language's, as it asks then."""
    return {_TRANSLATIONS: get_translations()}


def _translations_of(context: Context) -> Any:
    """The render's translations; a macro imported without the page's context (its
    module sees only the globals) looks them up as Flask-Babel does."""
    found = context.get(_TRANSLATIONS)
    return found if found is not None else get_translations()


@pass_context
def _template_gettext(context: Context, string: str, /, **variables: Any) -> str:
    """Jinja's new-style `_()`/`gettext()`: translated, marked safe when autoescaping
    (the variables are escaped as they are put in), always %-formatted.  Positional
    parameters only, as Jinja's own: a text may name its variable `string` or `num`."""
    return _filled(context, _translations_of(context).ugettext(string), variables)


@pass_context
def _template_ngettext(context: Context, singular: str, plural: str, num: int, /,
                       **variables: Any) -> str:
    """Jinja's new-style `ngettext()`, as `_template_gettext` (`num` is a variable)."""
    variables.setdefault("num", num)
    return _filled(context, _translations_of(context).ungettext(singular, plural, num),
                   variables)


def _filled(context: Context, text: str, variables: dict[str, Any]) -> str:
    """A translated text with its variables put in (escaped, where the render escapes)."""
    if context.eval_ctx.autoescape:
        text = Markup(text)
    return text % variables


def init_i18n(app: Flask) -> Babel:
    """Attach Flask-Babel and the template helpers to the app."""
    babel = Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.context_processor(_render_translations)
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext,
                                 ngettext=_template_ngettext)
    app.jinja_env.globals.update(
        LANGUAGES=LANGUAGES, current_locale=lambda: str(get_locale() or "en"),
        locale_display_name=locale_display_name, unit_system=unit_system,
        status_label=status_label,
    )
    app.jinja_env.filters.update(
        money=money, when=when, day=day, distance=format_distance, relative=relative,
        isoday=isoday, isowhen=isowhen, area=format_area, ago=ago, month_name=month_name,
    )
    return babel
