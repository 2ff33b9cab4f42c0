"""The shared code path of the Router and the batch command: validation, routing, storing,
feedback and logs, with predictions built by hand (no model)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from serving.pipeline import ModelIdentity, RequestRejected, RoutingPipeline
from serving.routing_config import CrisisConfig
from serving.rules import RoutingRules
from serving.schemas import FeedbackIn, PostIn
from serving.store import PredictionStore
from tests.routing_helpers import default_rules, predictions, rome

NOW = rome("2026-03-10 10:00")
IDENTITY = ModelIdentity(model_version="smista-classifier/3", taxonomy_version="1")


@pytest.fixture
def pipeline(tmp_path, taxonomy):
    rules = default_rules(taxonomy)
    # A small crisis window so that a few posts make a spike.
    crisis = CrisisConfig(**{**rules.config.crisis.model_dump(), "window_minutes": 10,
                             "start_rate_per_hour": 30, "end_rate_per_hour": 12})
    rules = RoutingRules.build(rules.config.model_copy(update={"crisis": crisis}), taxonomy)
    store = PredictionStore(f"sqlite:///{tmp_path / 'smista.db'}")
    ids = iter(f"auto-{n}" for n in range(1000))
    pipeline = RoutingPipeline(taxonomy, rules, store, max_posts_per_request=4, max_text_chars=500,
                               store_post_text=True, new_post_id=lambda: next(ids))
    yield pipeline
    store.close()


def by_id(posts, predicted) -> dict:
    """Predictions keyed by post id, as RoutingPipeline.route takes them."""
    return {post.id: prediction for post, prediction in zip(posts, predicted, strict=True)}


def post_in(**fields) -> PostIn:
    return PostIn.model_validate({"text": "La fibra non va da ieri", "channel": "twitter", **fields})


def rejected(call, *args) -> RequestRejected:
    with pytest.raises(RequestRejected) as error:
        call(*args)
    return error.value


def test_one_post_or_a_list(pipeline):
    [single] = pipeline.validate_for_routing(post_in(id="tw-1"))
    assert single.id == "tw-1"
    many = pipeline.validate_for_routing([post_in(), post_in(id="tw-9")])
    assert [post.id for post in many] == ["auto-0", "tw-9"]  # a missing id is assigned


def test_each_bad_post_is_named_by_position_and_field(pipeline):
    error = rejected(pipeline.validate_for_routing, [post_in(), post_in(channel="fax"), post_in(text="   ")])
    assert error.status == 400 and error.message == "invalid posts"
    assert error.detail[0]["loc"] == ["posts", 1]
    assert error.detail[0]["msg"].startswith("channel: unknown channel 'fax'; expected one of: twitter")
    assert error.detail[1] == {"loc": ["posts", 2], "msg": "text: text is empty or only whitespace or invisible characters"}


def test_routing_needs_a_channel_but_classifying_does_not(pipeline):
    error = rejected(pipeline.validate_for_routing, PostIn(text="ciao"))
    assert error.detail[0]["msg"].startswith("channel: required to route a post")
    [item] = pipeline.validate_for_classify(PostIn(text="ciao"))
    assert item.text == "ciao"
    assert "unknown channel" in rejected(pipeline.validate_for_classify, PostIn(text="ciao", channel="fax")).detail[0]["msg"]


def test_text_length_and_batch_limits(pipeline):
    long_text = "a" * 501
    for validate in (pipeline.validate_for_routing, pipeline.validate_for_classify):
        error = rejected(validate, post_in(text=long_text))
        assert "text is 501 characters, over the limit of 500" in error.detail[0]["msg"]
        too_many = rejected(validate, [post_in() for _ in range(5)])
        assert (too_many.status, too_many.message) == (413, "batch of 5 posts is over the limit of 4; split it")
        assert rejected(validate, []).message == "no posts: send one post or a non-empty list"


def test_timestamps_without_offset_are_refused(pipeline):
    error = rejected(pipeline.validate_for_routing, post_in(created_at="2026-03-10T10:00:00"))
    assert "has no timezone offset" in error.detail[0]["msg"]


def test_route_stores_every_post_with_its_prediction_and_reasons(pipeline, taxonomy):
    posts = pipeline.validate_for_routing([post_in(id="tw-1"), post_in(id="tw-2", text="Grazie, bravissimi!")])
    response = pipeline.route(posts, by_id(posts, [predictions(taxonomy, intent="assistenza_tecnica"),
                                                   predictions(taxonomy, intent="elogio", sentiment="positivo")]),
                              IDENTITY, NOW)
    assert (response.model_version, response.taxonomy_version, response.routing_version) == ("smista-classifier/3", "1", "1")
    assert [(r.id, r.route.queue) for r in response.results] == [("tw-1", "customer_care"), ("tw-2", "social_media")]
    assert response.results[0].predictions["intent"].labels == ["assistenza_tecnica"]
    [row] = pipeline.store.routed_posts("tw-1")
    assert (row.intent, row.queue, row.confidence_tier, row.text) == ("assistenza_tecnica", "customer_care", "auto",
                                                                     "La fibra non va da ieri")
    assert row.predictions["intent"]["probabilities"]["assistenza_tecnica"] == 0.95
    assert row.reasons[0]["rule"] == "intent_owner" and row.received_at == NOW


def test_post_text_is_not_stored_when_the_deployment_opts_out(pipeline, taxonomy):
    pipeline.store_post_text = False
    posts = pipeline.validate_for_routing(post_in(id="tw-1"))
    pipeline.route(posts, by_id(posts, [predictions(taxonomy)]), IDENTITY, NOW)
    assert pipeline.store.routed_posts("tw-1")[0].text is None


def test_logs_carry_ids_and_labels_never_the_text(pipeline, taxonomy, caplog):
    secret = "Mi chiamo Mario Rossi, cell 333 1234567"
    posts = pipeline.validate_for_routing(post_in(id="tw-7", text=secret))
    with caplog.at_level(logging.DEBUG, logger="smista"):
        pipeline.route(posts, by_id(posts, [predictions(taxonomy)]), IDENTITY, NOW)
    [record] = [r for r in caplog.records if r.name == "smista.serving"]
    event = json.loads(record.getMessage())
    assert event["event"] == "post_routed" and event["post_id"] == "tw-7" and event["pii_kinds"] == ["phone"]
    assert event["text_chars"] == len(secret)
    assert "Mario" not in caplog.text and "333" not in caplog.text


def test_a_spike_of_negative_posts_escalates_the_next_ones_to_management(pipeline, taxonomy):
    negative = predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo")
    routes = []
    for minute in range(6):
        posts = pipeline.validate_for_routing(post_in(id=f"out-{minute}", author={"handle": f"@cliente{minute}"}))
        routes.append(pipeline.route(posts, by_id(posts, [negative]), IDENTITY, NOW + timedelta(minutes=minute)).results[0].route)
    assert [route.crisis for route in routes] == [False, False, False, False, True, True]
    assert routes[-1].queue == "direzione" and routes[-1].priority == "urgente"
    report = pipeline.crisis.report(NOW + timedelta(minutes=6))
    [crisis] = report.active
    assert crisis.intent == "assistenza_tecnica" and crisis.flagged_posts == 2
    # Positive posts on the same intent are not part of it.
    posts = pipeline.validate_for_routing(post_in(id="happy"))
    happy = pipeline.route(posts, by_id(posts, [predictions(taxonomy, intent="assistenza_tecnica", sentiment="positivo")]),
                           IDENTITY, NOW + timedelta(minutes=6))
    assert not happy.results[0].route.crisis


def test_a_model_on_another_taxonomy_is_refused(pipeline, taxonomy):
    posts = pipeline.validate_for_routing(post_in())
    with pytest.raises(RuntimeError, match="taxonomy v2 but the service validates against v1"):
        pipeline.route(posts, by_id(posts, [predictions(taxonomy)]), ModelIdentity("m", "2"), NOW)


def route_one(pipeline, taxonomy, post_id="tw-1"):
    posts = pipeline.validate_for_routing(post_in(id=post_id))
    pipeline.route(posts, by_id(posts, [predictions(taxonomy)]), IDENTITY, NOW)


def test_feedback_is_recorded_for_a_routed_post(pipeline, taxonomy):
    route_one(pipeline, taxonomy)
    receipt = pipeline.record_feedback(FeedbackIn.model_validate({
        "post_id": "tw-1", "corrected_labels": {"intent": "fatturazione", "business_action": ["lamentela"]},
        "handled_by_team": "customer_care", "resolved": True,
        "first_response_at": "2026-03-10T10:20:00+01:00", "resolved_at": "2026-03-10T11:00:00+01:00",
    }), NOW + timedelta(hours=1))
    assert receipt.post_id == "tw-1" and receipt.feedback_id >= 1
    [row] = pipeline.store.feedback_for("tw-1")
    assert row.corrected_labels == {"intent": "fatturazione", "business_action": ["lamentela"]} and row.resolved


def test_feedback_carries_the_customers_satisfaction_when_asked(pipeline, taxonomy):
    route_one(pipeline, taxonomy)
    pipeline.record_feedback(FeedbackIn.model_validate({"post_id": "tw-1", "resolved": True, "satisfaction": 4,
                                                        "idempotency_key": "csat-1"}), NOW)
    [row] = pipeline.store.feedback_for("tw-1")
    assert row.satisfaction == 4
    # Without it, the content hash is the one feedback had before the field existed (a retry across an
    # upgrade is still a retry).
    from serving.pipeline import _sha256

    receipt = pipeline.record_feedback(FeedbackIn.model_validate({"post_id": "tw-1", "resolved": False}), NOW)
    stored = [row for row in pipeline.store.feedback_for("tw-1") if row.id == receipt.feedback_id][0]
    legacy = {"post_id": "tw-1", "corrected_labels": None, "handled_by_team": None, "resolved": False,
              "first_response_at": None, "resolved_at": None, "agent_id": None}
    assert stored.content_hash == _sha256(legacy) and stored.satisfaction is None


@pytest.mark.parametrize("value", [0, 6, "5", True, 4.5])
def test_a_satisfaction_outside_1_to_5_is_refused(value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="satisfaction"):
        FeedbackIn.model_validate({"post_id": "tw-1", "resolved": True, "satisfaction": value})


def test_feedback_for_an_unknown_post_is_404(pipeline):
    error = rejected(pipeline.record_feedback, FeedbackIn(post_id="mai-visto", resolved=False), NOW)
    assert error.status == 404 and "unknown post_id 'mai-visto'" in error.message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"corrected_labels": {"intent": "spam"}}, "labels.intent: unknown label id 'spam'"),
        ({"corrected_labels": {"umore": "buono"}}, "labels.umore: unknown field"),
        ({"handled_by_team": "marketing"}, "unknown team 'marketing'"),
        ({"resolved": False, "resolved_at": "2026-03-10T11:00:00+01:00"}, "given for a case that is not resolved"),
        ({"first_response_at": "2026-03-10T12:00:00+01:00", "resolved_at": "2026-03-10T11:00:00+01:00"},
         "is before first_response_at"),
    ],
)
def test_bad_feedback_is_refused_naming_the_field(pipeline, taxonomy, fields, expected):
    route_one(pipeline, taxonomy)
    feedback = FeedbackIn.model_validate({"post_id": "tw-1", "resolved": True, **fields})
    error = rejected(pipeline.record_feedback, feedback, NOW)
    assert error.status == 400 and expected in error.detail[0]["msg"]


def test_classifier_calls_batch_only_when_another_call_is_in_flight():
    from serving.service import ClassifierCalls

    paths: list[str] = []
    calls = ClassifierCalls(paths.append)
    with calls.call() as first:
        with calls.call() as second, calls.call() as third:
            assert calls.in_flight == 3
    assert (first, second, third) == (False, True, True)
    with calls.call() as alone:
        assert not alone  # the others ended: nothing to merge with
    assert paths == ["direct", "batching", "batching", "direct"] and calls.in_flight == 0
    with pytest.raises(RuntimeError), calls.call():
        raise RuntimeError("the Classifier call failed")
    assert calls.in_flight == 0  # a failed call is no longer in flight


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resolved_at": "9999-12-31T23:00:00-05:00"}, "resolved_at\n  Value error, timestamp 9999-12-31T23:00:00-05:00 is out of range"),
        ({"first_response_at": "0001-01-01T01:00:00+14:00"}, "first_response_at\n  Value error, timestamp 0001-01-01T01:00:00+14:00 is out"),
        ({"agent_id": "a" * 201}, "agent_id\n  String should have at most 200 characters"),
        ({"post_id": "p" * 201}, "post_id\n  String should have at most 200 characters"),
    ],
)
def test_feedback_values_at_the_edge_are_refused_naming_the_field(change, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as error:
        FeedbackIn.model_validate_json(json.dumps({"post_id": "p1", "resolved": True, **change}))
    assert message in str(error.value)


@pytest.mark.parametrize("field", ["id", "conversation_id", "customer_id"])
def test_post_strings_are_bounded_with_or_without_a_channel(field):
    from pydantic import ValidationError

    for body in ({"text": "ciao"}, {"text": "ciao", "channel": "twitter"}):
        with pytest.raises(ValidationError, match=f"{field}\n  String should have at most 200 characters"):
            PostIn.model_validate({**body, field: "x" * 201})


# Idempotency (docs/SECURITY.md): one post id, one stored post; a retry gets the stored result.

def route_all(pipeline, posts, predicted, now=NOW):
    """What the Router does: predict only what posts_to_predict asks for, then route."""
    new = pipeline.posts_to_predict(posts)
    chosen = {post.id: prediction for post, prediction in zip(posts, predicted)}
    return pipeline.route(posts, {post.id: chosen[post.id] for post in new}, IDENTITY if new else None, now)


def test_a_retried_route_returns_the_stored_result_and_stores_nothing(pipeline, taxonomy):
    posts = pipeline.validate_for_routing([post_in(id="tw-1", author={"handle": "@anna"})])
    first = route_all(pipeline, posts, [predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo")])
    assert not first.results[0].replayed
    # The retry arrives later, and the model would now say something else: the stored result wins.
    assert pipeline.posts_to_predict(posts) == []
    again = route_all(pipeline, posts, [predictions(taxonomy, intent="elogio")], NOW + timedelta(minutes=5))
    assert again.results[0].replayed
    assert (again.results[0].model_dump(mode="json", exclude={"replayed"})
            == first.results[0].model_dump(mode="json", exclude={"replayed"}))
    assert (again.model_version, again.routing_version) == (first.model_version, first.routing_version)
    assert len(pipeline.store.routed_posts("tw-1")) == 1
    with pipeline.store.session() as session:
        assert pipeline.store.count_signals(session, "assistenza_tecnica", NOW - timedelta(hours=1),
                                            NOW + timedelta(hours=1)).posts == 1


def test_an_out_of_hours_reply_is_part_of_the_stored_result(pipeline, taxonomy):
    sunday_night = rome("2026-03-15 23:30")
    posts = pipeline.validate_for_routing(post_in(id="late"))
    first = route_all(pipeline, posts, [predictions(taxonomy, intent="assistenza_tecnica")], sunday_night)
    assert first.results[0].route.auto_reply
    again = route_all(pipeline, posts, [predictions(taxonomy)], sunday_night + timedelta(hours=12))
    assert again.results[0].route.auto_reply == first.results[0].route.auto_reply


def test_a_used_id_with_other_content_is_a_409_and_nothing_is_stored(pipeline, taxonomy):
    route_one(pipeline, taxonomy, "tw-1")
    posts = pipeline.validate_for_routing([post_in(id="tw-9"), post_in(id="tw-1", text="Tutt'altro testo")])
    error = rejected(pipeline.posts_to_predict, posts)
    assert error.status == 409 and error.detail[0]["loc"] == ["posts", 1]
    assert "'tw-1' was routed at" in error.detail[0]["msg"] and "new id" in error.detail[0]["msg"]
    # route re-checks inside its transaction (a conflict may appear after posts_to_predict)
    error = rejected(pipeline.route, posts, {"tw-9": predictions(taxonomy)}, IDENTITY, NOW)
    assert error.status == 409
    assert pipeline.store.routed_posts("tw-9") == [] and len(pipeline.store.routed_posts("tw-1")) == 1


def test_the_same_post_twice_in_a_request_is_routed_once(pipeline, taxonomy):
    posts = pipeline.validate_for_routing([post_in(id="tw-1"), post_in(id="tw-2"), post_in(id="tw-1")])
    assert [post.id for post in pipeline.posts_to_predict(posts)] == ["tw-1", "tw-2"]
    response = route_all(pipeline, posts, [predictions(taxonomy)] * 3)
    assert [(r.id, r.replayed) for r in response.results] == [("tw-1", False), ("tw-2", False), ("tw-1", True)]
    assert response.results[2].route == response.results[0].route
    assert len(pipeline.store.routed_posts("tw-1")) == 1


def test_two_posts_with_one_id_and_different_content_are_a_400(pipeline):
    error = rejected(pipeline.validate_for_routing, [post_in(id="tw-1"), post_in(id="tw-1", text="Altro")])
    assert error.status == 400 and error.detail[0]["loc"] == ["posts", 1]
    assert "also the id of posts[0]" in error.detail[0]["msg"]


def feedback(**fields) -> FeedbackIn:
    return FeedbackIn.model_validate({"post_id": "tw-1", "resolved": False, "agent_id": "agent-4", **fields})


def test_identical_feedback_is_stored_once(pipeline, taxonomy):
    route_one(pipeline, taxonomy)
    first = pipeline.record_feedback(feedback(), NOW)
    again = pipeline.record_feedback(feedback(), NOW + timedelta(minutes=1))
    assert again.replayed and not first.replayed and again.feedback_id == first.feedback_id
    # New content from the same agent is new feedback; going back to the first state is too.
    solved = pipeline.record_feedback(feedback(resolved=True), NOW + timedelta(minutes=2))
    reopened = pipeline.record_feedback(feedback(), NOW + timedelta(minutes=3))
    assert len({first.feedback_id, solved.feedback_id, reopened.feedback_id}) == 3
    assert len(pipeline.store.feedback_for("tw-1")) == 3


def test_an_idempotency_key_makes_a_retry_safe_and_refuses_reuse(pipeline, taxonomy):
    route_one(pipeline, taxonomy)
    first = pipeline.record_feedback(feedback(idempotency_key="crm-ticket-1"), NOW)
    again = pipeline.record_feedback(feedback(idempotency_key="crm-ticket-1"), NOW + timedelta(minutes=1))
    assert again.replayed and again.feedback_id == first.feedback_id
    error = rejected(pipeline.record_feedback, feedback(idempotency_key="crm-ticket-1", resolved=True), NOW)
    assert error.status == 409 and "idempotency_key was used" in error.message
    assert len(pipeline.store.feedback_for("tw-1")) == 1


def test_a_full_disk_fails_the_write_whole_and_names_the_cause(tmp_path, taxonomy):
    from sqlalchemy import event

    from serving.store import StoreUnavailable

    store = PredictionStore(f"sqlite:///{tmp_path / 'full.db'}")
    full = RoutingPipeline(taxonomy, default_rules(taxonomy), store, max_posts_per_request=8, max_text_chars=5000,
                           store_post_text=True)
    route_posts = full.validate_for_routing([post_in(id="ok")])
    full.route(route_posts, by_id(route_posts, [predictions(taxonomy)]), IDENTITY, NOW)
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def _no_room_to_grow(connection, _record):
        # SQLite's own limit: once the file has this many pages, a write that needs more fails
        # with SQLITE_FULL, "database or disk is full", as on a full disk.
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")

    posts = full.validate_for_routing([post_in(id=f"big-{n}", text="a lungo " * 600) for n in range(6)])
    with pytest.raises(StoreUnavailable, match="database or disk is full"):
        full.route(posts, by_id(posts, [predictions(taxonomy, sentiment="negativo")] * 6), IDENTITY, NOW)
    # The whole batch was rolled back: no post, no crisis signal, the earlier post intact.
    assert all(store.routed_posts(f"big-{n}") == [] for n in range(6)) and len(store.routed_posts("ok")) == 1
    with store.session() as session:
        assert store.count_signals(session, "informazioni", NOW - timedelta(hours=1), NOW + timedelta(hours=1)).posts == 0
    store.close()
