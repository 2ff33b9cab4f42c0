"""End to end: the real `bentoml serve` of the Router and its Classifier on 127.0.0.1, serving the
tiny model trained by training/ (the shared session fixture), called over real HTTP.

The tiny model's confidences are whatever training made them, so the test routing config is
written from the model's own predictions, before the server starts: the intent thresholds fall
between the confidences of three chosen posts (one per tier), and the crisis counts the sentiment
the model gives the spike post. Teams are closed "now" (open only on the weekday three days ahead),
except triage and management, so out-of-hours is deterministic at any time of day.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest
import yaml

from serving.local_server import LocalServer
from serving.routing_config import DEFAULT_ROUTING_PATH, WEEKDAYS
from tests.routing_helpers import ROME

pytest_plugins = ("tests.training_fixtures",)
pytestmark = pytest.mark.slow

KEY = "integration-key-0123456789"
HEADERS = {"X-API-Key": KEY}
# A second care platform's key: the crisis bounds what one key can add (MAX_AUTHORS_PER_CLIENT).
OTHER_KEY = "integration-key-other-9876543210"
MAX_AUTHORS_PER_CLIENT = 10
# The window must hold this many posts to start a crisis: more than all the posts the other tests
# route, so that only the spike can start it.
CRISIS_POSTS = 15
CANDIDATES = [
    "Bolletta addebito fattura rimborso pagamento, ancora!",
    "Modem linea internet segnale app, subito per favore",
    "Grazie bravissimi complimenti, ottimo davvero",
    "Offerta attivare preventivo abbonamento comprare",
    "bolletta grazie modem offerta",
    "fattura modem complimenti",
    "Buongiorno, vorrei sapere gli orari del negozio di via Roma",
    "grazie offerta ieri",
    "linea bolletta sempre qui",
    "Che tempo fa domani a Roma?",
    "abbonamento segnale ottimo ieri",
    "pagamento internet",
]
SPIKE_TEXT = "Modem linea internet segnale, ancora senza linea oggi"


@pytest.fixture(scope="module")
def model_dir(tiny_run):
    return tiny_run.model_dir


@pytest.fixture(scope="module")
def scenario(model_dir, taxonomy):
    """The model's own predictions decide which post hits which tier, and the thresholds."""
    from serving.routing_config import load_routing_config
    from training.inference.predict import Predictor

    predictor = Predictor.load(str(model_dir))
    owners = load_routing_config(DEFAULT_ROUTING_PATH, taxonomy).intent_owners
    scored = sorted(
        (prediction["intent"].confidence, text)
        for text, prediction in zip(CANDIDATES, predictor.predict(CANDIDATES))
        if owners[prediction["intent"].labels[0]] is not None
    )
    (low, triage_text), (high, auto_text) = scored[0], scored[-1]
    middle, suggest_text = min(scored[1:-1], key=lambda item: abs(item[0] - (low + high) / 2))
    assert high - middle > 0.01 and middle - low > 0.01, f"the tiny model's confidences are too close: {scored}"
    [spike] = predictor.predict([SPIKE_TEXT])
    return {
        "auto": auto_text, "suggest": suggest_text, "human_triage": triage_text,
        "auto_threshold": (high + middle) / 2, "suggest_threshold": (middle + low) / 2,
        "spike_intent": spike["intent"].labels[0], "spike_sentiment": spike["sentiment"].labels[0],
    }


def write_routing_config(scenario, path) -> str:
    """The shipped rules, with thresholds, hours and crisis sized for a deterministic test; returns
    the one weekday on which the human teams are open."""
    raw = yaml.safe_load(DEFAULT_ROUTING_PATH.read_text(encoding="utf-8"))
    closed_day = WEEKDAYS[(datetime.now(ROME) + timedelta(days=3)).weekday()]
    for team in ("customer_care", "commerciale", "risorse_umane", "relazioni_esterne", "social_media"):
        raw["teams"][team] = {"display_name": raw["teams"][team]["display_name"],
                              "hours": {closed_day: ["00:00-24:00"]}, "closed_on_holidays": False}
    raw["teams"]["triage"] = {"display_name": "Smistamento manuale", "always_open": True}
    thresholds = {head: {"auto": 0.0, "suggest": 0.0} for head in raw["confidence"]["thresholds"]}
    thresholds["intent"] = {"auto": scenario["auto_threshold"], "suggest": scenario["suggest_threshold"]}
    raw["confidence"]["thresholds"] = thresholds
    raw["reply"]["private_for_intents"] = []
    raw["crisis"].update(negative_sentiments=[scenario["spike_sentiment"]], excluded_intents=[], window_minutes=10,
                         baseline_hours=24, start_rate_per_hour=CRISIS_POSTS * 6, baseline_multiple=4,
                         baseline_floor_per_hour=1.0, end_rate_per_hour=6,
                         max_authors_per_client=MAX_AUTHORS_PER_CLIENT)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return closed_day


@pytest.fixture(scope="module")
def server(model_dir, scenario, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("serve")
    closed_day = write_routing_config(scenario, workdir / "routing.yaml")
    env = {"SMISTA_ROUTING_CONFIG": str(workdir / "routing.yaml"), "SMISTA_API_KEYS": f"{KEY},{OTHER_KEY}"}
    with LocalServer(str(model_dir), extra_env=env, workdir=workdir, startup_timeout=150) as running:
        running.closed_day = closed_day
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60.0) as client:
        yield client


def route(http, *posts: dict) -> list[dict]:
    response = http.post("/route", json={"posts": list(posts)})
    assert response.status_code == 200, response.text
    return [result["route"] for result in response.json()["results"]]


def rules_of(route_result: dict) -> list[str]:
    return [reason["rule"] for reason in route_result["reasons"]]


def test_classify_one_post_and_a_list(http, taxonomy):
    one = http.post("/classify", json={"posts": {"text": "La bolletta è sbagliata"}})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["taxonomy_version"] == taxonomy.version and body["model_version"] == "model"
    assert body["runtime"] == "torch"  # SMISTA_RUNTIME unset, a model directory: torch
    [result] = body["results"]
    assert set(result["predictions"]) == set(taxonomy.fields)
    for head, prediction in result["predictions"].items():
        assert set(prediction["probabilities"]) == set(taxonomy.label_ids(head))
        if not taxonomy.fields[head].is_multi_label:
            assert len(prediction["labels"]) == 1
            assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    many = http.post("/classify", json={"posts": [{"id": f"c{n}", "text": text} for n, text in enumerate(CANDIDATES)]})
    assert [result["id"] for result in many.json()["results"]] == [f"c{n}" for n in range(len(CANDIDATES))]


def test_each_confidence_tier(http, scenario):
    auto, suggest, triage = route(
        http,
        {"id": "tier-auto", "text": scenario["auto"], "channel": "facebook"},
        {"id": "tier-suggest", "text": scenario["suggest"], "channel": "facebook"},
        {"id": "tier-triage", "text": scenario["human_triage"], "channel": "facebook"},
    )
    assert (auto["confidence_tier"], auto["needs_human"]) == ("auto", False)
    assert "confidence:auto" in rules_of(auto) and auto["queue"] == auto["team"]
    assert (suggest["confidence_tier"], suggest["needs_human"]) == ("suggest", True)
    assert suggest["queue"] == suggest["team"]
    suggest_reason = next(r for r in suggest["reasons"] if r["rule"] == "confidence:suggest")
    assert set(suggest_reason["labels"]) == {"intent"} and "intent" in suggest_reason["confidences"]
    assert (triage["confidence_tier"], triage["needs_human"], triage["queue"]) == ("human_triage", True, "triage")
    assert triage["team"] not in (None, "triage")  # the rules' choice stays as the suggestion


def test_out_of_hours_auto_reply_names_the_hours(http, scenario, server):
    closed, open_queue = route(
        http,
        {"id": "ooh-1", "text": scenario["auto"], "channel": "twitter"},
        {"id": "ooh-2", "text": scenario["human_triage"], "channel": "twitter"},
    )
    assert closed["out_of_hours"] and "out_of_hours" in rules_of(closed)
    italian_day = {"mon": "lun", "tue": "mar", "wed": "mer", "thu": "gio", "fri": "ven", "sat": "sab", "sun": "dom"}
    assert f"siamo disponibili {italian_day[server.closed_day]} 0:00–24:00" in closed["auto_reply"]
    assert closed["auto_reply"].startswith("Ciao, grazie per averci scritto!")
    assert (open_queue["queue"], open_queue["out_of_hours"], open_queue["auto_reply"]) == ("triage", False, None)


def test_personal_data_moves_the_reply_to_a_private_channel(http, scenario):
    with_phone, without = route(
        http,
        {"id": "pii-1", "text": f"{scenario['auto']} chiamatemi al 333 123 4567", "channel": "twitter"},
        {"id": "pii-2", "text": scenario["auto"], "channel": "twitter"},
    )
    assert (with_phone["reply_channel"], with_phone["pii"]) == ("private", ["phone"])
    assert "pii_private_reply" in rules_of(with_phone)
    assert "333 123 4567" not in json.dumps(with_phone)
    assert without["reply_channel"] == "public"


def test_feedback_is_stored_for_a_routed_post(http, server):
    route(http, {"id": "fb-1", "text": "La fattura di marzo è doppia", "channel": "twitter"})
    receipt = http.post("/feedback", json={
        "post_id": "fb-1", "corrected_labels": {"intent": "fatturazione", "business_action": ["lamentela"]},
        "handled_by_team": "customer_care", "resolved": True,
        "first_response_at": "2026-03-10T10:20:00+01:00", "resolved_at": "2026-03-10T11:00:00+01:00",
    })
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["post_id"] == "fb-1"
    unknown = http.post("/feedback", json={"post_id": "never-routed", "resolved": False})
    assert unknown.status_code == 404 and "unknown post_id 'never-routed'" in unknown.json()["error"]
    bad_label = http.post("/feedback", json={"post_id": "fb-1", "resolved": True, "corrected_labels": {"intent": "spam"}})
    assert bad_label.status_code == 400 and "unknown label id 'spam'" in json.dumps(bad_label.json())

    from serving.store import PredictionStore

    store = PredictionStore(f"sqlite:///{server.workdir / 'smista.db'}")
    [feedback] = store.feedback_for("fb-1")
    assert feedback.corrected_labels["intent"] == "fatturazione" and feedback.resolved
    assert store.routed_posts("fb-1")[0].predictions["intent"]["labels"]
    store.close()


def many_posts(count: int) -> list[dict]:
    return [{"text": f"post numero {n}", "channel": "twitter"} for n in range(count)]


BAD_INPUTS = [
    ("missing text", {"json": {"posts": {"channel": "twitter"}}}, 400, "Field required"),
    ("empty text", {"json": {"posts": {"text": "   ", "channel": "twitter"}}}, 400, "text is empty or only whitespace"),
    ("1 MB text", {"json": {"posts": {"text": "a" * 1_000_000, "channel": "twitter"}}}, 400,
     "text is 1000000 characters, over the limit of 5000"),
    ("text of the wrong type", {"json": {"posts": {"text": 42, "channel": "twitter"}}}, 400, "Input should be a valid string"),
    ("followers of the wrong type", {"json": {"posts": {"text": "ciao", "channel": "twitter",
                                                        "author": {"followers": "tanti"}}}}, 400,
     "Input should be a valid integer"),
    ("posts of the wrong type", {"json": {"posts": "ciao"}}, 400, "Input should be an object"),
    ("invalid JSON", {"content": b'{"posts": [{"text": "ciao"', "headers": {"content-type": "application/json"}}, 400,
     "Invalid JSON"),
    ("unknown channel", {"json": {"posts": {"text": "ciao", "channel": "fax"}}}, 400, "unknown channel 'fax'"),
    ("unknown field", {"json": {"posts": {"text": "ciao", "channel": "twitter", "colore": "blu"}}}, 400,
     "Extra inputs are not permitted"),
    ("invisible-only text", {"json": {"posts": {"text": "\u200b\u200d\ufeff", "channel": "twitter"}}}, 400,
     "only whitespace or invisible characters"),
    ("year 9999 at -05:00", {"json": {"posts": {"text": "ciao", "channel": "twitter",
                                                "created_at": "9999-12-31T23:00:00-05:00"}}}, 400, "out of range"),
    ("year 1 at +14:00", {"json": {"posts": {"text": "ciao", "channel": "twitter",
                                             "created_at": "0001-01-01T01:00:00+14:00"}}}, 400, "out of range"),
    ("followers beyond 64 bits", {"json": {"posts": {"text": "ciao", "channel": "twitter",
                                                     "author": {"followers": 2**64}}}}, 400, "less than or equal to"),
    ("id over 200 characters, no channel", {"json": {"posts": {"id": "i" * 10_000, "text": "ciao"}}}, 400,
     "at most 200 characters"),
    ("empty batch", {"json": {"posts": []}}, 400, "no posts"),
    ("batch over the limit", {"json": {"posts": many_posts(65)}}, 413, "batch of 65 posts is over the limit of 64"),
    ("body over the limit", {"content": b"x" * (3 * 1024 * 1024), "headers": {"content-type": "application/json"}}, 413,
     "over the limit of 2097152 bytes"),
]


@pytest.mark.parametrize(("case", "request_args", "status", "message"), BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
@pytest.mark.parametrize("endpoint", ["/route", "/classify"])
def test_bad_inputs_get_a_4xx_naming_the_problem(http, endpoint, case, request_args, status, message):
    response = http.post(endpoint, **request_args)
    assert response.status_code == status, response.text
    assert message in response.text


def test_bad_feedback_types_get_a_400(http):
    response = http.post("/feedback", json={"post_id": "fb-1", "resolved": "sì"})
    assert response.status_code == 400 and "Input should be a valid boolean" in response.text
    naive = http.post("/feedback", json={"post_id": "fb-1", "resolved": True, "resolved_at": "2026-03-10T11:00:00"})
    assert naive.status_code == 400 and "timezone" in naive.text
    edge = http.post("/feedback", json={"post_id": "fb-1", "resolved": True, "resolved_at": "9999-12-31T23:00:00-05:00"})
    assert edge.status_code == 400 and "out of range" in edge.text
    long_agent = http.post("/feedback", json={"post_id": "fb-1", "resolved": True, "agent_id": "a" * 1_000_000})
    assert long_agent.status_code == 400 and "at most 200 characters" in long_agent.text


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "not-the-key-0000000000"}], ids=["missing key", "wrong key"])
def test_every_endpoint_but_health_needs_the_key(server, headers):
    with httpx.Client(base_url=server.url, timeout=30.0) as anonymous:
        for method, path in (("POST", "/classify"), ("POST", "/route"), ("POST", "/feedback"), ("GET", "/crisis"),
                             ("GET", "/metrics"), ("GET", "/docs.json")):
            response = anonymous.request(method, path, json={"posts": {"text": "ciao"}}, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert "API key" in response.json()["error"]
        for path in ("/livez", "/healthz", "/readyz"):
            assert anonymous.get(path).status_code == 200


def test_the_service_keeps_serving_after_bad_inputs(http, server):
    assert server.is_running()
    [result] = route(http, {"text": "Ancora qui dopo tutto questo?", "channel": "forum"})
    assert result["queue"]


def classifier_calls(http) -> dict[str, float]:
    """The Router's calls to the Classifier so far, per path, from /metrics."""
    counts = {"direct": 0.0, "batching": 0.0}
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("smista_classifier_calls_total{"):
            counts[line.split('path="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return counts


def test_adaptive_batching_under_concurrency_gives_no_503(server, http):
    async def load() -> list[int]:
        async with httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=60.0) as client:
            singles = [client.post("/classify", json={"posts": {"text": CANDIDATES[n % len(CANDIDATES)]}})
                       for n in range(48)]
            batches = [client.post("/classify", json={"posts": [{"text": text} for text in CANDIDATES * 5]})
                       for _ in range(4)]
            return [response.status_code for response in await asyncio.gather(*singles, *batches)]

    before = classifier_calls(http)
    assert asyncio.run(load()) == [200] * 52
    during = classifier_calls(http)
    # Concurrent calls go through the batching endpoint, where they can merge.
    assert during["batching"] - before["batching"] >= 10, (before, during)
    # A lone request afterwards finds nothing in flight and skips the batching queue, instead of
    # waiting there about as long as the burst's requests queued (BentoML's dispatcher).
    http.post("/classify", json={"posts": {"text": CANDIDATES[0]}}).raise_for_status()
    after = classifier_calls(http)
    assert (after["direct"] - during["direct"], after["batching"] - during["batching"]) == (1, 0)


def test_batch_command_routes_like_the_server(http, server, model_dir, tmp_path, write_jsonl):
    """Same code path: the batch command (no server) and the endpoint give the same predictions and routes."""
    import os
    import subprocess
    import sys

    posts = [{"id": "same-1", "text": CANDIDATES[0], "channel": "twitter"},
             {"id": "same-2", "text": f"{CANDIDATES[6]} mario.rossi@example.com", "channel": "email"}]
    served = http.post("/route", json={"posts": posts}).json()["results"]
    output = tmp_path / "routes.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "smista", "serve", "batch", str(write_jsonl("posts.jsonl", posts)), "--output", str(output),
         "--model", str(model_dir), "--routing-config", str(server.workdir / "routing.yaml"), "--as-of", "now",
         "--no-progress"],
        capture_output=True, text=True, timeout=240, env=dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    for online, offline in zip(served, scored, strict=True):
        assert online["id"] == offline["id"]
        for head, prediction in online["predictions"].items():
            assert offline["predictions"][head]["labels"] == prediction["labels"]
            assert offline["predictions"][head]["probabilities"] == pytest.approx(prediction["probabilities"], abs=1e-5)
        keys = ("action", "queue", "team", "priority", "confidence_tier", "reply_channel", "pii", "out_of_hours")
        assert {key: offline["route"][key] for key in keys} == {key: online["route"][key] for key in keys}
        assert [r["rule"] for r in offline["route"]["reasons"]] == [r["rule"] for r in online["route"]["reasons"]]


def test_metrics_and_openapi(http):
    metrics = http.get("/metrics").text
    assert 'smista_predicted_labels_total{head="intent"' in metrics
    assert 'smista_routed_posts_total{' in metrics and 'tier="human_triage"' in metrics
    assert 'smista_human_triage_rate{window="1h"}' in metrics
    assert "bentoml_service_adaptive_batch_size" in metrics
    # Drift per head against the model's training reference, which the Router fetched from the
    # Classifier and stored when the model first routed, and against the previous window.
    for head in ("intent", "sentiment", "business_action"):
        assert f'smista_drift_psi{{head="{head}",against="training",window="24h"}}' in metrics
        assert f'smista_drift_flagged{{head="{head}",against="previous_period",window="24h"}}' in metrics
        assert f'smista_mean_confidence{{head="{head}",window="24h"}}' in metrics
    paths = http.get("/docs.json").json()["paths"]
    assert {"/classify", "/route", "/feedback", "/crisis", "/readyz"} <= set(paths)


def test_the_onnx_int8_runtime_serves_classify_from_two_workers(model_dir, tmp_path_factory):
    """SMISTA_RUNTIME=onnx-int8 with SMISTA_CLASSIFIER_WORKERS=2: both Classifier workers find no
    export at start-up, one makes it while the other waits on the export lock (a copy of the model,
    so the shared model's folder stays as it is); each runs the model on its share of the cores, and
    the service answers as that export does in this process."""
    import shutil

    from training.machine import available_cores

    workdir = tmp_path_factory.mktemp("serve-onnx")
    shutil.copytree(model_dir, workdir / "model")
    body = {"posts": [{"id": f"c{n}", "text": text} for n, text in enumerate(CANDIDATES)]}
    env = {"SMISTA_RUNTIME": "onnx-int8", "SMISTA_API_KEYS": KEY, "SMISTA_CLASSIFIER_WORKERS": "2"}
    with LocalServer(str(workdir / "model"), extra_env=env, workdir=workdir, startup_timeout=150) as server:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60.0) as client:
            # Concurrent requests, so that either worker may take some.
            with ThreadPoolExecutor(max_workers=4) as pool:
                responses = list(pool.map(lambda _: client.post("/classify", json=body), range(8)))
            # Compared below with the same export run in this process: one request alone. Under
            # concurrency adaptive batching mixes posts of several requests, and int8's activation
            # scales depend on the batch.
            response = client.post("/classify", json=body)
        log = server.log_path.read_text(encoding="utf-8")
    ready = [json.loads(line[line.index("{"):]) for line in log.splitlines() if '"event": "classifier_ready"' in line]
    assert [(event["workers"], event["threads"]) for event in ready] == [(2, max(1, available_cores() // 2))] * 2
    assert all(each.status_code == 200 for each in [*responses, response]), [each.text for each in responses]
    served = response.json()
    assert (served["runtime"], served["model_version"]) == ("onnx-int8", "model")
    assert (workdir / "model" / "onnx" / "model.int8.onnx").is_file()
    # The served labels and probabilities are those of the export the workers made, run as each
    # worker runs it (its share of the cores). How close int8 is to torch is tests/test_onnx_runtime.py's
    # matter: on this tiny random model 10 to 12 of these 12 intents agree, run to run.
    from training.inference.predict import Predictor

    local = Predictor.load(str(workdir / "model"), runtime="onnx-int8", threads=max(1, available_cores() // 2))
    expected = local.predict([post["text"] for post in body["posts"]], batch_size=8)
    for result, by_head in zip(served["results"], expected, strict=True):
        for head, prediction in by_head.items():
            assert result["predictions"][head]["labels"] == list(prediction.labels)
            assert result["predictions"][head]["probabilities"] == pytest.approx(
                {label: float(p) for label, p in prediction.probabilities.items()}, abs=1e-5)


def test_bench_rounds_measure_side_by_side_servers_in_rotating_order(model_dir, tmp_path):
    """`smista serve bench --runtimes torch,onnx-int8 --rounds 2`, scaled down: the full pass starts a
    server per runtime in turn; round 2 starts both once, keeps them up together and measures them
    and the plain loop in rotated order; every phase answered without failures."""
    import shutil

    from benchmarks.speed.bench import BenchConfig, run_benchmark

    shutil.copytree(model_dir, tmp_path / "model")
    shutil.copytree(model_dir, tmp_path / "plain-model")  # stands for the teacher of a served student
    config = BenchConfig(model=str(tmp_path / "model"), plain_model=str(tmp_path / "plain-model"),
                         runtimes=("torch", "onnx-int8"), rounds=2, ceiling=False,
                         light_requests=5, concurrent_requests=8, concurrency=2, batch_requests=2, plain_posts=10,
                         phase_seconds=30)
    progress: list[str] = []
    result = run_benchmark(config, progress=progress.append)
    for runtime, endpoint in result.endpoints.items():
        for phase in (endpoint.light_load, endpoint.concurrent_single, endpoint.batched, endpoint.route_light_load):
            assert phase.requests > 0 and phase.failures == 0 and phase.posts_per_second > 0, (runtime, phase)
    assert set(result.endpoints) == {"torch", "onnx-int8"}
    assert {name: len(rates) for name, rates in result.rounds.items()} == {"torch": 2, "onnx-int8": 2, "plain": 2}
    assert all(rate > 0 for rates in result.rounds.values() for rate in rates)
    assert "onnx-int8: batched_over_torch_batched, median of 2 rounds" in result.ratios
    assert {name: len(rates) for name, rates in result.concurrent_rounds.items()} == {"torch": 2, "onnx-int8": 2}
    assert "onnx-int8: concurrent_over_plain, median of 2 rounds" in result.ratios
    assert result.plain_model_version == "plain-model" and result.model_version == "model"
    for endpoint in result.endpoints.values():  # the Classifier worker found among the server's processes
        assert 0 < endpoint.classifier_peak_rss_mb < endpoint.server_peak_rss_mb
    round_two = progress[progress.index(next(line for line in progress if line.startswith("rounds 2-2"))):]
    assert [line.split(": ", 1)[1] for line in round_two if line.startswith("round 2 of 2")] == ["onnx-int8", "plain", "torch"]
    # Both servers started before the round's first measurement, and only once for the rounds.
    starts = [line for line in round_two if "beside the others" in line]
    assert len(starts) == 2 and round_two.index(starts[-1]) < round_two.index("round 2 of 2: onnx-int8")


def test_a_flood_from_one_author_declares_no_crisis(http, scenario):
    """A key holder sends twice the crisis threshold of negative posts, invented ids, one author."""
    routes = [route(http, {"id": f"flood-{n}", "text": SPIKE_TEXT, "channel": "twitter",
                           "author": {"handle": "@flooder"}})[0]
              for n in range(2 * CRISIS_POSTS)]
    assert not any(r["crisis"] for r in routes)
    report = http.get("/crisis").json()
    assert all(crisis["intent"] != scenario["spike_intent"] for crisis in report["active"])


def test_a_key_inventing_authors_declares_no_crisis(http, scenario):
    """A key holder sends twice the threshold of negative posts, each under a made-up author: that
    key adds at most MAX_AUTHORS_PER_CLIENT authors to the window, fewer than a crisis needs."""
    routes = [route(http, {"id": f"invented-{n}", "text": SPIKE_TEXT, "channel": "twitter",
                           "author": {"handle": f"@inventato{n}"}})[0]
              for n in range(2 * CRISIS_POSTS)]
    assert not any(r["crisis"] for r in routes)
    report = http.get("/crisis").json()
    assert all(crisis["intent"] != scenario["spike_intent"] for crisis in report["active"])


def test_a_simulated_crisis_spike_escalates_to_management_and_shows_in_crisis(http, server, scenario):
    before = http.get("/crisis").json()
    assert all(crisis["intent"] != scenario["spike_intent"] for crisis in before["active"])
    # One request per post and author, as they would arrive, from two care platforms (two keys):
    # each key adds at most MAX_AUTHORS_PER_CLIENT authors, together they pass the threshold. The
    # first key may have used its share in the tests above already.
    other = httpx.Client(base_url=server.url, headers={"X-API-Key": OTHER_KEY}, timeout=60.0)
    routes = [route(other if n % 2 else http, {"id": f"spike-{n}", "text": SPIKE_TEXT, "channel": "twitter",
                                               "author": {"handle": f"@cliente{n}"}})[0]
              for n in range(CRISIS_POSTS + 4)]
    other.close()
    assert not routes[0]["crisis"]
    assert routes[-1]["crisis"] and routes[-2]["crisis"]
    escalated = routes[-1]
    assert (escalated["queue"], escalated["priority"], escalated["out_of_hours"]) == ("direzione", "urgente", False)
    crisis_reason = next(r for r in escalated["reasons"] if r["rule"] == "crisis")
    assert crisis_reason["labels"]["intent"] == scenario["spike_intent"]
    report = http.get("/crisis").json()
    [active] = [crisis for crisis in report["active"] if crisis["intent"] == scenario["spike_intent"]]
    assert active["status"] == "active" and active["window_count"] >= CRISIS_POSTS
    assert active["flagged_posts"] >= 2 and active["id"] == escalated["crisis_id"]
    assert report["window_minutes"] == 10
