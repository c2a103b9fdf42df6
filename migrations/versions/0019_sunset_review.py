"""targets progress and the sunset review (#20 part 4)

`sunsetreview`: one review per cluster and sunset date (unique, so a scheduler that
runs twice or on two instances opens one), opened 30 days before the sunset of the
version in force and closed once at the sunset or when a renewal is published.
`reviewanswer`: one answer per review and member business (unique), renew / change /
leave and what it learned.  Progress against targets is computed from the jobs,
bookings and ledger tables, never stored.  Going down drops both tables.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('sunsetreview',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('agreement_version', sa.Integer(), nullable=False),
    sa.Column('sunset_on', sa.Date(), nullable=False),
    sa.Column('opened_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('closed_at', marketplace.db.UTCDateTime(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=12), nullable=True),
    sa.Column('renewed_version', sa.Integer(), nullable=True),
    sa.Column('renewed_sunset_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('cluster_id', 'sunset_on', name='uq_sunsetreview_sunset')
    )
    op.create_index(op.f('ix_sunsetreview_cluster_id'), 'sunsetreview', ['cluster_id'],
                    unique=False)
    op.create_index(op.f('ix_sunsetreview_status'), 'sunsetreview', ['status'], unique=False)
    op.create_table('reviewanswer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('choice', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('lessons', sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
    sa.Column('answered_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('changed_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['review_id'], ['sunsetreview.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('review_id', 'member_id', name='uq_reviewanswer_member')
    )
    op.create_index(op.f('ix_reviewanswer_member_id'), 'reviewanswer', ['member_id'],
                    unique=False)
    op.create_index(op.f('ix_reviewanswer_review_id'), 'reviewanswer', ['review_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_reviewanswer_review_id'), table_name='reviewanswer')
    op.drop_index(op.f('ix_reviewanswer_member_id'), table_name='reviewanswer')
    op.drop_table('reviewanswer')
    op.drop_index(op.f('ix_sunsetreview_status'), table_name='sunsetreview')
    op.drop_index(op.f('ix_sunsetreview_cluster_id'), table_name='sunsetreview')
    op.drop_table('sunsetreview')
