"""Write tests/fixtures/store_<name>.sql: a prediction store as a given release of smista leaves it,
with rows in it, for the migration test (tests/test_store_migrations.py).

Run it with the *old* release's code first on the path, e.g. for the release before migrations:

    git worktree add /tmp/prev 4ed73aa
    PYTHONPATH=/tmp/prev .venv/bin/python scripts/make_store_fixture.py --name before_migrations

The store holds what that release could store: routed posts (one post id routed twice, which
that release allowed), feedback with and without corrections, crisis signals and an episode.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from data.taxonomy import load_taxonomy
from serving.pipeline import ModelIdentity, RoutingPipeline
from serving.routing_config import CrisisConfig
from serving.rules import RoutingRules
from serving.schemas import FeedbackIn, PostIn
from serving.store import PredictionStore
from tests.routing_helpers import default_rules, predictions, rome

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def fill(store: PredictionStore) -> None:
    taxonomy = load_taxonomy()
    rules = default_rules(taxonomy)
    crisis = CrisisConfig(**{**rules.config.crisis.model_dump(), "window_minutes": 10,
                             "start_rate_per_hour": 30, "end_rate_per_hour": 12})
    rules = RoutingRules.build(rules.config.model_copy(update={"crisis": crisis}), taxonomy)
    pipeline = RoutingPipeline(taxonomy, rules, store, max_posts_per_request=10, max_text_chars=500,
                               store_post_text=True)
    identity = ModelIdentity(model_version="smista-classifier/1", taxonomy_version=taxonomy.version)
    now = rome("2026-03-10 10:00")

    def post(post_id: str, text: str, **fields) -> PostIn:
        return PostIn.model_validate({"id": post_id, "text": text, "channel": "twitter", **fields})

    first = [post("tw-1", "La fibra non va da ieri", author={"handle": "@anna"}),
             post("tw-2", "Grazie, bravissimi!", customer_id="crm-7"),
             post("fb-3", "Bolletta doppia questo mese", channel="facebook", conversation_id="thread-9")]
    pipeline.route(pipeline.validate_for_routing(first),
                   [predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo"),
                    predictions(taxonomy, intent="elogio", sentiment="positivo"),
                    predictions(taxonomy, intent="fatturazione", sentiment="negativo")], identity, now)
    # The same id again, as a client's retry did before routing was idempotent: a second row.
    pipeline.route(pipeline.validate_for_routing([post("tw-1", "La fibra non va da ieri", author={"handle": "@anna"})]),
                   [predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo", confidence=0.6)],
                   identity, now + timedelta(minutes=1))
    # A spike of negative posts on one intent: a crisis episode.
    spike = [post(f"tw-s{n}", "Ancora senza linea", author={"handle": f"@user{n}"}) for n in range(6)]
    pipeline.route(pipeline.validate_for_routing(spike),
                   [predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo")] * len(spike),
                   identity, now + timedelta(minutes=2))
    pipeline.record_feedback(FeedbackIn.model_validate({
        "post_id": "tw-1", "corrected_labels": {"intent": "fatturazione"}, "handled_by_team": "customer_care",
        "resolved": True, "first_response_at": "2026-03-10T10:20:00+01:00",
        "resolved_at": "2026-03-10T11:00:00+01:00", "agent_id": "agent-4",
    }), now + timedelta(hours=1))
    # Identical feedback twice, as that release stored it: two rows.
    for _ in range(2):
        pipeline.record_feedback(FeedbackIn.model_validate({"post_id": "tw-2", "resolved": False}),
                                 now + timedelta(hours=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="fixture name: tests/fixtures/store_<name>.sql")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "smista.db"
        store = PredictionStore(f"sqlite:///{database}")
        fill(store)
        store.close()
        connection = sqlite3.connect(database)
        dump = "\n".join(connection.iterdump()) + "\n"
        connection.close()
    target = FIXTURES / f"store_{args.name}.sql"
    target.write_text(dump, encoding="utf-8")
    print(f"wrote {target} ({dump.count('INSERT INTO')} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
