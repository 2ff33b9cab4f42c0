"""Drift references: per model version, what its decisions looked like on its own test split.

- model_references: `model_version` (key), `recorded_at`, `reference` (JSON, training.label_profile),
  written by the first router or batch job that routes with the version; the drift gauge and
  `smista report` compare recent traffic with it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_references",
        sa.Column("model_version", sa.String(200), primary_key=True),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
        sa.Column("reference", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_references")
