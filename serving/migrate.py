"""Schema migrations of the prediction store, with Alembic (serving/migrations/versions/).

`PredictionStore` upgrades its database to the latest revision when it opens it, in one
transaction, so a SQLite file made by an older release is brought up to date the first time a new
release serves from it. A store made before migrations existed (tables, no alembic_version) is
first stamped with the baseline revision, which is exactly what those releases created. On
PostgreSQL, run `smista store upgrade --database-url postgresql://...` before deploying a new
release (docs/SECURITY.md, "Schema migrations").
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
BEFORE_MIGRATIONS = "0001"  # the schema of every release before migrations


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Bring the database to the head revision; returns (revision before, revision after)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None and inspect(connection).has_table("routed_posts"):
            command.stamp(config, BEFORE_MIGRATIONS)
            before = BEFORE_MIGRATIONS
        if before != head_revision():
            command.upgrade(config, "head")
    return before, head_revision()
