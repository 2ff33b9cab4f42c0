from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from data.taxonomy import DEFAULT_TAXONOMY_PATH, TaxonomyError, load_taxonomy

# The label ids of taxonomy v1 as DOMAIN.md defines them: a change here is a new taxonomy version.
DOMAIN_V1 = {
    "intent": [
        "informazioni", "assistenza_tecnica", "fatturazione", "gestione_contratto", "reclamo", "acquisto",
        "elogio", "suggerimento", "lavoro", "stampa_istituzionale", "fuori_tema",
    ],
    "customer_type": ["lamentoso", "advocate", "ex_cliente", "potenziale_cliente", "cliente_attivo", "non_cliente"],
    "business_action": ["acquisto", "rinnovo", "disdetta", "lamentela"],
    "priority": ["urgente", "alta", "normale", "bassa"],
    "sentiment": ["negativo", "neutro", "positivo"],
}


def test_shipped_taxonomy_has_exactly_the_domain_label_ids(taxonomy):
    assert taxonomy.version == "1"
    assert {name: spec.label_ids for name, spec in taxonomy.fields.items()} == DOMAIN_V1
    assert taxonomy.field("business_action").is_multi_label
    assert [n for n, s in taxonomy.fields.items() if s.is_multi_label] == ["business_action"]
    assert taxonomy.field("priority").ordered


def test_every_label_is_documented_for_annotators(taxonomy):
    for spec in taxonomy.fields.values():
        for label in spec.labels:
            assert label.name and label.description and label.guidance, label.id
            assert 2 <= len(label.examples) <= 3, f"{label.id} needs two or three examples"


def test_channels_include_the_care_channels_and_email_is_private(taxonomy):
    for channel in ["twitter", "facebook", "instagram", "linkedin", "youtube", "forum", "email", "app_review"]:
        assert channel in taxonomy.channel_ids
    assert taxonomy.is_public_channel("twitter") is True
    assert taxonomy.is_public_channel("email") is False


def _write_variant(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"))
    mutate(raw)
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_unknown_key_is_refused_and_named(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["fields"]["intent"]["labels"][0].update(colour="red"))
    with pytest.raises(TaxonomyError, match=r"fields\.intent\.labels\[0\]\.colour: Extra inputs are not permitted"):
        load_taxonomy(path)


def test_unknown_top_level_key_is_refused(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw.update(routing={}))
    with pytest.raises(TaxonomyError, match=r"routing: Extra inputs"):
        load_taxonomy(path)


def test_duplicate_label_id_is_refused_and_named(tmp_path):
    def duplicate(raw):
        labels = raw["fields"]["sentiment"]["labels"]
        labels.append(dict(labels[0]))

    with pytest.raises(TaxonomyError, match=r"fields\.sentiment\.labels: duplicate label id 'negativo'"):
        load_taxonomy(_write_variant(tmp_path, duplicate))


def test_empty_label_set_is_refused(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["fields"]["priority"].update(labels=[]))
    with pytest.raises(TaxonomyError, match=r"fields\.priority\.labels: empty label set"):
        load_taxonomy(path)


def test_empty_fields_and_channels_are_refused(tmp_path):
    with pytest.raises(TaxonomyError, match=r"fields: no fields"):
        load_taxonomy(_write_variant(tmp_path, lambda raw: raw.update(fields={})))
    with pytest.raises(TaxonomyError, match=r"channels: empty channel list"):
        load_taxonomy(_write_variant(tmp_path, lambda raw: raw.update(channels=[])))


def test_label_id_must_be_snake_case(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["fields"]["intent"]["labels"][0].update(id="Info Richiesta"))
    with pytest.raises(TaxonomyError, match=r"fields\.intent\.labels\[0\]\.id: String should match pattern"):
        load_taxonomy(path)


def test_bad_kind_is_refused(tmp_path):
    path = _write_variant(tmp_path, lambda raw: raw["fields"]["intent"].update(kind="many"))
    with pytest.raises(TaxonomyError, match=r"fields\.intent\.kind: Input should be 'single' or 'multi'"):
        load_taxonomy(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(TaxonomyError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("fields: [unclosed\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="not valid YAML"):
        load_taxonomy(bad)


def test_unknown_field_lookup_names_the_known_fields(taxonomy):
    with pytest.raises(TaxonomyError, match="unknown taxonomy field 'urgency'.*intent"):
        taxonomy.field("urgency")


@pytest.mark.parametrize(("raw", "expected"), [(1, "1"), ("2026.1", "2026.1"), (" v2", " v2")])
def test_a_config_version_is_text_even_when_written_as_a_number(raw, expected):
    from pydantic import TypeAdapter

    from data.config_files import VersionText

    assert TypeAdapter(VersionText).validate_python(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [("", "at least 1 character"), (True, "valid string"), (None, "valid string")])
def test_a_config_version_that_is_empty_or_not_text_is_refused(raw, message):
    # `version: yes` in YAML is a bool, not the version "True".
    from pydantic import TypeAdapter, ValidationError

    from data.config_files import VersionText

    with pytest.raises(ValidationError, match=message):
        TypeAdapter(VersionText).validate_python(raw)
