"""Field types shared by the API's schemas: bounded so a number never overflows a column.

The services still decide what is *allowed* (a job's maximum value, a booking's
step); these bounds only say what can be *stored*, so that absurd input is a
422 at the door and never a database error.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from marketplace.clusters.models import UnitSystem
from marketplace.clusters.service import SUPPORTED_LOCALES
from marketplace.clusters.trades import TRADES
from marketplace.db import MAX_ID
from marketplace.errors import ValidationError

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=MAX_ID)]
Minor = Annotated[int, Field(ge=0, le=MAX_ID, description="Amount in minor units (cents).")]
BasisPoints = Annotated[int, Field(ge=0, le=10_000, description="Share in basis points; "
                                   "10 000 = 100 %.")]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# Years 2000-2999: wide enough for any real date, far from where date arithmetic overflows.
Moment = Annotated[AwareDatetime, Field(ge=datetime(2000, 1, 1, tzinfo=UTC),
                                        le=datetime(2999, 12, 1, tzinfo=UTC),
                                        description="ISO 8601 with a UTC offset.")]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2999, 12, 1))]
Reading = Annotated[float, Field(ge=0, le=10_000_000, allow_inf_nan=False,
                                 description="Hour meter reading.")]


#: The taxonomy's trade codes and the supported languages, as enums in the document.
Trade = StrEnum("Trade", {code: code for code in TRADES})  # type: ignore[misc]  # computed
Locale = StrEnum("Locale", {code: code for code in SUPPORTED_LOCALES})  # type: ignore[misc]  # computed
Units = UnitSystem


def decoded_base64(text: str, field: str, code: str, message: str) -> bytes:
    """A file sent in JSON as base64 (a certificate, a photo), or a 422 on its `field`
    saying how to send it (`message`, untranslated) when it is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValidationError(code, message, fields={field: message}) from None
