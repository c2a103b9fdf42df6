"""One-click unsubscribe from a mail, and "try my address again" on the account page.

The unsubscribe link works without logging in (it is signed for one person and
one kind of mail).  Opening it shows a button, because mail scanners follow
links; the button, and a mail provider's one-click POST (RFC 8058), turn that
kind of mail off.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.clusters.models import User
from marketplace.delivery.preferences import CATEGORY_LABELS, mute_mail
from marketplace.extensions import csrf
from marketplace.mail import outbox
from marketplace.mail.composer import read_unsubscribe_token
from marketplace.persisted import id_of
from marketplace.web import db, viewer

bp = Blueprint("mail", __name__)


@bp.route("/mail/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # a mail provider's one-click POST carries no form token; the link is signed
def unsubscribe(token: str) -> ResponseReturnValue:
    found = read_unsubscribe_token(current_app.config["SECRET_KEY"], token)
    person = db().get(User, found[0]) if found else None
    if found is None or person is None:
        return render_template("mail/unsubscribe.html", invalid=True), 404
    label = _(CATEGORY_LABELS[found[1]])
    if request.method == "POST":
        # RFC 8058: a one-click POST says so in its body; so does the page's button.
        if request.form.get("List-Unsubscribe") != "One-Click":
            return render_template("mail/unsubscribe.html", label=label, token=token,
                                   unconfirmed=True), 422
        mute_mail(db(), id_of(person), found[1])
        return render_template("mail/unsubscribe.html", done=True, label=label)
    return render_template("mail/unsubscribe.html", label=label, token=token)


@bp.route("/account/mail/retry", methods=["POST"])
@login_required
def try_again() -> ResponseReturnValue:
    """The person fixed their mailbox: mail may go there again."""
    if outbox.try_again(db(), viewer()):
        flash(_("We will send mail to %(address)s again.", address=viewer().email))
    return redirect(url_for("clusters.account") + "#push")
