"""Forms for accounts, clusters, members and the agreement.

Forms only parse and carry CSRF; the rules live in the services, whose
per-field refusals are shown next to these fields (`web.apply_to_form`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from marketplace.clusters.agreements import (
    DEFAULT_DISPUTE_DECIDE_DAYS,
    DEFAULT_DISPUTE_WINDOW_DAYS,
    DEFAULT_MIN_GROUP,
    AgreementTerms,
)
from marketplace.clusters.models import Agreement
from marketplace.clusters.service import SUPPORTED_CURRENCIES, SUPPORTED_LOCALES
from marketplace.clusters.trades import TRADES
from marketplace.forms import WebForm, filled

_required = _l("This field is required.")


class FiniteDecimalField(DecimalField):
    """A decimal that is a number: "NaN", "sNaN" and "Infinity" parse as Decimals but
    break every comparison made with them (a signalling NaN raises on the range check)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        super().process_formdata(valuelist)
        if isinstance(self.data, Decimal) and not self.data.is_finite():
            self.data = None
            raise ValueError(self.gettext("Not a valid decimal value."))
UNIT_CHOICES = [("metric", _l("Metric (km, m²)")), ("imperial", _l("Imperial (miles, acres)"))]
ROLE_CHOICES = [("crew", _l("Crew")), ("owner", _l("Owner"))]
#: Short, so the select fits a 360 px phone; the page says "of participating members".
DECISION_CHOICES = [("majority", _l("Majority")), ("two_thirds", _l("Two thirds")),
                    ("unanimity", _l("Unanimity"))]
RESOLVER_CHOICES = [("coordinator", _l("The coordinator")),
                    ("panel", _l("A panel of uninvolved members"))]


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes instead of a multi-select: usable with a thumb on a phone."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _locale_choices() -> list[tuple[str, str]]:
    from marketplace.i18n import locale_display_name

    return [(code, locale_display_name(code)) for code in SUPPORTED_LOCALES]


class LoginForm(WebForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_required)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_required)])
    remember = BooleanField(_l("Keep me logged in on this device"))


class ForgotPasswordForm(WebForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_required)])


class ResetPasswordForm(WebForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(_required)])


class SignupForm(WebForm):
    name = StringField(_l("Your name"), validators=[DataRequired(_required), Length(max=120)])
    password = PasswordField(_l("Choose a password"), validators=[DataRequired(_required)])


class ClusterSettingsForm(WebForm):
    cluster_name = StringField(_l("Cluster name"),
                               validators=[DataRequired(_required), Length(max=120)])
    currency = SelectField(_l("Currency"), choices=[(c, c) for c in SUPPORTED_CURRENCIES])
    default_locale = SelectField(_l("Default language and region"))
    timezone = StringField(_l("Time zone"), default="America/Toronto",
                           validators=[DataRequired(_required)])
    unit_system = SelectField(_l("Units"), choices=UNIT_CHOICES)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.default_locale.choices = _locale_choices()


class StartClusterForm(ClusterSettingsForm):
    name = StringField(_l("Your name"), validators=[DataRequired(_required), Length(max=120)])
    email = EmailField(_l("Your e-mail"), validators=[DataRequired(_required)])
    password = PasswordField(_l("Choose a password"), validators=[DataRequired(_required)])


class MemberInviteForm(WebForm):
    business_name = StringField(_l("Business name"),
                                validators=[DataRequired(_required), Length(max=120)])
    email = EmailField(_l("Owner's e-mail"), validators=[DataRequired(_required)])


class UserInviteForm(WebForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(_required)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES)


class ProfileForm(WebForm):
    name = StringField(_l("Business name"), validators=[DataRequired(_required), Length(max=120)])
    trades = MultiCheckboxField(_l("Trades"), choices=[], validate_choice=False)
    # The yard or office, typed as an address or a town (or the phone's position); the
    # point itself stays in hidden fields (see marketplace/places/service.py).
    base_place = StringField(_l("Address or town"), validators=[Length(max=300)])
    base_lat = HiddenField()
    base_lng = HiddenField()
    base_resolved = HiddenField()
    service_radius = FloatField(_l("Service radius"), validators=[Optional()])
    certifications = TextAreaField(_l("Certifications"), validators=[Length(max=2000)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from flask_babel import gettext

        self.trades.choices = [(code, gettext(label)) for code, label in TRADES.items()]


#: The service's field names -> the agreement form's: the service speaks basis points,
#: the form percent (the editor and a proposal both rename refusals through this).
AGREEMENT_FIELDS = {"referral_fee_bp": "referral_fee_percent",
                    "platform_fee_bp": "platform_fee_percent",
                    "scope": "scope_overflow_jobs",
                    "buyout_value_bp": "buyout_value_percent"}

_T = TypeVar("_T")


def _or_default(typed: _T | None, default: _T) -> _T:
    """An optional field's value, or the default a blank field stands for."""
    return default if typed is None else typed


class AgreementForm(WebForm):
    purpose = TextAreaField(_l("Purpose"), validators=[DataRequired(_required),
                                                       Length(max=2000)])
    scope_overflow_jobs = BooleanField(_l("Overflow jobs"))
    scope_equipment = BooleanField(_l("Equipment sharing"))
    scope_joint_bids = BooleanField(_l("Joint bids"))
    referral_fee_percent = FiniteDecimalField(
        _l("Referral fee (%)"), places=2,
        validators=[InputRequired(_required), NumberRange(Decimal(0), Decimal(100))])
    platform_fee_percent = FiniteDecimalField(
        _l("Cluster fee (%)"), places=2,
        validators=[InputRequired(_required), NumberRange(Decimal(0), Decimal(100))])
    sunset_on = DateField(_l("Sunset date"), validators=[InputRequired(_required)])
    exit_notice_days = IntegerField(_l("Exit notice (days)"),
                                    validators=[InputRequired(_required)])
    information_rules = TextAreaField(_l("Information rules"),
                                      validators=[DataRequired(_required), Length(max=5000)])
    #: The information rules' k; left blank, the version in force's (3 at first)
    aggregate_min_group = IntegerField(_l("Smallest group for cluster totals (k)"),
                                       validators=[Optional()])
    #: How changes are decided (clusters/governance/service.py); absent, the default rule.
    decision_rule = SelectField(_l("Changes are decided by"), choices=DECISION_CHOICES,
                                default="majority")
    members_may_propose = BooleanField(_l("Member owners may propose changes (otherwise "
                                          "only the coordinator)"))
    secret_votes = BooleanField(_l("Secret votes (members see only the counts)"))
    #: Disputes between members; left blank, the defaults (14 days, the coordinator).
    dispute_window_days = IntegerField(_l("Days to open a dispute"), validators=[Optional()])
    dispute_resolver = SelectField(_l("Disputes are decided by"), choices=RESOLVER_CHOICES,
                                   default="coordinator")
    dispute_decide_days = IntegerField(_l("Days to decide a dispute"),
                                       validators=[Optional()])
    #: The buy-out of a leaving co-owner's share; left blank, 100 % of the agreed value.
    buyout_value_percent = FiniteDecimalField(
        _l("Buy-out price, in percent of a machine's agreed value"), places=2,
        validators=[Optional(), NumberRange(Decimal(0), Decimal(100))])

    def prefill(self, current: Agreement | None, now: datetime) -> None:
        """The terms in force (or, before any, sensible first terms) to edit."""
        if current is None:
            self.scope_overflow_jobs.data = self.scope_equipment.data = True
            self.scope_joint_bids.data = True
            self.referral_fee_percent.data = Decimal("5")
            self.platform_fee_percent.data = Decimal("1")
            self.exit_notice_days.data = 30
            self.sunset_on.data = (now + timedelta(days=365)).date()
            self.aggregate_min_group.data = DEFAULT_MIN_GROUP
            self.dispute_window_days.data = DEFAULT_DISPUTE_WINDOW_DAYS
            self.dispute_decide_days.data = DEFAULT_DISPUTE_DECIDE_DAYS
            self.buyout_value_percent.data = Decimal(100)
            return
        terms = AgreementTerms.of(current)
        self.purpose.data = terms.purpose
        self.scope_overflow_jobs.data = terms.scope_overflow_jobs
        self.scope_equipment.data = terms.scope_equipment
        self.scope_joint_bids.data = terms.scope_joint_bids
        self.referral_fee_percent.data = Decimal(terms.referral_fee_bp) / 100
        self.platform_fee_percent.data = Decimal(terms.platform_fee_bp) / 100
        self.sunset_on.data = terms.sunset_on
        self.exit_notice_days.data = terms.exit_notice_days
        self.information_rules.data = terms.information_rules
        self.aggregate_min_group.data = terms.aggregate_min_group
        self.decision_rule.data = terms.decision_rule
        self.members_may_propose.data = terms.members_may_propose
        self.secret_votes.data = terms.secret_votes
        self.dispute_window_days.data = terms.dispute_window_days
        self.dispute_resolver.data = terms.dispute_resolver
        self.dispute_decide_days.data = terms.dispute_decide_days
        self.buyout_value_percent.data = Decimal(terms.buyout_value_bp) / 100

    def terms(self, min_group: int, min_coverage: dict[str, int],
              targets: dict[str, int]) -> AgreementTerms:
        """The terms typed, once validated: percent -> basis points, exactly (the form
        allows two decimals)."""
        return AgreementTerms(
            purpose=self.purpose.data or "",
            scope_overflow_jobs=bool(self.scope_overflow_jobs.data),
            scope_equipment=bool(self.scope_equipment.data),
            scope_joint_bids=bool(self.scope_joint_bids.data),
            referral_fee_bp=int((self.referral_fee_percent.data or Decimal(0)) * 100),
            platform_fee_bp=int((self.platform_fee_percent.data or Decimal(0)) * 100),
            sunset_on=filled(self.sunset_on.data),
            exit_notice_days=self.exit_notice_days.data or 0,
            information_rules=self.information_rules.data or "",
            aggregate_min_group=min_group, min_coverage=min_coverage,
            decision_rule=self.decision_rule.data or "majority",
            members_may_propose=bool(self.members_may_propose.data),
            secret_votes=bool(self.secret_votes.data),
            dispute_window_days=_or_default(self.dispute_window_days.data,
                                            DEFAULT_DISPUTE_WINDOW_DAYS),
            dispute_resolver=self.dispute_resolver.data or "coordinator",
            dispute_decide_days=_or_default(self.dispute_decide_days.data,
                                            DEFAULT_DISPUTE_DECIDE_DAYS),
            targets=targets,
            buyout_value_bp=int(_or_default(self.buyout_value_percent.data, Decimal(100))
                                * 100),
        )


class ProposalForm(AgreementForm):
    """A proposed change: the whole new terms (prefilled with those in force), why, and
    how long members vote."""

    reason = TextAreaField(_l("Why change the agreement"),
                           validators=[DataRequired(_required), Length(max=2000)])
    voting_days = IntegerField(_l("Members vote for (days)"), default=7,
                               validators=[InputRequired(_required)])


class VoteForm(WebForm):
    """A vote: the button tapped (for or against) is the choice."""

    choice = SelectField(choices=[("for", _l("Vote for")), ("against", _l("Vote against"))],
                         validators=[DataRequired(_required)])


class AcceptAgreementForm(WebForm):
    version = HiddenField(validators=[DataRequired(_required)])
    confirm = BooleanField(_l("I have read this version and accept it for my business"),
                           validators=[DataRequired(_l("Tick the box to accept."))])


class ConfirmForm(WebForm):
    """A bare form for one-button actions: it carries only the CSRF token."""

    confirm = BooleanField(_l("I understand"), validators=[DataRequired(_l("Tick the box to "
                                                                            "confirm."))])


class ExitForm(ConfirmForm):
    """Notice of exit; `under_vote` (its own button) asks to leave now, without the
    notice period, as a member that voted against a carried change may."""

    under_vote = HiddenField()


class PreferencesForm(WebForm):
    locale = SelectField(_l("Language"))
    timezone = StringField(_l("Time zone (leave empty for the cluster's)"))
    unit_system = SelectField(_l("Units"))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        from flask_babel import gettext

        self.locale.choices = [("", gettext("Cluster default")), *_locale_choices()]
        self.unit_system.choices = [("", gettext("Cluster default")), *UNIT_CHOICES]




class ApiTokenForm(WebForm):
    """Name a new personal API token (the app or script that will use it)."""

    name = StringField(_l("Token name"), validators=[DataRequired(_required), Length(max=80)])
