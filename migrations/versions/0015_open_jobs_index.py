"""open jobs by cluster: the board finds a cluster's open jobs without its history

The board reads the cluster's open jobs (`cluster_id = ? AND status = 'open'`).
With one index per column the database walked every job the cluster ever posted
to find the open ones, so the board slowed as the season's history grew (issue
#14: 0.5 ms for 2 000 jobs on SQLite, linear beyond).  An index only: going down
drops it.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 12:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_overflowjob_cluster_status', 'overflowjob', ['cluster_id', 'status'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_overflowjob_cluster_status', table_name='overflowjob')
