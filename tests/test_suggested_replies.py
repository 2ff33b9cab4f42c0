"""Suggested replies (routing.yaml, suggested_replies): every intent's template renders with the
team, hours, deadline and greeting filled in, the tone follows the sentiment, the private-channel
invitation appears only when a public post is moved to private, a logged-only post gets none, and
a bad template is refused naming it."""

from __future__ import annotations

import string

import pytest
import yaml

from data.taxonomy import load_taxonomy
from serving.routing_config import DEFAULT_ROUTING_PATH, RoutingConfigError, load_routing_config
from serving.rules import route_post
from serving.schemas import CrisisView
from serving.service_hours import format_italian_moment
from tests.routing_helpers import default_rules, post, predictions, rome

TUESDAY_10 = rome("2026-03-10 10:00")
INTENTS = load_taxonomy().label_ids("intent")


@pytest.fixture(scope="module")
def rules(taxonomy):
    return default_rules(taxonomy)


def decide(rules, taxonomy, validator, intent, sentiment="neutro", text="Una domanda, per favore", **fields):
    return route_post(post(validator, text=text, **fields), predictions(taxonomy, intent=intent, sentiment=sentiment),
                      rules, TUESDAY_10)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_intent_of_the_taxonomy_has_an_entry(rules, taxonomy):
    assert set(rules.config.suggested_replies.intents) == set(taxonomy.label_ids("intent"))


@pytest.mark.parametrize("intent", INTENTS)
def test_each_intent_renders_its_template_filled_in(rules, taxonomy, validator, intent):
    replies = rules.config.suggested_replies
    decision = decide(rules, taxonomy, validator, intent)
    template = replies.intents[intent]
    if template is None or decision.queue is None:
        assert decision.suggested_reply is None
        return
    text = decision.suggested_reply
    assert text and "{" not in text and "}" not in text and "  " not in text, (intent, text)
    used = placeholders(template["default"])
    if "greeting" in used:
        assert text.startswith(f"{replies.greeting},"), text
    assert "@utente" not in text  # the handle is never in a reply (it is stored with the route)
    hours = rules.team_hours[decision.queue]
    if "deadline" in used:
        assert format_italian_moment(decision.sla_deadline, TUESDAY_10) in text, (intent, text)
    if "team" in used:
        assert hours.display_name in text, (intent, text)
    if "hours" in used:
        assert hours.describe() in text, (intent, text)
    # The template's own words are there, in order, around the placeholders.
    literal = [part for part, *_ in string.Formatter().parse(template["default"]) if part.strip(" .,")]
    position = 0
    for part in literal:
        found = text.find(part.strip(), position)
        assert found >= 0, (intent, part, text)
        position = found


def test_the_tone_follows_the_sentiment_where_a_template_says_so(rules, taxonomy, validator):
    replies = rules.config.suggested_replies
    with_tone = {intent: templates for intent, templates in replies.intents.items()
                 if templates and set(templates) - {"default"}}
    assert with_tone, "the shipped replies change tone for some intent"
    for intent, templates in with_tone.items():
        for sentiment in set(templates) - {"default"}:
            decision = decide(rules, taxonomy, validator, intent, sentiment=sentiment)
            opening = next(part for part, *_ in string.Formatter().parse(templates[sentiment]) if part.strip(" ,"))
            assert opening.strip(" ,") in decision.suggested_reply, (intent, sentiment)
            neutral = decide(rules, taxonomy, validator, intent, sentiment="neutro")
            assert neutral.suggested_reply != decision.suggested_reply


def test_the_private_invitation_only_when_a_public_post_goes_private(rules, taxonomy, validator):
    invitation = rules.config.suggested_replies.private_invitation
    with_phone = decide(rules, taxonomy, validator, "assistenza_tecnica", text="Non va nulla, chiamatemi al 333 123 4567")
    assert with_phone.reply_channel == "private" and with_phone.suggested_reply.endswith(invitation)
    public = decide(rules, taxonomy, validator, "assistenza_tecnica")
    assert public.reply_channel == "public" and invitation not in public.suggested_reply
    # Already private (an e-mail): no invitation, and the channel's own greeting.
    email = decide(rules, taxonomy, validator, "assistenza_tecnica", channel="email", text="Non va nulla, 333 123 4567")
    assert email.reply_channel == "private" and invitation not in email.suggested_reply
    assert email.suggested_reply.startswith("Buongiorno,")


def test_personal_data_in_a_template_without_the_invitation_still_get_it(rules, taxonomy, validator):
    invitation = rules.config.suggested_replies.private_invitation
    assert "{private_invitation}" not in rules.config.suggested_replies.intents["elogio"]["default"]
    decision = decide(rules, taxonomy, validator, "elogio", text="Bravissimi! Il mio numero è 333 123 4567")
    assert decision.reply_channel == "private" and decision.suggested_reply.endswith(invitation)


def test_no_reply_when_a_person_must_decide_or_in_a_crisis(rules, taxonomy, validator):
    unsure = route_post(post(validator), predictions(taxonomy, intent="assistenza_tecnica", confidence=0.2),
                        rules, TUESDAY_10)
    assert unsure.confidence_tier == "human_triage" and unsure.suggested_reply is None
    crisis = CrisisView(id=1, intent="assistenza_tecnica", status="active", started_at=TUESDAY_10, ended_at=None,
                        window_count=30, window_posts=30, window_conversations=0, window_rate_per_hour=60.0,
                        baseline_per_hour=1.0, peak_window_count=30, flagged_posts=3)
    in_crisis = route_post(post(validator), predictions(taxonomy, intent="assistenza_tecnica", sentiment="negativo"),
                           rules, TUESDAY_10, {"assistenza_tecnica": crisis})
    assert in_crisis.crisis and in_crisis.suggested_reply is None


def test_the_hours_and_deadline_are_those_of_the_queue_that_answers(rules, taxonomy, validator):
    # A job application routed to HR: the reply quotes HR's own hours and deadline.
    decision = decide(rules, taxonomy, validator, "lavoro")
    hours = rules.team_hours[decision.queue]
    assert decision.queue == "risorse_umane"
    assert hours.describe() in decision.suggested_reply
    assert format_italian_moment(decision.sla_deadline, TUESDAY_10) in decision.suggested_reply


def test_a_logged_only_post_gets_no_reply(rules, taxonomy, validator):
    decision = decide(rules, taxonomy, validator, "fuori_tema")
    assert decision.action == "log_only" and decision.suggested_reply is None


@pytest.mark.parametrize("change, expected", [
    ({"intents": {"reclamo": {"default": "{greeting}, {cliente}"}}}, "unknown placeholder.*cliente"),
    ({"intents": {"reclamo": {"negativo": "{greeting}, scusa"}}}, "reclamo: no `default` template"),
    ({"intents": {"reclamo": {"default": "{greeting", }}}, "literal braces"),
    ({"intents": {"reclamo": {"default": "x", "arrabbiato": "y"}}},
     "suggested_replies.intents.reclamo: unknown sentiment label 'arrabbiato'"),
    ({"greeting_by_channel": {"fax": "Spett.le"}}, "suggested_replies.greeting_by_channel: unknown channel 'fax'"),
    ({"greeting": "Ciao {handle}"}, "unknown placeholder.*handle"),
    ({"drop_intent": "lavoro"}, r"no entry for intent\(s\) \['lavoro'\]"),
])
def test_a_bad_reply_config_is_refused_naming_it(tmp_path, taxonomy, change, expected):
    config = yaml.safe_load(DEFAULT_ROUTING_PATH.read_text(encoding="utf-8"))
    replies = config["suggested_replies"]
    if "drop_intent" in change:
        del replies["intents"][change["drop_intent"]]
    for key, value in change.items():
        if key == "intents":
            replies["intents"].update(value)
        elif key != "drop_intent":
            replies[key] = value
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RoutingConfigError, match=expected):
        load_routing_config(path, taxonomy)
