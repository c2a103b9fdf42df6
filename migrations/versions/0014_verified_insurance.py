"""verified insurance: certificates, the coordinator's verification, reminders, minima

A member's insurance now counts only as the coordinator verified it from an
uploaded certificate (issue #20): `member.insurance_expires_on` is the verified
expiry and `member.insurance_coverage_minor` the verified coverage; the
agreement names a minimum coverage per trade (`agreement.min_coverage`, JSON,
empty for every existing version); `insurancecertificate` holds the uploads and
`insurancenotice` the reminders sent (unique per member, expiry and kind).

The dates members typed into their profiles before this were never checked by
anyone, so they are not carried over as verified: that would lie to every partner
who relies on them.  Each becomes a *pending* certificate record without a
document (insurer and policy unknown, coverage unknown), which the coordinator
can verify from a copy it holds or which the member replaces by uploading its
certificate; the member's expiry is cleared, so until then the member is not
eligible for jobs and is told why.

Going down keeps each member's verified expiry, and gives back the typed date
to a member that has none verified yet (the newest record carried over), so a
round trip loses nothing the old schema could hold; the certificates, notices,
coverage and minima are dropped.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 11:30:00.000000
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import marketplace.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_certificate = sa.table(
    'insurancecertificate',
    sa.column('cluster_id', sa.Integer()), sa.column('member_id', sa.Integer()),
    sa.column('status', sa.String()), sa.column('insurer', sa.String()),
    sa.column('policy_number', sa.String()), sa.column('currency', sa.String()),
    sa.column('expires_on', sa.Date()), sa.column('media_type', sa.String()),
    sa.column('uploaded_at', marketplace.db.UTCDateTime()), sa.column('reason', sa.String()),
)


def upgrade() -> None:
    op.add_column('member', sa.Column('insurance_coverage_minor', sa.BigInteger(),
                                      nullable=True))
    op.add_column('agreement', sa.Column('min_coverage', sa.JSON(), nullable=False,
                                         server_default='{}'))
    op.create_table('insurancecertificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cluster_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('insurer', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
    sa.Column('policy_number', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('coverage_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=True),
    sa.Column('media_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', marketplace.db.UTCDateTime(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['cluster_id'], ['cluster.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_insurancecertificate_cluster_id'), 'insurancecertificate',
                    ['cluster_id'], unique=False)
    op.create_index(op.f('ix_insurancecertificate_member_id'), 'insurancecertificate',
                    ['member_id'], unique=False)
    op.create_index(op.f('ix_insurancecertificate_status'), 'insurancecertificate',
                    ['status'], unique=False)
    op.create_table('insurancenotice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('sent_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('member_id', 'expires_on', 'kind')
    )
    op.create_index(op.f('ix_insurancenotice_member_id'), 'insurancenotice', ['member_id'],
                    unique=False)
    # The typed dates become pending records (see the docstring), and stop counting.
    stated = op.get_bind().execute(sa.text(
        'SELECT member.id, member.cluster_id, cluster.currency, member.insurance_expires_on '
        'FROM member JOIN cluster ON cluster.id = member.cluster_id '
        'WHERE member.insurance_expires_on IS NOT NULL ORDER BY member.id')).all()
    if stated:
        now = datetime.now(UTC)
        op.bulk_insert(_certificate, [
            {'cluster_id': cluster_id, 'member_id': member_id, 'status': 'pending',
             'insurer': '', 'policy_number': '', 'currency': currency,
             'expires_on': expires_on if not isinstance(expires_on, str)
             else datetime.fromisoformat(expires_on).date(),
             'media_type': '', 'uploaded_at': now, 'reason': ''}
            for member_id, cluster_id, currency, expires_on in stated])
        op.execute('UPDATE member SET insurance_expires_on = NULL')


def downgrade() -> None:
    op.execute(
        "UPDATE member SET insurance_expires_on = (SELECT c.expires_on FROM "
        "insurancecertificate c WHERE c.member_id = member.id AND c.document IS NULL "
        "ORDER BY c.id DESC LIMIT 1) WHERE insurance_expires_on IS NULL")
    op.drop_index(op.f('ix_insurancenotice_member_id'), table_name='insurancenotice')
    op.drop_table('insurancenotice')
    op.drop_index(op.f('ix_insurancecertificate_status'), table_name='insurancecertificate')
    op.drop_index(op.f('ix_insurancecertificate_member_id'),
                  table_name='insurancecertificate')
    op.drop_index(op.f('ix_insurancecertificate_cluster_id'),
                  table_name='insurancecertificate')
    op.drop_table('insurancecertificate')
    op.execute('ALTER TABLE agreement DROP COLUMN min_coverage')
    op.execute('ALTER TABLE member DROP COLUMN insurance_coverage_minor')
