"""The store as every release before migrations created it (with SQLAlchemy's create_all).

A store made by such a release has these tables and no alembic_version table; serving.migrate
stamps it with this revision before upgrading it.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crisis_episodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("intent", sa.String(100), nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("baseline_per_hour", sa.Double, nullable=False),
        sa.Column("peak_window_count", sa.Integer, nullable=False),
        sa.Column("last_window_count", sa.Integer, nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime, nullable=False),
    )
    op.create_index("one_active_crisis_per_intent", "crisis_episodes", ["intent"], unique=True,
                    sqlite_where=sa.text("ended_at IS NULL"), postgresql_where=sa.text("ended_at IS NULL"))
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("post_id", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("corrected_labels", sa.JSON),
        sa.Column("handled_by_team", sa.String(100)),
        sa.Column("resolved", sa.Boolean, nullable=False),
        sa.Column("first_response_at", sa.DateTime),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("agent_id", sa.String(200)),
    )
    op.create_index("ix_feedback_post_id", "feedback", ["post_id"])
    op.create_table(
        "negative_signals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("post_id", sa.String(200), nullable=False),
        sa.Column("intent", sa.String(100), nullable=False),
        sa.Column("observed_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("post_id", "intent", name="one_signal_per_post_and_intent"),
    )
    op.create_index("signals_by_intent_and_time", "negative_signals", ["intent", "observed_at"])
    op.create_table(
        "routed_posts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("post_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime),
        sa.Column("channel", sa.String(50), nullable=False),
        sa.Column("public", sa.Boolean, nullable=False),
        sa.Column("sector", sa.String(100)),
        sa.Column("customer_id", sa.String(200)),
        sa.Column("author_followers", sa.Integer),
        sa.Column("text", sa.Text),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("taxonomy_version", sa.String(50), nullable=False),
        sa.Column("routing_version", sa.String(50), nullable=False),
        sa.Column("predictions", sa.JSON, nullable=False),
        sa.Column("intent", sa.String(100), nullable=False),
        sa.Column("sentiment", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("queue", sa.String(100)),
        sa.Column("team", sa.String(100)),
        sa.Column("priority", sa.String(50), nullable=False),
        sa.Column("confidence_tier", sa.String(20), nullable=False),
        sa.Column("needs_human", sa.Boolean, nullable=False),
        sa.Column("crisis_id", sa.Integer, sa.ForeignKey("crisis_episodes.id")),
        sa.Column("sla_deadline", sa.DateTime),
        sa.Column("reply_channel", sa.String(20), nullable=False),
        sa.Column("out_of_hours", sa.Boolean, nullable=False),
        sa.Column("pii_kinds", sa.JSON, nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
    )
    op.create_index("ix_routed_posts_post_id", "routed_posts", ["post_id"])
    op.create_index("ix_routed_posts_received_at", "routed_posts", ["received_at"])


def downgrade() -> None:
    for table in ("routed_posts", "negative_signals", "feedback", "crisis_episodes"):
        op.drop_table(table)
