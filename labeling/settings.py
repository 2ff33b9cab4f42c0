"""The labeling settings schema; `configs/labeling.yaml` only fills it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from data.config_files import read_yaml_mapping, validate_mapping
from data.errors import UserError
from data.locations import CONFIGS_DIR

DEFAULT_LABELING_CONFIG_PATH = CONFIGS_DIR / "labeling.yaml"


class LabelingSettingsError(UserError, ValueError):
    """configs/labeling.yaml is missing or invalid; the message names the bad key."""


class LabelingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project_title: str = Field(
        min_length=1, description="Title of the Label Studio project; commands find the project by it."
    )
    public_handles: list[str] = Field(
        default_factory=list,
        description="Handles that are not private persons (the brands' own accounts): kept, not redacted.",
    )
    import_batch_size: int = Field(default=200, ge=1, le=5000, description="Tasks per import request.")

    @field_validator("public_handles")
    @classmethod
    def _plain_handles(cls, handles: list[str]) -> list[str]:
        for handle in handles:
            if not handle.lstrip("@") or any(ch.isspace() for ch in handle):
                raise ValueError(f"public handle {handle!r} is empty or contains spaces")
        return handles


def load_labeling_settings(path: str | Path = DEFAULT_LABELING_CONFIG_PATH) -> LabelingSettings:
    raw = read_yaml_mapping(path, LabelingSettingsError, "labeling settings file", "a mapping of settings")
    return validate_mapping(LabelingSettings, raw, path, LabelingSettingsError, "labeling settings")
