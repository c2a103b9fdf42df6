"""`GET /places?q=…`: town suggestions for the "Address or town" fields, and the one
helper the job and profile forms use to turn what was typed into a point.

Suggestions come from the offline gazetteer only (service.suggest): they answer
every keystroke in well under a millisecond and send nothing anywhere.  The configured
geocoder is asked only on submit, by `locate_typed`.
"""

from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import login_required

from marketplace.places import service
from marketplace.places.service import Place

bp = Blueprint("places", __name__)

#: A query longer than any town name is not a town: answered with no suggestions.
MAX_QUERY = 100


def viewer_countries() -> frozenset[str]:
    """The countries of the viewer's cluster (its locale's region, its time zone's)."""
    cluster = getattr(g, "viewer_cluster", None)
    if cluster is None:
        return frozenset()
    return service.countries_for(cluster.default_locale, cluster.timezone)


def configured_geocoder() -> service.Geocoder | None:
    """The operator's Nominatim server (GEOCODER_URL), made once per app."""
    url = current_app.config.get("GEOCODER_URL")
    if not url:
        return None
    cached = current_app.extensions.get("geocoder")
    if cached is None or cached[0] != url:
        cached = (url, service.geocoder_from_url(
            url, float(current_app.config.get("GEOCODER_TIMEOUT_SECONDS") or 3)))
        current_app.extensions["geocoder"] = cached
    return cached[1]


def locate_typed(text: str | None, lat: str | float | None, lng: str | float | None,
                 resolved: str | None, field: str) -> Place:
    """service.locate with this request's cluster countries and geocoder; raises the
    ValidationError (422, on `field`) that the form shows when nothing is found."""
    return service.locate(text or "", lat=lat, lng=lng, resolved=resolved,
                             countries=viewer_countries(), geocoder=configured_geocoder(),
                             field=field)


@bp.route("/places")
@login_required
def suggestions() -> ResponseReturnValue:
    query = (request.args.get("q") or "").strip()
    places = service.suggest(query, viewer_countries()) if len(query) <= MAX_QUERY else []
    response = jsonify({"places": [place.as_json() for place in places]})
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
