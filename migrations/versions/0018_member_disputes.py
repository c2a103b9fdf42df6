"""disputes between members over a job's or a booking's money (#20 part 2)

Placeholder: the schema change is filled in by the work on this part; until
then it changes nothing, so the history stays one line.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
