"""the agreement's dispute, target and buy-out terms (#20)

Placeholder: the schema change is filled in by the work on this part; until
then it changes nothing, so the history stays one line.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
