"""a member's clean exit: buy-outs and access (#20 part 5)

`memberexit` records each member's exit as it took effect (unique per member, so the
scheduler makes it happen once) with what it did (`summary`, JSON); `exitbuyout` one
co-owned machine's buy-out (its id is the ledger entries' source id);
`equipment.agreed_value_minor` what a co-owned machine's owners agree it is worth.
Existing machines have no agreed value (a buy-out of them is free until one is set).

Going down drops the two tables and the column: the older schema has no place for
them (the buy-out's ledger entries stay, as entries of an unknown source label).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('equipment', sa.Column('agreed_value_minor', sa.BigInteger(), nullable=True))
    op.create_table('memberexit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('effective_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('done_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('final_month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', name='uq_memberexit_member_id')
    )
    op.create_index(op.f('ix_memberexit_cluster_id'), 'memberexit', ['cluster_id'],
                    unique=False)
    op.create_table('exitbuyout',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('exit_id', sa.Integer(), nullable=False),
    sa.Column('equipment_id', sa.Integer(), nullable=False),
    sa.Column('leaver_share_bp', sa.Integer(), nullable=False),
    sa.Column('agreed_value_minor', sa.BigInteger(), nullable=True),
    sa.Column('buyout_value_bp', sa.Integer(), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('parts', sa.JSON(), nullable=False),
    sa.Column('new_shares', sa.JSON(), nullable=False),
    sa.CheckConstraint('price_minor >= 0', name='buyout_price_not_negative'),
    sa.ForeignKeyConstraint(['equipment_id'], ['equipment.id'], ),
    sa.ForeignKeyConstraint(['exit_id'], ['memberexit.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('exit_id', 'equipment_id')
    )
    op.create_index(op.f('ix_exitbuyout_equipment_id'), 'exitbuyout', ['equipment_id'],
                    unique=False)
    op.create_index(op.f('ix_exitbuyout_exit_id'), 'exitbuyout', ['exit_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_exitbuyout_exit_id'), table_name='exitbuyout')
    op.drop_index(op.f('ix_exitbuyout_equipment_id'), table_name='exitbuyout')
    op.drop_table('exitbuyout')
    op.drop_index(op.f('ix_memberexit_cluster_id'), table_name='memberexit')
    op.drop_table('memberexit')
    with op.batch_alter_table('equipment', recreate='never') as batch:
        batch.drop_column('agreed_value_minor')
