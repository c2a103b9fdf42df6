"""Pages for the cluster: home, members and profiles, invites, the agreement, settings."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import login_required
from flask_wtf import FlaskForm

from marketplace.api import tokens
from marketplace.clusters import agreements, invites, service
from marketplace.clusters.agreements import Activity
from marketplace.clusters.exit.views import bp as exit_bp
from marketplace.clusters.forms import (
    AGREEMENT_FIELDS,
    AcceptAgreementForm,
    AgreementForm,
    ApiTokenForm,
    ClusterSettingsForm,
    ConfirmForm,
    ExitForm,
    MemberInviteForm,
    PreferencesForm,
    ProfileForm,
    UserInviteForm,
)
from marketplace.clusters.governance.views import bp as governance_bp
from marketplace.clusters.insurance import service as insurance
from marketplace.clusters.insurance.views import bp as insurance_bp
from marketplace.clusters.models import Agreement, InsuranceCertificate, Invite, Member
from marketplace.clusters.review.views import bp as review_bp
from marketplace.clusters.service_area import recent_changes
from marketplace.clusters.targets import TARGET_METRICS
from marketplace.clusters.terms_inputs import inputs_context, typed_terms
from marketplace.clusters.trades import TRADES
from marketplace.db import parse_id, utcnow
from marketplace.delivery import preferences as push_preferences
from marketplace.delivery import subscriptions
from marketplace.delivery.forms import PushPreferencesForm
from marketplace.errors import ValidationError
from marketplace.i18n import km_from_display, km_to_display
from marketplace.jobs.completion import reliability
from marketplace.mail import outbox
from marketplace.persisted import id_of
from marketplace.places.service import BAD_POINT, DEVICE, nearest_town
from marketplace.places.views import locate_typed, viewer_countries
from marketplace.web import db, submit
from marketplace.web import viewer as acting_user

bp = Blueprint("clusters", __name__)
bp.register_blueprint(insurance_bp)  # its pages: clusters.insurance.*
bp.register_blueprint(governance_bp)  # proposals and votes: clusters.governance.*
bp.register_blueprint(review_bp)  # sunset reviews: clusters.review.*
bp.register_blueprint(exit_bp)  # a clean exit's outcome: clusters.exit.*


@bp.before_request
@login_required
def _require_login() -> None:
    """Every cluster page is for logged-in people only."""


def _invalid_status(form: FlaskForm) -> int:
    return 422 if form.errors else 200


@bp.route("/")
def home() -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    current = agreements.agreement_in_force(session, viewer.cluster_id)
    my_member = session.get(Member, viewer.member_id) if viewer.member_id else None
    refusal = (agreements.participation_refusal(session, my_member, Activity.OVERFLOW_JOBS,
                                                utcnow()) if my_member else None)
    return render_template(
        "clusters/home.html", agreement=current, my_member=my_member, refusal=refusal,
        members=service.list_members(session, viewer),
        accepted_ids=_accepted_member_ids(current),
    )


def _accepted_member_ids(agreement: Agreement | None) -> set[int]:
    if agreement is None or agreement.id is None:
        return set()
    return {m.id for _a, m, _u in agreements.acceptances(db(), acting_user(), agreement.id)
            if m.id is not None}


@bp.route("/members")
def members() -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    rows = [(m, service.member_trades(session, id_of(m)))
            for m in service.list_members(session, viewer)]
    unreachable: dict[int, list[str]] = {}
    if viewer.is_coordinator:  # who cannot be reached by mail, so the coordinator can call
        people = service.cluster_people(session, viewer)
        refused = outbox.undeliverable_among(session, [p.email for p in people])
        for person in people:
            if person.member_id and person.email.lower() in refused:
                unreachable.setdefault(person.member_id, []).append(person.name)
    return render_template("clusters/members.html", rows=rows, trades=TRADES,
                           unreachable=unreachable)


@bp.route("/members/<int:member_id>")
def member(member_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    business = service.get_member(session, viewer, member_id)
    can_manage = service.can_manage_member(viewer, business)
    return render_template(
        "clusters/member.html", member=business, trades=TRADES,
        member_trades=service.member_trades(session, id_of(business)),
        people=service.member_users(session, viewer, id_of(business)) if can_manage else [],
        refused=outbox.undeliverable_among(
            session, [p.email for p in service.member_users(session, viewer, id_of(business))])
        if can_manage else {},
        can_manage=can_manage, invite_form=UserInviteForm(), exit_form=ExitForm(),
        is_own_owner=viewer.role == "owner" and viewer.member_id == business.id,
        may_leave_now=viewer.role == "owner" and viewer.member_id == business.id
        and (business.exit_effective_at is None or business.exit_effective_at > utcnow())
        and agreements.voted_against_carried_change(session, id_of(business), utcnow()),
        sees_insurance=viewer.is_coordinator or viewer.member_id == business.id,
        # The verified certificate, to those who may download it (its job partners too).
        certificate=_downloadable_certificate(id_of(business)),
        track_record=reliability(session, id_of(business), utcnow().date()),
        area_changes=[(change, name, nearest_town(change.to_lat, change.to_lng,
                                                  viewer_countries())
                       if change.to_lat is not None and change.to_lng is not None else "")
                      for change, name in recent_changes(session, business)]
        if can_manage else [],
        # The base is shown by its town: its coordinates are nobody's reading matter.
        base_town=nearest_town(business.base_lat, business.base_lng, viewer_countries())
        if business.base_lat is not None and business.base_lng is not None else "",
    )


def _downloadable_certificate(member_id: int) -> InsuranceCertificate | None:
    """The member's verified certificate if the viewer may download it (service.may_read)."""
    certificate = insurance.verified_certificate(db(), member_id)
    if certificate is None or certificate.document is None \
            or not insurance.may_read(db(), acting_user(), certificate):
        return None
    return certificate


def _typed_base(form: ProfileForm) -> tuple[float | None, float | None]:
    """The yard's point from the "Address or town" field (or the phone's position);
    an emptied field with no position from the phone clears the base."""
    text = (form.base_place.data or "").strip()
    if not text and form.base_resolved.data != DEVICE and (
            form.base_resolved.data or not (form.base_lat.data or form.base_lng.data)):
        return None, None
    if not text and form.base_resolved.data is None:
        # Coordinates only (an older page or script): the service checks their ranges
        # together with the other fields.
        try:
            lat, lng = form.base_lat.data, form.base_lng.data
            return float(lat), float(lng)  # type: ignore[arg-type]  # None: TypeError below
        except (TypeError, ValueError):
            raise ValidationError("bad_point", BAD_POINT, fields={"base_place": BAD_POINT}) \
                from None
    place = locate_typed(text, form.base_lat.data, form.base_lng.data,
                         form.base_resolved.data, "base_place")
    return place.lat, place.lng


@bp.route("/members/<int:member_id>/edit", methods=["GET", "POST"])
def edit_member(member_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    session = db()
    business = service.get_member(session, viewer, member_id)
    form = ProfileForm(obj=business)
    if not form.is_submitted():
        form.trades.data = service.member_trades(session, id_of(business))
        if business.base_lat is not None and business.base_lng is not None:
            # Shown as its nearest town; kept as the exact point unless the text changes.
            form.base_place.data = form.base_resolved.data = nearest_town(
                business.base_lat, business.base_lng, viewer_countries())
        if business.service_radius_km is not None:
            form.service_radius.data = round(km_to_display(business.service_radius_km), 1)

    def save() -> ResponseReturnValue:
        radius = form.service_radius.data
        base = _typed_base(form)
        profile = service.MemberProfile(
            name=form.name.data or "", trades=tuple(form.trades.data or ()),
            base_lat=base[0], base_lng=base[1],
            service_radius_km=km_from_display(radius) if radius is not None else None,
            certifications=form.certifications.data or "",
        )
        service.update_member_profile(session, viewer, id_of(business), profile)
        flash(_("Profile saved."))
        return redirect(url_for("clusters.member", member_id=business.id))

    if form.validate_on_submit():
        # The point has no visible input: its refusals show at the place field.
        return submit(form, save, lambda: render_template(
            "clusters/member_edit.html", form=form, member=business),
            rename={"base_lat": "base_place", "base_lng": "base_place"})
    if not service.can_manage_member(viewer, business):
        return render_template("errors/error.html", status=403,
                               message=_("Only an owner of this business or the coordinator "
                                         "can edit it.")), 403
    return render_template("clusters/member_edit.html", form=form, member=business), \
        _invalid_status(form)


@bp.route("/members/<int:member_id>/people", methods=["POST"])
def invite_person(member_id: int) -> ResponseReturnValue:
    viewer = acting_user()
    form = UserInviteForm()
    business = service.get_member(db(), viewer, member_id)
    if not form.validate_on_submit():
        flash(_("Enter a valid e-mail address and role."), "error")
        return redirect(url_for("clusters.member", member_id=business.id))
    invite = invites.create_user_invite(
        db(), viewer, id_of(business), form.email.data or "", form.role.data or "", utcnow(),
        current_app.config["INVITE_VALID_DAYS"])
    flash(_("Invite created. Send this link to %(email)s: %(link)s", email=invite.email,
            link=invite_link(invite)))
    return redirect(url_for("clusters.member", member_id=business.id))


@bp.route("/members/<int:member_id>/exit", methods=["POST"])
def give_exit_notice(member_id: int) -> ResponseReturnValue:
    form = ExitForm()
    if not form.validate_on_submit():
        flash(_("Tick the box to confirm."), "error")
        return redirect(url_for("clusters.member", member_id=member_id))
    if form.under_vote.data == "1":
        agreements.give_exit_notice(db(), acting_user(), member_id, utcnow(), under_vote=True)
        flash(_("Your business has left the cluster under the vote, without the notice "
                "period. Its history stays visible."))
        return redirect(url_for("clusters.member", member_id=member_id))
    business = agreements.give_exit_notice(db(), acting_user(), member_id, utcnow())
    flash(_("Notice of exit recorded. Your business leaves the cluster on %(date)s.",
            date=business.exit_effective_at and business.exit_effective_at.date().isoformat()))
    return redirect(url_for("clusters.member", member_id=member_id))


def invite_link(invite: Invite) -> str:
    """The signed link an invitee opens (also handed out by the API)."""
    token = invites.invite_token(current_app.config["SECRET_KEY"], invite)
    return current_app.config["PUBLIC_URL"] + url_for("auth.accept_invite", token=token)


@bp.route("/invites", methods=["GET", "POST"])
def member_invites() -> ResponseReturnValue:
    viewer = acting_user()
    service.require_coordinator(viewer)
    form = MemberInviteForm()

    def page() -> str:
        return render_template("clusters/invites.html", form=form,
                               pending=invites.pending_invites(db(), viewer), link=invite_link,
                               now=utcnow())

    def invite() -> ResponseReturnValue:
        created = invites.create_member_invite(
            db(), viewer, form.email.data or "", form.business_name.data or "", utcnow(),
            current_app.config["INVITE_VALID_DAYS"])
        flash(_("Invite created. Send this link to %(email)s: %(link)s", email=created.email,
                link=invite_link(created)))
        return redirect(url_for("clusters.member_invites"))

    if form.validate_on_submit():
        return submit(form, invite, page)
    return page(), _invalid_status(form)


@bp.route("/agreement")
def agreement() -> ResponseReturnValue:
    viewer = acting_user()
    current = agreements.agreement_in_force(db(), viewer.cluster_id)
    return _render_agreement(current, is_current=True)


@bp.route("/agreement/v/<int:version>")
def agreement_version(version: int) -> ResponseReturnValue:
    viewer = acting_user()
    found = next((a for a in agreements.agreement_versions(db(), viewer)
                  if a.version == version), None)
    if found is None:
        return render_template("errors/error.html", status=404,
                               message=_("We could not find that page. Check the link or go "
                                         "back.")), 404
    current = agreements.agreement_in_force(db(), viewer.cluster_id)
    return _render_agreement(found, is_current=current is not None and current.id == found.id)


def _render_agreement(shown: Agreement | None, is_current: bool,
                      form: AcceptAgreementForm | None = None, status: int = 200
                      ) -> ResponseReturnValue:
    viewer = acting_user()
    accepted = (agreements.acceptances(db(), viewer, shown.id)
                if shown is not None and shown.id is not None else [])
    mine_accepted = any(m.id == viewer.member_id for _a, m, _u in accepted)
    if form is None:
        form = AcceptAgreementForm(version=str(shown.version) if shown else "")
    return render_template(
        "clusters/agreement.html", agreement=shown, is_current=is_current, accepted=accepted,
        mine_accepted=mine_accepted, form=form,
        versions=agreements.agreement_versions(db(), viewer),
        can_accept=is_current and viewer.role == "owner" and not mine_accepted,
        trades=TRADES, currency=service.get_cluster(db(), viewer).currency,
        metrics=TARGET_METRICS,
        may_edit=viewer.is_coordinator
        and agreements.direct_change_refusal(db(), viewer.cluster_id) is None,
    ), status


@bp.route("/agreement/accept", methods=["POST"])
def accept_agreement() -> ResponseReturnValue:
    viewer = acting_user()
    form = AcceptAgreementForm()
    current = agreements.agreement_in_force(db(), viewer.cluster_id)
    version = parse_id(form.version.data)
    if not form.validate_on_submit() or version is None:
        return _render_agreement(current, is_current=True, form=form, status=422)
    agreements.accept_agreement(db(), viewer, version, utcnow())
    flash(_("Agreement accepted. Your business can now take part."))
    if viewer.member_id is not None:
        return redirect(url_for("clusters.edit_member", member_id=viewer.member_id))
    return redirect(url_for("clusters.agreement"))


@bp.route("/agreement/edit", methods=["GET", "POST"])
def edit_agreement() -> ResponseReturnValue:
    """The coordinator writes the charter, and corrects it until a member signs it; from
    then on a change takes force only by the members' vote (clusters.governance)."""
    viewer = acting_user()
    service.require_coordinator(viewer)
    refusal = agreements.direct_change_refusal(db(), viewer.cluster_id)
    if refusal is not None:
        if request.method == "POST":
            raise refusal
        flash(_(refusal.message, **refusal.params))
        return redirect(url_for("clusters.governance.propose"))
    current = agreements.agreement_in_force(db(), viewer.cluster_id)
    form = AgreementForm()
    if not form.is_submitted():
        form.prefill(current, utcnow())
    currency = service.get_cluster(db(), viewer).currency
    if form.validate_on_submit():

        def publish() -> ResponseReturnValue:
            typed = typed_terms(form, current, currency)
            published = agreements.publish_agreement(db(), viewer, typed, utcnow())
            flash(_("Version %(version)d published. Every member must accept it again.",
                    version=published.version))
            return redirect(url_for("clusters.agreement"))

        return submit(form, publish, lambda: _agreement_editor(form, current, currency),
                      rename=AGREEMENT_FIELDS)
    return _agreement_editor(form, current, currency), _invalid_status(form)


def _agreement_editor(form: AgreementForm, current: Agreement | None, currency: str) -> str:
    return render_template("clusters/agreement_edit.html", form=form, current=current,
                           **inputs_context(form, current, currency))


@bp.route("/cluster/settings", methods=["GET", "POST"])
def cluster_settings() -> ResponseReturnValue:
    viewer = acting_user()
    service.require_coordinator(viewer)
    cluster = service.get_cluster(db(), viewer)
    form = ClusterSettingsForm(obj=cluster)
    if not form.is_submitted():
        form.cluster_name.data = cluster.name
    if form.validate_on_submit():
        settings = service.ClusterSettings(
            name=form.cluster_name.data or "", currency=form.currency.data or "",
            default_locale=form.default_locale.data or "", timezone=form.timezone.data or "",
            unit_system=form.unit_system.data or "")

        def save() -> ResponseReturnValue:
            service.update_cluster(db(), viewer, settings)
            flash(_("Cluster settings saved."))
            return redirect(url_for("clusters.home"))

        return submit(form, save, lambda: render_template("clusters/settings.html", form=form))
    return render_template("clusters/settings.html", form=form), _invalid_status(form)


@bp.route("/account", methods=["GET", "POST"])
def account() -> ResponseReturnValue:
    viewer = acting_user()
    form = PreferencesForm(obj=viewer)
    if not form.is_submitted():
        form.locale.data = viewer.locale or ""
        form.unit_system.data = viewer.unit_system or ""

    def save() -> ResponseReturnValue:
        service.update_preferences(db(), viewer, form.locale.data or None,
                                   (form.timezone.data or "").strip() or None,
                                   form.unit_system.data or None)
        flash(_("Preferences saved."))
        return redirect(url_for("clusters.account"))

    if form.validate_on_submit():
        return submit(form, save, lambda: _account_page(form))
    return _account_page(form), _invalid_status(form)


def _account_page(form: PreferencesForm | None = None, **extra: object) -> str:
    """The profile page: preferences and the person's API tokens."""
    viewer = acting_user()
    if form is None:
        form = PreferencesForm(obj=viewer, formdata=None)
        form.locale.data = viewer.locale or ""
        form.unit_system.data = viewer.unit_system or ""
    extra.setdefault("token_form", ApiTokenForm(formdata=None))
    if "push_form" not in extra:
        push_form = PushPreferencesForm(formdata=None)
        push_form.fill(push_preferences.push_settings(db(), id_of(viewer)))
        push_form.fill_mail(push_preferences.mail_settings(db(), id_of(viewer)))
        extra["push_form"] = push_form
    extra.setdefault("mail_refused", outbox.undeliverable(db(), viewer.email))
    return render_template("accounts/preferences.html", form=form,
                           api_tokens=tokens.active_tokens(db(), viewer),
                           push_devices=subscriptions.devices(db(), id_of(viewer)),
                           action_form=ConfirmForm(formdata=None), **extra)


@bp.route("/account/notifications", methods=["POST"])
def save_push_preferences() -> ResponseReturnValue:
    """Which events reach this person's devices by push, and their quiet hours."""
    form = PushPreferencesForm()

    def save() -> ResponseReturnValue:
        push_preferences.save_push_settings(db(), acting_user(), form.settings(),
                                            form.mail_settings())
        flash(_("Notification choices saved."))
        return redirect(url_for("clusters.account") + "#push")

    if form.validate_on_submit():
        return submit(form, save, lambda: _account_page(push_form=form))
    return _account_page(push_form=form), 422


@bp.route("/account/tokens", methods=["POST"])
def create_api_token() -> ResponseReturnValue:
    """Issue a token and show its secret on this response only: it is never stored."""
    form = ApiTokenForm()

    def issue() -> ResponseReturnValue:
        issued = tokens.create_token(db(), acting_user(), form.name.data or "", utcnow())
        shown_once = make_response(_account_page(new_token=issued))
        shown_once.headers["Cache-Control"] = "no-store"  # the secret stays out of caches
        return shown_once

    if form.validate_on_submit():
        return submit(form, issue, lambda: _account_page(token_form=form))
    return _account_page(token_form=form), 422


@bp.route("/account/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke_api_token(token_id: int) -> ResponseReturnValue:
    tokens.revoke_token(db(), acting_user(), token_id, utcnow())
    flash(_("Token revoked. Apps using it can no longer reach your account."))
    return redirect(url_for("clusters.account"))
