"""Crisis signals that know which API key sent them, so one key's weight in a crisis can be bounded.

- negative_signals: `client_key` (a hash of the API key, never the key). Rows from before keep a
  null key and count without a bound, as they did.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("negative_signals") as table:
        table.add_column(sa.Column("client_key", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("negative_signals") as table:
        table.drop_column("client_key")
