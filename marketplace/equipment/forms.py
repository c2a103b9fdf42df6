"""Forms for listing machines, booking them, and moving a booking along."""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from marketplace.equipment.models import EquipmentKind, RotationPeriod
from marketplace.forms import WebForm

_required = _l("This field is required.")

KIND_LABELS = {
    EquipmentKind.MOWER: _l("Mower"), EquipmentKind.SKID_STEER: _l("Skid steer"),
    EquipmentKind.MINI_EXCAVATOR: _l("Mini excavator"), EquipmentKind.AERATOR: _l("Aerator"),
    EquipmentKind.STUMP_GRINDER: _l("Stump grinder"), EquipmentKind.TRENCHER: _l("Trencher"),
    EquipmentKind.TRAILER: _l("Trailer"), EquipmentKind.SNOW_PLOW: _l("Snow plow"),
    EquipmentKind.CHIPPER: _l("Wood chipper"), EquipmentKind.COMPACTOR: _l("Plate compactor"),
    EquipmentKind.OTHER: _l("Other"),
}
WEEKDAYS = (_l("Monday"), _l("Tuesday"), _l("Wednesday"), _l("Thursday"), _l("Friday"),
            _l("Saturday"), _l("Sunday"))


class ListingForm(WebForm):
    name = StringField(_l("Name"), validators=[DataRequired(_required), Length(max=120)])
    kind = SelectField(_l("Type"), choices=[])
    description = TextAreaField(_l("Description"), validators=[Length(max=4000)])
    photo = FileField(_l("Photo (JPEG, PNG or WebP, up to 5 MB)"))
    # Where the machine lives: typed as an address or a town (suggestions from /places) or
    # taken from the phone; the point travels in hidden fields only (places/service.py).
    base_place = StringField(_l("Address or town"), validators=[Length(max=300)])
    base_lat = HiddenField()
    base_lng = HiddenField()
    base_resolved = HiddenField()
    locality = StringField(_l("Where it is kept (town or yard)"), validators=[Length(max=120)])
    hour_rate = StringField(_l("Rate per hour"), default="0")
    day_rate = StringField(_l("Rate per day"), default="0")
    granularity_minutes = SelectField(_l("Booking steps"), default="30", choices=[
        ("15", _l("15 minutes")), ("30", _l("30 minutes")), ("60", _l("1 hour"))])
    min_minutes = IntegerField(_l("Shortest booking (minutes)"), default=60,
                               validators=[InputRequired(_required)])
    max_minutes = IntegerField(_l("Longest booking (minutes)"), default=4320,
                               validators=[InputRequired(_required)])
    buffer_minutes = IntegerField(_l("Buffer between bookings (minutes)"), default=30,
                                  validators=[InputRequired(_required)])
    timezone = StringField(_l("Time zone of the weekly hours"),
                           validators=[DataRequired(_required)])
    needs_approval = BooleanField(_l("I approve each booking myself"))
    cancel_cutoff_hours = IntegerField(_l("Free cancellation until (hours before start)"),
                                       default=24, validators=[InputRequired(_required)])
    cancel_fee = StringField(_l("Late cancellation fee (percent of the booking)"), default="50")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [(kind.value, str(label)) for kind, label in KIND_LABELS.items()]


class BookingForm(WebForm):
    starts_at = DateTimeLocalField(_l("From (your local time)"), format="%Y-%m-%dT%H:%M",
                                   validators=[InputRequired(_required)])
    ends_at = DateTimeLocalField(_l("Until (your local time)"), format="%Y-%m-%dT%H:%M",
                                 validators=[InputRequired(_required)])


class ReasonForm(WebForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(_required), Length(max=500)])


class StatusForm(WebForm):
    status = SelectField(_l("Change to"), choices=[])
    reason = StringField(_l("Reason (told to everyone with a booking)"),
                         validators=[Length(max=300)])

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.status.choices = [("paused", gettext("Paused")), ("active", gettext("Active")),
                               ("retired", gettext("Retired"))]


class BlackoutForm(WebForm):
    starts_at = DateTimeLocalField(_l("From (your local time)"), format="%Y-%m-%dT%H:%M",
                                   validators=[InputRequired(_required)])
    ends_at = DateTimeLocalField(_l("Until (your local time)"), format="%Y-%m-%dT%H:%M",
                                 validators=[InputRequired(_required)])
    reason = StringField(_l("Why (maintenance, own use ...)"),
                         validators=[DataRequired(_required), Length(max=300)])


class CheckOutForm(WebForm):
    meter = FloatField(_l("Hour meter"), validators=[Optional()])
    note = TextAreaField(_l("Condition"), validators=[Length(max=1000)])
    photo = FileField(_l("Photo (optional)"))


class ReturnForm(WebForm):
    meter = FloatField(_l("Hour meter"), validators=[Optional()])
    note = TextAreaField(_l("Condition and anything to report"), validators=[Length(max=1000)])


class CloseForm(WebForm):
    damage = StringField(_l("Damage fee (0 if none)"), default="0")
    damage_note = TextAreaField(_l("What was damaged"), validators=[Length(max=1000)])


class ActionForm(WebForm):
    """One-button actions (approve, release, accept): the CSRF token is the whole form."""


class PlanForm(WebForm):
    period = SelectField(_l("Each co-owner holds it for"), choices=[
        (RotationPeriod.WEEK.value, _l("a week")), (RotationPeriod.DAY.value, _l("a day"))])
    starts_on = DateField(_l("Starting on"), validators=[InputRequired(_required)])


class SwapForm(WebForm):
    offered_id = SelectField(_l("Your period"), choices=[], validate_choice=False)
    wanted_id = SelectField(_l("Their period"), choices=[], validate_choice=False)


def weekly_hours_field_names(weekday: int) -> tuple[str, str]:
    """The request fields holding one weekday's opening and closing time."""
    return f"opens-{weekday}", f"closes-{weekday}"

