"""The model registry: compare registered versions side by side, promote one to `champion`.

Promotion is a decision with rules: the challenger must beat the current champion on the frozen
test split by a margin on the primary metric, and no head may get worse beyond a tolerance; a student
distilled from the champion only has to stay within a (smaller) tolerance of it on every head. Both
models are scored afresh on the same test file by the same evaluation code, so the comparison does
not depend on what either run happened to log. Only aliases are used (registry stages are
deprecated in MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from data.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy
from training.errors import RegistryError
from training.evaluation.evaluate import check_taxonomy_matches, evaluate_posts
from training.inference.predict import Predictor
from training.labelled_posts import read_labelled_posts
from training.mlflow_access import use_tracking_uri
from training.recipe import REGISTERED_MODEL_NAME
from training.shipping.promotion import CHAMPION_ALIAS, PromotionDecision, PromotionPolicy, decide_promotion, test_metrics


def _client():
    return MlflowClient()


def champion_version(name: str = REGISTERED_MODEL_NAME, alias: str = CHAMPION_ALIAS) -> str | None:
    try:
        return str(_client().get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def latest_version(name: str = REGISTERED_MODEL_NAME) -> str:
    versions = _client().search_model_versions(f"name = '{name}'")
    if not versions:
        raise RegistryError(f"no registered versions of {name!r}: train a model first (smista train)")
    return str(max(int(v.version) for v in versions))


def promote(
    version: str | None,
    test_file: str | Path,
    policy: PromotionPolicy,
    name: str = REGISTERED_MODEL_NAME,
    alias: str = CHAMPION_ALIAS,
    taxonomy_path: str | Path | None = None,
    tracking_uri: str | None = None,
) -> PromotionDecision:
    """Score challenger (default: latest version) and champion on `test_file`; move the alias if the policy allows."""
    tracking_uri = use_tracking_uri(tracking_uri)
    challenger_version = version or latest_version(name)
    current = champion_version(name, alias)
    if current == challenger_version:
        raise RegistryError(f"version {challenger_version} of {name} already holds the alias {alias!r}")
    taxonomy = load_taxonomy(taxonomy_path or DEFAULT_TAXONOMY_PATH)
    posts = read_labelled_posts(test_file, taxonomy)
    challenger = Predictor.load(f"models:/{name}/{challenger_version}", tracking_uri=tracking_uri)
    check_taxonomy_matches(challenger, taxonomy)
    policy.check(challenger.field_names)
    challenger_report = evaluate_posts(challenger, posts, f"test ({test_file})")
    unscored = [head for head in challenger.field_names if head not in challenger_report.heads]
    if unscored:
        # The gate compares every head (no head may drop): each needs labelled test posts.
        raise RegistryError(
            f"test file {test_file}: no post is labelled for {', '.join(unscored)}; the promotion gate "
            "needs test posts labelled for every head"
        )
    challenger_metrics = test_metrics(challenger_report)
    champion_metrics = None
    if current is not None:
        champion = Predictor.load(f"models:/{name}/{current}", tracking_uri=tracking_uri)
        check_taxonomy_matches(champion, taxonomy)
        champion_metrics = test_metrics(evaluate_posts(champion, posts, f"test ({test_file})"))
    decision = decide_promotion(challenger_metrics, champion_metrics, policy,
                                student_of_champion=current is not None and teacher_of(name, challenger_version) == f"{name}/{current}")
    decision.challenger_version, decision.champion_version = challenger_version, current
    if decision.allowed:
        client = _client()
        client.set_registered_model_alias(name, alias, challenger_version)
        client.set_model_version_tag(name, challenger_version, "promoted_over", current or "none")
    return decision


def teacher_of(name: str, version: str) -> str | None:
    """The registry version a distilled model was taught by ("smista-classifier/3"), from its
    version tag `teacher`; None for a model trained on labels alone."""
    return _client().get_model_version(name, version).tags.get("teacher")


SERVING_RUNTIME_TAG = "serving_runtime"


def record_serving_runtime(name: str, version: str, runtime: str, why: str) -> None:
    """Tag a registry version with the runtime it should be served with (`smista serve` uses it when
    no runtime is named) and the measurement behind the choice."""
    client = _client()
    client.set_model_version_tag(name, version, SERVING_RUNTIME_TAG, runtime)
    client.set_model_version_tag(name, version, f"{SERVING_RUNTIME_TAG}_why", why[:5000])


@dataclass
class VersionSummary:
    version: str
    aliases: list[str]
    run_id: str
    kind: str
    base_model: str
    data_hash: str
    metrics: dict[str, float]


def summarize_versions(
    versions: list[str] | None, name: str = REGISTERED_MODEL_NAME, limit: int = 6, tracking_uri: str | None = None
) -> list[VersionSummary]:
    """The given versions (default: the newest `limit`), with their runs' logged metrics and params."""
    use_tracking_uri(tracking_uri)
    client = _client()
    registered = {str(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
    if not registered:
        raise RegistryError(f"no registered versions of {name!r}: train a model first (smista train)")
    if versions:
        unknown = [v for v in versions if v not in registered]
        if unknown:
            raise RegistryError(f"{name} has no version(s) {unknown}; it has {', '.join(sorted(registered, key=int))}")
        chosen = versions
    else:
        chosen = sorted(registered, key=int)[-limit:]
    summaries = []
    for number in chosen:
        model_version = client.get_model_version(name, number)
        run = client.get_run(model_version.run_id)
        params = run.data.params
        base_model = params.get("transformer.base_model", "None")
        if "teacher_version" in params:
            base_model = f"student of {params['teacher_version']}"
        elif base_model == "None":
            base_model = "from scratch" if "transformer.from_scratch.vocab_size" in params else "tf-idf"
        summaries.append(
            VersionSummary(
                version=number,
                aliases=list(model_version.aliases),
                run_id=run.info.run_id,
                kind=params.get("kind", "?"),
                base_model=base_model,
                data_hash=params.get("data_hash", "?"),
                metrics=dict(run.data.metrics),
            )
        )
    return summaries


def format_comparison(summaries: list[VersionSummary], field_names: list[str]) -> str:
    """Rows are metrics, columns are versions: read across to compare."""
    columns = [f"v{s.version}" + (f" @{','.join(s.aliases)}" if s.aliases else "") for s in summaries]
    width = max(16, *(len(c) + 2 for c in columns), *(len(s.kind) + 2 for s in summaries))
    rows: list[tuple[str, list[str]]] = [
        ("kind", [s.kind for s in summaries]),
        ("base model", [_shorten(s.base_model, width - 2) for s in summaries]),
        ("run", [s.run_id[:8] for s in summaries]),
        ("data set", [s.data_hash[:12] for s in summaries]),
    ]

    def metric_row(label: str, key: str, fmt: str) -> tuple[str, list[str]]:
        return label, [format(s.metrics[key], fmt) if key in s.metrics else "-" for s in summaries]

    for name in field_names:
        rows.append(metric_row(f"{name} macro-F1", f"test_{name}_macro_f1", ".3f"))
    for name in field_names:
        rows.append(metric_row(f"{name} ECE", f"test_{name}_ece", ".3f"))
    for name in field_names:
        rows.append(metric_row(f"{name} cov@90%", f"test_{name}_coverage_at_90", ".3f"))
    rows.append(metric_row("train time (s)", "train_seconds", ".0f"))
    rows.append(metric_row("model size (MB)", "model_size_mb", ".1f"))
    rows.append(metric_row("speed (posts/s)", "inference_posts_per_second", ".0f"))
    label_width = max(len(label) for label, _ in rows) + 2
    lines = [" " * label_width + "".join(f"{c:>{width}}" for c in columns)]
    lines.append("-" * len(lines[0]))
    for label, values in rows:
        lines.append(f"{label:<{label_width}}" + "".join(f"{v:>{width}}" for v in values))
    lines.append(
        "(test-split metrics as logged by each run: comparable across columns with the same data set; "
        "cov@90% = share of posts automatable at 90% precision)"
    )
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]
