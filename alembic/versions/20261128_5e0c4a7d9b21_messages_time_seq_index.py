"""messages: index (upload_id, timestamp, seq) in place of (upload_id, timestamp)

Dataset builds page through an upload ordered by (timestamp, seq); without seq in the index
MariaDB sorted the whole upload for every page of 2,000 messages.

Revision ID: 5e0c4a7d9b21
Revises: 807ff9239e2f
Create Date: 2026-11-28 11:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e0c4a7d9b21"
down_revision: str | None = "807ff9239e2f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new index first: MySQL keeps an index on upload_id for its foreign key throughout.
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_upload_id_timestamp_seq"),
            ["upload_id", "timestamp", "seq"],
            unique=False,
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_upload_id_timestamp"))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messages_upload_id_timestamp"), ["upload_id", "timestamp"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_upload_id_timestamp_seq"))
