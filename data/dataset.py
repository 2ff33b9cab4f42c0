"""Build the train/validation/test data set from labelled JSONL posts.

Raw JSONL files are immutable inputs; everything here is derived and rebuilt by `smista data build`.
The split is deterministic (fixed seed, posts ordered by id first, so file order does not matter)
and stratified by one field (intent by default) with largest-remainder allocation, so every label
of that field lands in each split in proportion.

Two further kinds of input join only some splits: `train_validation_inputs` (e.g. real annotated
posts whose own test set is held out elsewhere) are split into train and validation only, so the
test split stays exactly the split of `inputs`; `train_only_inputs` (e.g. sentiment-only posts of a
public corpus) join the training split alone, so validation keeps measuring what it measured.

With `partial_labels`, a post may carry labels for some fields only. A missing single-label field
is stored as -1 (the `datasets` ClassLabel value for "no label"), a missing multi-label field as
null (an empty list means "labelled: none of these"), and the `labelled_heads` column names the
fields each post is labelled for.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data.errors import UserError
from data.jsonl import LineError, PostFileError, read_posts, write_posts
from data.locations import BUILD_DIR, PACKAGE_DIR
from data.schema import DEFAULT_MAX_TEXT_CHARS, Post, PostValidator
from data.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy, load_taxonomy

SEED_DATA_DIR = PACKAGE_DIR / "seed"
SPLITS = ("train", "validation", "test")
LABELLED_HEADS = "labelled_heads"
UNLABELLED_GROUP = "(unlabelled)"  # stratification group of posts without the stratify field


class DatasetBuildError(UserError, ValueError):
    """The inputs cannot make a valid data set; the message says which post or setting and why."""


@dataclass
class BuildConfig:
    """Settings of `smista data build`. Every field has a CLI flag of the same name."""

    inputs: list[str] = field(
        default_factory=lambda: [str(SEED_DATA_DIR / "*.jsonl")],
        metadata={"help": "JSONL files or glob patterns of labelled posts."},
    )
    train_validation_inputs: list[str] = field(
        default_factory=list,
        metadata={
            "help": "JSONL files or globs of labelled posts split into train and validation only (never test), "
            "at the same train:validation ratio as the inputs."
        },
    )
    train_only_inputs: list[str] = field(
        default_factory=list,
        metadata={"help": "JSONL files or globs of labelled posts that join the training split only."},
    )
    partial_labels: bool = field(
        default=False,
        metadata={"help": "Accept posts labelled for some fields only (at least one); the others are left unlabelled."},
    )
    output_dir: str = field(
        default=str(BUILD_DIR / "dataset"),
        metadata={"help": "Where the DatasetDict, the split JSONL files and the manifest go."},
    )
    taxonomy: str = field(default=str(DEFAULT_TAXONOMY_PATH), metadata={"help": "Taxonomy YAML file."})
    test_fraction: float = field(default=0.2, metadata={"help": "Share of posts in the test split."})
    validation_fraction: float = field(
        default=0.1, metadata={"help": "Share of posts in the validation split."}
    )
    seed: int = field(default=13, metadata={"help": "Seed of the split shuffle."})
    stratify_by: str = field(default="intent", metadata={"help": "Single-label field to stratify on."})
    max_text_chars: int = field(
        default=DEFAULT_MAX_TEXT_CHARS, metadata={"help": "Longest accepted post text."}
    )

    def check(self, taxonomy: Taxonomy) -> None:
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise DatasetBuildError(f"{name} must be between 0 and 1 (exclusive), got {value}")
        if self.test_fraction + self.validation_fraction >= 1:
            raise DatasetBuildError(
                "test_fraction + validation_fraction must leave posts for training, got "
                f"{self.test_fraction} + {self.validation_fraction}"
            )
        spec = taxonomy.field(self.stratify_by)
        if spec.is_multi_label:
            raise DatasetBuildError(f"stratify_by={self.stratify_by!r} is multi-label; pick a single-label field")


@dataclass
class BuildResult:
    output_dir: Path
    splits: dict[str, list[Post]]
    data_hash: str
    taxonomy_version: str
    counts: dict[str, dict[str, dict[str, int]]]  # split -> field -> label -> count


def expand_inputs(patterns: Iterable[str]) -> list[Path]:
    """Expand globs; a pattern that matches nothing is an error, not an empty data set."""
    paths: list[Path] = []
    for pattern in patterns:
        if glob.has_magic(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise DatasetBuildError(f"input pattern {pattern!r} matches no file")
            paths.extend(Path(match) for match in matches)
        elif Path(pattern).is_file():
            paths.append(Path(pattern))
        else:
            raise DatasetBuildError(f"input file {pattern!r} not found")
    return paths


def load_labelled_posts(
    paths: Sequence[Path], validator: PostValidator, partial: bool = False, seen: dict[str, Path] | None = None
) -> list[Post]:
    """Read every file strictly and require gold labels on every post: all fields, or with `partial`
    at least one. `seen` (id -> file) carries ids across calls so that no id is used twice."""
    posts: list[Post] = []
    seen = {} if seen is None else seen
    for path in paths:
        for post in read_posts(path, validator, on_error="raise").posts:
            if post.id in seen:
                raise DatasetBuildError(f"post id {post.id!r} appears in both {seen[post.id]} and {path}")
            seen[post.id] = path
            missing = [name for name in validator.taxonomy.fields if name not in (post.labels or {})]
            if missing and (not partial or len(missing) == len(validator.taxonomy.fields)):
                fix = "" if partial else (
                    " (to train each head on the posts labelled for it: `smista data build --partial-labels`, "
                    "or `data.partial_labels: true` in a recipe)"
                )
                raise PostFileError(
                    [LineError(path, _line_of(path, post.id), f"labels: missing gold label(s) for {', '.join(missing)}{fix}")]
                )
            posts.append(post)
    if not posts:
        raise DatasetBuildError("no labelled posts in the inputs")
    return posts


def labelled_fields(post: Post, taxonomy: Taxonomy) -> list[str]:
    return [name for name in taxonomy.fields if name in (post.labels or {})]


def _line_of(path: Path, post_id: str) -> int:
    needle = json.dumps(post_id, ensure_ascii=False)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if f'"id": {needle}' in line or f'"id":{needle}' in line:
                return number
    return 0


def allocate(group_sizes: dict[str, int], total: int) -> dict[str, int]:
    """Share `total` items among groups in proportion to their sizes (largest remainder).

    Each group gets the floor or the ceiling of its exact quota; ties go to the group name
    that sorts first, so the result is deterministic.
    """
    population = sum(group_sizes.values())
    total = min(total, population)
    if total == 0:
        return {name: 0 for name in group_sizes}
    quotas = {name: size * total / population for name, size in group_sizes.items()}
    shares = {name: math.floor(quota) for name, quota in quotas.items()}
    leftover = total - sum(shares.values())
    by_remainder = sorted(quotas, key=lambda name: (-(quotas[name] - shares[name]), name))
    for name in by_remainder[:leftover]:
        shares[name] += 1
    return shares


def stratified_split(
    posts: Sequence[Post], field_name: str, test_fraction: float, validation_fraction: float, seed: int
) -> dict[str, list[Post]]:
    """Split posts into train/validation/test, stratified by one single-label field."""
    groups = _shuffled_groups(posts, field_name, seed)
    sizes = {name: len(members) for name, members in groups.items()}
    # ceil: "test is at least 20%" must hold after rounding too.
    test_shares = allocate(sizes, math.ceil(len(posts) * test_fraction))
    remaining = {name: sizes[name] - test_shares[name] for name in sizes}
    validation_shares = allocate(remaining, math.ceil(len(posts) * validation_fraction))
    splits: dict[str, list[Post]] = {split: [] for split in SPLITS}
    for name in sorted(groups):
        members = groups[name]
        n_test, n_validation = test_shares[name], validation_shares[name]
        splits["test"].extend(members[:n_test])
        splits["validation"].extend(members[n_test : n_test + n_validation])
        splits["train"].extend(members[n_test + n_validation :])
    for split in SPLITS:
        splits[split].sort(key=lambda p: p.id)
    return splits


def _shuffled_groups(posts: Sequence[Post], field_name: str, seed: int) -> dict[str, list[Post]]:
    """Posts grouped by their label of `field_name`, each group in a seeded shuffle of id order."""
    groups: dict[str, list[Post]] = {}
    for post in sorted(posts, key=lambda p: p.id):
        label = (post.labels or {}).get(field_name)
        groups.setdefault(UNLABELLED_GROUP if label is None else str(label), []).append(post)
    rng = random.Random(seed)
    for name in sorted(groups):
        rng.shuffle(groups[name])
    return groups


def stratified_holdout(posts: Sequence[Post], field_name: str, fraction: float, seed: int) -> tuple[list[Post], list[Post]]:
    """(kept, held_out): hold out `fraction` of the posts (rounded up), stratified by one field."""
    groups = _shuffled_groups(posts, field_name, seed)
    shares = allocate({name: len(members) for name, members in groups.items()}, math.ceil(len(posts) * fraction))
    kept: list[Post] = []
    held_out: list[Post] = []
    for name in sorted(groups):
        held_out.extend(groups[name][: shares[name]])
        kept.extend(groups[name][shares[name] :])
    return sorted(kept, key=lambda p: p.id), sorted(held_out, key=lambda p: p.id)


def stratified_folds(posts: Sequence[Post], field_name: str, folds: int, seed: int) -> list[list[Post]]:
    """`folds` disjoint parts of the posts for cross-validation, each with every label of one field
    in proportion: each label's shuffled posts are dealt to the folds in turn, continuing where the
    previous label stopped so that fold sizes differ by at most one."""
    if folds < 2:
        raise DatasetBuildError(f"cross-validation needs at least 2 folds, got {folds}")
    if len(posts) < folds:
        raise DatasetBuildError(f"{len(posts)} posts are too few for {folds} folds")
    parts: list[list[Post]] = [[] for _ in range(folds)]
    position = 0
    for members in (members for _, members in sorted(_shuffled_groups(posts, field_name, seed).items())):
        for post in members:
            parts[position % folds].append(post)
            position += 1
    return [sorted(part, key=lambda p: p.id) for part in parts]


def label_counts(posts: Iterable[Post], taxonomy: Taxonomy) -> dict[str, dict[str, int]]:
    """field -> label -> count, every taxonomy label listed (zeros included)."""
    counters = {name: Counter() for name in taxonomy.fields}
    for post in posts:
        for name, spec in taxonomy.fields.items():
            value = (post.labels or {}).get(name)
            if value is None:
                continue  # unlabelled for this field (partial labels)
            counters[name].update(value if spec.is_multi_label else [value])
    return {name: {label: counters[name][label] for label in spec.label_ids} for name, spec in taxonomy.fields.items()}


def data_hash(posts: Iterable[Post]) -> str:
    """Content hash of a set of posts, independent of order: the data set version MLflow records."""
    digest = hashlib.sha256()
    for line in sorted(json.dumps(p.to_json_dict(), sort_keys=True, ensure_ascii=False) for p in posts):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def labelled_counts(posts: Iterable[Post], taxonomy: Taxonomy) -> dict[str, int]:
    """field -> number of posts labelled for it."""
    posts = list(posts)
    return {name: sum(name in (post.labels or {}) for post in posts) for name in taxonomy.fields}


def dataset_features(taxonomy: Taxonomy):
    """datasets.Features with a ClassLabel per single-label field (-1: unlabelled), a
    Sequence(ClassLabel) per multi-label field (null: unlabelled), and `labelled_heads`: the fields
    each post is labelled for."""
    # `datasets` only where the hf/ folder is made: 0.9 s and 140 MB on import, which every reader of
    # the JSONL splits (training data, evaluation, the CLI parser) would otherwise pay.
    from datasets import ClassLabel, Features, Sequence, Value

    columns = {
        "id": Value("string"),
        "text": Value("string"),
        "channel": Value("string"),
        "language": Value("string"),
        "sector": Value("string"),
    }
    for name, spec in taxonomy.fields.items():
        label = ClassLabel(names=spec.label_ids)
        columns[name] = Sequence(label) if spec.is_multi_label else label
    columns[LABELLED_HEADS] = Sequence(ClassLabel(names=list(taxonomy.fields)))
    return Features(columns)


def to_dataset_dict(splits: dict[str, list[Post]], taxonomy: Taxonomy):
    from datasets import Dataset, DatasetDict  # lazy: see dataset_features

    features = dataset_features(taxonomy)
    return DatasetDict(
        {split: Dataset.from_list([_row(post, taxonomy) for post in posts], features=features) for split, posts in splits.items()}
    )


def _row(post: Post, taxonomy: Taxonomy) -> dict:
    row = {"id": post.id, "text": post.text, "channel": post.channel, "language": post.language, "sector": post.sector}
    labels = post.labels or {}
    for name, spec in taxonomy.fields.items():
        row[name] = labels.get(name, None if spec.is_multi_label else -1)
    row[LABELLED_HEADS] = labelled_fields(post, taxonomy)
    return row


def disable_progress_bars() -> None:
    from datasets.utils.logging import disable_progress_bar  # lazy: see dataset_features

    disable_progress_bar()


def build_dataset(config: BuildConfig) -> BuildResult:
    """Validate the inputs, split them, and write the DatasetDict, split JSONL files and a manifest."""
    taxonomy = load_taxonomy(config.taxonomy)
    config.check(taxonomy)
    validator = PostValidator(taxonomy, max_text_chars=config.max_text_chars)
    seen: dict[str, Path] = {}
    posts = load_labelled_posts(expand_inputs(config.inputs), validator, config.partial_labels, seen)
    splits = stratified_split(posts, config.stratify_by, config.test_fraction, config.validation_fraction, config.seed)
    for split in SPLITS:
        if not splits[split]:
            raise DatasetBuildError(f"split {split!r} is empty: {len(posts)} posts are too few for these fractions")
    if config.train_validation_inputs:
        added = load_labelled_posts(expand_inputs(config.train_validation_inputs), validator, config.partial_labels, seen)
        # The inputs' own train:validation ratio, e.g. 0.1 / (1 - 0.2) = 1 in 8.
        share = config.validation_fraction / (1 - config.test_fraction)
        train, validation = stratified_holdout(added, config.stratify_by, share, config.seed)
        splits["train"] = sorted(splits["train"] + train, key=lambda p: p.id)
        splits["validation"] = sorted(splits["validation"] + validation, key=lambda p: p.id)
    if config.train_only_inputs:
        added = load_labelled_posts(expand_inputs(config.train_only_inputs), validator, config.partial_labels, seen)
        splits["train"] = sorted(splits["train"] + added, key=lambda p: p.id)

    return write_dataset(splits, taxonomy, Path(config.output_dir), asdict(config))


def write_dataset(splits: dict[str, list[Post]], taxonomy: Taxonomy, output_dir: Path, config: dict) -> BuildResult:
    """Write split posts as the DatasetDict (hf/), one JSONL file per split and manifest.json.

    `config` is recorded in the manifest: how the splits were made (the build settings, or a
    benchmark's protocol and fold).
    """
    disable_progress_bars()  # a bar per split of a 1,000-post save is noise
    output_dir.mkdir(parents=True, exist_ok=True)
    to_dataset_dict(splits, taxonomy).save_to_disk(str(output_dir / "hf"))
    for split, members in splits.items():
        write_posts(output_dir / f"{split}.jsonl", members)
    counts = {split: label_counts(members, taxonomy) for split, members in splits.items()}
    every_post = [post for members in splits.values() for post in members]
    result = BuildResult(
        output_dir=output_dir,
        splits=splits,
        data_hash=data_hash(every_post),
        taxonomy_version=taxonomy.version,
        counts=counts,
    )
    manifest = {
        "data_hash": result.data_hash,
        "taxonomy_version": taxonomy.version,
        "config": config,
        "sizes": {split: len(members) for split, members in splits.items()},
        "split_hashes": {split: data_hash(members) for split, members in splits.items()},
        "labelled": {split: labelled_counts(members, taxonomy) for split, members in splits.items()},
        "counts": counts,
    }
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def format_counts(counts: dict[str, dict[str, dict[str, int]]]) -> str:
    """A plain-text table: one row per field/label, one column per split, plus the total."""
    splits = list(counts)
    header = f"{'field':<16}{'label':<22}" + "".join(f"{s:>12}" for s in splits) + f"{'total':>8}"
    lines = [header, "-" * len(header)]
    first = counts[splits[0]]
    for field_name, labels in first.items():
        for label in labels:
            values = [counts[s][field_name][label] for s in splits]
            lines.append(f"{field_name:<16}{label:<22}" + "".join(f"{v:>12}" for v in values) + f"{sum(values):>8}")
    return "\n".join(lines)
