"""The scheduler's one table: who leads, and when it last said so."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class SchedulerLease(SQLModel, table=True):
    """The current scheduler leader; renewed every few seconds while it lives."""

    name: str = Field(max_length=40, primary_key=True)
    holder: str = Field(max_length=200)
    renewed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
