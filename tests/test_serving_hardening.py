"""What a hostile or careless client could do to the live endpoint (issue #16), each reproduced on a
real `bentoml serve` of the tiny model over loopback: forged log lines, unbounded metric series,
ERROR tracebacks for client errors, a readiness probe held by a stalled Classifier, retries that
stored a post or a piece of feedback twice. docs/SECURITY.md lists each with its test."""

from __future__ import annotations

import re
import sqlite3
import time

import httpx
import pytest

from serving.local_server import SERVER_ID_VARIABLE, LocalServer, processes_with_environment
from serving.store import PredictionStore

pytest_plugins = ("tests.training_fixtures",)
pytestmark = pytest.mark.slow

KEY = "hardening-key-0123456789"
HEADERS = {"X-API-Key": KEY}
# Every record BentoML's handler writes starts with a timestamp; a forged line would not.
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hardening")
    # A short lock timeout, so the locked-database test waits 1 s rather than 30.
    env = {"SMISTA_API_KEYS": KEY, "SMISTA_DATABASE_LOCK_TIMEOUT_S": "1"}
    with LocalServer(str(tiny_run.model_dir), extra_env=env, workdir=workdir, startup_timeout=150) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60.0) as client:
        yield client


def log_since(server, offset: int) -> str:
    time.sleep(0.5)  # let the workers flush
    return server.log_path.read_text(encoding="utf-8")[offset:]


def offset(server) -> int:
    return len(server.log_path.read_text(encoding="utf-8"))


def test_nothing_a_client_sends_can_forge_a_log_line(server, http):
    start = offset(server)
    for client in (http, httpx.Client(base_url=server.url, timeout=30.0)):  # with and without the key
        client.get("/x%0A2026-01-01T00:00:00+0000 [INFO] FORGED-PATH")
        client.post("/classify%0D%0AFORGED-CR", json={"posts": {"text": "ciao"}})
    http.post("/classify", json={"posts": {"text": "ciao", "a\n2026-01-01T00:00:00+0000 [ERROR] FORGED-FIELD": 1}})
    http.post("/route", json={"posts": {"id": "p\u2028FORGED-ID\n1", "text": "ciao", "channel": "twitter"}})
    http.post("/feedback", json={"post_id": "n\nFORGED-FEEDBACK", "resolved": False})
    written = log_since(server, start)
    assert "FORGED" in written or "unknown-path" in written  # the requests were logged...
    for line in written.splitlines():
        if "FORGED" in line or "unknown-path" in line:
            assert RECORD_START.match(line), f"a client made its own log line: {line!r}"  # ...never as a line of their own
    # The unknown paths were logged as the placeholder, never as sent.
    assert "FORGED-PATH" not in written and "FORGED-CR" not in written


def test_a_client_error_is_one_warning_without_a_traceback(server, http):
    start = offset(server)
    assert http.post("/classify", json={"posts": {"text": "ciao", "colore": "blu"}}).status_code == 400
    assert http.post("/route", content=b"{not json", headers={"content-type": "application/json"}).status_code == 400
    written = log_since(server, start)
    assert "Traceback" not in written and "[ERROR]" not in written
    rejected = [line for line in written.splitlines() if '"request_rejected"' in line]
    assert len(rejected) == 2 and all("[WARNING]" in line for line in rejected)
    assert "colore" not in written  # field names are the client's bytes: counted by type, never echoed


def test_unknown_paths_make_no_new_metric_series(server, http):
    def series() -> set[str]:
        text = http.get("/metrics").text
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line.startswith("bentoml_service_request")}

    anonymous = httpx.Client(base_url=server.url, timeout=30.0)
    for n in range(3):
        http.get(f"/probe-{n}")
        anonymous.get(f"/probe-{n}")
    before = series()
    for n in range(3, 40):
        http.get(f"/probe-{n}")
        anonymous.post(f"/probe-{n}/x%0Ay")
    after = series()
    assert not any("probe-" in name for name in after)
    assert after - before <= {name for name in after if 'endpoint="/unknown-path"' in name}
    assert len(after) == len(before) or all('endpoint="/unknown-path"' in name for name in after - before)
    # Known paths still answer as before.
    assert http.get("/crisis").status_code == 200 and http.get("/docs.json").status_code == 200


def classifier_processes(server) -> list:
    processes = processes_with_environment(SERVER_ID_VARIABLE, server._process.server_id)
    found = [process for process in processes if "smista_classifier" in " ".join(process.cmdline())]
    assert found, [" ".join(process.cmdline()) for process in processes]
    return found


def test_readyz_answers_503_fast_when_the_classifier_is_stalled(server):
    with httpx.Client(base_url=server.url, timeout=30.0) as probe:
        assert probe.get("/readyz").status_code == 200
        stalled = classifier_processes(server)
        for process in stalled:
            process.suspend()
        try:
            started = time.perf_counter()
            response = probe.get("/readyz")
            elapsed = time.perf_counter() - started
        finally:
            for process in stalled:
                process.resume()
        assert response.status_code == 503 and elapsed < 2.0, (response.status_code, elapsed)
        deadline = time.monotonic() + 30
        while probe.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after the Classifier resumed"
            time.sleep(0.2)
    assert "the Classifier did not answer ready" in server.log_path.read_text(encoding="utf-8")


def test_a_retried_route_gets_the_stored_result_and_is_stored_once(server, http):
    post = {"id": "retry-1", "text": "La fibra non va da ieri sera", "channel": "twitter"}
    first = http.post("/route", json={"posts": post})
    again = http.post("/route", json={"posts": [post, {**post, "id": "retry-2"}, post]})
    assert first.status_code == 200 and again.status_code == 200, again.text
    original, (replay, other, copy) = first.json()["results"][0], again.json()["results"]
    assert not original["replayed"] and replay["replayed"] and copy["replayed"] and not other["replayed"]
    assert replay["route"] == original["route"] and replay["predictions"] == original["predictions"]
    conflict = http.post("/route", json={"posts": [{**post, "id": "retry-3"}, {**post, "text": "Altro testo"}]})
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["detail"][0]["loc"] == ["posts", 1] and "'retry-1' was routed at" in conflict.text
    feedback = {"post_id": "retry-1", "resolved": True, "agent_id": "agent-1"}
    receipts = [http.post("/feedback", json=feedback).json() for _ in range(3)]
    assert len({receipt["feedback_id"] for receipt in receipts}) == 1 and receipts[-1]["replayed"]
    store = PredictionStore(f"sqlite:///{server.workdir / 'smista.db'}")
    try:
        assert len(store.routed_posts("retry-1")) == 1 and store.routed_posts("retry-3") == []
        assert len(store.feedback_for("retry-1")) == 1
    finally:
        store.close()


def test_a_locked_database_is_a_503_naming_it_and_nothing_is_acknowledged(server, http):
    post = {"id": "locked-1", "text": "Non riesco a pagare la bolletta", "channel": "twitter"}
    holder = sqlite3.connect(server.workdir / "smista.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the database past the lock timeout
    try:
        started = time.perf_counter()
        refused = http.post("/route", json={"posts": post})
        feedback = http.post("/feedback", json={"post_id": "retry-1", "resolved": False, "agent_id": "agent-9"})
        elapsed = time.perf_counter() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for response in (refused, feedback):
        assert response.status_code == 503, response.text
        assert "database is locked" in response.json()["error"] and response.headers["retry-after"] == "5"
    assert elapsed < 10
    store = PredictionStore(f"sqlite:///{server.workdir / 'smista.db'}")
    try:
        assert store.routed_posts("locked-1") == []  # refused means not stored
        accepted = http.post("/route", json={"posts": post})  # the retry the 503 asked for
        assert accepted.status_code == 200 and not accepted.json()["results"][0]["replayed"]
        assert len(store.routed_posts("locked-1")) == 1
    finally:
        store.close()
