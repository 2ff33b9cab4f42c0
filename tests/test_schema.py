from __future__ import annotations

import pytest

from data.schema import PostValidationError, PostValidator
from tests.conftest import make_post


def test_valid_post_round_trips(validator):
    post = validator.validate(make_post("p1"))
    assert post.labels["intent"] == "informazioni"
    assert post.created_at.utcoffset().total_seconds() == 3600
    assert validator.validate(post.to_json_dict()) == post


def test_only_text_id_and_channel_are_required(validator, taxonomy):
    post = validator.validate({"id": "p1", "text": "ciao", "channel": "email"})
    assert post.labels is None and post.created_at is None
    assert post.is_public(taxonomy) is False  # the channel's default
    assert validator.validate({"id": "p2", "text": "ciao", "channel": "email", "public": True}).is_public(taxonomy)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"text": ""}, r"text: text is empty or only whitespace"),
        ({"text": "  \n\t "}, r"text: text is empty or only whitespace"),
        ({"text": "\u200b\u200d\ufeff\u2060 \u3164\u2800"}, r"text: text is empty or only whitespace or invisible"),
        ({"created_at": "9999-12-31T23:00:00-05:00"}, r"created_at: timestamp 9999-12-31T23:00:00-05:00 is out of range"),
        ({"created_at": "0001-01-01T01:00:00+14:00"}, r"created_at: timestamp 0001-01-01T01:00:00\+14:00 is out of range"),
        ({"author": {"followers": 2**64}}, r"author\.followers: Input should be less than or equal to 9223372036854775807"),
        ({"channel": "fax"}, r"channel: unknown channel 'fax'; expected one of: twitter"),
        ({"created_at": "14/03/2026 10:00"}, r"created_at: bad timestamp '14/03/2026 10:00': use ISO 8601"),
        ({"created_at": "2026-02-30T10:00:00+01:00"}, r"created_at: bad timestamp"),
        ({"created_at": "2026-03-14T10:00:00"}, r"created_at: timestamp 2026-03-14T10:00:00 has no timezone offset"),
        ({"created_at": 1710000000}, r"created_at: timestamp must be an ISO 8601 string"),
        ({"id": "   "}, r"id: id is blank"),
        ({"author": {"handle": "@x", "followers": -3}}, r"author\.followers: Input should be greater than or equal to 0"),
        ({"language": "italiano"}, r"language: String should match pattern"),
        ({"colour": "red"}, r"colour: Extra inputs are not permitted"),
    ],
)
def test_bad_fields_are_named(validator, change, message):
    with pytest.raises(PostValidationError, match=message):
        validator.validate(make_post("p1", **change))


def test_missing_text_is_named(validator):
    raw = make_post("p1")
    del raw["text"]
    with pytest.raises(PostValidationError, match=r"text: Field required"):
        validator.validate(raw)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"intent": "chiacchiera"}, r"labels\.intent: unknown label id 'chiacchiera' \(taxonomy v1\); expected one of: informazioni"),
        ({"business_action": ["rinnovo", "upsell"]}, r"labels\.business_action: unknown label id 'upsell'"),
        ({"business_action": "rinnovo"}, r"labels\.business_action: must be a list of label ids"),
        ({"business_action": ["rinnovo", "rinnovo"]}, r"labels\.business_action: repeated label id"),
        ({"priority": ["alta"]}, r"labels\.priority: must be a single label id"),
        ({"urgency": "alta"}, r"labels\.urgency: unknown field; expected one of: intent"),
    ],
)
def test_bad_labels_are_named(validator, labels, message):
    with pytest.raises(PostValidationError, match=message):
        validator.validate(make_post("p1", labels=labels))


def test_text_limit_is_configurable(taxonomy):
    raw = make_post("p1", text="a" * 5001)
    with pytest.raises(PostValidationError, match=r"text: text is 5001 characters, over the limit of 5000"):
        PostValidator(taxonomy).validate(raw)
    assert PostValidator(taxonomy, max_text_chars=6000).validate(raw).text == "a" * 5001
    with pytest.raises(PostValidationError, match="over the limit of 10"):
        PostValidator(taxonomy, max_text_chars=10).validate(make_post("p2", text="undici car."))


def test_non_object_is_refused(validator):
    with pytest.raises(PostValidationError, match="expected a JSON object, got list"):
        validator.validate([1, 2])


def test_several_problems_are_all_reported(validator):
    with pytest.raises(PostValidationError) as caught:
        validator.validate(make_post("p1", text="", channel="fax"))
    assert "text:" in str(caught.value) and "channel:" in str(caught.value)
