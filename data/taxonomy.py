"""Load and validate the taxonomy file, the single source of truth for every label set.

Everything downstream (Label Studio config, data set features, model heads, API schema, routing
rules) asks this module for label ids; none of them restates a label by hand.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from data.config_files import StrictConfig, VersionText, read_yaml_mapping, validate_mapping
from data.errors import UserError
from data.locations import CONFIGS_DIR

DEFAULT_TAXONOMY_PATH = CONFIGS_DIR / "taxonomy.yaml"

# Label and field ids become Python identifiers, Label Studio names and JSON keys: keep them plain.
ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class TaxonomyError(UserError, ValueError):
    """The taxonomy file is missing, unreadable or invalid; the message names the problem."""


class LabelSpec(StrictConfig):
    id: str = Field(pattern=ID_PATTERN, description="Stable label id (snake_case).")
    name: str = Field(min_length=1, description="Italian display name shown to annotators.")
    description: str = Field(min_length=1, description="What the label means.")
    guidance: str = Field(min_length=1, description="How annotators decide the hard cases.")
    examples: list[str] = Field(min_length=1, description="Short example posts.")


class FieldSpec(StrictConfig):
    name: str = Field(min_length=1, description="Italian display name of the field.")
    kind: Literal["single", "multi"] = Field(
        description="single: exactly one label per post; multi: zero or more labels per post."
    )
    ordered: bool = Field(default=False, description="Labels are listed in a meaningful order.")
    description: str = Field(min_length=1)
    labels: list[LabelSpec] = Field(description="The label set; ids must be unique.")

    @field_validator("labels")
    @classmethod
    def _labels_non_empty_and_unique(cls, labels: list[LabelSpec]) -> list[LabelSpec]:
        if not labels:
            raise ValueError("empty label set: a field needs at least one label")
        seen: set[str] = set()
        for label in labels:
            if label.id in seen:
                raise ValueError(f"duplicate label id {label.id!r}")
            seen.add(label.id)
        return labels

    @property
    def label_ids(self) -> list[str]:
        return [label.id for label in self.labels]

    @property
    def is_multi_label(self) -> bool:
        return self.kind == "multi"


class ChannelSpec(StrictConfig):
    id: str = Field(pattern=ID_PATTERN)
    public: bool = Field(description="Default visibility of a post on this channel.")


class Taxonomy(StrictConfig):
    version: VersionText = Field(description="Taxonomy version; label ids change only with it.")
    fields: dict[str, FieldSpec] = Field(description="Predicted fields, each with its label set.")
    channels: list[ChannelSpec] = Field(description="Channels a post can come from.")

    @field_validator("fields")
    @classmethod
    def _fields_non_empty_with_plain_names(cls, fields: dict[str, FieldSpec]) -> dict[str, FieldSpec]:
        if not fields:
            raise ValueError("no fields: the taxonomy needs at least one predicted field")
        for name in fields:
            if re.fullmatch(ID_PATTERN, name) is None:
                raise ValueError(f"field name {name!r} must be snake_case ({ID_PATTERN})")
        return fields

    @field_validator("channels")
    @classmethod
    def _channels_non_empty_and_unique(cls, channels: list[ChannelSpec]) -> list[ChannelSpec]:
        if not channels:
            raise ValueError("empty channel list")
        ids = [channel.id for channel in channels]
        duplicates = sorted({c for c in ids if ids.count(c) > 1})
        if duplicates:
            raise ValueError(f"duplicate channel id(s) {duplicates}")
        return channels

    # Derived views. cached_property works on frozen models because it writes to __dict__.
    @cached_property
    def field_names(self) -> list[str]:
        return list(self.fields)

    @cached_property
    def channel_ids(self) -> list[str]:
        return [channel.id for channel in self.channels]

    def field(self, name: str) -> FieldSpec:
        try:
            return self.fields[name]
        except KeyError:
            raise TaxonomyError(
                f"unknown taxonomy field {name!r}; known fields: {', '.join(self.fields)}"
            ) from None

    def label_ids(self, field_name: str) -> list[str]:
        return self.field(field_name).label_ids

    def is_public_channel(self, channel: str) -> bool:
        for spec in self.channels:
            if spec.id == channel:
                return spec.public
        raise TaxonomyError(f"unknown channel {channel!r}; known channels: {', '.join(self.channel_ids)}")


def load_taxonomy(path: str | Path = DEFAULT_TAXONOMY_PATH) -> Taxonomy:
    """Read and validate a taxonomy YAML file; raise TaxonomyError naming the bad key or value."""
    raw = read_yaml_mapping(
        path, TaxonomyError, "taxonomy file", "a mapping with 'version', 'fields' and 'channels'"
    )
    return validate_mapping(Taxonomy, raw, path, TaxonomyError, "taxonomy")
