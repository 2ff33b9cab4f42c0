"""`smista serve`: refuses bad settings before starting anything, and a started server stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from serving.local_server import free_port, processes_with_environment

pytest_plugins = ("tests.training_fixtures",)
KEY = "cli-test-key-0123456789"


def smista(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smista", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def without_keys() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("SMISTA_")}


def test_serve_help_lists_its_commands():
    result = smista("serve", "--help")
    assert result.returncode == 0
    assert "batch" in result.stdout and "bench" in result.stdout and "127.0.0.1" in result.stdout


def test_serve_refuses_to_start_without_keys():
    result = subprocess.run([sys.executable, "-m", "smista", "serve"], capture_output=True, text=True, timeout=120,
                            env=without_keys())
    assert result.returncode == 2
    assert "no API keys: set SMISTA_API_KEYS" in result.stderr and "Traceback" not in result.stderr


def test_serve_without_keys_only_on_loopback():
    result = smista("serve", "--no-api-key", "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "without API keys the service listens only on loopback, not on 0.0.0.0" in result.stderr


def test_a_bad_routing_config_is_named_before_the_server_starts(tmp_path):
    result = smista("serve", "batch", str(tmp_path / "posts.jsonl"), "--output", str(tmp_path / "out.jsonl"),
                    "--routing-config", str(tmp_path / "missing.yaml"), "--model", str(tmp_path))
    assert result.returncode == 2
    assert "missing.yaml: routing config not found" in result.stderr



@pytest.mark.slow
def test_serve_runs_bentoml_on_loopback_and_ctrl_c_stops_every_process(tiny_run, tmp_path):
    port = free_port()
    env = {**without_keys(), "SMISTA_API_KEYS": KEY, "SMISTA_DATABASE_URL": f"sqlite:///{tmp_path / 'smista.db'}",
           "BENTOML_HOME": str(tmp_path / "bentoml")}
    # Ctrl+C at a terminal reaches a process whose SIGINT is at its default. A test run started in
    # the background by a non-interactive shell has SIGINT ignored, and the child would inherit
    # that (Python then installs no KeyboardInterrupt handler): restore the default for the child.
    process = subprocess.Popen([sys.executable, "-m", "smista", "serve", "--port", str(port), "--model",
                                str(tiny_run.model_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 150
    ready = False
    while time.monotonic() < deadline and process.poll() is None and not ready:
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            time.sleep(0.3)
    try:
        assert ready, "smista serve did not become ready"
        listening = {(c.laddr.ip, c.laddr.port) for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
        assert ("127.0.0.1", port) in listening and ("0.0.0.0", port) not in listening
        routed = httpx.post(f"http://127.0.0.1:{port}/route", headers={"X-API-Key": KEY}, timeout=30,
                            json={"posts": {"text": "Bolletta addebito", "channel": "twitter"}})
        assert routed.status_code == 200, routed.text
        workers = psutil.Process(process.pid).children(recursive=True)
        assert len(workers) >= 3  # bentoml serve, the Router and the Classifier workers
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C
        process.wait(timeout=60)
    # Every process of this server carries its BENTOML_HOME; any still running would also keep the
    # output pipe open, and read() below would wait for it.
    still_running = [" ".join(found.cmdline()[:6])
                     for found in processes_with_environment("BENTOML_HOME", env["BENTOML_HOME"])]
    assert still_running == []
    output = process.stdout.read()
    assert process.returncode == 130, output
    assert "Serving on http://127.0.0.1:" in output and KEY not in output
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


# A stand-in for `bentoml serve` whose worker runs in a session of its own, as BentoML's do, and
# outlives its parent: after the parent is gone it is no longer anyone's child in the tree.
FAKE_SERVER = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print(worker.pid, flush=True)
if sys.argv[1] == "stay":
    time.sleep(120)
"""


@pytest.mark.parametrize("parent", ["stay", "exit"])
def test_stop_server_stops_a_worker_whose_parent_is_gone(parent):
    from serving.local_server import SERVER_ID_VARIABLE, ServerProcess, stop_server

    process = ServerProcess([sys.executable, "-c", FAKE_SERVER, parent], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, SERVER_ID_VARIABLE: "test-orphan-0123"})
    process.server_id = "test-orphan-0123"
    worker = psutil.Process(int(process.stdout.readline()))
    if parent == "exit":
        process.wait(timeout=30)  # the worker is an orphan before stop_server is called
        assert worker.ppid() != process.pid
    stop_server(process, grace=2.0)
    assert process.poll() is not None
    worker.wait(timeout=10)  # raises psutil.TimeoutExpired if it was left running
    assert not worker.is_running()
