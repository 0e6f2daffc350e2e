"""labelers

Revision ID: 807ff9239e2f
Revises: 3dfb01d0b924
Create Date: 2026-11-28 04:48:28.663755
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '807ff9239e2f'
down_revision: str | None = '3dfb01d0b924'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('labelers',
    sa.Column('id', sa.CHAR(length=32), nullable=False),
    sa.Column('user_id', sa.CHAR(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('encoder', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('metrics', sa.JSON().with_variant(mysql.JSON(), 'mysql'), nullable=True),
    sa.Column('object_key', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_labelers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labelers')),
    mysql_charset='utf8mb4',
    mysql_collate='utf8mb4_bin'
    )
    with op.batch_alter_table('labelers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labelers_user_id_created_at'), ['user_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('labelers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_labelers_user_id_created_at'))

    op.drop_table('labelers')
