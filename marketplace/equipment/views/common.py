"""The equipment blueprints and what every equipment page shares: the login gate,
status labels, the duration filter and the machine photos on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, current_app, request, send_from_directory
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.durations import format_duration
from marketplace.equipment.forms import KIND_LABELS
from marketplace.equipment.photos import (
    Rendition,
    display_copy,
    full_size,
    is_stored_name,
    store_photo,
)
from marketplace.errors import N_

bp = Blueprint("equipment", __name__, url_prefix="/equipment")
feed_bp = Blueprint("calendar_feed", __name__)

BOOKING_STATUS_LABELS = {
    "requested": N_("waiting for approval"), "confirmed": N_("confirmed"),
    "checked_out": N_("checked out"), "returned": N_("returned"), "closed": N_("closed"),
    "declined": N_("declined"), "cancelled": N_("cancelled"),
}
LISTING_STATUS_LABELS = {"active": N_("Active"), "paused": N_("Paused"),
                         "retired": N_("Retired")}


@bp.app_template_filter("duration")
def _duration(minutes: int) -> str:
    """Minutes as the viewer says them ("1 hour and 30 minutes", "3 días")."""
    return format_duration(minutes, str(get_locale() or "en"))


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "booking_status_label": lambda s: _(BOOKING_STATUS_LABELS.get(s, s)),
        "listing_status_label": lambda s: _(LISTING_STATUS_LABELS.get(s, s)),
        "kind_label": lambda k: str(KIND_LABELS.get(k, k)),
        "photo_shown": _photo_shown,
    }


def _photo_shown(name: str | None) -> Rendition | None:
    """What a page shows for a stored photo (its pixel size reserves the space), if any."""
    if not name or not is_stored_name(name):
        return None
    return display_copy(photo_dir(), name)


@bp.before_request
@login_required
def _require_login() -> None:
    """Equipment pages are for logged-in people only."""


def photo_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"]) / "equipment"


def uploaded_photo(form_field: Any) -> str | None:
    upload = form_field.data
    if upload is None or not getattr(upload, "filename", ""):
        return None
    return store_photo(upload.read(), photo_dir())



def send_photo(name: str) -> Response:
    """The smaller copy pages show; the full-size photo with `?size=full`.  Both
    without metadata (an old upload is scrubbed on its first full-size serve)."""
    if request.args.get("size") == "full":
        shown = full_size(photo_dir(), name)
    else:
        shown = display_copy(photo_dir(), name)
    if shown is None:
        abort(404)
    path, media_type = shown.path, shown.media_type
    response = send_from_directory(path.parent, path.name, mimetype=media_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
