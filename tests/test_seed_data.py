"""The bundled seed data set: valid, big enough, covering every label, and free of real personal data.

These tests fail if someone deletes examples below the minimums the product needs.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from data.dataset import SEED_DATA_DIR, expand_inputs, label_counts, load_labelled_posts
from data.pii import PersonNames, find_pii

MIN_POSTS = 1200
MIN_PER_LABEL = 50
CARE_CHANNELS = ["twitter", "facebook", "instagram", "linkedin", "youtube", "forum", "email", "app_review"]
SECTORS = ["telco", "energia_acqua", "banca_assicurazioni", "retail_ecommerce", "trasporti", "food"]

# The only personal data allowed in the seed posts: obviously fake values used on purpose to test
# redaction (the classic Italian example IBAN and codice fiscale, the standard test card number,
# example.com addresses, phone numbers made of zeros or 1234567).
FAKE_IBAN = "IT60X0542811101000000123456"
FAKE_CODICE_FISCALE = "RSSMRA80A01H501U"
FAKE_CARD_DIGITS = "4111111111111111"


@pytest.fixture(scope="module")
def seed_posts(validator):
    return load_labelled_posts(expand_inputs([str(SEED_DATA_DIR / "*.jsonl")]), validator)


def test_seed_data_set_is_big_enough(seed_posts):
    assert len(seed_posts) >= MIN_POSTS


def test_every_label_has_the_minimum_number_of_examples(seed_posts, taxonomy):
    counts = label_counts(seed_posts, taxonomy)
    short = {
        f"{field}.{label}": count
        for field, labels in counts.items()
        for label, count in labels.items()
        if count < MIN_PER_LABEL
    }
    assert not short, f"labels under {MIN_PER_LABEL} examples: {short}"


def test_channels_sectors_and_languages_are_covered(seed_posts):
    channels = Counter(post.channel for post in seed_posts)
    for channel in CARE_CHANNELS:
        assert channels[channel] >= 30, f"only {channels[channel]} posts on {channel}"
    sectors = Counter(post.sector for post in seed_posts)
    assert all(sectors[sector] >= 150 for sector in SECTORS), sectors
    assert sum(post.language == "en" for post in seed_posts) >= 15


def test_what_real_brand_pages_get_is_there(seed_posts):
    texts = [post.text for post in seed_posts]
    assert sum(len(text.split()) <= 2 for text in texts) >= 20, "short one-word reactions"
    assert sum(len(text.split()) >= 80 and post.channel == "forum" for text, post in zip(texts, seed_posts)) >= 20
    assert sum(bool(re.search(r"#\w+", text)) for text in texts) >= 50, "hashtags"
    assert sum(bool(re.search(r"https?://", text)) for text in texts) >= 10, "URLs"
    assert sum(bool(re.search(r"\b[A-Z]{4,}\b.*\b[A-Z]{4,}\b", text)) for text in texts) >= 20, "ALL CAPS"
    assert sum(bool(re.search(r"[\U0001F300-\U0001FAFF]", text)) for text in texts) >= 100, "emoji"
    threads = Counter(post.conversation_id for post in seed_posts if post.conversation_id)
    assert sum(size >= 2 for size in threads.values()) >= 20, "chatter between users in threads"


def test_timestamps_cover_nights_and_weekends(seed_posts):
    stamps = [post.created_at for post in seed_posts]
    assert all(stamp is not None for stamp in stamps)
    assert sum(stamp.hour < 7 or stamp.hour >= 22 for stamp in stamps) >= 50
    assert sum(stamp.weekday() >= 5 for stamp in stamps) >= 100


def _is_obviously_fake(kind: str, text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if kind == "email":
        return bool(re.search(r"@(\w+\.)*example(\.\w+)?$", text))
    if kind == "iban":
        return text.replace(" ", "").upper() == FAKE_IBAN
    if kind == "codice_fiscale":
        return text.upper() == FAKE_CODICE_FISCALE
    if kind == "card":
        return digits == FAKE_CARD_DIGITS
    if kind == "phone":
        return "000000" in digits or digits.endswith("1234567")
    if kind == "person":  # the data card: first names appear, surnames do not
        return all(word in PersonNames.bundled().first_names for word in text.split())
    return kind == "handle"  # handles are made up by the authors of the seed data


def test_no_real_personal_data_only_obvious_fakes(seed_posts):
    suspicious = [
        (post.id, match.kind, match.text)
        for post in seed_posts
        for match in find_pii(post.text)
        if not _is_obviously_fake(match.kind, match.text)
    ]
    assert not suspicious


def test_some_posts_carry_fake_personal_data_for_redaction_tests(seed_posts):
    kinds = Counter(match.kind for post in seed_posts for match in find_pii(post.text) if match.kind != "handle")
    for kind in ("email", "iban", "codice_fiscale", "card", "phone"):
        assert kinds[kind] >= 3, kinds
