"""a member's clean exit: buy-outs and access (#20 part 5)

Placeholder: the schema change is filled in by the work on this part; until
then it changes nothing, so the history stays one line.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
