"""Run the Label Studio server for annotators, on 127.0.0.1, with nothing to click through.

Label Studio lives in its own virtual environment (scripts/install-labelstudio.sh): its Django
pins would otherwise bind the project's environment. This module starts it as a subprocess with:
- the admin user and API token created from LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD /
  LABEL_STUDIO_USER_TOKEN, so no browser sign-up step exists;
- SQLite in the data directory by default, PostgreSQL when asked (POSTGRE_* variables);
- every call-out switched off (version check, Sentry, analytics): the server only talks to loopback.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from data.locations import PROJECT_DIR, SCRIPTS_DIR, VAR_DIR
from labeling.client import LabelingError

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_VENV = PROJECT_DIR / ".venv-labelstudio"
# The SQLite database with every annotation lives here: it is state, not a build output.
DEFAULT_DATA_DIR = VAR_DIR / "label-studio"
INSTALL_SCRIPT = SCRIPTS_DIR / "install-labelstudio.sh"

CREDENTIAL_VARIABLES = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")
POSTGRES_VARIABLES = ("POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST", "POSTGRE_PORT")
# Keep Label Studio from calling out: version check, error reporting, analytics.
OFFLINE_SETTINGS = {
    "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
}
# Variables of the caller's Python that must not leak into the server's own interpreter.
_FOREIGN_PYTHON_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class LabelStudioServerError(LabelingError):
    """The server cannot be started, or did not become ready; the message says why."""


@dataclass
class ServerConfig:
    """Settings of `smista label server`. Every field has a CLI flag of the same name."""

    port: int = field(default=DEFAULT_PORT, metadata={"help": "Port on 127.0.0.1."})
    data_dir: str = field(
        default=str(DEFAULT_DATA_DIR),
        metadata={"help": "Label Studio's data directory (SQLite database, uploads, secret key)."},
    )
    database: str = field(
        default="sqlite",
        metadata={"help": "sqlite (in data_dir) or postgresql (from the POSTGRE_* environment variables)."},
    )
    venv: str = field(default=str(DEFAULT_VENV), metadata={"help": "Virtual environment that holds label-studio."})
    ready_timeout_s: float = field(
        default=180.0, metadata={"help": "Seconds to wait for the server (first start runs migrations, ~60 s)."}
    )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def executable(self) -> Path:
        return Path(self.venv) / "bin" / "label-studio"


def check_credentials(environment: Mapping[str, str]) -> None:
    """The admin user and token must come from the environment; say exactly which is missing or bad."""
    missing = [name for name in CREDENTIAL_VARIABLES if not environment.get(name)]
    if missing:
        raise LabelStudioServerError(
            f"set {', '.join(missing)} before starting Label Studio: the admin user (an e-mail), "
            "its password and its API token are created from them, with no sign-up page"
        )
    if not _EMAIL.match(environment["LABEL_STUDIO_USERNAME"]):
        raise LabelStudioServerError(
            f"LABEL_STUDIO_USERNAME must be an e-mail address, got {environment['LABEL_STUDIO_USERNAME']!r}"
        )
    if len(environment["LABEL_STUDIO_USER_TOKEN"]) <= 5:
        raise LabelStudioServerError("LABEL_STUDIO_USER_TOKEN must be longer than 5 characters")


def server_environment(config: ServerConfig, environment: Mapping[str, str]) -> dict[str, str]:
    """The environment the server process runs with (pure: tested without starting anything)."""
    check_credentials(environment)
    if config.database not in ("sqlite", "postgresql"):
        raise LabelStudioServerError(f"database must be 'sqlite' or 'postgresql', got {config.database!r}")
    result = {key: value for key, value in environment.items() if key not in _FOREIGN_PYTHON_VARIABLES}
    result.update(OFFLINE_SETTINGS)
    result["LABEL_STUDIO_BASE_DATA_DIR"] = str(Path(config.data_dir).resolve())
    # The token from the environment is a legacy token: accept it as `Authorization: Token ...`.
    result["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] = "true"
    # Annotators join through an invitation link from the admin, never through an open sign-up page.
    result["LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"] = "true"
    if config.database == "postgresql":
        missing = [name for name in POSTGRES_VARIABLES if not environment.get(name)]
        if missing:
            raise LabelStudioServerError(f"database=postgresql needs {', '.join(missing)} in the environment")
        result["DJANGO_DB"] = "default"
    else:
        result["DJANGO_DB"] = "sqlite"
    return result


def server_command(config: ServerConfig) -> list[str]:
    # --internal-host is the bind address; --host would only be the public URL.
    return [str(config.executable), "start", "--no-browser", "--port", str(config.port), "--internal-host", HOST]


def check_port_free(port: int) -> None:
    """Label Studio silently moves to the next port when its own is taken; then every command would
    talk to whatever holds the port. Refuse instead."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as the server itself binds: connections of a server that just died linger in
        # TIME_WAIT and would fail a plain bind, though only a listening socket stops the restart.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise LabelStudioServerError(
                f"port {port} on {HOST} is already in use ({exc.strerror}); is Label Studio already running? "
                "Pick another with --port"
            ) from None


def find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class RunningServer:
    """A Label Studio process this module started; `stop()` ends it and only it."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])

    def wait_until_ready(self, timeout_s: float) -> float:
        """Poll /health until it answers UP; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.process.poll() is not None:
                raise LabelStudioServerError(
                    f"Label Studio exited with code {self.process.returncode} before it was ready; "
                    f"the end of its log ({self.log_path}):\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass  # not listening yet: that is what we are waiting for
            time.sleep(0.5)
        self.stop()
        raise LabelStudioServerError(
            f"Label Studio did not answer on {self.url}/health within {timeout_s:.0f} s; "
            f"the end of its log ({self.log_path}):\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        # The server runs in its own process group (start_new_session): end that group only.
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout_s)


def start_server(config: ServerConfig, environment: Mapping[str, str] | None = None) -> RunningServer:
    """Start Label Studio in the background and return at once; call wait_until_ready next."""
    env = server_environment(config, os.environ if environment is None else environment)
    if not config.executable.exists():
        raise LabelStudioServerError(
            f"Label Studio is not installed at {config.executable}: run `bash {INSTALL_SCRIPT}`"
        )
    check_port_free(config.port)
    data_dir = Path(env["LABEL_STUDIO_BASE_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            server_command(config),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningServer(process=process, url=config.url, log_path=log_path)
