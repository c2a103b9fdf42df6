"""targets progress and the sunset review (#20 part 4)

Placeholder: the schema change is filled in by the work on this part; until
then it changes nothing, so the history stays one line.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
