"""Benchmarks with heads of their own: spec validation, loading, splits, the SENTIPOLC metric, and
a real run of the tiny transformer and the TF-IDF baseline through `smista benchmark run`."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from data.dataset import stratified_folds, stratified_holdout
from smista.cli import main
from tests.training_helpers import REPO_ROOT
from benchmarks.quality.loading import label_id, load_benchmark
from benchmarks.quality.results import BenchmarkResult
from benchmarks.quality.runner import make_splits
from benchmarks.quality.scores import sentipolc_metric
from benchmarks.quality.spec import BenchmarkSpecError, load_spec

POSITIVE = ["ottimo", "grazie", "bellissimo", "perfetto", "felice"]
NEGATIVE = ["pessimo", "vergogna", "disastro", "schifo", "arrabbiato"]
NEUTRAL = ["domani", "governo", "riunione", "piano", "scuola"]


def flags_row(rng: random.Random, index: int) -> tuple[str, str, str, str]:
    """subj, opos, oneg, text: the words say which flags are set (mixed tweets have both kinds)."""
    kind = index % 4
    words = rng.sample(NEUTRAL, 2)
    if kind == 0:
        return "0", "0", "0", " ".join(words)
    if kind == 1:
        return "1", "1", "0", " ".join(words + rng.sample(POSITIVE, 2))
    if kind == 2:
        return "1", "0", "1", " ".join(words + rng.sample(NEGATIVE, 2))
    return "1", "1", "1", " ".join(words + rng.sample(POSITIVE, 1) + rng.sample(NEGATIVE, 1))


def write_sentipolc_like(folder: Path, train_rows: int = 96, test_rows: int = 40) -> Path:
    """Files shaped like SENTIPOLC's: ';'-separated, quoted text, a header on train only."""
    rng = random.Random(3)
    folder.mkdir(parents=True, exist_ok=True)
    header = "idtwitter;subj;opos;oneg;iro;lpos;lneg;top;text\n"
    for name, count, with_header in (("train.csv", train_rows, True), ("test.csv", test_rows, False)):
        lines = [header] if with_header else []
        for i in range(count):
            subj, opos, oneg, text = flags_row(rng, i)
            lines.append(f'{1000 + i};{subj};{opos};{oneg};0;{opos};{oneg};0;"{text} ""citato"""\n')
        (folder / name).write_text("".join(lines), encoding="utf-8")
    return folder


def write_spec(path: Path, tracking: str, **changes) -> Path:
    spec = {
        "name": "flags",
        "description": "synthetic SENTIPOLC-like flags",
        "language": "it",
        "files": {"train": {"path": "train.csv"}, "test": {"path": "test.csv", "header": False}},
        "delimiter": ";",
        "columns": ["idtwitter", "subj", "opos", "oneg", "iro", "lpos", "lneg", "top", "text"],
        "text_column": "text",
        "heads": {
            name: {"column": name, "labels": {"no": "0", "yes": "1"}} for name in ("subj", "opos", "oneg")
        },
        "protocol": {"kind": "official_split", "stratify_by": "oneg", "validation_fraction": 0.2},
        "primary_head": "oneg",
        "scores": [
            {"name": "polarity", "metric": "sentipolc", "heads": ["opos", "oneg"], "reference": 0.66, "target": 0.66,
             "reference_source": "best 2016 system"},
            {"name": "oneg_yes_f1", "metric": "class_f1", "heads": ["oneg"], "label": "yes"},
            {"name": "subjectivity", "metric": "sentipolc", "heads": ["subj"]},
        ],
        "models": {
            "tfidf": {"recipe": str(REPO_ROOT / "configs/train/baseline.yaml")},
            "tiny": {
                "recipe": str(REPO_ROOT / "configs/train/tiny.yaml"),
                "overrides": ["transformer.num_train_epochs=15", "transformer.learning_rate=3e-3"],
            },
        },
    }
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


# --- the SENTIPOLC metric -------------------------------------------------------------------------

def test_sentipolc_metric_matches_a_hand_computed_value():
    # opos gold 1,1,0,0 predicted 1,0,0,0: class 1 P 1/1 R 1/2 F1 2/3; class 0 P 2/3 R 2/2 F1 4/5.
    # oneg gold 0,1,1,0 predicted 0,1,1,1: class 1 P 2/3 R 2/2 F1 4/5; class 0 P 1/1 R 1/2 F1 2/3.
    # Each flag: (2/3 + 4/5) / 2 = 11/15; the polarity score is their mean, 11/15.
    result = sentipolc_metric().compute(
        predictions=[[1, 0], [0, 1], [0, 1], [0, 1]], references=[[1, 0], [1, 1], [0, 1], [0, 0]]
    )
    assert result["opos_f1_1"] == pytest.approx(2 / 3)
    assert result["opos_f1_0"] == pytest.approx(4 / 5)
    assert result["oneg_f1_1"] == pytest.approx(4 / 5)
    assert result["score"] == pytest.approx(11 / 15)


def test_sentipolc_metric_scores_an_absent_class_as_zero_like_the_official_scorer():
    # No gold and no predicted 1: F1 of class 1 is 0, F1 of class 0 is 1, the flag scores 0.5.
    result = sentipolc_metric().compute(predictions=[[0], [0]], references=[[0], [0]], flags=("subj",))
    assert result["subj_f1_1"] == 0.0
    assert result["score"] == pytest.approx(0.5)


def test_sentipolc_metric_refuses_values_other_than_flags():
    with pytest.raises(ValueError, match="0 or 1"):
        sentipolc_metric().compute(predictions=[[2, 0]], references=[[1, 0]])


# --- spec and loading -----------------------------------------------------------------------------

def test_shipped_specs_are_valid():
    names = {load_spec(path).name for path in sorted((REPO_ROOT / "configs" / "benchmarks").glob("*.yaml"))}
    assert names == {"sentipolc16", "complaints", "banking77"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"primary_head": "missing"}, "primary_head: 'missing' is not a head"),
        ({"files": {"all": {"path": "train.csv"}}}, "official_split needs files"),
        ({"scores": [{"name": "x", "metric": "class_f1", "heads": ["oneg"]}]}, "label is set exactly for metric class_f1"),
        ({"scores": [{"name": "x", "metric": "accuracy", "heads": ["nope"]}]}, "unknown head"),
        ({"heads": {"oneg": {"column": "oneg", "labels": {"No": "0", "yes": "1"}}}}, "must be snake_case"),
    ],
)
def test_bad_specs_name_the_problem(tmp_path, change, message):
    with pytest.raises(BenchmarkSpecError, match=message):
        load_spec(write_spec(tmp_path / "spec.yaml", "unused", **change))


def test_loading_maps_values_to_labels_and_builds_a_taxonomy(tmp_path):
    data = write_sentipolc_like(tmp_path / "data")
    loaded = load_benchmark(load_spec(write_spec(tmp_path / "spec.yaml", "unused")), data)
    assert list(loaded.taxonomy.fields) == ["subj", "opos", "oneg"]
    assert loaded.taxonomy.label_ids("oneg") == ["no", "yes"]
    assert len(loaded.posts["train"]) == 96 and len(loaded.posts["test"]) == 40
    first = loaded.posts["train"][0]
    assert first.labels == {"subj": "no", "opos": "no", "oneg": "no"}
    assert first.text.endswith('"citato"')  # CSV quoting undone


def test_a_value_outside_the_label_set_names_file_line_and_column(tmp_path):
    data = write_sentipolc_like(tmp_path / "data", test_rows=40)
    with (data / "test.csv").open("a", encoding="utf-8") as handle:
        handle.write("9999;1;0;7;0;0;0;0;testo strano\n")  # line 41: oneg = 7
    with pytest.raises(BenchmarkSpecError, match=r"test.csv:41: column oneg = '7' is not a label of head oneg"):
        load_benchmark(load_spec(write_spec(tmp_path / "spec.yaml", "unused")), data)


def test_from_data_labels_become_plain_ids(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "all.csv").write_text("text,category\nciao,Refund_not_showing_up\nbuongiorno,card arrival\n", encoding="utf-8")
    spec = load_spec(write_spec(
        tmp_path / "spec.yaml", "unused", files={"all": {"path": "all.csv"}}, delimiter=",", columns=None,
        heads={"intent": {"column": "category", "labels": "from_data"}},
        protocol={"kind": "cross_validation", "folds": 2, "stratify_by": "intent"}, primary_head="intent",
        scores=[{"name": "accuracy", "metric": "accuracy", "heads": ["intent"]}],
    ))
    assert load_benchmark(spec, folder).taxonomy.label_ids("intent") == ["refund_not_showing_up", "card_arrival"]
    assert label_id("3 month plan") == "l_3_month_plan"


# --- splits -----------------------------------------------------------------------------------------

def test_folds_are_disjoint_cover_everything_and_keep_label_proportions(tmp_path):
    data = write_sentipolc_like(tmp_path / "data", train_rows=100)
    posts = load_benchmark(load_spec(write_spec(tmp_path / "spec.yaml", "unused")), data).posts["train"]
    folds = stratified_folds(posts, "oneg", 5, seed=1)
    ids = [post.id for fold in folds for post in fold]
    assert sorted(ids) == sorted(post.id for post in posts) and len(ids) == len(set(ids))
    for fold in folds:
        assert len(fold) == 20
        assert sum(post.labels["oneg"] == "yes" for post in fold) == 10  # half the posts have oneg
    kept, held_out = stratified_holdout(posts, "oneg", 0.1, seed=1)
    assert len(held_out) == 10 and not {p.id for p in kept} & {p.id for p in held_out}


def test_cross_validation_uses_each_fold_once_as_test(tmp_path):
    folder = write_sentipolc_like(tmp_path / "data", train_rows=60)
    (folder / "train.csv").rename(folder / "all.csv")
    spec = load_spec(write_spec(tmp_path / "spec.yaml", "unused", files={"all": {"path": "all.csv"}},
                                protocol={"kind": "cross_validation", "folds": 3, "stratify_by": "oneg"}))
    splits = make_splits(spec, load_benchmark(spec, folder))
    assert list(splits) == ["fold-01", "fold-02", "fold-03"]
    tests = [{post.id for post in split["test"]} for split in splits.values()]
    assert not tests[0] & tests[1] and len(set().union(*tests)) == 60
    for split in splits.values():
        assert not {p.id for p in split["train"]} & {p.id for p in split["test"]}
        assert not {p.id for p in split["validation"]} & {p.id for p in split["test"]}


# --- a real run ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_benchmark_run_trains_both_models_on_custom_heads_and_writes_results(tmp_path, capsys):
    data = write_sentipolc_like(tmp_path / "data")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec_path = write_spec(tmp_path / "spec.yaml", tracking)
    output = tmp_path / "out"
    code = main(["benchmark", "run", str(spec_path), "--data-dir", str(data), "--output-dir", str(output),
                 "--tracking-uri", tracking])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| tfidf (" in printed and "| tiny (" in printed and "| published: best 2016 system | 0.66 |" in printed

    result = BenchmarkResult.read(output / "flags" / "results.json")
    assert set(result.models) == {"tfidf", "tiny"}
    assert result.sizes == {"official": {"train": 76, "validation": 20, "test": 40}}
    for model in result.models.values():
        # The flags are spelled out by the words: both models learn them.
        assert model.mean("polarity") > 0.8, model.scores
        assert model.mean("subjectivity") > 0.8, model.scores
        # The SENTIPOLC score of one flag is that head's macro-F1 over its two classes.
        assert model.mean("subjectivity") == pytest.approx(model.head_macro_f1["subj"][0])
        assert set(model.head_macro_f1) == {"subj", "opos", "oneg"}
    # The runs are in MLflow, in the benchmark's own experiment, with the benchmark's heads.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name("benchmark-flags").experiment_id])
    assert len(runs) == 2
    assert all("test_oneg_macro_f1" in run.data.metrics for run in runs)
    # The taxonomy written for the benchmark is the one the model was trained with.
    taxonomy = yaml.safe_load((output / "flags" / "taxonomy.yaml").read_text(encoding="utf-8"))
    config = json.loads((Path(result.models["tiny"].run_dirs[0]) / "model" / "config.json").read_text(encoding="utf-8"))
    assert config["taxonomy_version"] == taxonomy["version"] == "flags-1"
    assert list(config["heads"]) == ["oneg", "opos", "subj"] and config["field_names"] == ["subj", "opos", "oneg"]

    # Running one model again keeps the other's results in the table.
    assert main(["benchmark", "run", str(spec_path), "--data-dir", str(data), "--output-dir", str(output),
                 "--tracking-uri", tracking, "--models", "tfidf"]) == 0
    assert set(BenchmarkResult.read(output / "flags" / "results.json").models) == {"tfidf", "tiny"}
    assert main(["benchmark", "table", "--output-dir", str(output)]) == 0
    assert "**flags**" in capsys.readouterr().out


def test_cli_rejects_an_override_without_a_model(tmp_path, capsys):
    data = write_sentipolc_like(tmp_path / "data")
    spec_path = write_spec(tmp_path / "spec.yaml", "unused")
    code = main(["benchmark", "run", str(spec_path), "--data-dir", str(data), "--set", "transformer.num_train_epochs=1"])
    assert code == 2
    assert "expected MODEL:dotted.key=value" in capsys.readouterr().err


def test_cli_names_a_missing_data_file(tmp_path, capsys):
    spec_path = write_spec(tmp_path / "spec.yaml", "unused")
    code = main(["benchmark", "run", str(spec_path), "--data-dir", str(tmp_path / "nowhere")])
    assert code == 2
    error = capsys.readouterr().err
    assert "train file" in error and "nowhere" in error and "--data-dir" in error
