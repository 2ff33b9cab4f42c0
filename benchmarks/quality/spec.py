"""The benchmark spec: a typed schema that `configs/benchmarks/*.yaml` files fill.

A spec says how to read a public data set (files, delimiter, columns), which heads to train (each
a column of the data set and its label set), the evaluation protocol (the official train/test split
or stratified k-fold cross-validation), the scores to report with their published references, and
which training recipes to run on it. Nothing here is specific to one data set: SENTIPOLC, the
complaints set and BANKING77 are three YAML files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from data.config_files import StrictConfig, read_yaml_mapping, validate_mapping
from data.errors import UserError
from data.taxonomy import ID_PATTERN


class BenchmarkSpecError(UserError, ValueError):
    """A benchmark spec is invalid, or the data set does not match it; the message names the field."""


class FileSpec(StrictConfig):
    path: str = Field(min_length=1, description="File name, relative to the --data-dir given on the command line.")
    header: bool = Field(default=True, description="The first row names the columns (else `columns` names them).")


class HeadDefinition(StrictConfig):
    column: str = Field(min_length=1, description="Column of the data set that holds this head's label.")
    kind: Literal["single", "multi"] = Field(default="single", description="single: one label per post; multi: zero or more.")
    labels: dict[str, str] | Literal["from_data"] = Field(
        description="Label id -> the value in the column (e.g. {'no': '0', 'yes': '1'}), or from_data: every "
        "distinct value of the training data, as a lower-case id."
    )
    separator: str = Field(default=",", min_length=1, description="Multi-label heads: separator of the values in a cell.")

    @field_validator("labels")
    @classmethod
    def _label_ids_plain(cls, labels):
        if isinstance(labels, dict):
            if len(labels) < 2:
                raise ValueError("a head needs at least two labels")
            bad = [label for label in labels if re.fullmatch(ID_PATTERN, label) is None]
            if bad:
                raise ValueError(f"label ids {bad} must be snake_case ({ID_PATTERN})")
            values = list(labels.values())
            if len(set(values)) != len(values):
                raise ValueError("two labels map to the same value")
        return labels


class Protocol(StrictConfig):
    kind: Literal["official_split", "cross_validation"] = Field(
        description="official_split: train on files.train, score files.test; cross_validation: stratified k-fold "
        "over files.all, scores averaged over folds."
    )
    folds: int = Field(default=10, ge=2, description="cross_validation: number of folds.")
    validation_fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of the training posts held out to tune thresholds and pick the best epoch."
    )
    stratify_by: str = Field(description="Single-label head that folds and the validation hold-out are stratified by.")
    seed: int = Field(default=13, description="Seed of the fold assignment and the hold-out.")


class Score(StrictConfig):
    name: str = Field(pattern=ID_PATTERN, description="Name of the score in the results table.")
    metric: Literal["accuracy", "macro_f1", "class_f1", "sentipolc"] = Field(
        description="accuracy or macro_f1 of one head; class_f1: F1 of one label of one head; sentipolc: the "
        "SENTIPOLC 2016 score over binary heads (training/metrics/sentipolc_polarity)."
    )
    heads: list[str] = Field(min_length=1, description="The head(s) it is computed on (one, except for sentipolc).")
    label: str | None = Field(default=None, description="class_f1: the label id whose F1 is reported.")
    positive_label: str = Field(default="yes", description="sentipolc: the label id that means flag = 1.")
    reference: float | None = Field(default=None, description="Published figure to compare with.")
    reference_source: str | None = Field(default=None, description="Where the published figure comes from.")
    target: float | None = Field(default=None, description="The figure the default model must reach.")

    @model_validator(mode="after")
    def _shape(self) -> Score:
        if self.metric != "sentipolc" and len(self.heads) != 1:
            raise ValueError(f"metric {self.metric} is computed on one head, got {self.heads}")
        if (self.metric == "class_f1") != (self.label is not None):
            raise ValueError("label is set exactly for metric class_f1")
        return self


class ModelEntry(StrictConfig):
    recipe: str = Field(min_length=1, description="Training recipe (configs/train/*.yaml) to run on the benchmark.")
    overrides: list[str] = Field(default_factory=list, description="dotted.key=value overrides of the recipe.")


class BenchmarkSpec(StrictConfig):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Benchmark name: run names and the output folder.")
    description: str = Field(min_length=1)
    language: str = Field(default="en", pattern=r"^[a-z]{2}$", description="ISO 639-1 code of the posts.")
    files: dict[Literal["train", "test", "all"], FileSpec] = Field(description="train and test, or all (cross-validation).")
    delimiter: str = Field(default=",", min_length=1, max_length=1, description="Field delimiter of the CSV files.")
    columns: list[str] | None = Field(default=None, description="Column names, for files without a header row.")
    text_column: str = Field(min_length=1, description="Column with the post text.")
    heads: dict[str, HeadDefinition] = Field(min_length=1, description="Head name -> its column and labels.")
    protocol: Protocol
    primary_head: str = Field(description="Single-label head that selects the best epoch.")
    scores: list[Score] = Field(min_length=1, description="What the results table reports.")
    models: dict[str, ModelEntry] = Field(min_length=1, description="Model name -> recipe; every model runs on the same splits.")

    @field_validator("heads")
    @classmethod
    def _head_names_plain(cls, heads):
        bad = [name for name in heads if re.fullmatch(ID_PATTERN, name) is None]
        if bad:
            raise ValueError(f"head names {bad} must be snake_case ({ID_PATTERN})")
        return heads

    @model_validator(mode="after")
    def _consistent(self) -> BenchmarkSpec:
        wanted = {"train", "test"} if self.protocol.kind == "official_split" else {"all"}
        if set(self.files) != wanted:
            raise ValueError(f"protocol {self.protocol.kind} needs files {sorted(wanted)}, got {sorted(self.files)}")
        if any(not spec.header for spec in self.files.values()) and not self.columns:
            raise ValueError("a file without a header row needs `columns` to name its columns")
        for role, head in (("protocol.stratify_by", self.protocol.stratify_by), ("primary_head", self.primary_head)):
            if head not in self.heads:
                raise ValueError(f"{role}: {head!r} is not a head ({', '.join(self.heads)})")
            if self.heads[head].kind != "single":
                raise ValueError(f"{role}: {head!r} is multi-label; pick a single-label head")
        for score in self.scores:
            unknown = [head for head in score.heads if head not in self.heads]
            if unknown:
                raise ValueError(f"score {score.name}: unknown head(s) {unknown} ({', '.join(self.heads)})")
        return self


def load_spec(path: str | Path) -> BenchmarkSpec:
    raw = read_yaml_mapping(path, BenchmarkSpecError, "benchmark spec", "a mapping of benchmark fields")
    return validate_mapping(BenchmarkSpec, raw, path, BenchmarkSpecError, "benchmark spec")
