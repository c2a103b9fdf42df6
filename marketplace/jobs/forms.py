"""Forms for posting jobs, bidding, awarding, cancelling, completing and rating."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from marketplace.clusters.forms import MultiCheckboxField
from marketplace.clusters.trades import TRADES
from marketplace.forms import WebForm

_required = _l("This field is required.")


class JobForm(WebForm):
    title = StringField(_l("Title"), validators=[DataRequired(_required), Length(max=120)])
    description = TextAreaField(_l("What needs doing"), validators=[Length(max=4000)])
    trades = MultiCheckboxField(_l("Trades needed"), choices=[], validate_choice=False)
    # The site: typed as an address or a town (suggestions from /places), or taken from
    # the phone ("I'm at the site").  The point lives in hidden fields only; the view
    # resolves the text when they are empty or no longer belong to it (places/service.py: locate).
    address = StringField(_l("Address or town"), validators=[Length(max=300)])
    site_lat = HiddenField()
    site_lng = HiddenField()
    site_resolved = HiddenField()
    locality = StringField(_l("Town or neighbourhood (shown to partners)"),
                           validators=[Length(max=120)])
    customer_name = StringField(_l("Customer name (private until award)"),
                                validators=[DataRequired(_required), Length(max=120)])
    customer_contact = StringField(_l("Customer phone or e-mail (private until award)"),
                                   validators=[Length(max=200)])
    crew_days = IntegerField(_l("Size (crew-days)"), validators=[InputRequired(_required)])
    starts_on = DateField(_l("Start date"), validators=[InputRequired(_required)])
    ends_on = DateField(_l("End date"), validators=[InputRequired(_required)])
    value = StringField(_l("Contract value"), validators=[DataRequired(_required)])
    mode = RadioField(_l("How partners take it"), default="handoff", choices=[
        ("handoff", _l("Hand-off: the first eligible partner to claim gets it")),
        ("bid_window", _l("Bid window: partners bid until a deadline, you choose")),
    ])
    closes_at = DateTimeLocalField(_l("Bids close at (your local time)"),
                                   format="%Y-%m-%dT%H:%M", validators=[Optional()])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.trades.choices = [(code, gettext(label)) for code, label in TRADES.items()]

    def validate(self, extra_validators: Any = None) -> bool:
        """A hand-off has no bid deadline: whatever the (hidden) deadline field holds is
        dropped, so a stale or half-typed value never blocks posting a hand-off."""
        if self.mode.data != "bid_window":
            self.closes_at.data = None
            self.closes_at.process_errors = []
            self.closes_at.raw_data = []
        return bool(super().validate(extra_validators))


class BidForm(WebForm):
    price = StringField(_l("Your price"), validators=[DataRequired(_required)])
    crew_size = IntegerField(_l("Crew size"), validators=[InputRequired(_required)])
    earliest_start = DateField(_l("Earliest start"), validators=[InputRequired(_required)])
    note = TextAreaField(_l("Note to the poster"), validators=[Length(max=1000)])


class CancelForm(WebForm):
    reason = StringField(_l("Why is the job cancelled?"),
                         validators=[DataRequired(_required), Length(max=500)])


class ActionForm(WebForm):
    """One-button actions (claim, confirm, submit): the CSRF token is the whole form."""


class AwardForm(WebForm):
    bid_id = HiddenField(validators=[DataRequired(_required)])


class RateForm(WebForm):
    ratee_member_id = HiddenField(validators=[DataRequired(_required)])
    score = SelectField(_l("Rating"), choices=[(str(n), "★" * n) for n in range(5, 0, -1)])
    on_time = BooleanField(_l("Finished on time"))
    comment = TextAreaField(_l("Comment (optional)"), validators=[Length(max=1000)])
