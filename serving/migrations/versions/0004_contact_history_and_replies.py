"""Contact history and suggested replies: who wrote each routed post, and what /route returned.

- routed_posts: `author_key` (a hash of the customer id, else of channel and handle; indexed with
  `received_at`, the lookup of every new post), `contact_history` (JSON) and `suggested_reply` (text), so that a
  replay returns them. Rows from before keep nulls: their authors are unknown, so they count in
  nobody's history.
- feedback: `satisfaction` (1-5, optional), the customer's satisfaction when the platform asked.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routed_posts") as table:
        table.add_column(sa.Column("author_key", sa.String(64)))
        table.add_column(sa.Column("contact_history", sa.JSON()))
        table.add_column(sa.Column("suggested_reply", sa.Text()))
        table.create_index("routed_posts_by_author", ["author_key", "received_at"])
    with op.batch_alter_table("feedback") as table:
        table.add_column(sa.Column("satisfaction", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as table:
        table.drop_column("satisfaction")
    with op.batch_alter_table("routed_posts") as table:
        table.drop_index("routed_posts_by_author")
        table.drop_column("suggested_reply")
        table.drop_column("contact_history")
        table.drop_column("author_key")
