"""Contact history in routing (routing.yaml, contact_history): the author's earlier posts from the
store, a repeat contact on an open problem within the window raising the priority, resolved
problems and anonymous posts left alone, the history returned and replayed, the config checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from serving.pipeline import ModelIdentity, RoutingPipeline
from serving.routing_config import DEFAULT_ROUTING_PATH, RoutingConfigError, load_routing_config
from serving.rules import RoutingRules
from serving.schemas import FeedbackIn, PostIn
from serving.store import PredictionStore
from tests.routing_helpers import default_rules, predictions, rome

IDENTITY = ModelIdentity(model_version="smista-classifier/3", taxonomy_version="1")
MONDAY = rome("2026-03-09 10:00")


@pytest.fixture
def pipeline(tmp_path, taxonomy):
    store = PredictionStore(f"sqlite:///{tmp_path / 'smista.db'}")
    yield RoutingPipeline(taxonomy, default_rules(taxonomy), store, max_posts_per_request=8, max_text_chars=500,
                          store_post_text=False)
    store.close()


def route(pipeline, taxonomy, post_id, at, intent="assistenza_tecnica", priority="normale", **fields):
    raw = {"id": post_id, "text": "La fibra non va ancora", "channel": "twitter",
           "author": {"handle": "@lucia_t"}, **fields}
    [post] = pipeline.validate_for_routing(PostIn.model_validate(raw))
    response = pipeline.route([post], {post.id: predictions(taxonomy, intent=intent, priority=priority)}, IDENTITY, at)
    return response.results[0]


def resolve(pipeline, post_id, at):
    pipeline.record_feedback(FeedbackIn.model_validate({"post_id": post_id, "resolved": True}), at)


def rules_of(result) -> list[str]:
    return [reason.rule for reason in result.route.reasons]


def test_a_first_contact_has_an_empty_history_and_no_escalation(pipeline, taxonomy):
    first = route(pipeline, taxonomy, "tw-1", MONDAY)
    assert first.history.contacts == 0 and first.history.open_problems == 0
    assert first.history.last_intent is None and "repeat_contact" not in rules_of(first)
    assert first.route.priority == "normale"


def test_a_repeat_contact_on_an_open_problem_within_the_window_is_raised(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY, intent="fatturazione")
    again = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=30), intent="reclamo")
    assert again.history.contacts == 1 and again.history.open_problems == 1
    assert again.history.last_intent == "fatturazione" and again.history.open_problem_post_id == "tw-1"
    assert again.route.priority == "alta"  # normale, one step up
    [reason] = [reason for reason in again.route.reasons if reason.rule == "repeat_contact"]
    assert "normale -> alta" in reason.effect and "tw-1" in reason.effect and "72 h" in reason.effect


def test_a_repeat_contact_outside_the_window_is_not_raised_but_counted(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY)
    later = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=73))
    assert later.history.contacts == 1 and later.history.open_problems == 1
    assert later.route.priority == "normale" and "repeat_contact" not in rules_of(later)
    # Past the lookback (90 days) the earlier post is not in the history at all.
    much_later = route(pipeline, taxonomy, "tw-3", MONDAY + timedelta(days=91))
    assert much_later.history.contacts == 1 and much_later.history.last_contact_at == MONDAY + timedelta(hours=73)


def test_a_resolved_problem_is_not_open(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY)
    resolve(pipeline, "tw-1", MONDAY + timedelta(hours=2))
    again = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=5))
    assert again.history.contacts == 1 and again.history.open_problems == 0
    assert again.route.priority == "normale" and "repeat_contact" not in rules_of(again)


def test_praise_opens_no_problem_and_other_authors_do_not_count(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY, intent="elogio")
    route(pipeline, taxonomy, "tw-2", MONDAY, author={"handle": "@altro"})
    again = route(pipeline, taxonomy, "tw-3", MONDAY + timedelta(hours=1))
    assert again.history.contacts == 1 and again.history.last_intent == "elogio" and again.history.open_problems == 0
    assert again.route.priority == "normale"


def test_the_customer_id_is_the_author_across_channels(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY, customer_id="CRM-77")
    on_facebook = route(pipeline, taxonomy, "fb-1", MONDAY + timedelta(hours=1), channel="facebook",
                        author={"handle": "@someone_else"}, customer_id="CRM-77")
    assert on_facebook.history.contacts == 1 and on_facebook.route.priority == "alta"


def test_a_handle_is_an_author_on_its_own_channel_only(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY)  # @lucia_t on twitter, no customer id
    same_channel = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=1))
    elsewhere = route(pipeline, taxonomy, "ig-1", MONDAY + timedelta(hours=1), channel="instagram")
    assert same_channel.history.contacts == 1 and elsewhere.history.contacts == 0


def test_an_anonymous_post_has_no_history(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY, author={})
    anonymous = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=1), author={})
    assert anonymous.history is None and anonymous.route.priority == "normale"


def test_the_raise_stops_at_the_cap_and_never_lowers(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY)
    urgent = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=1), priority="urgente")
    assert urgent.route.priority == "urgente"
    [reason] = [reason for reason in urgent.route.reasons if reason.rule == "repeat_contact"]
    assert "stays urgente" in reason.effect


def test_posts_of_one_request_see_each_other_and_a_replay_returns_the_same_history(pipeline, taxonomy):
    raw = [{"id": f"tw-{n}", "text": "Ancora niente linea", "channel": "twitter", "author": {"handle": "@lucia_t"}}
           for n in (1, 2)]
    posts = pipeline.validate_for_routing([PostIn.model_validate(item) for item in raw])
    predicted = {post.id: predictions(taxonomy, intent="assistenza_tecnica") for post in posts}
    first, second = pipeline.route(posts, predicted, IDENTITY, MONDAY).results
    # Two posts sent together are one contact: counted, not a repeat (min_gap_minutes).
    assert first.history.contacts == 0 and second.history.contacts == 1 and second.history.open_problems == 1
    assert second.route.priority == "normale" and "repeat_contact" not in rules_of(second)
    later = route(pipeline, taxonomy, "tw-3", MONDAY + timedelta(minutes=30))
    assert later.route.priority == "alta" and later.history.open_problem_post_id == "tw-2"
    replay = pipeline.route(posts + [later_post(pipeline)], {}, IDENTITY, MONDAY + timedelta(hours=1)).results
    assert [result.replayed for result in replay] == [True, True, True]
    assert replay[1].history == second.history and replay[2].history == later.history
    assert replay[2].route == later.route  # the same priority, reasons and suggested reply as first returned


def later_post(pipeline):
    [post] = pipeline.validate_for_routing(PostIn.model_validate(
        {"id": "tw-3", "text": "La fibra non va ancora", "channel": "twitter", "author": {"handle": "@lucia_t"}}))
    return post


def test_the_window_includes_its_last_hour(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY)
    at_the_edge = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=72))
    assert at_the_edge.route.priority == "alta"


def test_the_agents_feedback_decides_what_is_open(pipeline, taxonomy):
    # A post the model read as praise, corrected by an agent to a complaint: a problem, open.
    route(pipeline, taxonomy, "tw-1", MONDAY, intent="elogio")
    pipeline.record_feedback(FeedbackIn.model_validate(
        {"post_id": "tw-1", "resolved": False, "corrected_labels": {"intent": "reclamo"}}), MONDAY)
    again = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=2))
    assert again.history.open_problems == 1 and again.history.open_problem_intent == "reclamo"
    assert again.route.priority == "alta"
    # Resolved, then reopened by later feedback: the latest word counts.
    resolve(pipeline, "tw-2", MONDAY + timedelta(hours=3))
    pipeline.record_feedback(FeedbackIn.model_validate({"post_id": "tw-2", "resolved": False}), MONDAY + timedelta(hours=4))
    reopened = route(pipeline, taxonomy, "tw-3", MONDAY + timedelta(hours=5))
    assert reopened.history.open_problems == 2 and reopened.route.priority == "alta"


def test_a_resolved_case_closes_what_the_author_raised_before_it(pipeline, taxonomy):
    route(pipeline, taxonomy, "tw-1", MONDAY, intent="fatturazione")
    route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=1), intent="reclamo")
    resolve(pipeline, "tw-2", MONDAY + timedelta(hours=2))  # the agent closes the latest post of the case
    after = route(pipeline, taxonomy, "tw-3", MONDAY + timedelta(hours=3))
    assert after.history.contacts == 2 and after.history.open_problems == 0
    assert after.route.priority == "normale"


def test_switched_off_there_is_no_history(tmp_path, taxonomy):
    rules = default_rules(taxonomy)
    rules = RoutingRules.build(rules.config.model_copy(update={"contact_history": None}), taxonomy)
    store = PredictionStore(f"sqlite:///{tmp_path / 'smista.db'}")
    pipeline = RoutingPipeline(taxonomy, rules, store, max_posts_per_request=8, max_text_chars=500, store_post_text=False)
    route(pipeline, taxonomy, "tw-1", MONDAY)
    again = route(pipeline, taxonomy, "tw-2", MONDAY + timedelta(hours=1))
    assert again.history is None and again.route.priority == "normale"
    store.close()


@pytest.mark.parametrize("change, expected", [
    ({"problem_intents": ["guasto"]}, "contact_history.problem_intents: unknown intent label 'guasto'"),
    ({"max_priority": "altissima"}, "contact_history.max_priority: unknown priority label 'altissima'"),
    ({"repeat_window_hours": 24 * 91}, "longer than lookback_days"),
    ({"raise_levels": 0}, "raise_levels"),
    ({"min_gap_minutes": 72 * 60}, "min_gap_minutes .* shorter than the repeat window"),
])
def test_a_bad_contact_history_config_is_refused_naming_the_field(tmp_path, taxonomy, change, expected):
    config = yaml.safe_load(DEFAULT_ROUTING_PATH.read_text(encoding="utf-8"))
    config["contact_history"].update(change)
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RoutingConfigError, match=expected):
        load_routing_config(path, taxonomy)
