"""configs/routing.yaml: the schema refuses bad values, and the taxonomy check names rule and label."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
import yaml

from serving.routing_config import DEFAULT_ROUTING_PATH, RoutingConfigError, load_routing_config, parse_duration

SHIPPED = yaml.safe_load(DEFAULT_ROUTING_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def load_changed(tmp_path, taxonomy):
    """load_changed(change) loads the shipped config after change(raw) edited a copy of it."""

    def _load(change):
        raw = copy.deepcopy(SHIPPED)
        change(raw)
        path = tmp_path / "routing.yaml"
        path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        return load_routing_config(path, taxonomy)

    return _load


def refused(load_changed, change) -> str:
    with pytest.raises(RoutingConfigError) as error:
        load_changed(change)
    return str(error.value)


def test_shipped_config_fits_the_taxonomy(taxonomy):
    config = load_routing_config(DEFAULT_ROUTING_PATH, taxonomy)
    assert set(config.intent_owners) == set(taxonomy.label_ids("intent"))
    assert config.intent_owners["fuori_tema"] is None
    assert set(config.confidence.thresholds) == set(taxonomy.fields)
    assert config.sla.targets["urgente"] == timedelta(minutes=30)
    assert config.teams["direzione"].always_open


def test_a_rule_naming_an_unknown_label_is_refused_with_rule_and_label(load_changed):
    message = refused(load_changed, lambda raw: raw["business_rules"][0]["when"]["labels"].update(
        customer_type=["cliente_attuale"]))
    assert ("business_rules[0] (retention_cancellation_threat).when.labels.customer_type: "
            "unknown customer_type label 'cliente_attuale'") in message
    assert "expected one of: lamentoso, advocate" in message


def test_every_problem_is_listed_at_once(load_changed):
    def change(raw):
        raw["escalations"][0]["when"]["labels"]["sentiment"] = ["arrabbiato"]
        raw["intent_owners"]["acquisto"] = "vendite"
        raw["crisis"]["excluded_intents"] = ["spam"]

    message = refused(load_changed, change)
    assert "escalations[0] (negative_on_public_channel).when.labels.sentiment: unknown sentiment label 'arrabbiato'" in message
    assert "intent_owners.acquisto: unknown team 'vendite'" in message
    assert "crisis.excluded_intents: unknown intent label 'spam'" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: raw["intent_owners"].pop("lavoro"), "no owner for intent(s) ['lavoro']"),
        (lambda raw: raw["intent_owners"].update(vendita="commerciale"), "intent_owners.vendita: unknown intent label"),
        (lambda raw: raw["business_rules"][1]["when"]["labels"].update(umore=["buono"]), "unknown field 'umore'"),
        (lambda raw: raw["business_rules"][1].update(min_priority="altissima"), "unknown priority label 'altissima'"),
        (lambda raw: raw["escalations"][1]["when"].update(channels=["fax"]), "unknown channel 'fax'"),
        (lambda raw: raw["sla"]["targets"].pop("bassa"), "no target for priority(ies) ['bassa']"),
        (lambda raw: raw["sla"]["channel_targets"].update(piccione={"alta": "1h"}), "unknown channel 'piccione'"),
        (lambda raw: raw["confidence"]["thresholds"].pop("sentiment"), "no thresholds for head(s) ['sentiment']"),
        (lambda raw: raw["confidence"]["thresholds"].update(tono={"auto": 0.9, "suggest": 0.5}), "tono: unknown head"),
        (lambda raw: raw["confidence"].update(triage_queue="smistamento"), "unknown team 'smistamento'"),
        (lambda raw: raw["reply"].update(private_for_intents=["bolletta"]), "unknown intent label 'bolletta'"),
        (lambda raw: raw["crisis"].update(team="ceo"), "crisis.team: unknown team 'ceo'"),
    ],
)
def test_cross_checks_against_taxonomy_and_teams(load_changed, change, expected):
    assert expected in refused(load_changed, change)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda raw: raw.update(timezon="Europe/Rome"), "timezon: Extra inputs are not permitted"),
        (lambda raw: raw.update(timezone="Europe/Milano"), "unknown time zone 'Europe/Milano'"),
        (lambda raw: raw["teams"]["customer_care"]["hours"].update(lun=["08:00-12:00"]), "unknown weekday 'lun'"),
        (lambda raw: raw["teams"]["customer_care"]["hours"].update(mon=["8-12"]), "bad interval '8-12'"),
        (lambda raw: raw["teams"]["customer_care"]["hours"].update(mon=["12:00-08:00"]), "ends before it starts"),
        (lambda raw: raw["teams"]["customer_care"]["hours"].update(mon=["08:00-13:00", "12:00-18:00"]), "overlap"),
        (lambda raw: raw["teams"]["commerciale"].update(hours={}), "no service hours"),
        (lambda raw: raw["sla"]["targets"].update(alta="2 giorni"), "bad duration '2 giorni'"),
        (lambda raw: raw["sla"]["targets"].update(alta="0m"), "must be positive"),
        (lambda raw: raw["confidence"]["thresholds"].update(intent={"auto": 0.5, "suggest": 0.8}), "suggest (0.8) is above auto (0.5)"),
        (lambda raw: raw["reply"].update(private_for_pii=["passport"]), "unknown PII kind(s) ['passport']"),
        (lambda raw: raw["out_of_hours"].update(auto_reply="Chiusi, orari {orari}"), "unknown placeholder(s) ['orari']"),
        (lambda raw: raw["crisis"].update(end_rate_per_hour=30), "or a crisis would flap on and off"),
        (lambda raw: raw["business_rules"][0].pop("team") and raw["business_rules"][0].pop("min_priority"), "has no effect"),
        (lambda raw: raw["escalations"][0].update(when={}), "empty condition"),
        (lambda raw: raw["business_rules"].append(copy.deepcopy(raw["business_rules"][0])), "duplicate rule name(s)"),
        (lambda raw: raw["holidays"]["fixed"].append({"date": "02-30", "name": "mai"}), "no such day '02-30'"),
    ],
)
def test_schema_refuses_bad_values_naming_the_key(load_changed, change, expected):
    assert expected in refused(load_changed, change)


def test_missing_or_broken_file(tmp_path, taxonomy):
    with pytest.raises(RoutingConfigError, match="routing config not found"):
        load_routing_config(tmp_path / "nope.yaml", taxonomy)
    broken = tmp_path / "broken.yaml"
    broken.write_text("teams: [unclosed\n", encoding="utf-8")
    with pytest.raises(RoutingConfigError, match="not valid YAML"):
        load_routing_config(broken, taxonomy)


@pytest.mark.parametrize(("text", "minutes"), [("30m", 30), ("2h", 120), ("1h30m", 90), ("48h", 2880)])
def test_durations(text, minutes):
    assert parse_duration(text) == timedelta(minutes=minutes)
