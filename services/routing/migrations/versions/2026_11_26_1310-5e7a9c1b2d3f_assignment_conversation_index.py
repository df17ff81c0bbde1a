"""assignment conversation index

Each consumer batch reads the responders who held earlier posts of its authors or conversations (continuity,
``AssignmentRepository.continuity``). Without an index on ``conversation_id`` the OR of the two lookups was a
scan of every assignment per batch, a cost that grew with the table (measured: 46 of 182 SQLite samples in
routing at 250 posts/s after 3,800 assignments); with it, SQLite answers with two index searches.

Revision ID: 5e7a9c1b2d3f
Revises: 3c1d2e4f5a6b
Create Date: 2026-11-26 13:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5e7a9c1b2d3f"
down_revision: str | None = "3c1d2e4f5a6b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.create_index("ix_assignment_conversation_id", ["conversation_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        batch_op.drop_index("ix_assignment_conversation_id")
