"""the agreement's dispute, target and buy-out terms (#20)

Each agreement version now also names:
- how disputes between members run: the window to open one after a job's completion
  or a booking's end (`dispute_window_days`), who decides (`dispute_resolver`:
  the coordinator or a panel of uninvolved members) and by when (`dispute_decide_days`);
- its measurable targets, a goal per calendar quarter per metric (`targets`, JSON);
- the price a leaving co-owner's share of a machine is bought at, as basis points of
  the machine's agreed value (`buyout_value_bp`).

Existing versions get the defaults: 14 days to open a dispute, decided by the
coordinator within 14 days, no targets, a buy-out at the full agreed value.

Going down drops the five columns.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 14:15:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("dispute_window_days", "dispute_resolver", "dispute_decide_days", "targets",
            "buyout_value_bp")


def upgrade() -> None:
    op.add_column('agreement', sa.Column('dispute_window_days', sa.Integer(),
                                         server_default='14', nullable=False))
    op.add_column('agreement', sa.Column('dispute_resolver',
                                         sqlmodel.sql.sqltypes.AutoString(length=20),
                                         server_default='coordinator', nullable=False))
    op.add_column('agreement', sa.Column('dispute_decide_days', sa.Integer(),
                                         server_default='14', nullable=False))
    op.add_column('agreement', sa.Column('targets', sa.JSON(), server_default='{}',
                                         nullable=False))
    op.add_column('agreement', sa.Column('buyout_value_bp', sa.Integer(),
                                         server_default='10000', nullable=False))


def downgrade() -> None:
    for name in reversed(_COLUMNS):
        op.execute(f'ALTER TABLE agreement DROP COLUMN {name}')
