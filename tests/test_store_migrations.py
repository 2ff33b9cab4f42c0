"""Schema migrations of the prediction store (serving/migrate.py): a store made by the release
before migrations, with rows in it (tests/fixtures/store_before_migrations.sql, written by that
release's own code with scripts/make_store_fixture.py), is upgraded in place when a new release
opens it, keeps every row, and then works like a new store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from serving.migrate import alembic_config, current_revision, head_revision
from serving.pipeline import ModelIdentity, RoutingPipeline
from serving.schemas import FeedbackIn, PostIn
from serving.store import Base, PredictionStore
from tests.routing_helpers import default_rules, predictions, rome

FIXTURE = Path(__file__).parent / "fixtures" / "store_before_migrations.sql"
TABLES = ("routed_posts", "feedback", "negative_signals", "crisis_episodes")


def rows(path: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(path)
    try:
        return {table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall() for table in TABLES}
    finally:
        connection.close()


@pytest.fixture
def old_store(tmp_path) -> Path:
    path = tmp_path / "smista.db"
    connection = sqlite3.connect(path)
    connection.executescript(FIXTURE.read_text(encoding="utf-8"))
    connection.close()
    return path


def test_a_store_from_before_migrations_is_upgraded_keeping_every_row(old_store):
    before = rows(old_store)
    assert len(before["routed_posts"]) == 10 and len(before["feedback"]) == 3
    store = PredictionStore(f"sqlite:///{old_store}")
    assert store.schema_revisions == ("0001", head_revision())
    with store.engine.connect() as connection:
        # The migrated schema is exactly what the code declares.
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    store.close()
    after = rows(old_store)
    for table in TABLES:
        assert len(after[table]) == len(before[table])
        # Old columns keep their values; new columns come after them.
        assert [row[:len(before[table][0])] for row in after[table]] == before[table]
    # The post that release stored twice: the later row is kept, marked as a duplicate of the first.
    connection = sqlite3.connect(old_store)
    tw1 = connection.execute(
        "SELECT id, duplicate_of, author_key, contact_history FROM routed_posts WHERE post_id = 'tw-1' ORDER BY id").fetchall()
    connection.close()
    assert [row[:2] for row in tw1] == [(1, None), (4, 1)]
    # Rows from before 0004 have no author key: nobody's history.
    assert [row[2:] for row in tw1] == [(None, None), (None, None)]


def test_an_upgraded_store_serves_like_a_new_one(old_store, taxonomy):
    store = PredictionStore(f"sqlite:///{old_store}")
    pipeline = RoutingPipeline(taxonomy, default_rules(taxonomy), store, max_posts_per_request=10,
                               max_text_chars=500, store_post_text=True)
    identity = ModelIdentity("smista-classifier/2", taxonomy.version)
    now = rome("2026-03-11 10:00")
    old = pipeline.validate_for_routing(PostIn.model_validate(
        {"id": "tw-1", "text": "La fibra non va da ieri", "channel": "twitter", "author": {"handle": "@anna"}}))
    # An id routed by the old release is taken: a retry gets its first stored routing.
    assert pipeline.posts_to_predict(old) == []
    replay = pipeline.route(old, {}, None, now)
    assert replay.results[0].replayed and replay.model_version == "smista-classifier/1"
    assert replay.results[0].route.queue == "customer_care"
    new = pipeline.validate_for_routing(PostIn.model_validate({"id": "tw-new", "text": "Ciao", "channel": "twitter"}))
    routed = pipeline.route(new, {"tw-new": predictions(taxonomy)}, identity, now)
    assert not routed.results[0].replayed and len(store.routed_posts("tw-new")) == 1
    receipt = pipeline.record_feedback(FeedbackIn(post_id="tw-2", resolved=True), now)
    assert receipt.feedback_id == 4 and not receipt.replayed
    store.close()


def test_opening_an_up_to_date_store_changes_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = PredictionStore(url)
    assert first.schema_revisions == (None, head_revision())
    with first.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    first.close()
    second = PredictionStore(url)
    assert second.schema_revisions == (head_revision(), head_revision())
    second.close()


def test_the_migration_can_be_rolled_back(old_store):
    PredictionStore(f"sqlite:///{old_store}").close()
    store = PredictionStore(f"sqlite:///{old_store}")
    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert current_revision(store.engine) == "0001"
    columns = {row[1] for row in sqlite3.connect(old_store).execute("PRAGMA table_info(routed_posts)")}
    assert "content_hash" not in columns and "author_key" not in columns and len(rows(old_store)["routed_posts"]) == 10
    feedback_columns = {row[1] for row in sqlite3.connect(old_store).execute("PRAGMA table_info(feedback)")}
    assert "satisfaction" not in feedback_columns and len(rows(old_store)["feedback"]) == 3
    store.close()
