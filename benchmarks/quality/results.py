"""Benchmark results: what one run of a benchmark measured, saved as JSON and shown as a table.

`smista benchmark table` puts every results.json under build/benchmarks/ into one Markdown table,
the form docs/BENCHMARKS.md records them in.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from training.evaluation.evaluate import EvaluationReport


@dataclass
class ModelResult:
    model: str
    recipe: str
    overrides: list[str]
    splits: list[str] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)          # score -> one value per split
    head_macro_f1: dict[str, list[float]] = field(default_factory=dict)   # head -> one value per split
    train_seconds: list[float] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    run_dirs: list[str] = field(default_factory=list)

    def add_split(self, split: str, scores: dict[str, float], report: EvaluationReport, train_seconds: float, run_id: str, run_dir: str) -> None:
        self.splits.append(split)
        for name, value in scores.items():
            self.scores.setdefault(name, []).append(value)
        for name, head in report.heads.items():
            self.head_macro_f1.setdefault(name, []).append(head.macro_f1)
        self.train_seconds.append(train_seconds)
        self.run_ids.append(run_id)
        self.run_dirs.append(run_dir)

    def mean(self, score: str) -> float:
        return statistics.fmean(self.scores[score])

    def spread(self, score: str) -> float:
        values = self.scores[score]
        return statistics.stdev(values) if len(values) > 1 else 0.0


@dataclass
class BenchmarkResult:
    name: str
    description: str
    protocol: dict
    sizes: dict[str, dict[str, int]]
    scores: list[dict]                      # the spec's score definitions (reference, target, ...)
    models: dict[str, ModelResult]
    machine: str
    date: str
    wall_seconds: float

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> BenchmarkResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["models"] = {name: ModelResult(**model) for name, model in data["models"].items()}
        return cls(**data)

    def markdown(self) -> str:
        """One row per model and one for the published reference; a column per score plus train time."""
        folds = len(next(iter(self.models.values())).splits) if self.models else 0
        cross_validation = self.protocol["kind"] == "cross_validation"
        protocol = f"{folds}-fold stratified cross-validation, mean ± sd" if cross_validation else "official train/test split"
        header = ["model", *(score["name"] for score in self.scores), "train time (s)"]
        lines = [
            f"**{self.name}**: {self.description} ({protocol}; {self.machine}; {self.date}; whole run {self.wall_seconds / 60:.1f} min)",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for result in self.models.values():
            cells = [f"{result.model} (`{result.recipe}`)"]
            for score in self.scores:
                name = score["name"]
                value = f"{result.mean(name):.3f}"
                if cross_validation:
                    value += f" ± {result.spread(name):.3f}"
                target = score.get("target")
                if target is not None:
                    value += " ✓" if result.mean(name) >= target else f" (target {target:.2f}: −{target - result.mean(name):.3f})"
                cells.append(value)
            seconds = sum(result.train_seconds)
            cells.append(f"{seconds:.0f}" + (f" ({folds} folds)" if cross_validation else ""))
            lines.append("| " + " | ".join(cells) + " |")
        references = [f"{score['reference']:.2f}" if score.get("reference") is not None else "" for score in self.scores]
        if any(references):
            sources = "; ".join(sorted({score["reference_source"] for score in self.scores if score.get("reference_source")}))
            lines.append("| published: " + sources + " | " + " | ".join(references) + " | |")
        return "\n".join(lines)


def results_table(output_dir: str | Path) -> str:
    paths = sorted(Path(output_dir).glob("*/results.json"))
    return "\n\n".join(BenchmarkResult.read(path).markdown() for path in paths)
