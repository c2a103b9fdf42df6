"""approximate points: each job's stored approximate point, and service-area changes

Partners see a job's location only as its approximate point, drawn once at
posting (geo.approximate_point) and kept, so that no two reads differ.  Jobs
posted before this revision get theirs drawn here.  Changes of a member's base
or radius are recorded (clusters/service_area.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import marketplace.db
from marketplace.geo import approximate_point

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added in place (no table rebuild: SQLite could not drop a table that bids,
    # contracts and trades refer to), with a placeholder default the rows below
    # replace at once; PostgreSQL then drops the default.
    for name in ('approx_lat', 'approx_lng'):
        op.add_column('overflowjob', sa.Column(name, sa.Float(), nullable=False,
                                               server_default='0'))
    connection = op.get_bind()
    jobs = sa.table('overflowjob', sa.column('id', sa.Integer), sa.column('site_lat', sa.Float),
                    sa.column('site_lng', sa.Float), sa.column('approx_lat', sa.Float),
                    sa.column('approx_lng', sa.Float))
    for job_id, lat, lng in connection.execute(sa.select(jobs.c.id, jobs.c.site_lat,
                                                         jobs.c.site_lng)).all():
        point = approximate_point(lat, lng)
        connection.execute(jobs.update().where(jobs.c.id == job_id)
                           .values(approx_lat=point[0], approx_lng=point[1]))
    if connection.dialect.name != 'sqlite':
        for name in ('approx_lat', 'approx_lng'):
            op.alter_column('overflowjob', name, server_default=None)
    op.create_table('serviceareachange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_at', marketplace.db.UTCDateTime(), nullable=False),
    sa.Column('from_lat', sa.Float(), nullable=True),
    sa.Column('from_lng', sa.Float(), nullable=True),
    sa.Column('from_radius_km', sa.Float(), nullable=True),
    sa.Column('to_lat', sa.Float(), nullable=True),
    sa.Column('to_lng', sa.Float(), nullable=True),
    sa.Column('to_radius_km', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['user.id'], ),
    sa.ForeignKeyConstraint(['member_id'], ['member.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('serviceareachange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_serviceareachange_member_id'), ['member_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('serviceareachange', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_serviceareachange_member_id'))
    op.drop_table('serviceareachange')
    with op.batch_alter_table('overflowjob', recreate='never') as batch:
        batch.drop_column('approx_lng')
        batch.drop_column('approx_lat')
