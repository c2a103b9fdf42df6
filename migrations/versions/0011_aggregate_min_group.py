"""aggregate min group: the information rules' k on every agreement version

Cluster totals of other members' money and ratings are shown to members only
when they combine at least k other members and contracts (issue #16).  Every
existing version gets the default, 3.  The column has no index or constraint,
so going down drops it in place (SQLite 3.35+ and PostgreSQL alike): no
rebuild of the agreement table, which acceptances and contracts refer to.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('agreement', sa.Column('aggregate_min_group', sa.Integer(), nullable=False,
                                         server_default='3'))


def downgrade() -> None:
    op.execute('ALTER TABLE agreement DROP COLUMN aggregate_min_group')
