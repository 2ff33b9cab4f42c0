"""Alembic environment of the prediction store: migrations run on the connection that
serving.migrate hands over (config.attributes["connection"]), inside its transaction."""

from alembic import context

from serving.store import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters tables by copying them; Alembic's batch mode does that for it.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
