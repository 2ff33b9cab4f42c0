"""End to end against a real Label Studio server on 127.0.0.1: project from the taxonomy, redacted
and idempotent import, annotations through the API, incremental export, training the tiny model
on the export, pre-annotation and active learning with that model, and the failure modes.

Label Studio is installed by scripts/install-labelstudio.sh when missing (about 90 s, once). The
server runs on a free port with its data in tmp_path and is stopped at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import make_post

from data.taxonomy import Taxonomy, load_taxonomy
from labeling.active_learning import SelectionConfig, run_selection
from labeling.client import LabelStudioAuthError, LabelStudioClient, LabelStudioUnavailableError, ServerAddress
from labeling.config import build_label_config, labels_to_result
from labeling.export import ExportConfig, project_exports_dir, pull, rebuild
from labeling.importer import import_file
from labeling.preannotate import preannotate
from labeling.project import OrphanedAnnotationsError, ensure_project
from labeling.server import INSTALL_SCRIPT, ServerConfig, find_free_port, start_server
from tests.training_helpers import REPO_ROOT

pytestmark = pytest.mark.slow

TOKEN = "smista-test-token-0123456789"
CREDENTIALS = {"LABEL_STUDIO_USERNAME": "admin@smista.test", "LABEL_STUDIO_PASSWORD": "password-di-prova-123",
               "LABEL_STUDIO_USER_TOKEN": TOKEN}
BRANDS = ["VeloFibra", "Linkaria_IT", "Energea_IT", "BancaAurora", "RotaiaExpress", "ShopLampo_IT"]
PII_TEXT = ("@VeloFibra sono senza linea, chiamatemi al 347 123 4567 o scrivete a mario.rossi@example.com; "
            "rimborsate su IT60X0542811101000000123456, CF RSSMRA80A01H501U. Anche @vicina_di_casa ha il problema")
PII_SECRETS = ["347 123 4567", "mario.rossi@example.com", "IT60X0542811101000000123456", "RSSMRA80A01H501U",
               "@vicina_di_casa", "@mario_privato"]


@pytest.fixture(scope="module")
def state() -> dict:
    """What the ordered steps below hand to each other."""
    return {}


@pytest.fixture(scope="module")
def server_config(tmp_path_factory) -> ServerConfig:
    return ServerConfig(port=find_free_port(), data_dir=str(tmp_path_factory.mktemp("label-studio-data")))


@pytest.fixture(scope="module")
def server(server_config):
    config = server_config
    if not config.executable.exists():
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=True, timeout=1200)
    running = start_server(config, {**os.environ, **CREDENTIALS})
    try:
        running.wait_until_ready(timeout_s=300)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def client(server) -> LabelStudioClient:
    return LabelStudioClient.connect(ServerAddress(url=server.url, api_key=TOKEN))


@pytest.fixture(scope="module")
def seed_posts() -> list[dict]:
    """Eight posts from each of five sectors of the seed data: every intent is there."""
    posts = []
    for name in ("telco", "energia_acqua", "banca_assicurazioni", "trasporti", "retail_ecommerce"):
        lines = (REPO_ROOT / "data" / "seed" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        posts.extend(json.loads(line) for line in lines[:8])
    return posts


def _task_by_post(client: LabelStudioClient, project_id: int) -> dict[str, dict]:
    return {task["data"]["post_id"]: task for task in client.iter_tasks(project_id)}


def test_project_is_created_from_the_taxonomy_once(client, taxonomy, state):
    first = ensure_project(client, taxonomy, "smista integrazione", annotators_per_task=1)
    second = ensure_project(client, taxonomy, "smista integrazione", annotators_per_task=1)
    assert (first.action, second.action) == ("created", "unchanged")
    assert client.get_project(first.project_id)["label_config"] == build_label_config(taxonomy)
    state["project_id"] = first.project_id


def test_import_redacts_reports_bad_lines_and_is_idempotent(client, validator, write_jsonl, seed_posts, state):
    project_id = state["project_id"]
    pii_post = make_post("pii-1", text=PII_TEXT, author={"handle": "@mario_privato", "followers": 40})
    bad_label = make_post("bad-label")
    bad_label["labels"]["intent"] = "lamentela_generica"
    rows = [*seed_posts[:20], '{"id": "rotto", "text": ', *seed_posts[20:], pii_post, bad_label]
    path = write_jsonl("posts.jsonl", rows)

    report = import_file(client, project_id, path, validator, BRANDS)
    assert len(report.created) == 41
    assert [(error.line_number, error.message.split(":")[0]) for error in report.errors] == [
        (21, "not valid JSON"), (43, "labels.intent")]
    assert "unknown label id 'lamentela_generica'" in report.errors[1].message

    stored = _task_by_post(client, project_id)["pii-1"]["data"]
    sent = json.dumps(stored, ensure_ascii=False)
    assert [secret for secret in PII_SECRETS if secret in sent] == []
    assert stored["text"] == ("@VeloFibra sono senza linea, chiamatemi al [TELEFONO] o scrivete a [EMAIL]; "
                              "rimborsate su [IBAN], CF [CODICE_FISCALE]. Anche [UTENTE] ha il problema")

    again = import_file(client, project_id, path, validator, BRANDS)
    assert again.created == [] and len(again.unchanged) == 41
    assert len(list(client.iter_tasks(project_id, with_annotations=False))) == 41
    state["posts_path"] = path


def test_annotators_label_through_the_api(client, taxonomy, seed_posts, state):
    project_id = state["project_id"]
    tasks = _task_by_post(client, project_id)
    second_annotator = client.create_user("anna@smista.test", "Anna")
    # The admin labels 34 posts with their gold labels; Anna labels four of them again, disagreeing once.
    for post in seed_posts[:34]:
        client.create_annotation(tasks[post["id"]]["id"], labels_to_result(post["labels"], taxonomy))
    for post in seed_posts[:3]:
        client.create_annotation(tasks[post["id"]]["id"], labels_to_result(post["labels"], taxonomy),
                                 completed_by=second_annotator["id"])
    assert client.find_user("anna@smista.test")["id"] == second_annotator["id"]
    assert client.find_user("nobody@smista.test") is None
    disputed = seed_posts[3]
    other_priority = next(p for p in taxonomy.label_ids("priority") if p != disputed["labels"]["priority"])
    # Anna first agrees, then changes her mind and updates her annotation (what Update does in the UI).
    first = client.create_annotation(tasks[disputed["id"]]["id"], labels_to_result(disputed["labels"], taxonomy),
                                     completed_by=second_annotator["id"])
    client.update_annotation(first["id"], labels_to_result({**disputed["labels"], "priority": other_priority}, taxonomy))
    stored = next(t for t in client.iter_tasks(project_id) if t["id"] == tasks[disputed["id"]]["id"])
    annas = [a for a in stored["annotations"] if a["id"] == first["id"]]
    assert len(annas) == 1 and other_priority in json.dumps(annas[0]["result"])
    state["disputed"] = disputed["id"]


def test_edited_post_keeps_its_annotations(client, validator, write_jsonl, seed_posts, state):
    project_id = state["project_id"]
    edited = {**seed_posts[5], "text": seed_posts[5]["text"] + " (aggiornato)"}
    report = import_file(client, project_id, write_jsonl("edited.jsonl", [edited]), validator, BRANDS)
    assert report.updated_with_annotations == [edited["id"]]
    task = _task_by_post(client, project_id)[edited["id"]]
    assert task["data"]["text"].endswith("(aggiornato)") and len(task["annotations"]) == 1


def test_export_resolves_measures_and_builds_the_data_set(client, tmp_path_factory, state):
    project_id = state["project_id"]
    work = tmp_path_factory.mktemp("export")
    config = ExportConfig(exports_dir=str(work / "raw"), output_dir=str(work / "dataset"))
    first = pull(client, project_id, config.exports_dir)
    report = rebuild(project_id, config)
    assert first.task_count == 41
    assert report.labelled_posts == 33  # 34 annotated, the disputed one flagged
    assert [item["post_id"] for item in report.disagreements] == [state["disputed"]]
    assert report.agreement["intent"]["items"] == 4 and report.agreement["intent"]["fleiss_kappa"] == pytest.approx(1.0)
    assert report.agreement["priority"]["fleiss_kappa"] < 1.0
    manifest = json.loads((work / "dataset" / "manifest.json").read_text())
    assert manifest["data_hash"] == report.data_hash
    assert pull(client, project_id, config.exports_dir).path is None  # incremental: nothing new
    state.update(export_config=config, data_hash=report.data_hash, work=work)


def test_tiny_model_trains_on_the_export(state):
    import mlflow

    from training.fitting.train import train
    from training.recipe import load_recipe

    work: Path = state["work"]
    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    recipe = load_recipe(REPO_ROOT / "configs" / "train" / "tiny.yaml", [
        f"data.dataset_dir={work / 'dataset'}", f"output_dir={work / 'runs'}",
        f"tracking.tracking_uri={tracking_uri}", "tracking.register_model=false",
    ])
    result = train(recipe)
    assert (result.model_dir / "config.json").is_file()
    run = mlflow.tracking.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.tags["data_hash"] == state["data_hash"]
    state["model_dir"] = result.model_dir


def test_predictions_and_active_learning_with_the_trained_model(client, validator, write_jsonl, seed_posts, state):
    from training.inference.predict import Predictor

    project_id = state["project_id"]
    predictor = Predictor.load(str(state["model_dir"]))
    report = preannotate(client, project_id, predictor, validator.taxonomy)
    assert report.attached == 7 and report.skipped_annotated == 34  # the unannotated tasks only
    task = _task_by_post(client, project_id)[seed_posts[39]["id"]]
    prediction = task["predictions"][0]
    assert prediction["model_version"] == predictor.model_version and 0 < prediction["score"] <= 1
    assert {item["from_name"] for item in prediction["result"]} >= {"intent", "customer_type", "priority", "sentiment"}
    assert client.get_project(project_id)["model_version"] == predictor.model_version
    assert preannotate(client, project_id, predictor, validator.taxonomy).attached == 0  # idempotent

    pool_lines = (REPO_ROOT / "data" / "seed" / "food.jsonl").read_text(encoding="utf-8").splitlines()[:30]
    pool = write_jsonl("pool.jsonl", [json.loads(line) for line in pool_lines])
    selection = run_selection(client, project_id, pool, predictor, validator, BRANDS,
                              SelectionConfig(batch_size=5), state["work"] / "selections")
    assert len(selection.picks) == 5
    tasks = _task_by_post(client, project_id)
    picked = [tasks[pick["post_id"]] for pick in selection.picks]
    assert [task["id"] for task in picked] == sorted(task["id"] for task in picked)  # rank order = queue order
    assert picked[0]["data"]["selection"]["rank"] == 1 and picked[0]["predictions"]


def test_taxonomy_change_updates_config_or_refuses_to_orphan(client, taxonomy, seed_posts, tmp_path, state):
    project_id = state["project_id"]
    raw = yaml.safe_load((REPO_ROOT / "configs" / "taxonomy.yaml").read_text(encoding="utf-8"))
    used = seed_posts[0]["labels"]["intent"]  # annotated above
    shrunk = json.loads(json.dumps(raw))
    shrunk["fields"]["intent"]["labels"] = [label for label in raw["fields"]["intent"]["labels"] if label["id"] != used]
    with pytest.raises(OrphanedAnnotationsError, match=rf"intent\.{used} \(\d+ annotations?\)"):
        ensure_project(client, Taxonomy.model_validate(shrunk), "smista integrazione")
    assert client.get_project(project_id)["label_config"] == build_label_config(taxonomy)

    grown = json.loads(json.dumps(raw))
    grown["fields"]["sentiment"]["labels"].append(
        {"id": "misto", "name": "Misto", "description": "Lodi e critiche insieme.", "guidance": "Entrambi i toni.",
         "examples": ["Prodotto buono, consegna pessima"]})
    path = tmp_path / "taxonomy.yaml"
    path.write_text(yaml.safe_dump(grown, allow_unicode=True), encoding="utf-8")
    result = ensure_project(client, load_taxonomy(path), "smista integrazione")
    assert result.action == "updated"
    assert 'alias="misto"' in client.get_project(project_id)["label_config"]
    assert ensure_project(client, taxonomy, "smista integrazione").action == "updated"  # back to the real one


def test_wrong_token_is_refused_clearly(server):
    with pytest.raises(LabelStudioAuthError, match="refused the API token .*HTTP 401"):
        LabelStudioClient.connect(ServerAddress(url=server.url, api_key="not-the-token"))


def test_server_down_leaves_the_exports_untouched(client, server, state):
    folder = project_exports_dir(state["export_config"].exports_dir, state["project_id"])
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    server.stop()
    with pytest.raises(LabelStudioUnavailableError, match="not reachable"):
        pull(client, state["project_id"], state["export_config"].exports_dir)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_label_studio_killed_mid_import_then_a_rerun_completes_without_duplicates(
    server_config, validator, write_jsonl, seed_posts, state
):
    """Runs after the server was stopped above: start it again on the same data, SIGKILL it between
    two batches of an import, start it once more, rerun the same import."""
    posts = [{**post, "id": f"fault-{index}"} for index, post in enumerate(seed_posts)]
    path = write_jsonl("fault-posts.jsonl", posts)
    running = start_server(server_config, {**os.environ, **CREDENTIALS})
    try:
        running.wait_until_ready(timeout_s=300)
        client = LabelStudioClient.connect(ServerAddress(url=running.url, api_key=TOKEN))
        sent_batches = []
        import_tasks = client.import_tasks

        def import_then_crash(project_id, tasks):
            if len(sent_batches) == 2:  # two batches in: the server dies before the third
                os.killpg(running.process.pid, signal.SIGKILL)
                running.process.wait()
            sent_batches.append(len(tasks))
            return import_tasks(project_id, tasks)

        client.import_tasks = import_then_crash
        with pytest.raises(LabelStudioUnavailableError, match="not reachable"):
            import_file(client, state["project_id"], path, validator, BRANDS, batch_size=10)

        running = start_server(server_config, {**os.environ, **CREDENTIALS})
        running.wait_until_ready(timeout_s=300)
        client = LabelStudioClient.connect(ServerAddress(url=running.url, api_key=TOKEN))
        rerun = import_file(client, state["project_id"], path, validator, BRANDS, batch_size=10)
        assert len(rerun.unchanged) == 20 and len(rerun.created) == len(posts) - 20
        post_ids = [task["data"]["post_id"] for task in client.iter_tasks(state["project_id"], with_annotations=False)
                    if task["data"]["post_id"].startswith("fault-")]
        assert sorted(post_ids) == sorted(post["id"] for post in posts)  # each post once, none missing
    finally:
        running.stop()
