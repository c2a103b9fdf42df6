"""Pages for verified insurance: a member's certificates and upload, the coordinator's
queue (verify or reject), and the document download.

A blueprint nested in the cluster pages' (clusters/views.py registers it), so its
endpoints read `clusters.insurance.*` and its pages need a login like theirs.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from babel.numbers import get_decimal_symbol
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import login_required

from marketplace.clusters import service as clusters
from marketplace.clusters.insurance import documents
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.forms import CertificateForm, RejectForm, VerifyForm
from marketplace.clusters.models import CertificateStatus, InsuranceCertificate
from marketplace.db import utcnow
from marketplace.errors import N_, ValidationError
from marketplace.money import minor_digits
from marketplace.web import db, money_from_form, submit
from marketplace.web import viewer as acting_user

bp = Blueprint("insurance", __name__)


@bp.before_request
@login_required
def _require_login() -> None:
    """Every insurance page is for logged-in people only."""


def typed_amount(minor: int | None, currency: str) -> str:
    """An amount as a person types it in their language (for a prefilled field)."""
    if minor is None:
        return ""
    amount = f"{Decimal(minor).scaleb(-minor_digits(currency)):f}"
    return amount.replace(".", get_decimal_symbol(str(get_locale() or "en")))


def _max_bytes() -> int:
    return int(current_app.config.get("INSURANCE_MAX_BYTES", documents.DEFAULT_MAX_BYTES))


def _uploaded(form: CertificateForm) -> documents.CheckedDocument:
    """The file sent, checked; read no further than one byte past the limit."""
    upload = form.document.data
    if upload is None or not getattr(upload, "filename", ""):
        message = N_("Choose the certificate's PDF or photo.")
        raise ValidationError("no_document", message, fields={"document": message})
    return documents.check_document(upload.stream.read(_max_bytes() + 1), _max_bytes())


def _status_labels() -> dict[str, str]:
    return {
        CertificateStatus.PENDING: _("Waiting for verification"),
        CertificateStatus.VERIFIED: _("Verified"),
        CertificateStatus.REJECTED: _("Rejected"),
        CertificateStatus.REPLACED: _("Replaced by a newer certificate"),
    }


@bp.route("/members/<int:member_id>/insurance", methods=["GET", "POST"])
def member_insurance(member_id: int) -> ResponseReturnValue:
    viewer, session = acting_user(), db()
    business = clusters.get_member(session, viewer, member_id)
    certificates = insurance.history(session, viewer, member_id)
    form = CertificateForm()
    may_upload = viewer.role == "owner" and viewer.member_id == business.id

    def page() -> str:
        return render_template(
            "clusters/insurance.html",
            member=business,
            form=form,
            certificates=certificates,
            may_upload=may_upload,
            max_megabytes=max(1, _max_bytes() // (1024 * 1024)),
            currency=clusters.get_cluster(session, viewer).currency,
            status_labels=_status_labels(),
        )

    if form.is_submitted():
        insurance.require_uploader(viewer, business)
    if form.validate_on_submit():

        def upload() -> ResponseReturnValue:
            cluster = clusters.get_cluster(session, viewer)
            statement = insurance.Statement(
                insurer=form.insurer.data or "",
                policy_number=form.policy_number.data or "",
                coverage_minor=money_from_form(
                    form.coverage.data or "", "coverage", cluster.currency
                ),
                expires_on=form.expires_on.data,
            )
            insurance.submit_certificate(
                session, viewer, member_id, statement, _uploaded(form), utcnow()
            )
            flash(_("Certificate uploaded. The coordinator will verify it; you will be told."))
            return redirect(url_for("clusters.insurance.member_insurance", member_id=member_id))

        return submit(form, upload, page)
    return page(), 422 if form.errors else 200


def _pending_page(
    verify: dict[int, VerifyForm] | None = None, reject: dict[int, RejectForm] | None = None
) -> str:
    viewer, session = acting_user(), db()
    waiting = insurance.pending(session, viewer)
    currency = clusters.get_cluster(session, viewer).currency
    verify, reject = dict(verify or {}), dict(reject or {})
    for certificate, _member in waiting:
        key = certificate.id or 0
        if key not in verify:
            verify[key] = VerifyForm(
                formdata=None,
                expires_on=certificate.expires_on,
                coverage=typed_amount(certificate.coverage_minor, currency),
            )
        reject.setdefault(key, RejectForm(formdata=None))
    return render_template(
        "clusters/insurance_pending.html",
        waiting=waiting,
        verify=verify,
        reject=reject,
        currency=currency,
    )


@bp.route("/insurance/pending")
def pending() -> ResponseReturnValue:
    clusters.require_coordinator(acting_user())
    return _pending_page()


@bp.route("/insurance/<int:certificate_id>/verify", methods=["POST"])
def verify(certificate_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    insurance.decidable(db(), viewer, certificate_id)
    form = VerifyForm()

    def decide() -> ResponseReturnValue:
        currency = clusters.get_cluster(db(), viewer).currency
        expires_on: date | None = form.expires_on.data
        insurance.verify_certificate(
            db(),
            viewer,
            certificate_id,
            money_from_form(form.coverage.data or "", "coverage", currency),
            expires_on,
            utcnow(),
        )
        flash(_("Certificate verified. The business's insurance now counts for jobs."))
        return redirect(url_for("clusters.insurance.pending"))

    again: dict[str, Any] = {"verify": {certificate_id: form}}
    if form.validate_on_submit():
        return submit(form, decide, lambda: _pending_page(**again))
    return _pending_page(**again), 422


@bp.route("/insurance/<int:certificate_id>/reject", methods=["POST"])
def reject(certificate_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    insurance.decidable(db(), viewer, certificate_id)
    form = RejectForm()

    def decide() -> ResponseReturnValue:
        insurance.reject_certificate(db(), viewer, certificate_id, form.reason.data or "", utcnow())
        flash(_("Certificate rejected. The business has been told why."))
        return redirect(url_for("clusters.insurance.pending"))

    again: dict[str, Any] = {"reject": {certificate_id: form}}
    if form.validate_on_submit():
        return submit(form, decide, lambda: _pending_page(**again))
    return _pending_page(**again), 422


@bp.route("/insurance/<int:certificate_id>/document")
def document(certificate_id: int) -> ResponseReturnValue:
    """The certificate's file, to its business, the coordinator and its job partners
    (service.may_read); a 404 to anyone else, as for an id that does not exist."""
    certificate: InsuranceCertificate = insurance.get_certificate(
        db(), acting_user(), certificate_id
    )
    if certificate.document is None:
        abort(404)
    extension = documents.EXTENSIONS.get(certificate.media_type, "bin")
    response = Response(certificate.document, mimetype=certificate.media_type)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="insurance-certificate-{certificate.id}.{extension}"'
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    return response
