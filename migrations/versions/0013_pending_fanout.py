"""pending fan-outs: a post's notifications are written after its commit, off the request

A posted job's row in `pendingfanout` commits with the job; a background task
(or the sweep, after a crash) deletes it in the transaction that stores the
notifications (issue #14).  A new table only: going down drops it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pendingfanout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('created_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_pendingfanout_created_at'), 'pendingfanout', ['created_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_pendingfanout_created_at'), table_name='pendingfanout')
    op.drop_table('pendingfanout')
