"""Builders for routing tests: predictions as the Predictor returns them, posts, rules and times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from data.schema import Post, PostValidator
from data.taxonomy import Taxonomy
from serving.routing_config import DEFAULT_ROUTING_PATH
from serving.rules import RoutingRules, load_routing_rules
from training.inference.heads import HeadPrediction

ROME = ZoneInfo("Europe/Rome")


def rome(text: str) -> datetime:
    """'2026-03-10 10:00' -> an aware datetime in Rome."""
    return datetime.fromisoformat(text).replace(tzinfo=ROME)


def head(taxonomy: Taxonomy, field: str, chosen: str | Sequence[str], confidence: float) -> HeadPrediction:
    """A head's prediction: the chosen label(s) get `confidence`, the rest share what is left."""
    labels = taxonomy.label_ids(field)
    if taxonomy.fields[field].is_multi_label:
        chosen = list(chosen)
        probabilities = {label: (confidence if label in chosen else 1.0 - confidence) for label in labels}
        return HeadPrediction(labels=chosen, probabilities=probabilities, confidence=confidence)
    rest = (1.0 - confidence) / (len(labels) - 1)
    probabilities = {label: (confidence if label == chosen else rest) for label in labels}
    return HeadPrediction(labels=[chosen], probabilities=probabilities, confidence=confidence)


def predictions(
    taxonomy: Taxonomy,
    intent: str = "informazioni",
    customer_type: str = "cliente_attivo",
    business_action: Sequence[str] = (),
    priority: str = "normale",
    sentiment: str = "neutro",
    confidence: float = 0.95,
    confidences: dict[str, float] | None = None,
) -> dict[str, HeadPrediction]:
    """Predictions for every head, all at `confidence` unless `confidences` gives a head its own."""
    chosen = {"intent": intent, "customer_type": customer_type, "business_action": business_action,
              "priority": priority, "sentiment": sentiment}
    confidences = confidences or {}
    return {field: head(taxonomy, field, chosen[field], confidences.get(field, confidence)) for field in taxonomy.fields}


def post(validator: PostValidator, text: str = "Buongiorno, una domanda sulla mia offerta", **fields) -> Post:
    raw = {"id": "p1", "text": text, "channel": "twitter", "author": {"handle": "@utente", "followers": 120}}
    raw.update(fields)
    return validator.validate(raw)


def default_rules(taxonomy: Taxonomy) -> RoutingRules:
    return load_routing_rules(DEFAULT_ROUTING_PATH, taxonomy)


def rules_named(decision) -> list[str]:
    return [reason.rule for reason in decision.reasons]


def reason(decision, rule: str):
    matches = [item for item in decision.reasons if item.rule == rule]
    assert matches, f"no reason {rule!r} in {rules_named(decision)}"
    return matches[0]
