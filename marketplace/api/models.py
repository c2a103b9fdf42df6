"""API tokens: a person's key for scripts and apps, stored only as a hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from marketplace.db import UTCDateTime


class ApiToken(SQLModel, table=True):
    """One named token of one user.  The secret itself is shown once and never stored."""

    __tablename__ = "apitoken"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=80)
    # The first characters of the secret, so a person can tell tokens apart.
    prefix: str = Field(max_length=12)
    secret_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
