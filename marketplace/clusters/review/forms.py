"""Forms of the sunset review: a business's answer, and the coordinator's renewal."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, RadioField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from marketplace.clusters.review.service import MAX_LESSONS
from marketplace.forms import WebForm

_required = _l("This field is required.")


class AnswerForm(WebForm):
    """Renew, change or leave, and what the business learned (shared with all members)."""

    choice = RadioField(_l("Your business's answer"),
                        choices=[("renew", _l("Renew: keep cooperating on these terms")),
                                 ("change", _l("Change: renew only with changed terms")),
                                 ("leave", _l("Leave: do not renew for my business"))],
                        validators=[DataRequired(_l("Choose renew, change or leave."))])
    lessons = TextAreaField(_l("What your business learned"),
                            validators=[Length(max=MAX_LESSONS,
                                               message=_l("Write at most %(max)d "
                                                          "characters."))])


class RenewForm(WebForm):
    """A renewal: the version in force with a later sunset date, nothing else."""

    sunset_on = DateField(_l("New sunset date"), validators=[InputRequired(_required)])
