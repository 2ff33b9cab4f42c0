"""Screenshot of the labeling interface for one task, as an annotator sees it (docs/labeling-interface.png).

Needs a running server (`smista label server`), LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD of
its admin, LABEL_STUDIO_API_KEY, and Debian's `chromium` and `chromium-driver`. It creates the
project if needed, imports one example post (redacted like any import), attaches a pre-annotation
so the interface shows pre-selected choices, logs in through the login page with headless
Chromium (driven over chromedriver's W3C WebDriver HTTP API, no extra Python package) and saves
the screenshot.

    python scripts/labeling_screenshot.py --url http://127.0.0.1:8080 --output docs/labeling-interface.png
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.schema import PostValidator  # noqa: E402
from data.taxonomy import load_taxonomy  # noqa: E402
from labeling.client import LabelStudioClient, ServerAddress  # noqa: E402
from labeling.config import labels_to_result  # noqa: E402
from labeling.importer import import_posts  # noqa: E402
from labeling.project import ensure_project  # noqa: E402
from labeling.settings import load_labeling_settings  # noqa: E402

EXAMPLE_POST = {
    "id": "esempio-0001",
    "text": (
        "@VeloFibra terzo giorno senza linea e il tecnico non si presenta. Lavoro da casa, così perdo il "
        "cliente. Richiamatemi al 347 123 4567 oppure scrivete a giulia.bianchi@esempio.it, altrimenti "
        "disdico e passo alla concorrenza. Anche @vicina_del_terzo_piano è senza linea."
    ),
    "channel": "twitter",
    "author": {"handle": "@giulia_b_92", "followers": 1280},
    "public": True,
    "created_at": "2026-03-14T09:12:00+01:00",
    "language": "it",
    "sector": "telco",
}
EXAMPLE_LABELS = {"intent": "assistenza_tecnica", "customer_type": "cliente_attivo",
                  "business_action": ["disdetta", "lamentela"], "priority": "urgente", "sentiment": "negativo"}
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # the W3C WebDriver element reference key


class WebDriver:
    """The handful of W3C WebDriver calls a login and a screenshot need."""

    def __init__(self, endpoint: str, user_data_dir: str, width: int, height: int):
        self.http = httpx.Client(base_url=endpoint, timeout=60)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={user_data_dir}",
                f"--window-size={width},{height}", "--lang=it-IT"]
        capabilities = {"browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args}}
        response = self._call("POST", "/session", {"capabilities": {"alwaysMatch": capabilities}})
        self.session = response["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.http.request(method, path, json=body)
        value = response.json().get("value")
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: HTTP {response.status_code}: {value}")
        return value if path == "/session" else {"value": value}

    def go(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def find(self, css: str, timeout_s: float = 30) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.http.post(f"/session/{self.session}/element", json={"using": "css selector", "value": css})
            if response.status_code == 200:
                return response.json()["value"][ELEMENT_KEY]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no element {css!r} after {timeout_s:.0f} s")
            time.sleep(0.5)

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/session/{self.session}/element/{self.find(css)}/value", {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"/session/{self.session}/element/{self.find(css)}/click", {})

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot")["value"])

    def quit(self) -> None:
        self.http.delete(f"/session/{self.session}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare_task(client: LabelStudioClient) -> tuple[int, int]:
    """(project id, task id) of the example post, with a pre-annotation attached."""
    taxonomy = load_taxonomy()
    settings = load_labeling_settings()
    project = ensure_project(client, taxonomy, settings.project_title)
    validator = PostValidator(taxonomy)
    report = import_posts(client, project.project_id, [validator.validate(EXAMPLE_POST)], validator,
                          settings.public_handles)
    task_id = report.task_ids[EXAMPLE_POST["id"]]
    task = next(t for t in client.iter_tasks(project.project_id) if t["id"] == task_id)
    if not any(p.get("model_version") == "esempio" for p in task.get("predictions") or []):
        client.import_predictions(project.project_id, [{"task": task_id, "model_version": "esempio", "score": 0.62,
                                                        "result": labels_to_result(EXAMPLE_LABELS, taxonomy)}])
    client.update_project(project.project_id, model_version="esempio")
    return project.project_id, task_id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--output", default="docs/labeling-interface.png")
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    for name in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_API_KEY"):
        if not os.environ.get(name):
            parser.error(f"set {name}")

    client = LabelStudioClient.connect(ServerAddress.from_environment(args.url))
    project_id, task_id = prepare_task(client)
    port = _free_port()
    driver_process = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            driver = WebDriver(f"http://127.0.0.1:{port}", profile, args.width, args.height)
            try:
                driver.go(f"{args.url}/user/login/")
                driver.type("input[name=email]", os.environ["LABEL_STUDIO_USERNAME"])
                driver.type("input[name=password]", os.environ["LABEL_STUDIO_PASSWORD"])
                driver.click("button[type=submit]")
                driver.find("a[href*='/projects']", timeout_s=30)
                driver.go(f"{args.url}/projects/{project_id}/data?task={task_id}")
                driver.find(".lsf-choices, [class*='choices']", timeout_s=60)
                time.sleep(4.0)  # let fonts and the pre-annotation settle
                Path(args.output).write_bytes(driver.screenshot())
            finally:
                driver.quit()
    finally:
        driver_process.terminate()
        driver_process.wait(timeout=10)
    print(f"Saved {args.output} (project {project_id}, task {task_id})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
