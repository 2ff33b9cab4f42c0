"""Turn several annotators' labels for one task into one set of gold labels, or flag the task.

- "majority": a single-label field takes the label chosen by more than half of the annotators; a
  multi-label field includes a label chosen by more than half and excludes one chosen by fewer
  than half. Anything else (a tie, a three-way split) is a disagreement.
- "unanimous": every annotator must agree on every field.
A task with a disagreement on any field gets no gold labels: it is flagged for adjudication, never
resolved by a coin toss.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from data.taxonomy import Taxonomy

Strategy = Literal["majority", "unanimous"]
STRATEGIES: tuple[str, ...] = ("majority", "unanimous")


@dataclass
class Resolution:
    labels: dict[str, Any] | None  # None when any field is in disagreement
    disagreements: dict[str, dict[str, int]] = field(default_factory=dict)  # field -> label -> votes


def resolve(annotations: Sequence[dict[str, Any]], taxonomy: Taxonomy, strategy: Strategy = "majority") -> Resolution:
    """Resolve one task's annotations (each a complete label dict, already checked against the taxonomy)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"resolution strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if not annotations:
        raise ValueError("a task needs at least one annotation to resolve")
    total = len(annotations)
    needed = total if strategy == "unanimous" else total // 2 + 1
    labels: dict[str, Any] = {}
    disagreements: dict[str, dict[str, int]] = {}
    for name, spec in taxonomy.fields.items():
        if spec.is_multi_label:
            votes = Counter(label for annotation in annotations for label in annotation[name])
            chosen = [label for label in spec.label_ids if votes[label] >= needed]
            # A label is settled when enough annotators chose it or enough left it out.
            unsettled = {label: votes[label] for label in votes if needed > votes[label] > total - needed}
            if unsettled:
                disagreements[name] = dict(votes)
            labels[name] = chosen
        else:
            votes = Counter(annotation[name] for annotation in annotations)
            label, count = votes.most_common(1)[0]
            if count >= needed:
                labels[name] = label
            else:
                disagreements[name] = dict(votes)
    return Resolution(labels=None if disagreements else labels, disagreements=disagreements)
