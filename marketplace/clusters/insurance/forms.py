"""Forms for certificates: upload (owners), verify and reject (the coordinator).

They parse and carry CSRF only; the rules are in service.py and documents.py.
Amounts are typed the viewer's way and parsed by `web.money_from_form`.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from marketplace.forms import WebForm

_required = _l("This field is required.")


class CertificateForm(WebForm):
    document = FileField(_l("Certificate (PDF or photo: JPEG, PNG or WebP)"))
    insurer = StringField(_l("Insurer"), validators=[DataRequired(_required), Length(max=120)])
    policy_number = StringField(
        _l("Policy number"), validators=[DataRequired(_required), Length(max=60)]
    )
    coverage = StringField(
        _l("Liability coverage"), validators=[DataRequired(_required), Length(max=40)]
    )
    expires_on = DateField(_l("Policy expires on"), validators=[InputRequired(_required)])


class VerifyForm(WebForm):
    """The figures the coordinator read on the document (prefilled with the stated ones)."""

    coverage = StringField(
        _l("Verified coverage"), validators=[DataRequired(_required), Length(max=40)]
    )
    expires_on = DateField(_l("Verified expiry"), validators=[InputRequired(_required)])


class RejectForm(WebForm):
    reason = TextAreaField(
        _l("Why it is rejected"), validators=[DataRequired(_required), Length(max=500)]
    )
