"""API tests act in the jobs tests' cluster, with personal tokens."""

from __future__ import annotations

from sqlmodel import Session

from marketplace.api import tokens
from marketplace.clusters.models import User
from marketplace.db import utcnow
from tests.jobs.conftest import jobs_world  # noqa: F401 - a fixture shared with tests/jobs


def bearer(session: Session, user: User, name: str = "script") -> dict[str, str]:
    """Headers of a fresh personal API token of `user`."""
    issued = tokens.create_token(session, user, name, utcnow())
    return {"Authorization": f"Bearer {issued.secret}"}
