"""The rules engine with the shipped configs/routing.yaml: no server, no database, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from serving.rules import negative_intent, route_post
from serving.schemas import CrisisView
from tests.routing_helpers import default_rules, post, predictions, reason, rome, rules_named

TUESDAY_10 = rome("2026-03-10 10:00")


@pytest.fixture(scope="module")
def rules(taxonomy):
    return default_rules(taxonomy)


@pytest.fixture
def decide(rules, validator, taxonomy):
    """decide(now=..., crises=..., post={...fields}, text=..., **labels) -> RouteDecision"""

    def _decide(now: datetime = TUESDAY_10, crises=None, text: str | None = None, post_fields=None, **labels):
        fields = dict(post_fields or {})
        if text is not None:
            fields["text"] = text
        return route_post(post(validator, **fields), predictions(taxonomy, **labels), rules, now, crises)

    return _decide


@pytest.mark.parametrize(
    ("intent", "team"),
    [
        ("informazioni", "customer_care"),
        ("assistenza_tecnica", "customer_care"),
        ("fatturazione", "customer_care"),
        ("gestione_contratto", "customer_care"),
        ("reclamo", "customer_care"),
        ("acquisto", "commerciale"),
        ("elogio", "social_media"),
        ("suggerimento", "social_media"),
        ("lavoro", "risorse_umane"),
        ("stampa_istituzionale", "relazioni_esterne"),
    ],
)
def test_intent_goes_to_its_owner_team(decide, intent, team):
    decision = decide(intent=intent, customer_type="non_cliente")
    assert (decision.action, decision.queue, decision.team) == ("queue", team, team)
    owner = reason(decision, "intent_owner")
    assert owner.labels == {"intent": intent} and owner.confidences == {"intent": 0.95}


def test_fuori_tema_is_logged_not_queued(decide):
    decision = decide(intent="fuori_tema", customer_type="non_cliente", priority="bassa")
    assert decision.action == "log_only"
    assert decision.queue is None and decision.team is None
    assert decision.sla_deadline is None and decision.auto_reply is None and not decision.out_of_hours
    assert "intent fuori_tema is logged, not queued" in reason(decision, "intent_owner").effect


def test_unsure_fuori_tema_is_checked_by_a_person_before_it_is_dropped(decide):
    decision = decide(intent="fuori_tema", customer_type="non_cliente", confidences={"intent": 0.6})
    assert decision.confidence_tier == "suggest"
    assert (decision.action, decision.queue, decision.team) == ("queue", "triage", None)
    assert "unqueued_needs_confidence" in rules_named(decision)


def test_cancellation_threat_from_a_current_customer_goes_to_retention_at_least_alta(decide):
    decision = decide(intent="assistenza_tecnica", customer_type="cliente_attivo",
                      business_action=["lamentela", "disdetta"], priority="normale", sentiment="neutro")
    assert (decision.queue, decision.priority) == ("commerciale", "alta")
    fired = reason(decision, "business_rule:retention_cancellation_threat")
    assert fired.labels == {"customer_type": "cliente_attivo", "business_action": ["disdetta"]}
    assert fired.confidences == {"customer_type": 0.95, "business_action:disdetta": 0.95}
    assert "normale -> alta" in fired.effect


def test_cancellation_from_a_former_customer_is_not_retention(decide):
    decision = decide(intent="reclamo", customer_type="ex_cliente", business_action=["disdetta"])
    assert decision.queue == "customer_care"
    assert not any(rule.startswith("business_rule:") for rule in rules_named(decision))


def test_prospect_who_wants_to_buy_goes_to_sales(decide):
    decision = decide(intent="informazioni", customer_type="potenziale_cliente", business_action=["acquisto"])
    assert (decision.queue, decision.priority) == ("commerciale", "alta")
    assert "business_rule:prospect_to_sales" in rules_named(decision)


def test_a_priority_floor_never_lowers_a_higher_priority(decide):
    decision = decide(customer_type="cliente_attivo", business_action=["disdetta"], priority="urgente")
    assert decision.priority == "urgente"


def test_negative_post_on_a_public_channel_is_escalated_one_level(decide):
    decision = decide(intent="reclamo", customer_type="lamentoso", sentiment="negativo", priority="normale")
    assert decision.priority == "alta"
    escalation = reason(decision, "escalation:negative_on_public_channel")
    assert escalation.labels == {"sentiment": "negativo"} and "normale -> alta" in escalation.effect


def test_the_same_post_in_private_is_not_escalated(decide):
    decision = decide(intent="reclamo", sentiment="negativo", priority="normale", post_fields={"channel": "email"})
    assert decision.priority == "normale"
    assert not any(rule.startswith("escalation:") for rule in rules_named(decision))


def test_escalation_is_capped(decide):
    # negative_on_public_channel raises to alta at most: an alta post stays alta.
    decision = decide(intent="reclamo", sentiment="negativo", priority="alta")
    assert decision.priority == "alta"
    assert "stays alta (cap alta)" in reason(decision, "escalation:negative_on_public_channel").effect


def test_a_large_audience_raises_priority_up_to_urgente(decide):
    decision = decide(intent="reclamo", sentiment="negativo", priority="normale",
                      post_fields={"author": {"handle": "@giornalista", "followers": 85_000}})
    # negativity raises normale -> alta, the audience alta -> urgente
    assert decision.priority == "urgente"
    assert rules_named(decision).index("escalation:negative_on_public_channel") < rules_named(decision).index(
        "escalation:large_audience")


def test_escalations_do_not_touch_logged_posts(decide):
    decision = decide(intent="fuori_tema", sentiment="negativo", priority="bassa",
                      post_fields={"author": {"followers": 500_000}})
    assert decision.priority == "bassa" and decision.action == "log_only"


def test_confidence_tiers(decide):
    auto = decide()
    assert (auto.confidence_tier, auto.needs_human, auto.queue) == ("auto", False, "customer_care")
    assert reason(auto, "confidence:auto").confidences["intent"] == 0.95

    suggest = decide(confidences={"intent": 0.65})
    assert (suggest.confidence_tier, suggest.needs_human, suggest.queue) == ("suggest", True, "customer_care")
    assert reason(suggest, "confidence:suggest").labels == {"intent": "informazioni"}

    triage = decide(confidences={"customer_type": 0.2, "priority": 0.3})
    assert (triage.confidence_tier, triage.needs_human) == ("human_triage", True)
    assert (triage.queue, triage.team) == ("triage", "customer_care")  # the team stays as the suggestion
    triage_reason = reason(triage, "confidence:human_triage")
    assert "customer_type, priority below suggest" in triage_reason.effect
    assert triage_reason.confidences["customer_type"] == 0.2


def test_thresholds_are_inclusive(decide):
    assert decide(confidences={"intent": 0.80}).confidence_tier == "auto"
    assert decide(confidences={"intent": 0.50}).confidence_tier == "suggest"
    assert decide(confidences={"intent": 0.4999}).confidence_tier == "human_triage"


@pytest.mark.parametrize(
    ("secret", "kinds"),
    [
        ("333 123 4567", ["phone"]),
        ("mario.rossi@example.com", ["email"]),
        ("IT60X0542811101000000123456", ["iban"]),
        ("4111 1111 1111 1111", ["card"]),
        ("RSSMRA80A01H501U", ["codice_fiscale"]),
    ],
)
def test_personal_data_in_a_public_post_moves_the_reply_private(decide, secret, kinds):
    decision = decide(text=f"Buongiorno, vi lascio questo: {secret} grazie")
    assert decision.reply_channel == "private"
    assert decision.pii == kinds
    assert kinds[0] in reason(decision, "pii_private_reply").effect
    assert secret not in decision.model_dump_json()  # the kind is reported, never the data


def test_a_handle_is_not_a_reason_to_go_private(decide):
    decision = decide(text="@marco_77 anche a me succede, qualcuno sa perché?")
    assert decision.reply_channel == "public" and decision.pii == []


def test_a_private_post_is_answered_privately(decide):
    decision = decide(post_fields={"channel": "email"})
    assert decision.reply_channel == "private"
    assert "private_post" in rules_named(decision)


def test_billing_is_answered_privately_even_without_personal_data(decide):
    decision = decide(intent="fatturazione")
    assert decision.reply_channel == "private"
    assert reason(decision, "private_intent").labels == {"intent": "fatturazione"}


def test_sla_deadline_counts_service_time(decide):
    # customer_care is open 08:00-22:00 on weekdays; normale on twitter has 8 hours.
    assert decide(priority="normale").sla_deadline == rome("2026-03-10 18:00")
    # alta (2 h) at 21:00: one hour today, one tomorrow from 08:00.
    late = decide(priority="alta", now=rome("2026-03-10 21:00"))
    assert late.sla_deadline == rome("2026-03-11 09:00")
    assert "alta on twitter: first response within 2h" in reason(late, "sla").effect


def test_sla_target_depends_on_the_channel(decide):
    email = decide(priority="normale", post_fields={"channel": "email"})  # 16 h on email
    assert email.sla_deadline == rome("2026-03-11 12:00")


def test_sla_clock_starts_when_the_customer_wrote(decide):
    written = rome("2026-03-10 09:00").isoformat()
    decision = decide(priority="urgente", post_fields={"created_at": written})
    assert decision.sla_deadline == rome("2026-03-10 09:30")
    future = rome("2026-03-10 11:00").isoformat()  # a clock ahead of ours: count from now
    assert decide(priority="urgente", post_fields={"created_at": future}).sla_deadline == rome("2026-03-10 10:30")


def test_holidays_stop_the_sla_clock(decide):
    # Easter Sunday 2026-04-05 and Easter Monday: customer care closed; Tuesday opens at 08:00.
    decision = decide(priority="alta", now=rome("2026-04-05 10:00"))
    assert decision.sla_deadline == rome("2026-04-07 10:00")


def test_out_of_hours_sends_an_italian_auto_reply_with_the_hours(decide):
    decision = decide(priority="normale", now=rome("2026-03-10 23:30"))
    assert decision.out_of_hours
    assert decision.auto_reply == (
        "Ciao, grazie per averci scritto! In questo momento il team Assistenza clienti non è operativo: siamo "
        "disponibili lun–sab 8:00–22:00, dom 9:00–18:00 (festivi esclusi). Riapriamo domani alle 8:00 e ti "
        "risponderemo entro domani alle 16:00."
    )
    assert "out_of_hours" in rules_named(decision)


def test_no_auto_reply_during_service_hours(decide):
    decision = decide(now=rome("2026-03-10 08:00"))
    assert not decision.out_of_hours and decision.auto_reply is None


def test_out_of_hours_depends_on_the_queue_team(decide):
    # Saturday 15:00: customer care is open, sales (commerciale) closes at 13:00.
    saturday = rome("2026-03-14 15:00")
    assert not decide(now=saturday).out_of_hours
    sales = decide(now=saturday, intent="acquisto", customer_type="potenziale_cliente")
    assert sales.out_of_hours and "lunedì 16 marzo alle 9:00" in sales.auto_reply


def _crisis(intent: str) -> CrisisView:
    started = rome("2026-03-10 09:40")
    return CrisisView(id=7, intent=intent, status="active", started_at=started, ended_at=None, window_count=25,
                      window_posts=30, window_conversations=4,
                      window_rate_per_hour=50.0, baseline_per_hour=1.0, peak_window_count=25, flagged_posts=3)


def test_a_negative_post_on_an_intent_in_crisis_goes_to_management(decide):
    crises = {"assistenza_tecnica": _crisis("assistenza_tecnica")}
    decision = decide(crises=crises, intent="assistenza_tecnica", sentiment="negativo", priority="normale")
    assert (decision.crisis, decision.crisis_id) == (True, 7)
    assert (decision.queue, decision.team, decision.priority) == ("direzione", "direzione", "urgente")
    crisis_reason = reason(decision, "crisis")
    assert crisis_reason.labels == {"intent": "assistenza_tecnica", "sentiment": "negativo"}
    assert "25 authors of negative posts in the window" in crisis_reason.effect
    assert not decision.out_of_hours  # management is on call


def test_crisis_matches_only_negative_posts_on_the_same_intent(decide):
    crises = {"assistenza_tecnica": _crisis("assistenza_tecnica")}
    assert not decide(crises=crises, intent="assistenza_tecnica", sentiment="neutro").crisis
    assert not decide(crises=crises, intent="fatturazione", sentiment="negativo").crisis


def test_negative_intent_excludes_fuori_tema(rules, taxonomy):
    assert negative_intent(predictions(taxonomy, intent="reclamo", sentiment="negativo"), rules) == "reclamo"
    assert negative_intent(predictions(taxonomy, intent="reclamo", sentiment="positivo"), rules) is None
    assert negative_intent(predictions(taxonomy, intent="fuori_tema", sentiment="negativo"), rules) is None


def test_every_decision_says_why(decide):
    decision = decide(intent="reclamo", sentiment="negativo", customer_type="cliente_attivo",
                      business_action=["disdetta"], now=rome("2026-03-10 23:00"), text="chiamatemi al 333 1234567")
    assert rules_named(decision) == [
        "intent_owner", "predicted_priority", "business_rule:retention_cancellation_threat",
        "escalation:negative_on_public_channel", "confidence:auto", "pii_private_reply", "sla", "out_of_hours",
    ]


def test_now_must_be_timezone_aware(rules, validator, taxonomy):
    with pytest.raises(ValueError, match="timezone-aware"):
        route_post(post(validator), predictions(taxonomy), rules, datetime(2026, 3, 10, 10, 0))


def test_predictions_must_cover_every_head(rules, validator, taxonomy):
    partial = predictions(taxonomy)
    del partial["sentiment"]
    with pytest.raises(ValueError, match=r"lack head\(s\) \['sentiment'\]"):
        route_post(post(validator), partial, rules, TUESDAY_10)


def test_same_inputs_same_route(decide):
    assert decide().model_dump() == decide().model_dump()
    assert decide(now=TUESDAY_10 + timedelta(hours=13)).out_of_hours


def test_the_first_rule_naming_a_team_takes_the_post(rules, validator, taxonomy):
    from serving.routing_config import BusinessRule
    from serving.rules import RoutingRules

    later = BusinessRule(name="every_cancellation_to_social", description="Esempio.", team="social_media",
                         min_priority="urgente", when={"labels": {"business_action": ["disdetta"]}})
    config = rules.config.model_copy(update={"business_rules": [*rules.config.business_rules, later]})
    decision = route_post(post(validator), predictions(taxonomy, customer_type="cliente_attivo", business_action=["disdetta"]),
                          RoutingRules.build(config, taxonomy), TUESDAY_10)
    assert decision.queue == "commerciale" and decision.priority == "urgente"  # team of the first, floors of both
    assert "team social_media not taken: an earlier rule already chose commerciale" in reason(
        decision, "business_rule:every_cancellation_to_social").effect
