"""The typed model of a post, validated against the taxonomy.

A post is what a care platform sends us and what annotators label: the text, where it came from,
who wrote it, and optionally the gold labels. Validation needs the taxonomy (channels and label
ids) and the text length limit; both come in through `PostValidator`, so the same model serves the
seed data, Label Studio exports and API requests.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from data.errors import describe_validation_error
from data.taxonomy import Taxonomy

DEFAULT_MAX_TEXT_CHARS = 5_000
# Follower counts are stored as 64-bit integers; the largest real accounts have about 10^9.
MAX_FOLLOWERS = 2**63 - 1
# Characters that render as nothing although Unicode files them as letters or symbols (fillers,
# the braille blank, the Mongolian vowel separator); format characters (zero-width spaces and
# joiners, the BOM, bidi marks) and whitespace are caught by their category.
INVISIBLE_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})


class PostValidationError(ValueError):
    """A post failed validation; the message names each bad field."""


class Author(BaseModel):
    model_config = ConfigDict(extra="forbid")

    handle: str | None = Field(default=None, max_length=200, description="Public handle, e.g. @luca_b87.")
    followers: int | None = Field(
        default=None, ge=0, le=MAX_FOLLOWERS, description="Follower count when the channel has one."
    )


class Post(BaseModel):
    """One post written by a customer (or anybody) to the company on a channel."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200, description="Stable id, unique within a data set.")
    text: str = Field(description="What the person wrote.")
    channel: str = Field(description="Channel id from the taxonomy's `channels`.")
    author: Author = Field(default_factory=Author)
    public: bool | None = Field(
        default=None, description="Public post or private message; None means the channel's default."
    )
    created_at: datetime | None = Field(
        default=None, description="When it was written, ISO 8601 with a timezone offset."
    )
    conversation_id: str | None = Field(default=None, max_length=200, description="Thread the post belongs to.")
    customer_id: str | None = Field(default=None, max_length=200, description="CRM id when the author is known.")
    language: str = Field(default="it", pattern=r"^[a-z]{2}$", description="ISO 639-1 code.")
    sector: str | None = Field(default=None, max_length=100, description="Business sector of the addressed brand.")
    labels: dict[str, str | list[str]] | None = Field(
        default=None, description="Gold labels by taxonomy field; a subset of fields is allowed."
    )

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("id is blank")
        return value

    @field_validator("text")
    @classmethod
    def _text_present_and_bounded(cls, value: str, info: ValidationInfo) -> str:
        return check_text(value, _context(info).max_text_chars)

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str, info: ValidationInfo) -> str:
        taxonomy = _context(info).taxonomy
        if value not in taxonomy.channel_ids:
            raise ValueError(
                f"unknown channel {value!r}; expected one of: {', '.join(taxonomy.channel_ids)}"
            )
        return value

    @field_validator("created_at", mode="before")
    @classmethod
    def _parse_timestamp(cls, value: Any) -> Any:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError(f"timestamp must be an ISO 8601 string, got {type(value).__name__}")
        try:
            # fromisoformat in 3.11 accepts 'Z' and offsets; reject what it cannot read.
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"bad timestamp {value!r}: use ISO 8601 with an offset, e.g. 2026-03-14T21:47:00+01:00"
            ) from None

    @field_validator("created_at")
    @classmethod
    def _timestamp_has_offset(cls, value: datetime | None) -> datetime | None:
        # SLA deadlines and service hours depend on the local time: a naive timestamp is ambiguous.
        if value is not None and value.utcoffset() is None:
            raise ValueError(
                f"timestamp {value.isoformat()} has no timezone offset; add one, e.g. +01:00 or Z"
            )
        return value if value is None else check_utc_time(value)

    @model_validator(mode="after")
    def _labels_match_taxonomy(self, info: ValidationInfo) -> Post:
        if self.labels is not None:
            check_labels(self.labels, _context(info).taxonomy)
        return self

    def is_public(self, taxonomy: Taxonomy) -> bool:
        return self.public if self.public is not None else taxonomy.is_public_channel(self.channel)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def check_utc_time(value: datetime) -> datetime:
    """Raise ValueError when an aware timestamp has no UTC time (year 9999 at -05:00, year 1 at
    +14:00): refused at validation, not with a 500 when it is stored or compared later."""
    try:
        value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(
            f"timestamp {value.isoformat()} is out of range once converted to UTC; "
            "use a real date, e.g. 2026-03-14T21:47:00+01:00"
        ) from None
    return value


def has_visible_character(text: str) -> bool:
    """True when something in the text would show: not only whitespace, zero-width or format
    characters and invisible fillers."""
    return any(
        char not in INVISIBLE_CHARACTERS and unicodedata.category(char) not in INVISIBLE_CATEGORIES for char in text
    )


def check_text(text: str, max_text_chars: int) -> str:
    """The text checks of a post, also for callers that have a text but no whole post:
    raise ValueError when it is blank or longer than `max_text_chars`."""
    if not has_visible_character(text):
        raise ValueError("text is empty or only whitespace or invisible characters")
    if len(text) > max_text_chars:
        raise ValueError(
            f"text is {len(text)} characters, over the limit of {max_text_chars}; "
            "shorten it or raise max_text_chars"
        )
    return text


def check_labels(labels: dict[str, Any], taxonomy: Taxonomy) -> None:
    """Raise ValueError naming the field and the id when labels do not fit the taxonomy."""
    for field_name, value in labels.items():
        if field_name not in taxonomy.fields:
            raise ValueError(
                f"labels.{field_name}: unknown field; expected one of: {', '.join(taxonomy.fields)}"
            )
        spec = taxonomy.fields[field_name]
        known = spec.label_ids
        if spec.is_multi_label:
            if not isinstance(value, list):
                raise ValueError(f"labels.{field_name}: must be a list of label ids (may be empty)")
            if len(set(value)) != len(value):
                raise ValueError(f"labels.{field_name}: repeated label id in {value}")
            values = value
        else:
            if not isinstance(value, str):
                raise ValueError(f"labels.{field_name}: must be a single label id, got {value!r}")
            values = [value]
        for label in values:
            if label not in known:
                raise ValueError(
                    f"labels.{field_name}: unknown label id {label!r} "
                    f"(taxonomy v{taxonomy.version}); expected one of: {', '.join(known)}"
                )


@dataclass(frozen=True)
class _ValidationContext:
    taxonomy: Taxonomy
    max_text_chars: int


def _context(info: ValidationInfo) -> _ValidationContext:
    if not isinstance(info.context, _ValidationContext):
        raise TypeError("validate posts with PostValidator, which supplies the taxonomy")
    return info.context


class PostValidator:
    """Validates raw dicts into Posts against one taxonomy and one text length limit."""

    def __init__(self, taxonomy: Taxonomy, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS):
        if max_text_chars < 1:
            raise ValueError(f"max_text_chars must be positive, got {max_text_chars}")
        self.taxonomy = taxonomy
        self.max_text_chars = max_text_chars
        self._context = _ValidationContext(taxonomy=taxonomy, max_text_chars=max_text_chars)

    def validate(self, raw: Any) -> Post:
        if not isinstance(raw, dict):
            raise PostValidationError(f"expected a JSON object, got {type(raw).__name__}")
        try:
            return Post.model_validate(raw, context=self._context)
        except ValidationError as exc:
            raise PostValidationError(describe_validation_error(exc).strip()) from None
