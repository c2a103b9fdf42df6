"""disputes between members over a job's or a booking's money (#20 part 2)

`memberdispute` keeps each dispute (what it is about, the disputed amount, who decides,
its deadline and the decision); `disputedentry` the ledger entries it holds (unique on
the entry, so the same money is never disputed twice); `disputeparty` and
`disputepanelist` who may read it besides the coordinator; `disputemessage` what the
parties said and showed; `disputevote` each panel business's decision (one each).  The
ledger itself needs no column: a hold and a decision are entries with new sources.

Going down drops the six tables.  The hold and decision entries stay in the ledger: it
is never edited, and they keep every month's nets as they were.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('memberdispute',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('opened_by_member_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('disputed_minor', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('resolver', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('opened_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('deadline', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('overdue_at', marketplace.db.UTCDateTime(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    sa.Column('decided_minor', sa.Integer(), nullable=True),
    sa.Column('split_bp', sa.Integer(), nullable=True),
    sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', marketplace.db.UTCDateTime(), nullable=True),
    sa.CheckConstraint('disputed_minor > 0', name='dispute_amount_positive'),
    sa.CheckConstraint('decided_minor IS NULL OR (decided_minor >= 0 AND '
                       'decided_minor <= disputed_minor)', name='dispute_decided_in_range'),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster.id'], ),
    sa.ForeignKeyConstraint(['opened_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['opened_by_member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_memberdispute_cluster_id'), 'memberdispute', ['cluster_id'],
                    unique=False)
    op.create_index(op.f('ix_memberdispute_status'), 'memberdispute', ['status'],
                    unique=False)
    op.create_table('disputedentry',
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=False),
    sa.Column('settled_minor', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['dispute_id'], ['memberdispute.id'], ),
    sa.ForeignKeyConstraint(['entry_id'], ['ledgerentry.id'], ),
    sa.PrimaryKeyConstraint('dispute_id', 'entry_id'),
    sa.UniqueConstraint('entry_id', name='uq_disputedentry_entry_id')
    )
    for table in ('disputeparty', 'disputepanelist'):
        op.create_table(table,
        sa.Column('dispute_id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['dispute_id'], ['memberdispute.id'], ),
        sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
        sa.PrimaryKeyConstraint('dispute_id', 'member_id')
        )
        op.create_index(op.f(f'ix_{table}_member_id'), table, ['member_id'], unique=False)
    op.create_table('disputemessage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('author_member_id', sa.Integer(), nullable=True),
    sa.Column('body', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('photo', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
    sa.Column('request_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('created_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['author_member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['dispute_id'], ['memberdispute.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dispute_id', 'author_id', 'request_key',
                        name='uq_disputemessage_request_key')
    )
    op.create_index(op.f('ix_disputemessage_dispute_id'), 'disputemessage', ['dispute_id'],
                    unique=False)
    op.create_table('disputevote',
    sa.Column('dispute_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('decided_minor', sa.Integer(), nullable=False),
    sa.Column('split_bp', sa.Integer(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('cast_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['dispute_id'], ['memberdispute.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('dispute_id', 'member_id')
    )


def downgrade() -> None:
    op.drop_table('disputevote')
    op.drop_index(op.f('ix_disputemessage_dispute_id'), table_name='disputemessage')
    op.drop_table('disputemessage')
    for table in ('disputepanelist', 'disputeparty'):
        op.drop_index(op.f(f'ix_{table}_member_id'), table_name=table)
        op.drop_table(table)
    op.drop_table('disputedentry')
    op.drop_index(op.f('ix_memberdispute_status'), table_name='memberdispute')
    op.drop_index(op.f('ix_memberdispute_cluster_id'), table_name='memberdispute')
    op.drop_table('memberdispute')
