"""The data a run trains on: build or load the split data set (data.dataset) and check that it fits
the taxonomy and can train a classifier, before any model is loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from datasets import load_from_disk

from data.dataset import SPLITS, BuildConfig, build_dataset
from data.schema import Post
from data.taxonomy import Taxonomy
from training.errors import TrainingDataError
from training.labelled_posts import read_labelled_posts
from training.partial_labels import UNLABELLED, labelled_rows
from training.recipe import DataSettings


@dataclass
class TrainingData:
    dataset_dir: Path
    dataset: object                # datasets.DatasetDict with ClassLabel / Sequence(ClassLabel) columns
    manifest: dict                 # data set manifest: data_hash, split_hashes, sizes, counts
    taxonomy: Taxonomy
    held_out: dict[str, list[Post]] = field(default_factory=dict)  # name -> posts never trained or tuned on

    @property
    def data_hash(self) -> str:
        return self.manifest["data_hash"]

    def texts(self, split: str) -> list[str]:
        return list(self.dataset[split]["text"])

    def targets(self, split: str) -> dict[str, np.ndarray]:
        """field -> label indices (single-label) or [posts, labels] 0/1 (multi-label); a post not
        labelled for a field (partial labels) has -1 there (the whole row for a multi-label field)."""
        rows = self.dataset[split]
        targets = {}
        for name, spec in self.taxonomy.fields.items():
            column = rows[name]
            if spec.is_multi_label:
                matrix = np.zeros((len(column), len(spec.label_ids)), dtype=int)
                for row, indices in enumerate(column):
                    if indices is None:
                        matrix[row] = UNLABELLED
                    else:
                        matrix[row, list(indices)] = 1
                targets[name] = matrix
            else:
                targets[name] = np.asarray(column, dtype=int)
        return targets

    def labelled_sizes(self, split: str) -> dict[str, int]:
        """field -> number of posts of the split labelled for it."""
        return {name: int(labelled_rows(target).sum()) for name, target in self.targets(split).items()}

    def label_counts(self, split: str) -> dict[str, list[int]]:
        """field -> count per label id (taxonomy order), over the posts labelled for the field."""
        counts = {}
        targets = self.targets(split)
        for name, spec in self.taxonomy.fields.items():
            target = targets[name][labelled_rows(targets[name])]
            counts[name] = (target.sum(axis=0) if spec.is_multi_label else np.bincount(target, minlength=len(spec.label_ids))).tolist()
        return counts

    def posts(self, split: str) -> list[Post]:
        return read_labelled_posts(self.dataset_dir / f"{split}.jsonl", self.taxonomy)


def prepare_training_data(settings: DataSettings, taxonomy: Taxonomy, build: bool = True) -> TrainingData:
    """Build the data set from settings.inputs when given (and `build`), then load and check it.

    Under DDP only the main process builds; the others load what it wrote (`build=False`).
    """
    dataset_dir = Path(settings.dataset_dir)
    if settings.inputs and build:
        build_dataset(
            BuildConfig(
                inputs=list(settings.inputs),
                train_validation_inputs=list(settings.train_validation_inputs),
                train_only_inputs=list(settings.train_only_inputs),
                partial_labels=settings.partial_labels,
                output_dir=str(dataset_dir),
                taxonomy=settings.taxonomy,
                seed=settings.split_seed,
            )
        )
    manifest_path = dataset_dir / "manifest.json"
    if not (dataset_dir / "hf").is_dir() or not manifest_path.is_file():
        raise TrainingDataError(
            f"no data set in {dataset_dir} (hf/ and manifest.json): build it with `smista data build "
            f"--output-dir {dataset_dir}` or set data.inputs in the recipe"
        )
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    # Checked on the manifest first: `datasets` cannot even load a split saved with no rows.
    for split in SPLITS:
        if manifest.get("sizes", {}).get(split, 0) == 0:
            raise TrainingDataError(f"the {split} split of {dataset_dir} is empty: add labelled posts and rebuild")
    dataset = load_from_disk(str(dataset_dir / "hf"))
    data = TrainingData(dataset_dir=dataset_dir, dataset=dataset, manifest=manifest, taxonomy=taxonomy)
    check_fits_taxonomy(data)
    check_trainable(data)
    # Under DDP only the main process (the one that builds) says what it found.
    data.held_out = {name: read_held_out(path, data, report=build) for name, path in settings.held_out.items()}
    return data


def check_validation_labels(data: TrainingData, primary_head: str) -> None:
    """The epoch is picked by the primary head's validation score (partial labels: it needs
    labelled validation posts); multi-label thresholds are tuned there too."""
    labelled = data.labelled_sizes("validation")
    missing = [name for name, spec in data.taxonomy.fields.items()
               if labelled[name] == 0 and (name == primary_head or spec.is_multi_label)]
    if missing:
        raise TrainingDataError(
            f"no validation post is labelled for {', '.join(missing)}: the best epoch and the multi-label "
            "thresholds are chosen on validation; add labelled posts to the inputs and rebuild"
        )


def read_held_out(path: str, data: TrainingData, report: bool = True) -> list[Post]:
    """The labelled posts of a held-out file, refused (naming them) if any is also in the data set:
    trained or tuned on, it would no longer measure anything. Read before training, so a wrong file
    fails in seconds, not after an hour."""
    posts = read_labelled_posts(path, data.taxonomy)
    ids = {post_id for split in SPLITS for post_id in data.dataset[split]["id"]}
    shared = [post.id for post in posts if post.id in ids]
    if shared:
        raise TrainingDataError(
            f"held-out file {path}: {len(shared)} post(s) are also in the data set {data.dataset_dir}, e.g. "
            f"{shared[:5]}; a held-out set must never be trained or tuned on: rebuild the data set without them"
        )
    seen_texts = set(data.dataset["train"]["text"]) | set(data.dataset["validation"]["text"])
    repeated = sum(post.text in seen_texts for post in posts)
    if repeated and report:
        # Real comments repeat ("bellissimo", an emoji): not an error, but it is said.
        print(
            f"Held-out {path}: {repeated} of {len(posts)} texts also occur (as other posts) in train or validation",
            flush=True,
        )
    return posts


def check_fits_taxonomy(data: TrainingData) -> None:
    """Every split and head must use exactly the taxonomy's label ids, in its order."""
    taxonomy = data.taxonomy
    missing_splits = [split for split in SPLITS if split not in data.dataset]
    if missing_splits:
        raise TrainingDataError(f"data set {data.dataset_dir} has no {', '.join(missing_splits)} split")
    features = data.dataset["train"].features
    for name, spec in taxonomy.fields.items():
        if name not in features:
            raise TrainingDataError(f"data set {data.dataset_dir} has no column for taxonomy field {name!r}")
        feature = features[name]
        names = getattr(getattr(feature, "feature", feature), "names", None)
        if names is None:
            raise TrainingDataError(f"column {name!r} of {data.dataset_dir} is not a ClassLabel column; rebuild the data set")
        unknown = [label for label in names if label not in spec.label_ids]
        if unknown:
            raise TrainingDataError(
                f"label id(s) {unknown} of field {name!r} in data set {data.dataset_dir} are missing from taxonomy "
                f"v{taxonomy.version} (known: {', '.join(spec.label_ids)}); fix the labels or the taxonomy and "
                "rebuild the data set with `smista data build`"
            )
        if list(names) != spec.label_ids:
            raise TrainingDataError(
                f"field {name!r}: data set {data.dataset_dir} was built with labels {list(names)}, taxonomy "
                f"v{taxonomy.version} has {spec.label_ids}; rebuild the data set with `smista data build`"
            )


def check_trainable(data: TrainingData) -> None:
    """A classifier needs training posts, two classes per single-label head, and posts to tune on."""
    for split in SPLITS:
        if len(data.dataset[split]) == 0:
            raise TrainingDataError(f"the {split} split of {data.dataset_dir} is empty: add labelled posts and rebuild")
    counts = data.label_counts("train")
    labelled = data.labelled_sizes("train")
    for name, spec in data.taxonomy.fields.items():
        if labelled[name] == 0:
            raise TrainingDataError(
                f"no training post is labelled for {name!r} (partial labels): add posts labelled for it and rebuild"
            )
        present = [label for label, count in zip(spec.label_ids, counts[name]) if count > 0]
        if spec.is_multi_label:
            if not present:
                raise TrainingDataError(
                    f"the training split has no post with any {name!r} label: the head would only learn to say no"
                )
        elif len(present) < 2:
            raise TrainingDataError(
                f"the training split has a single class for {name!r} ({', '.join(present)}): a classifier needs "
                "at least two; add posts with other labels and rebuild"
            )
