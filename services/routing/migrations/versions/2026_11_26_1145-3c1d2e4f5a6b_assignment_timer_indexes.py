"""assignment timer indexes

Revision ID: 3c1d2e4f5a6b
Revises: 68b3eb1c1ba8
Create Date: 2026-11-26 11:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c1d2e4f5a6b"
down_revision: str | None = "68b3eb1c1ba8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMERS = {
    "ix_assignment_fr_warn_timer": ["fr_warned", "fr_warn_at"],
    "ix_assignment_fr_due_timer": ["fr_breached", "fr_due_at"],
    "ix_assignment_rs_warn_timer": ["rs_warned", "rs_warn_at"],
    "ix_assignment_rs_due_timer": ["rs_breached", "rs_due_at"],
}


def upgrade() -> None:
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        for name, columns in TIMERS.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assignment", schema=None) as batch_op:
        for name in TIMERS:
            batch_op.drop_index(name)
