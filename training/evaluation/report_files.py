"""An evaluation report on disk: metrics.json and the plots of every head."""

from __future__ import annotations

import json
from pathlib import Path

from training.evaluation import plots as plotting
from training.evaluation.evaluate import EvaluationReport


def write_report(report: EvaluationReport, output_dir: str | Path, plots: bool = True) -> list[Path]:
    """metrics.json and, with plots, three PNGs per head (confusion, reliability, coverage)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = output_dir / "metrics.json"
    metrics_path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written = [metrics_path]
    if plots:
        for head in report.heads.values():
            written.append(plotting.confusion_matrix_png(head, output_dir / f"confusion_{head.name}.png"))
            written.append(plotting.reliability_png(head, output_dir / f"reliability_{head.name}.png"))
            written.append(plotting.coverage_png(head, output_dir / f"coverage_{head.name}.png"))
    return written
