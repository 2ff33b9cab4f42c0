"""Deployment settings of the services, in one typed place, read from `SMISTA_*` environment
variables (what `bentoml serve` passes to every worker). Nothing else in serving/ reads the
environment.

| variable | field |
|---|---|
| SMISTA_MODEL | model |
| SMISTA_RUNTIME | runtime (torch, onnx, onnx-int8; unset: the one recorded on the model version, else torch) |
| SMISTA_TAXONOMY | taxonomy_path |
| SMISTA_ROUTING_CONFIG | routing_config_path |
| SMISTA_DATABASE_URL | database_url |
| SMISTA_API_KEYS | api_keys (comma-separated) |
| SMISTA_REQUIRE_API_KEY | require_api_key (true/false) |
| SMISTA_MAX_REQUEST_BYTES | max_request_bytes |
| SMISTA_MAX_POSTS_PER_REQUEST | max_posts_per_request |
| SMISTA_MAX_TEXT_CHARS | max_text_chars |
| SMISTA_STORE_POST_TEXT | store_post_text (true/false) |
| SMISTA_CLASSIFIER_WORKERS | classifier_workers |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError, field_validator, model_validator

from data.errors import UserError, describe_validation_error
from data.locations import BUILD_DIR
from data.schema import DEFAULT_MAX_TEXT_CHARS
from data.taxonomy import DEFAULT_TAXONOMY_PATH
from serving.routing_config import DEFAULT_ROUTING_PATH
from training.inference.runtimes import RUNTIMES
from training.machine import available_cores

DEFAULT_MODEL = "models:/smista-classifier@champion"
Runtime = Literal[RUNTIMES]
DEFAULT_DATABASE_URL = f"sqlite:///{BUILD_DIR / 'serving' / 'smista.db'}"
_FIELD_TO_VARIABLE = {
    "model": "SMISTA_MODEL",
    "runtime": "SMISTA_RUNTIME",
    "taxonomy_path": "SMISTA_TAXONOMY",
    "routing_config_path": "SMISTA_ROUTING_CONFIG",
    "database_url": "SMISTA_DATABASE_URL",
    "api_keys": "SMISTA_API_KEYS",
    "require_api_key": "SMISTA_REQUIRE_API_KEY",
    "max_request_bytes": "SMISTA_MAX_REQUEST_BYTES",
    "max_posts_per_request": "SMISTA_MAX_POSTS_PER_REQUEST",
    "max_text_chars": "SMISTA_MAX_TEXT_CHARS",
    "store_post_text": "SMISTA_STORE_POST_TEXT",
    "classifier_workers": "SMISTA_CLASSIFIER_WORKERS",
    "database_lock_timeout_s": "SMISTA_DATABASE_LOCK_TIMEOUT_S",
}


# Bounded so that a typo (1000) fails at start-up instead of forking a thousand model copies.
ClassifierWorkers = Annotated[int, Field(ge=1, le=64)]


# The Classifier service's name: bentoml names its workers' processes after it (`--service-name`),
# which is how the speed bench finds the Classifier worker's memory among the server's processes.
CLASSIFIER_SERVICE_NAME = "smista_classifier"


class SettingsError(UserError, ValueError):
    """A SMISTA_* variable is invalid or missing; the message names it."""


class ServingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        default=DEFAULT_MODEL,
        description="Model to serve: a local model directory or an MLflow URI (models:/name@alias, runs:/id/model).",
    )
    runtime: Runtime | None = Field(
        default=None,
        description="How the Classifier runs a transformer model: torch (as trained), onnx (the ONNX export, fp32, "
        "onnxruntime) or onnx-int8 (the export dynamically quantised to int8). A missing or stale export is made "
        "when the service starts. A TF-IDF baseline accepts only torch. Unset: the runtime recorded on the "
        "registry version (`smista models check-runtime --choose`), else torch.",
    )
    taxonomy_path: Path = Field(default=DEFAULT_TAXONOMY_PATH, description="Taxonomy YAML file.")
    routing_config_path: Path = Field(default=DEFAULT_ROUTING_PATH, description="Routing rules YAML file.")
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        repr=False,  # a PostgreSQL URL may carry a password
        description="SQLAlchemy URL of the prediction and feedback store.",
    )
    database_lock_timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="How long a write waits for a locked SQLite database before the request is answered 503.",
    )
    api_keys: tuple[SecretStr, ...] = Field(
        default=(), description="Accepted API keys; SecretStr so that no repr or log shows them."
    )
    require_api_key: bool = Field(default=True, description="Require a key on every endpoint but health.")
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="Largest accepted request body.")
    max_posts_per_request: int = Field(default=64, ge=1, description="Most posts in one /classify or /route request.")
    max_text_chars: int = Field(default=DEFAULT_MAX_TEXT_CHARS, ge=1, description="Longest accepted post text.")
    store_post_text: bool = Field(
        default=True, description="Store post texts with predictions, so corrections can go back to annotators."
    )
    classifier_workers: ClassifierWorkers = Field(
        default=1,
        description="Classifier worker processes. The cores are shared out among them: each runs the model on "
        "cores // workers threads (at least one).",
    )

    @property
    def model_threads(self) -> int:
        """Threads each Classifier worker gives the model, so that all workers together use every core
        of this process's affinity mask once and no more (more threads than cores spin against each other)."""
        return max(1, available_cores() // self.classifier_workers)

    @field_validator("runtime", mode="before")
    @classmethod
    def _known_runtime(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            if value not in RUNTIMES:
                raise ValueError(f"unknown runtime {value!r}; expected one of: {', '.join(RUNTIMES)}")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _long_enough(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for position, key in enumerate(keys, start=1):
            if len(key.get_secret_value()) < 16:
                raise ValueError(f"key #{position} is shorter than 16 characters: too easy to guess")
        return keys

    @model_validator(mode="after")
    def _keys_when_required(self) -> ServingSettings:
        if self.require_api_key and not self.api_keys:
            raise ValueError(
                "no API keys: set SMISTA_API_KEYS (comma-separated), or SMISTA_REQUIRE_API_KEY=false "
                "for a service that only listens on a trusted loopback"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        environ = os.environ if environ is None else environ
        values = {field: environ[variable] for field, variable in _FIELD_TO_VARIABLE.items() if variable in environ}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            details = describe_validation_error(exc)
            for field, variable in _FIELD_TO_VARIABLE.items():
                details = details.replace(f"  {field}:", f"  {variable}:")
            raise SettingsError(f"invalid serving settings:\n{details}") from None

    def describe(self) -> str:
        """One line for the start-up log: what is served and where, never the keys."""
        return (
            f"model={self.model} runtime={self.runtime or 'recorded on the model version, else torch'} taxonomy={self.taxonomy_path} routing={self.routing_config_path} "
            f"database={_redacted_url(self.database_url)} api_keys={len(self.api_keys)} "
            f"require_api_key={self.require_api_key} max_posts_per_request={self.max_posts_per_request} "
            f"max_request_bytes={self.max_request_bytes} max_text_chars={self.max_text_chars} "
            f"classifier_workers={self.classifier_workers} model_threads={self.model_threads}"
        )

    def to_env(self) -> dict[str, str]:
        """The variables that reproduce these settings in another process (keys included: pass the
        result to a child process's environment, never to a log)."""
        env = {
            "SMISTA_MODEL": self.model,
            "SMISTA_TAXONOMY": str(self.taxonomy_path),
            "SMISTA_ROUTING_CONFIG": str(self.routing_config_path),
            "SMISTA_DATABASE_URL": self.database_url,
            "SMISTA_REQUIRE_API_KEY": "true" if self.require_api_key else "false",
            "SMISTA_MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "SMISTA_MAX_POSTS_PER_REQUEST": str(self.max_posts_per_request),
            "SMISTA_MAX_TEXT_CHARS": str(self.max_text_chars),
            "SMISTA_STORE_POST_TEXT": "true" if self.store_post_text else "false",
            "SMISTA_CLASSIFIER_WORKERS": str(self.classifier_workers),
            "SMISTA_DATABASE_LOCK_TIMEOUT_S": str(self.database_lock_timeout_s),
        }
        if self.runtime is not None:
            env["SMISTA_RUNTIME"] = self.runtime
        if self.api_keys:
            env["SMISTA_API_KEYS"] = ",".join(key.get_secret_value() for key in self.api_keys)
        return env


def classifier_workers_from_env(environ: Mapping[str, str] | None = None) -> int:
    """SMISTA_CLASSIFIER_WORKERS alone, validated as the settings field is: BentoML needs the worker
    count when service.py is imported, before any worker builds the full settings (which need keys)."""
    environ = os.environ if environ is None else environ
    value = environ.get(_FIELD_TO_VARIABLE["classifier_workers"])
    if value is None:
        return ServingSettings.model_fields["classifier_workers"].default
    try:
        return TypeAdapter(ClassifierWorkers).validate_python(value.strip())
    except ValidationError as exc:
        raise SettingsError(
            f"invalid serving settings:\n  SMISTA_CLASSIFIER_WORKERS: {exc.errors()[0]['msg']} (got {value!r}); "
            "expected a whole number of worker processes from 1 to 64"
        ) from None


def _redacted_url(url: str) -> str:
    # Lazy: the CLI reads this module for its defaults; SQLAlchemy would add 0.2 s to every start-up.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
