"""The member's equipment calendar as an .ics feed (no login: the secret URL is the
key), and renewing that URL."""

from __future__ import annotations

from urllib.parse import urlparse

from flask import Response, abort, current_app, flash, redirect, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from marketplace.clusters.models import Member
from marketplace.db import utcnow
from marketplace.equipment import calendar
from marketplace.equipment.views.common import bp, feed_bp
from marketplace.web import db, viewer


@bp.route("/calendar/renew", methods=["POST"])
def renew_feed() -> ResponseReturnValue:
    user = viewer()
    member = db().get(Member, user.member_id) if user.member_id else None
    if member is None:
        abort(403)
    calendar.feed_token(db(), member, utcnow(), renew=True)
    flash(_("New calendar address made. The old one no longer works."))
    return redirect(url_for("equipment.my_bookings"))



@feed_bp.route("/calendar/<token>.ics")
def feed(token: str) -> ResponseReturnValue:
    session = db()
    now = utcnow()
    member = calendar.member_for_token(session, token, now)
    if member is None:
        abort(404)
    labels = {"booking": _("Booking: %(machine)s"), "lent": _("Lent out: %(machine)s"),
              "custody": _("Your turn with %(machine)s")}
    events = calendar.member_events(session, member, now, labels)
    domain = urlparse(current_app.config["PUBLIC_URL"]).hostname or "marketplace"
    body = calendar.render_ics(events, _("%(member)s: equipment", member=member.name),
                               domain, now)
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = "inline; filename=equipment.ics"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
