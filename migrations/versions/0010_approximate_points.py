"""approximate points: each job's stored approximate point, clusters' location keys,
service-area changes

Partners see a job's location only as its approximate point, fixed by the
cluster's secret location key and the site (geo.site_point) and kept with the
job, so that no two reads differ.  Clusters get their key here, and jobs
posted before this revision get their point, computed by a copy of
geo.site_point as it is today (a migration must not change with the code).
Changes of a member's base or radius are recorded (clusters/service_area.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 23:40:00
"""
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from math import asin, atan2, cos, degrees, radians, sin
from random import Random

import sqlalchemy as sa
from alembic import op

import marketplace.db

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _site_point(key: str, lat: float, lng: float) -> tuple[float, float]:
    """geo.site_point of 2026-12: 1.1-1.5 km from the site, the direction and distance
    drawn from HMAC-SHA256(key, site rounded to 3 decimals), rounded to 3 decimals."""
    site = f"{lat:.3f},{lng:.3f}"
    draw = Random(int.from_bytes(hmac.new(key.encode(), site.encode(),
                                          hashlib.sha256).digest(), "big"))
    km, bearing = draw.uniform(1.1, 1.5), radians(draw.uniform(0.0, 360.0))
    phi, lmb, delta = radians(lat), radians(lng), km / 6371.0088
    phi2 = asin(sin(phi) * cos(delta) + cos(phi) * sin(delta) * cos(bearing))
    lmb2 = lmb + atan2(sin(bearing) * sin(delta) * cos(phi), cos(delta) - sin(phi) * sin(phi2))
    return round(degrees(phi2), 3), round((degrees(lmb2) + 540) % 360 - 180, 3)


def upgrade() -> None:
    # Columns are added in place (no table rebuild: SQLite could not drop tables that
    # bids, contracts and members refer to), with placeholder defaults the rows below
    # replace at once; PostgreSQL then drops the defaults.  (SQLite keeps them: an
    # insert without a value would get the placeholder, and the models always give one.)
    connection = op.get_bind()
    op.add_column('cluster', sa.Column('location_key', sa.String(length=64), nullable=False,
                                       server_default=''))
    clusters = sa.table('cluster', sa.column('id', sa.Integer),
                        sa.column('location_key', sa.String))
    keys = {cluster_id: secrets.token_hex(32)
            for cluster_id in connection.execute(sa.select(clusters.c.id)).scalars()}
    if keys:
        connection.execute(clusters.update().where(clusters.c.id == sa.bindparam('cid'))
                           .values(location_key=sa.bindparam('key')),
                           [{'cid': cid, 'key': key} for cid, key in keys.items()])
    for name in ('approx_lat', 'approx_lng'):
        op.add_column('overflowjob', sa.Column(name, sa.Float(), nullable=False,
                                               server_default='0'))
    jobs = sa.table('overflowjob', sa.column('id', sa.Integer),
                    sa.column('cluster_id', sa.Integer), sa.column('site_lat', sa.Float),
                    sa.column('site_lng', sa.Float), sa.column('approx_lat', sa.Float),
                    sa.column('approx_lng', sa.Float))
    points = []
    for job_id, cluster_id, lat, lng in connection.execute(sa.select(
            jobs.c.id, jobs.c.cluster_id, jobs.c.site_lat, jobs.c.site_lng)).all():
        point = _site_point(keys[cluster_id], lat, lng)
        points.append({'jid': job_id, 'alat': point[0], 'alng': point[1]})
    if points:
        connection.execute(jobs.update().where(jobs.c.id == sa.bindparam('jid'))
                           .values(approx_lat=sa.bindparam('alat'),
                                   approx_lng=sa.bindparam('alng')), points)
    if connection.dialect.name != 'sqlite':
        op.alter_column('cluster', 'location_key', server_default=None)
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
    with op.batch_alter_table('cluster', recreate='never') as batch:
        batch.drop_column('location_key')
