"""The promotion rule: when a challenger may replace the champion, as a pure function of both
models' test metrics. No MLflow here: the CLI reads `PromotionPolicy` to build its flags, and the
registry (training/shipping/registry.py) applies the rule to registered versions."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.errors import RegistryError

CHAMPION_ALIAS = "champion"
HEAD_METRICS = ("accuracy", "macro_f1")


@dataclass
class PromotionPolicy:
    """When a challenger may replace the champion. Every field has a CLI flag of the same name."""

    primary_metric: str = field(
        default="intent_macro_f1",
        metadata={"help": "Test metric that must improve, <field>_<accuracy|macro_f1>, e.g. intent_macro_f1."},
    )
    margin: float = field(
        default=0.005, metadata={"help": "The challenger's primary metric must exceed the champion's by at least this."}
    )
    tolerance: float = field(
        default=0.02, metadata={"help": "Largest drop of any head's macro-F1 accepted from the challenger."}
    )
    student_tolerance: float = field(
        default=0.015,
        metadata={"help": "A student distilled from the champion (its registry tag teacher names the champion's "
                          "version) may replace it without improving the primary metric, as long as the macro-F1 "
                          "of each of student_heads is at most this below the champion's (and of every other head "
                          "at most tolerance): the same decisions, served faster."},
    )
    student_heads: list[str] = field(
        default_factory=lambda: ["intent", "sentiment"],
        metadata={"help": "Heads held to student_tolerance when a student of the champion is judged: what "
                          "routing and priority depend on most."},
    )

    def check(self, field_names: list[str]) -> None:
        known = [f"{name}_{metric_name}" for name in field_names for metric_name in HEAD_METRICS]
        if self.primary_metric not in known:
            raise RegistryError(f"primary_metric {self.primary_metric!r} is not one of: {', '.join(known)}")
        unknown = [head for head in self.student_heads if head not in field_names]
        if unknown:
            raise RegistryError(f"student_heads {unknown} are not heads of the model ({', '.join(field_names)})")
        if self.margin < 0 or self.tolerance < 0 or self.student_tolerance < 0:
            raise RegistryError(f"margin, tolerance and student_tolerance must be >= 0, got {self.margin}, "
                                f"{self.tolerance} and {self.student_tolerance}")


@dataclass
class PromotionDecision:
    allowed: bool
    reasons: list[str]                 # why it was refused, or what it improved
    challenger: dict[str, float]       # test metrics of the challenger
    champion: dict[str, float] | None  # of the champion; None on a first promotion
    challenger_version: str | None = None  # filled in by promote()
    champion_version: str | None = None


def test_metrics(report) -> dict[str, float]:
    """<field>_<metric> for every head of an EvaluationReport."""
    return {f"{name}_{metric}": getattr(head, metric) for name, head in report.heads.items() for metric in HEAD_METRICS}


def decide_promotion(challenger: dict[str, float], champion: dict[str, float] | None, policy: PromotionPolicy,
                     student_of_champion: bool = False) -> PromotionDecision:
    """Pure rule: primary metric up by >= margin (and strictly up), no head's macro-F1 down by >
    tolerance. A student of the champion (`student_of_champion`) instead needs no gain, and no head
    down by more than student_tolerance."""
    if champion is None:
        return PromotionDecision(True, ["no current champion: first promotion"], challenger, None)
    if student_of_champion:
        return _decide_for_student(challenger, champion, policy)
    reasons: list[str] = []
    allowed = True
    key = policy.primary_metric
    gain = challenger[key] - champion[key]
    if gain <= 0 or gain < policy.margin:
        allowed = False
        reasons.append(
            f"{key} {challenger[key]:.4f} vs champion {champion[key]:.4f}: {gain:+.4f}, "
            f"needs at least +{policy.margin:.4f}"
        )
    else:
        reasons.append(f"{key} {challenger[key]:.4f} vs champion {champion[key]:.4f}: {gain:+.4f} (margin {policy.margin:.4f})")
    regressions = _head_regressions(challenger, champion, policy.tolerance)
    return PromotionDecision(allowed and not regressions, reasons + regressions, challenger, champion)


def _decide_for_student(challenger: dict[str, float], champion: dict[str, float], policy: PromotionPolicy) -> PromotionDecision:
    held = {f"{head}_macro_f1" for head in policy.student_heads}
    regressions = _head_regressions({k: v for k, v in challenger.items() if k in held}, champion, policy.student_tolerance)
    regressions += _head_regressions({k: v for k, v in challenger.items() if k not in held}, champion, policy.tolerance)
    rule = (f"{', '.join(policy.student_heads)} within {policy.student_tolerance:.4f} of the champion's macro-F1, "
            f"every other head within {policy.tolerance:.4f}")
    if regressions:
        return PromotionDecision(False, [f"a student of the champion must keep {rule}", *regressions], challenger, champion)
    details = ", ".join(f"{head} {challenger[f'{head}_macro_f1'] - champion[f'{head}_macro_f1']:+.4f}"
                        for head in policy.student_heads if f"{head}_macro_f1" in challenger and f"{head}_macro_f1" in champion)
    return PromotionDecision(True, [f"a student of the champion: {rule} ({details})"], challenger, champion)


def _head_regressions(challenger: dict[str, float], champion: dict[str, float], tolerance: float) -> list[str]:
    """One reason per head whose macro-F1 is more than `tolerance` below the champion's."""
    reasons = []
    for metric in sorted(k for k in challenger if k.endswith("_macro_f1")):
        if metric not in champion:
            continue
        drop = champion[metric] - challenger[metric]
        if drop > tolerance:
            head = metric.removesuffix("_macro_f1")
            reasons.append(
                f"head {head} regresses: macro-F1 {challenger[metric]:.4f} vs champion {champion[metric]:.4f} "
                f"({-drop:+.4f}, tolerance {tolerance:.4f})"
            )
    return reasons
