"""Inter-annotator agreement per taxonomy field: Cohen's kappa per pair of annotators and Fleiss'
kappa over every task with two or more annotations.

A multi-label field is measured label by label (present / absent), as `business_action.disdetta`,
because "how often do two people pick the same set" hides which label they disagree on.
Kappa is undefined (None) when chance agreement is 1, i.e. every rating used one category.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from data.taxonomy import Taxonomy

# One task's ratings for one measured field: annotator -> category.
Ratings = dict[Hashable, Hashable]


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa of two raters over the same items, in order."""
    if len(first) != len(second):
        raise ValueError(f"the raters rated {len(first)} and {len(second)} items; pair them first")
    if not first:
        return None
    total = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / total
    first_share, second_share = Counter(first), Counter(second)
    expected = sum(first_share[c] * second_share[c] for c in first_share) / (total * total)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def fleiss_kappa(items: Sequence[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa; each item is the list of categories its raters chose. Items may have different
    numbers of raters (the usual generalisation: each item's agreement is averaged over its own
    rater pairs, category shares are pooled over all ratings); items with one rating are ignored."""
    rated = [list(ratings) for ratings in items if len(ratings) >= 2]
    if not rated:
        return None
    per_item_agreement = []
    pooled: Counter = Counter()
    for ratings in rated:
        counts = Counter(ratings)
        raters = len(ratings)
        per_item_agreement.append((sum(n * n for n in counts.values()) - raters) / (raters * (raters - 1)))
        pooled.update(counts)
    observed = sum(per_item_agreement) / len(rated)
    all_ratings = sum(pooled.values())
    expected = sum((n / all_ratings) ** 2 for n in pooled.values())
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def measured_values(labels: dict[str, Any], taxonomy: Taxonomy) -> dict[str, Hashable]:
    """One annotation's labels as measured fields: single-label fields as they are, multi-label
    fields split into one present/absent value per label."""
    values: dict[str, Hashable] = {}
    for name, spec in taxonomy.fields.items():
        if name not in labels:
            continue
        if spec.is_multi_label:
            chosen = set(labels[name])
            for label_id in spec.label_ids:
                values[f"{name}.{label_id}"] = label_id in chosen
        else:
            values[name] = labels[name]
    return values


@dataclass
class FieldAgreement:
    items: int  # tasks with two or more ratings of this field
    fleiss_kappa: float | None
    cohen_kappa: dict[str, dict[str, Any]] = field(default_factory=dict)  # "a|b" -> {kappa, items}

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "fleiss_kappa": self.fleiss_kappa, "cohen_kappa": self.cohen_kappa}


def agreement_by_field(tasks: Sequence[dict[Hashable, dict[str, Any]]], taxonomy: Taxonomy) -> dict[str, FieldAgreement]:
    """`tasks`: for each task, annotator -> that annotator's labels. Returns measured field -> agreement."""
    per_field: dict[str, list[Ratings]] = {}
    for annotations in tasks:
        measured = {annotator: measured_values(labels, taxonomy) for annotator, labels in annotations.items()}
        names = {name for values in measured.values() for name in values}
        for name in names:
            ratings = {annotator: values[name] for annotator, values in measured.items() if name in values}
            per_field.setdefault(name, []).append(ratings)
    result: dict[str, FieldAgreement] = {}
    for name in sorted(per_field):
        task_ratings = [ratings for ratings in per_field[name] if len(ratings) >= 2]
        agreement = FieldAgreement(items=len(task_ratings), fleiss_kappa=fleiss_kappa([list(r.values()) for r in task_ratings]))
        annotators = sorted({annotator for ratings in task_ratings for annotator in ratings}, key=str)
        for first, second in combinations(annotators, 2):
            shared = [r for r in task_ratings if first in r and second in r]
            if shared:
                kappa = cohen_kappa([r[first] for r in shared], [r[second] for r in shared])
                agreement.cohen_kappa[f"{first}|{second}"] = {"kappa": kappa, "items": len(shared)}
        result[name] = agreement
    return result
