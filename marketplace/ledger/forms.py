"""Forms for the coordinator's settlement page."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from marketplace.forms import WebForm

_required = _l("This field is required.")


class AdjustmentForm(WebForm):
    member_id = SelectField(_l("Member"), choices=[], validate_choice=False)
    direction = RadioField(_l("Direction"), default="credit", choices=[
        ("credit", _l("Credit the member")), ("charge", _l("Charge the member"))])
    amount = StringField(_l("Amount"), validators=[DataRequired(_required)])
    reason = StringField(_l("Reason (shown on the member's statement)"),
                         validators=[DataRequired(_required), Length(max=300)])


class ApproveForm(WebForm):
    """Draft and approve buttons: the CSRF token is the whole form."""
