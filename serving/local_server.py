"""Run the Router with `bentoml serve` as a child process on a free loopback port, and stop it:
for the benchmark and the end-to-end tests (the `smista serve` command runs it in the foreground).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import httpx
import psutil

from data.errors import UserError
from data.locations import PROJECT_DIR

SERVICE = "serving.service:Router"


class ServerStartError(UserError, RuntimeError):
    """`bentoml serve` exited or did not become ready; the message ends with its log."""


# A fresh value per server in the environment of `bentoml serve`, which every worker inherits:
# stop_server finds the server's processes by it, including any whose parent died before them.
SERVER_ID_VARIABLE = "SMISTA_SERVER_ID"


def bentoml_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]


class ServerProcess(subprocess.Popen):
    """`bentoml serve`, with the id its processes carry in SERVER_ID_VARIABLE."""

    server_id: str


def spawn_server(host: str, port: int, env: dict[str, str], **popen_options) -> ServerProcess:
    server_id = secrets.token_hex(8)
    process = ServerProcess(bentoml_command(host, port), cwd=PROJECT_DIR, env={**env, SERVER_ID_VARIABLE: server_id},
                            **popen_options)
    process.server_id = server_id
    return process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, env: dict[str, str], log: TextIO) -> ServerProcess:
    return spawn_server("127.0.0.1", port, env, stdout=log, stderr=subprocess.STDOUT)


def wait_until_ready(url: str, process: subprocess.Popen, timeout: float, log_path: Path,
                     error: type[Exception] = ServerStartError) -> None:

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise error(f"bentoml serve exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.3)
    raise error(f"{url} not ready after {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")


def processes_with_environment(variable: str, value: str) -> list:
    """Every running process (psutil.Process) whose environment sets `variable` to `value`: how the
    processes of one server are found, including those no longer in its process tree."""
    found = []
    for candidate in psutil.process_iter():
        try:
            if candidate.environ().get(variable) == value:
                found.append(candidate)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue  # another user's process, or one that just ended
    return found


def stop_server(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM `bentoml serve`, which stops its workers; then stop, by pid, any worker it left.

    BentoML 1.4.39 now and then leaves the entry worker's event loop running after SIGTERM (seen
    in about one stop in three here, with or without our middleware and hooks; the worker ignores
    a direct SIGTERM too). Its workers run in sessions of their own, so they are not found by
    process group: they are the children of this process, and, for a ServerProcess, every process
    carrying its server id, which also finds a worker whose parent died before it (an orphan no
    longer in the tree), also when `bentoml serve` had already exited. Only those are signalled.
    """
    workers = []
    if process.poll() is None:
        try:
            workers = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
    # Even when `bentoml serve` has already exited: its workers may not have.
    server_id = getattr(process, "server_id", None)
    if server_id is not None:
        known = {worker.pid for worker in workers}
        workers += [found for found in processes_with_environment(SERVER_ID_VARIABLE, server_id)
                    if found.pid not in known]
    leftovers = [worker for worker in workers if worker.is_running()]
    for worker in leftovers:
        worker.terminate()
    _, alive = psutil.wait_procs(leftovers, timeout=3)
    for worker in alive:
        worker.kill()
    psutil.wait_procs(alive, timeout=grace)


class LocalServer:
    """The Router on a free loopback port with a throwaway key, database and BENTOML_HOME.

    `extra_env` adds SMISTA_* settings (a routing config, limits); the key and the database are
    generated unless given there.
    """

    def __init__(self, model: str, extra_env: dict[str, str] | None = None, workdir: Path | None = None,
                 startup_timeout: float = 180.0, error: type[Exception] = ServerStartError):
        self.model = model
        self._extra_env = dict(extra_env or {})
        self.api_key = self._extra_env.get("SMISTA_API_KEYS", secrets.token_urlsafe(24)).split(",")[0]
        self._temporary = None if workdir is not None else tempfile.TemporaryDirectory(prefix="smista-serve-")
        self.workdir = workdir if workdir is not None else Path(self._temporary.name)
        self._startup_timeout = startup_timeout
        self._error = error
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "server.log"
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def server_id(self) -> str:
        """The id every process of this server carries in SERVER_ID_VARIABLE."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.server_id

    def __enter__(self) -> LocalServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SMISTA_MODEL": self.model,
            "SMISTA_API_KEYS": self.api_key,
            "SMISTA_DATABASE_URL": f"sqlite:///{self.workdir / 'smista.db'}",
            # Outside the project tree, and thrown away with the server.
            "BENTOML_HOME": str(self.workdir / "bentoml"),
            "BENTOML_DO_NOT_TRACK": "true",
            **self._extra_env,
        }
        self._log = self.log_path.open("w", encoding="utf-8")
        self._process = start_server(self.port, env, self._log)
        try:
            wait_until_ready(self.url, self._process, self._startup_timeout, self.log_path, self._error)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            stop_server(self._process)
        self._log.close()
        if self._temporary is not None:
            self._temporary.cleanup()
