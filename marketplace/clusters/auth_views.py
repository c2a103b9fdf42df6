"""Log in and out, reset a password, sign up through an invite, start a cluster."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from marketplace.clusters import accounts, invites, service
from marketplace.clusters.forms import (
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SignupForm,
    StartClusterForm,
)
from marketplace.db import utcnow
from marketplace.i18n import LANGUAGES
from marketplace.mail import outbox
from marketplace.ratelimits import login_limit, reset_limit
from marketplace.web import db, submit

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)


def _safe_next(target: str | None) -> str:
    """Only follow same-site relative redirects (no open redirect via ?next=)."""
    if target and target.startswith("/") and not target.startswith("//") \
            and not urlsplit(target).netloc:
        return target
    return url_for("clusters.home")


@bp.route("/login", methods=["GET", "POST"])
@login_limit
def login() -> ResponseReturnValue:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("clusters.home"))
    form = LoginForm()  # a POST while logged in switches account (a shared crew tablet)
    if form.validate_on_submit():
        user = accounts.authenticate(db(), form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            session.pop("lang", None)
            log.info("login user_id=%s", user.id)
            return redirect(_safe_next(request.args.get("next")))
        form.form_errors.append(_("That e-mail and password do not match an account. "
                                  "Check both, or reset your password."))
        return render_template("accounts/login.html", form=form), 401
    return render_template("accounts/login.html", form=form), 422 if form.errors else 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> ResponseReturnValue:
    logout_user()
    flash(_("You are logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/password/forgot", methods=["GET", "POST"])
@reset_limit
def forgot_password() -> ResponseReturnValue:
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        user = accounts.find_user_by_email(db(), form.email.data or "")
        if user is not None and user.active:
            # The mail (with its link, signed when it is composed) goes out from the
            # delivery worker: the same page and the same time for any address typed.
            outbox.queue_password_reset(db(), user, utcnow())
            log.info("password reset mail queued for user_id=%s", user.id)
        flash(_("If that address has an account, a reset link is on its way."))
        return redirect(url_for("auth.login"))
    return render_template("accounts/forgot.html", form=form), 422 if form.errors else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> ResponseReturnValue:
    form = ResetPasswordForm()

    def reset() -> ResponseReturnValue:
        accounts.reset_password(
            db(), current_app.config["SECRET_KEY"], token, form.password.data or "",
            current_app.config["PASSWORD_RESET_VALID_MINUTES"] * 60, utcnow(),
        )
        flash(_("Your password is changed. Log in with the new one."))
        return redirect(url_for("auth.login"))

    if form.validate_on_submit():
        return submit(form, reset, lambda: render_template("accounts/reset.html", form=form))
    return render_template("accounts/reset.html", form=form), 422 if form.errors else 200


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    invite = invites.open_invite(db(), secret, token, utcnow())  # refusals render as 4xx
    form = SignupForm()

    def sign_up() -> ResponseReturnValue:
        user = invites.accept_invite(db(), secret, token, form.name.data or "",
                                     form.password.data or "", utcnow())
        login_user(user)
        log.info("invite_id=%s accepted by user_id=%s", invite.id, user.id)
        flash(_("Welcome! Read the cluster agreement, then complete your business profile."))
        return redirect(url_for("clusters.agreement"))

    def page() -> str:
        return render_template("accounts/signup.html", form=form, invite=invite)

    if form.validate_on_submit():
        return submit(form, sign_up, page)
    return page(), 422 if form.errors else 200


@bp.route("/start", methods=["GET", "POST"])
def start_cluster() -> ResponseReturnValue:
    form = StartClusterForm()
    if form.validate_on_submit():
        settings = service.ClusterSettings(
            name=form.cluster_name.data or "", currency=form.currency.data or "",
            default_locale=form.default_locale.data or "", timezone=form.timezone.data or "",
            unit_system=form.unit_system.data or "",
        )

        def start() -> ResponseReturnValue:
            _cluster, user = service.create_cluster(
                db(), settings, form.name.data or "", form.email.data or "",
                form.password.data or "", utcnow())
            login_user(user)
            flash(_("Your cluster is ready. Write its agreement, then invite member "
                    "businesses."))
            return redirect(url_for("clusters.edit_agreement"))

        return submit(form, start, lambda: render_template("accounts/start.html", form=form))
    return render_template("accounts/start.html", form=form), 422 if form.errors else 200


@bp.route("/lang/<code>")
def switch_language(code: str) -> ResponseReturnValue:
    """The language switcher: remembered in the session, and saved for users."""
    if code in LANGUAGES:
        session["lang"] = code
        if current_user.is_authenticated:
            user = current_user._get_current_object()
            service.update_preferences(db(), user, code, user.timezone, user.unit_system)
    return redirect(_safe_next(request.args.get("next")))
