"""Idempotent routing and feedback; crisis signals that know their author and conversation.

- routed_posts: `content_hash` (a retry with the same id and content gets the stored result; other
  content is refused), `auto_reply` (so the stored result is the whole route), `duplicate_of`. A
  post id may be stored once: the releases before this one stored a retried post again, so every
  later row of an id is kept but marked `duplicate_of` its first row, and the unique index covers
  the rows that are not duplicates.
- feedback: `idempotency_key` (unique) and `content_hash`. Rows from before keep a null key.
- negative_signals: `author_key` and `conversation_key` (hashes, never the handle), so a crisis
  counts distinct authors. Rows from before keep null keys and count as one author each.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routed_posts") as table:
        table.add_column(sa.Column("content_hash", sa.String(64)))
        table.add_column(sa.Column("auto_reply", sa.Text))
        table.add_column(sa.Column("duplicate_of", sa.Integer))
    first_row = "(SELECT MIN(earliest.id) FROM routed_posts AS earliest WHERE earliest.post_id = routed_posts.post_id)"
    op.execute(f"UPDATE routed_posts SET duplicate_of = {first_row} WHERE id > {first_row}")
    op.create_index("one_routing_per_post", "routed_posts", ["post_id"], unique=True,
                    sqlite_where=sa.text("duplicate_of IS NULL"), postgresql_where=sa.text("duplicate_of IS NULL"))
    with op.batch_alter_table("feedback") as table:
        table.add_column(sa.Column("idempotency_key", sa.String(200)))
        table.add_column(sa.Column("content_hash", sa.String(64)))
    op.create_index("one_feedback_per_idempotency_key", "feedback", ["idempotency_key"], unique=True)
    with op.batch_alter_table("negative_signals") as table:
        table.add_column(sa.Column("author_key", sa.String(64)))
        table.add_column(sa.Column("conversation_key", sa.String(64)))


def downgrade() -> None:
    op.drop_index("one_feedback_per_idempotency_key", table_name="feedback")
    op.drop_index("one_routing_per_post", table_name="routed_posts")
    with op.batch_alter_table("negative_signals") as table:
        table.drop_column("conversation_key")
        table.drop_column("author_key")
    with op.batch_alter_table("feedback") as table:
        table.drop_column("content_hash")
        table.drop_column("idempotency_key")
    with op.batch_alter_table("routed_posts") as table:
        table.drop_column("duplicate_of")
        table.drop_column("auto_reply")
        table.drop_column("content_hash")
