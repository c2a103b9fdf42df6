"""agreement votes: the charter's decision rule, proposals to change it, votes

Issue #20 part 3.  Each agreement version names how a change is decided
(`decision_rule`: majority, two_thirds or unanimity of participating members),
whether members may propose changes (`members_may_propose`) and whether votes are
secret (`secret_votes`).  Existing versions get the defaults the product assumed
until now: the coordinator alone changes the agreement, by simple majority, openly.
`agreementproposal` keeps every proposal with its proposed terms (JSON), deadline
and outcome; `proposalvote` one vote per member business (unique on proposal and
member, so the database refuses a second one however fast two owners tap).

Going down drops the proposals, the votes and the three columns: the record of
decisions has no place in the older schema.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 13:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('agreement', sa.Column('decision_rule',
                                         sqlmodel.sql.sqltypes.AutoString(length=20),
                                         nullable=False, server_default='majority'))
    op.add_column('agreement', sa.Column('members_may_propose', sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.add_column('agreement', sa.Column('secret_votes', sa.Boolean(), nullable=False,
                                         server_default=sa.false()))
    op.create_table('agreementproposal',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=False),
    sa.Column('proposed_by_member_id', sa.Integer(), nullable=True),
    sa.Column('based_on_version', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('decision_rule', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('secret_votes', sa.Boolean(), nullable=False),
    sa.Column('created_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('deadline', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('closed_at', marketplace.db.UTCDateTime(), nullable=True),
    sa.Column('votes_for', sa.Integer(), nullable=True),
    sa.Column('votes_against', sa.Integer(), nullable=True),
    sa.Column('participants', sa.Integer(), nullable=True),
    sa.Column('published_version', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster.id'], ),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['proposed_by_member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_agreementproposal_cluster_id'), 'agreementproposal',
                    ['cluster_id'], unique=False)
    op.create_index(op.f('ix_agreementproposal_deadline'), 'agreementproposal',
                    ['deadline'], unique=False)
    op.create_index(op.f('ix_agreementproposal_status'), 'agreementproposal', ['status'],
                    unique=False)
    op.create_table('proposalvote',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proposal_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('in_favour', sa.Boolean(), nullable=False),
    sa.Column('cast_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['proposal_id'], ['agreementproposal.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('proposal_id', 'member_id')
    )
    op.create_index(op.f('ix_proposalvote_member_id'), 'proposalvote', ['member_id'],
                    unique=False)
    op.create_index(op.f('ix_proposalvote_proposal_id'), 'proposalvote', ['proposal_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_proposalvote_proposal_id'), table_name='proposalvote')
    op.drop_index(op.f('ix_proposalvote_member_id'), table_name='proposalvote')
    op.drop_table('proposalvote')
    op.drop_index(op.f('ix_agreementproposal_status'), table_name='agreementproposal')
    op.drop_index(op.f('ix_agreementproposal_deadline'), table_name='agreementproposal')
    op.drop_index(op.f('ix_agreementproposal_cluster_id'), table_name='agreementproposal')
    op.drop_table('agreementproposal')
    op.execute('ALTER TABLE agreement DROP COLUMN secret_votes')
    op.execute('ALTER TABLE agreement DROP COLUMN members_may_propose')
    op.execute('ALTER TABLE agreement DROP COLUMN decision_rule')
