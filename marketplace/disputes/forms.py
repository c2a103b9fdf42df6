"""The dispute forms: opening one, a message (and photo), a decision."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from marketplace.forms import WebForm

_required = _l("This field is required.")


class OpenDisputeForm(WebForm):
    source = RadioField(_l("Which money do you dispute?"), choices=[],
                        validators=[DataRequired(_l("Choose which money you dispute."))])
    reason = TextAreaField(_l("What is wrong with it?"),
                           validators=[DataRequired(_required), Length(max=2000)])


class MessageForm(WebForm):
    body = TextAreaField(_l("Message"), validators=[Optional(), Length(max=2000)])
    photo = FileField(_l("Photo (optional; JPEG, PNG or WebP, up to 5 MB)"))
    request_key = HiddenField()


class DecisionForm(WebForm):
    outcome = RadioField(_l("Decision"), choices=[
        ("uphold", _l("Uphold: the money stands as recorded")),
        ("adjust", _l("Adjust: the payer owes this amount instead")),
        ("split", _l("Split: the payer owes this percentage of it")),
        ("cancel", _l("Cancel: nothing is owed")),
    ], validators=[DataRequired(_l("Choose a decision."))])
    amount = StringField(_l("Amount (for Adjust)"), validators=[Optional(), Length(max=30)])
    split_percent = StringField(_l("Payer's percentage (for Split)"),
                                validators=[Optional(), Length(max=10)])
    note = TextAreaField(_l("Why (the parties read it)"),
                         validators=[DataRequired(_required), Length(max=2000)])
