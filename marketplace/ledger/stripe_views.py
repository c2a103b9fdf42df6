"""Stripe Connect in the browser: payout setup for owners, and the webhook endpoint.

Without STRIPE_SECRET_KEY (the embedded default) the app runs in offline ledger
mode: the same ledger and settlement, payouts recorded as bank transfers, and
these routes say so instead of calling Stripe.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.db import utcnow
from marketplace.errors import N_, Conflict
from marketplace.extensions import csrf
from marketplace.ledger import connect, payments, refunds
from marketplace.ledger.stripe_gateway import (
    GatewayError,
    InvalidWebhook,
    StripeGateway,
    gateway_from_config,
    is_live_key,
    parse_event,
)
from marketplace.web import db, money_from_form, viewer

bp = Blueprint("payouts", __name__)
log = logging.getLogger(__name__)


def _gateway() -> StripeGateway:
    gateway = gateway_from_config(current_app.config)
    if gateway is None:
        raise Conflict("offline_ledger", N_("Payouts run as bank transfers recorded by the "
                                            "coordinator (offline ledger mode); Stripe is not "
                                            "set up for this marketplace."))
    return gateway


@bp.route("/ledger/payouts/setup", methods=["POST"])
@login_required
def setup() -> ResponseReturnValue:
    gateway = _gateway()
    try:
        url = connect.start_onboarding(
            db(), viewer(), gateway, current_app.config["STRIPE_ACCOUNT_COUNTRY"],
            url_for("payouts.refresh", _external=True), url_for("payouts.done", _external=True),
            utcnow())
    except GatewayError as error:
        log.warning("stripe onboarding failed: %s", error.reason)
        flash(_("Stripe could not start the set-up just now (%(reason)s). Try again in a "
                "minute.", reason=error.reason), "error")
        return redirect(url_for("ledger.index"))
    return redirect(url)


@bp.route("/ledger/payouts/done")
@login_required
def done() -> ResponseReturnValue:
    flash(_("Thank you. Stripe is checking your details; the status below updates when it "
            "is done."))
    return redirect(url_for("ledger.index"))


@bp.route("/ledger/payouts/refresh")
@login_required
def refresh() -> ResponseReturnValue:
    flash(_("The set-up link expired. Press the button again to continue."))
    return redirect(url_for("ledger.index"))


@bp.route("/stripe/webhook", methods=["POST"])
@csrf.exempt  # Stripe signs its requests; the signature is the check
def webhook() -> ResponseReturnValue:
    secret = current_app.config.get("STRIPE_WEBHOOK_SECRET")
    if not secret:
        return jsonify({"error": {"code": "webhooks_off", "fields": {},
                                  "message": "Stripe webhooks are not configured."}}), 400
    try:
        event = parse_event(request.get_data(), request.headers.get("Stripe-Signature"), secret)
    except InvalidWebhook:
        log.warning("stripe webhook with a bad signature refused")
        return jsonify({"error": {"code": "bad_signature", "fields": {},
                                  "message": "The signature does not verify."}}), 400
    whole = event.to_dict()
    received = connect.WebhookEvent(
        id=event.id, type=event.type, livemode=bool(whole.get("livemode", False)),
        account=whole.get("account") or None, data=whole["data"]["object"])
    try:
        outcome = connect.apply_event(db(), _gateway(), received, utcnow(),
                                      livemode=is_live_key(current_app.config["STRIPE_SECRET_KEY"]))
    except GatewayError as error:  # nothing recorded: Stripe delivers the event again
        db().rollback()
        log.warning("stripe event %s not applied, Stripe will retry: %s", event.id, error.reason)
        return jsonify({"error": {"code": "stripe_unreachable", "fields": {},
                                  "message": "Stripe could not be asked; deliver again."}}), 503
    if outcome == "wrong_mode":
        return jsonify({"error": {"code": "wrong_mode", "fields": {},
                                  "message": "This endpoint takes events of the other mode "
                                             "(test vs live) only."}}), 400
    return jsonify({"received": True, "outcome": outcome})


@bp.route("/jobs/<int:job_id>/payment", methods=["POST"])
@login_required
def request_payment(job_id: int) -> ResponseReturnValue:
    gateway = _gateway()
    job_url = url_for("jobs.detail", job_id=job_id, _external=True)
    try:
        payments.request_payment(db(), viewer(), job_id, gateway, job_url, job_url, utcnow())
    except GatewayError as error:
        log.warning("checkout for job_id=%s failed: %s", job_id, error.reason)
        flash(_("Stripe could not start the set-up just now (%(reason)s). Try again in a "
                "minute.", reason=error.reason), "error")
        return redirect(url_for("jobs.detail", job_id=job_id))
    flash(_("Payment link ready. Send it to your customer; the payment counts when Stripe "
            "confirms it."))
    return redirect(url_for("jobs.detail", job_id=job_id))


@bp.route("/jobs/<int:job_id>/refund", methods=["POST"])
@login_required
def refund(job_id: int) -> ResponseReturnValue:
    gateway = _gateway()
    contract_currency = payments.contract_currency(db(), viewer(), job_id)
    amount = money_from_form(request.form.get("amount", ""), "amount", contract_currency)
    try:
        refunds.refund(db(), viewer(), job_id, amount, gateway, utcnow(),
                       request.form.get("request_key"))
    except GatewayError as error:
        db().rollback()
        log.warning("refund for job_id=%s not made: %s", job_id, error.reason)
        if error.definite:
            flash(_("Stripe refused the refund: %(reason)s", reason=error.reason), "error")
        else:
            flash(_("Stripe did not answer in time. The refund is kept and asked again "
                    "automatically; you do not need to refund again."), "error")
        return redirect(url_for("jobs.detail", job_id=job_id))
    flash(_("Refund made. The partners' transfers were reduced in proportion."))
    return redirect(url_for("jobs.detail", job_id=job_id))
