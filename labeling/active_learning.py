"""Active learning: score an unlabelled pool with the champion model and push the most useful
posts to Label Studio first.

1. Uncertainty per head, scaled to [0, 1] so heads of different sizes weigh the same:
   - entropy: single-label heads, the entropy of the distribution over log(K); multi-label heads,
     the mean binary entropy of the per-label probabilities (in bits);
   - margin: single-label heads, 1 - (top probability - second probability); multi-label heads,
     the mean of 1 - |2p - 1| (how close each label is to a coin toss).
   The post's uncertainty is the mean (or max) over heads.
2. Diversity: among the most uncertain candidates (candidate_factor x batch_size), a greedy
   maximal-marginal-relevance pick on character n-gram TF-IDF vectors, so the batch is not twenty
   copies of one outage; near-duplicates (cosine >= duplicate_similarity) of an already picked
   post are skipped outright.
The selection (strategy, model version, pool, every pick with its scores) is written to a JSON
record and stored on each task.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data.jsonl import LineError, read_posts
from data.locations import VAR_DIR
from data.pii import redact
from data.schema import Post, PostValidator
from data.taxonomy import Taxonomy
from labeling.client import LabelingError, LabelStudioClient
from labeling.importer import ImportReport, existing_tasks, import_posts
from labeling.preannotate import attach_predictions, check_predictor

if TYPE_CHECKING:
    from training.inference.heads import HeadPrediction
    from training.inference.predict import Predictor

UNCERTAINTY_MEASURES = ("entropy", "margin")
AGGREGATIONS = ("mean", "max")
DIVERSITY_METHODS = ("mmr", "none")
DEFAULT_SELECTIONS_DIR = VAR_DIR / "active-learning"


class SelectionConfigError(LabelingError):
    """A selection setting is out of range; the message names it."""


@dataclass
class SelectionConfig:
    """Settings of `smista label select`. Every field has a CLI flag of the same name."""

    batch_size: int = field(default=20, metadata={"help": "How many posts to push to Label Studio."})
    uncertainty: str = field(default="entropy", metadata={"help": "Per-head uncertainty: entropy or margin."})
    aggregate: str = field(default="mean", metadata={"help": "How head uncertainties combine: mean or max."})
    diversity: str = field(default="mmr", metadata={"help": "Diversity step: mmr (TF-IDF, greedy) or none."})
    diversity_weight: float = field(
        default=0.3, metadata={"help": "MMR trade-off: 0 = uncertainty only, 1 = diversity only."}
    )
    candidate_factor: int = field(
        default=5, metadata={"help": "The diversity step picks among the candidate_factor x batch_size most uncertain."}
    )
    duplicate_similarity: float = field(
        default=0.9, metadata={"help": "Cosine similarity at which a candidate counts as a near-duplicate."}
    )

    def __post_init__(self) -> None:
        self.check()  # a config is valid from the moment it exists: no caller has to remember to check it

    def check(self) -> None:
        if self.batch_size < 1:
            raise SelectionConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.uncertainty not in UNCERTAINTY_MEASURES:
            raise SelectionConfigError(f"uncertainty must be one of {UNCERTAINTY_MEASURES}, got {self.uncertainty!r}")
        if self.aggregate not in AGGREGATIONS:
            raise SelectionConfigError(f"aggregate must be one of {AGGREGATIONS}, got {self.aggregate!r}")
        if self.diversity not in DIVERSITY_METHODS:
            raise SelectionConfigError(f"diversity must be one of {DIVERSITY_METHODS}, got {self.diversity!r}")
        if not 0 <= self.diversity_weight <= 1:
            raise SelectionConfigError(f"diversity_weight must be between 0 and 1, got {self.diversity_weight}")
        if self.candidate_factor < 1:
            raise SelectionConfigError(f"candidate_factor must be at least 1, got {self.candidate_factor}")
        if not 0 < self.duplicate_similarity <= 1:
            raise SelectionConfigError(f"duplicate_similarity must be in (0, 1], got {self.duplicate_similarity}")


def head_uncertainty(head: HeadPrediction, multi_label: bool, measure: str) -> float:
    """One head's uncertainty in [0, 1] (see the module docstring)."""
    probabilities = list(head.probabilities.values())
    if multi_label:
        if measure == "entropy":
            values = [_binary_entropy(p) for p in probabilities]
        else:
            values = [1 - abs(2 * p - 1) for p in probabilities]
        return sum(values) / len(values)
    if measure == "entropy":
        if len(probabilities) < 2:
            return 0.0
        entropy = -sum(p * math.log(p) for p in probabilities if p > 0)
        return min(1.0, entropy / math.log(len(probabilities)))
    top, second = (sorted(probabilities, reverse=True) + [0.0])[:2]
    return 1 - (top - second)


def _binary_entropy(p: float) -> float:
    if p <= 0 or p >= 1:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def post_uncertainty(heads: dict[str, HeadPrediction], taxonomy: Taxonomy, config: SelectionConfig) -> tuple[float, dict[str, float]]:
    per_head = {
        name: round(head_uncertainty(heads[name], spec.is_multi_label, config.uncertainty), 6)
        for name, spec in taxonomy.fields.items()
    }
    combine = max if config.aggregate == "max" else (lambda values: sum(values) / len(values))
    return round(combine(list(per_head.values())), 6), per_head


@dataclass(frozen=True)
class Pick:
    index: int  # position in the scored pool
    rank: int  # 1 = push first
    uncertainty: float
    max_similarity: float  # to the posts picked before it (0 for the first)


def select_diverse(texts: Sequence[str], uncertainties: Sequence[float], config: SelectionConfig) -> tuple[list[Pick], int]:
    """Pick up to batch_size posts; returns the picks in rank order and the near-duplicates skipped."""
    order = sorted(range(len(texts)), key=lambda i: (-uncertainties[i], i))
    if config.diversity == "none":
        return [Pick(i, rank, uncertainties[i], 0.0) for rank, i in enumerate(order[: config.batch_size], start=1)], 0
    candidates = order[: config.batch_size * config.candidate_factor]
    if not candidates:
        return [], 0
    similarity = _similarity_matrix([texts[i] for i in candidates])
    picks: list[Pick] = []
    picked: list[int] = []  # positions in `candidates`
    duplicates = 0
    remaining = list(range(len(candidates)))
    while remaining and len(picks) < config.batch_size:
        best, best_score, best_similarity = None, -math.inf, 0.0
        for position in list(remaining):
            closest = max((similarity[position][other] for other in picked), default=0.0)
            if closest >= config.duplicate_similarity:
                remaining.remove(position)
                duplicates += 1
                continue
            score = (1 - config.diversity_weight) * uncertainties[candidates[position]] - config.diversity_weight * closest
            if score > best_score:
                best, best_score, best_similarity = position, score, closest
        if best is None:
            break
        remaining.remove(best)
        picked.append(best)
        index = candidates[best]
        picks.append(Pick(index, len(picks) + 1, uncertainties[index], round(float(best_similarity), 6)))
    return picks, duplicates


def _similarity_matrix(texts: Sequence[str]) -> list[list[float]]:
    """Cosine similarities of character n-gram TF-IDF vectors: robust to typos and inflection, and
    needs no model download."""
    # Lazy: the CLI reads SelectionConfig to build `smista label` flags; sklearn would add 1.0 s to every start-up.
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True).fit_transform(texts)
    return (vectors @ vectors.T).toarray().tolist()  # rows are L2-normalised: the product is the cosine


@dataclass
class SelectionResult:
    record_path: Path
    picks: list[dict[str, Any]]
    pool_size: int
    already_in_project: int
    near_duplicates_skipped: int
    errors: list[LineError]
    import_report: ImportReport


def run_selection(
    client: LabelStudioClient,
    project_id: int,
    pool_path: str | Path,
    predictor: Predictor,
    validator: PostValidator,
    public_handles: Sequence[str],
    config: SelectionConfig,
    selections_dir: str | Path = DEFAULT_SELECTIONS_DIR,
) -> SelectionResult:
    """Score the pool, pick a diverse uncertain batch, import it in rank order with the model's
    predictions attached, and record the selection."""
    taxonomy = validator.taxonomy
    check_predictor(predictor, taxonomy)
    read = read_posts(pool_path, validator, on_error="skip")
    in_project = existing_tasks(client, project_id)
    pool: list[Post] = [post for post in read.posts if post.id not in in_project]
    # The model scores the redacted text: the same text it is trained on and annotators see.
    texts = [redact(post.text, public_handles=public_handles)[0] for post in pool]
    predictions = predictor.predict(texts) if texts else []
    scored = [post_uncertainty(heads, taxonomy, config) for heads in predictions]
    picks, duplicates = select_diverse(texts, [total for total, _ in scored], config)

    started = datetime.now(timezone.utc)
    run_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{_file_hash(pool_path)[:8]}"
    strategy = {"run_id": run_id, "model_version": predictor.model_version, **asdict(config)}
    picked_records = []
    extra_data = {}
    for pick in picks:
        post = pool[pick.index]
        record = {
            "post_id": post.id,
            "rank": pick.rank,
            "uncertainty": pick.uncertainty,
            "per_head": scored[pick.index][1],
            "max_similarity_to_earlier_picks": pick.max_similarity,
        }
        picked_records.append(record)
        extra_data[post.id] = {"selection": {"run_id": run_id, "strategy": config.uncertainty, **record}}
    # Imported in rank order: the project serves tasks in id order, so rank 1 is labelled first.
    selected_posts = [pool[pick.index] for pick in picks]
    report = import_posts(
        client, project_id, selected_posts, validator, public_handles, origin="active_learning", extra_data=extra_data
    )
    task_ids = [report.task_ids[post.id] for post in selected_posts]
    attach_predictions(
        client, project_id, task_ids, [texts[pick.index] for pick in picks], predictor, taxonomy
    )
    record_path = Path(selections_dir) / f"selection-{run_id}.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(
        json.dumps(
            {
                "strategy": strategy,
                "project_id": project_id,
                "pool": {"path": str(pool_path), "sha256": _file_hash(pool_path), "valid_posts": len(read.posts),
                         "bad_lines": len(read.errors), "already_in_project": len(read.posts) - len(pool)},
                "near_duplicates_skipped": duplicates,
                "picks": picked_records,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    return SelectionResult(
        record_path=record_path,
        picks=picked_records,
        pool_size=len(pool),
        already_in_project=len(read.posts) - len(pool),
        near_duplicates_skipped=duplicates,
        errors=read.errors,
        import_report=report,
    )


def _file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
