"""Read a YAML config file into a typed schema, with errors that name the file and the problem.

Every config of the project (taxonomy, routing rules, training recipes, labeling settings) is a
YAML mapping that fills a pydantic schema; this is the one place that reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from data.errors import describe_validation_error

Schema = TypeVar("Schema", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base of every config schema: a misspelt key would silently fall back to a default (or disable
    a routing rule), so unknown keys are refused; a loaded config is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _int_as_text(value: object) -> object:
    # `version: 1` in YAML is an int; accept it as the text it stands for.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# The `version` of a config file (taxonomy, routing rules): non-empty text, written as a number or not.
VersionText = Annotated[str, Field(min_length=1), BeforeValidator(_int_as_text)]


def read_yaml_mapping(path: str | Path, error: type[Exception], file_kind: str, expected: str) -> dict[str, Any]:
    """The file's top-level mapping; `error` names the file when it is missing, not YAML or not a mapping.

    file_kind: what the file is, e.g. "taxonomy file"; expected: what the mapping should hold.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: {file_kind} not found") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise error(f"{path}: expected {expected}, got {type(raw).__name__}")
    return raw


def validate_mapping(schema: type[Schema], raw: dict[str, Any], source: str | Path, error: type[Exception], noun: str) -> Schema:
    """`raw` validated by `schema`; `error` lists every bad field as '<path>: <problem>'."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{source}: invalid {noun}:\n{describe_validation_error(exc)}") from None
