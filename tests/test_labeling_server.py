from __future__ import annotations

import socket
import time

import jwt
import pytest

from labeling.client import LabelStudioAuthError, LabelStudioClient, LabelStudioUnavailableError, ServerAddress
from labeling.server import (
    HOST,
    LabelStudioServerError,
    ServerConfig,
    check_port_free,
    server_command,
    server_environment,
    start_server,
)

CREDENTIALS = {"LABEL_STUDIO_USERNAME": "admin@smista.local", "LABEL_STUDIO_PASSWORD": "una-password-lunga",
               "LABEL_STUDIO_USER_TOKEN": "token-di-prova-123"}


def test_environment_is_offline_sqlite_and_loopback(tmp_path):
    env = server_environment(ServerConfig(data_dir=str(tmp_path)), {**CREDENTIALS, "PYTHONPATH": "/elsewhere"})
    assert env["LABEL_STUDIO_LATEST_VERSION_CHECK"] == "false"
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["LABEL_STUDIO_COLLECT_ANALYTICS"] == "false"
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["DJANGO_DB"] == "sqlite" and env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path.resolve())
    assert "PYTHONPATH" not in env  # the main venv's paths must not leak into Label Studio's
    command = server_command(ServerConfig(port=8123))
    assert command[1:] == ["start", "--no-browser", "--port", "8123", "--internal-host", HOST]


def test_missing_credentials_are_named():
    with pytest.raises(LabelStudioServerError, match="LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN"):
        server_environment(ServerConfig(), {"LABEL_STUDIO_USERNAME": "admin@smista.local"})
    with pytest.raises(LabelStudioServerError, match="must be an e-mail"):
        server_environment(ServerConfig(), {**CREDENTIALS, "LABEL_STUDIO_USERNAME": "admin"})
    with pytest.raises(LabelStudioServerError, match="longer than 5"):
        server_environment(ServerConfig(), {**CREDENTIALS, "LABEL_STUDIO_USER_TOKEN": "abc"})


def test_postgresql_needs_its_variables():
    with pytest.raises(LabelStudioServerError, match="POSTGRE_NAME"):
        server_environment(ServerConfig(database="postgresql"), CREDENTIALS)
    postgres = {name: "x" for name in ("POSTGRE_NAME", "POSTGRE_USER", "POSTGRE_PASSWORD", "POSTGRE_HOST", "POSTGRE_PORT")}
    assert server_environment(ServerConfig(database="postgresql"), {**CREDENTIALS, **postgres})["DJANGO_DB"] == "default"


def test_busy_port_is_refused_instead_of_moving_silently():
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        with pytest.raises(LabelStudioServerError, match="already in use"):
            check_port_free(holder.getsockname()[1])


def test_missing_installation_points_at_the_install_script(tmp_path):
    with pytest.raises(LabelStudioServerError, match="install-labelstudio.sh"):
        start_server(ServerConfig(venv=str(tmp_path / "nowhere")), CREDENTIALS)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def test_server_down_gives_a_clear_message():
    address = ServerAddress(url=f"http://{HOST}:{_closed_port()}", api_key="token-di-prova-123")
    with pytest.raises(LabelStudioUnavailableError, match="not reachable .*Connection refused.*smista label server"):
        LabelStudioClient.connect(address)


def test_expired_personal_access_token_is_reported_as_expired():
    # A Label Studio personal access token is a JWT refresh token; this one expired an hour ago.
    expired = jwt.encode({"token_type": "refresh", "exp": int(time.time()) - 3600, "user_id": 1}, "k" * 32,
                         algorithm="HS256")
    with pytest.raises(LabelStudioAuthError, match="expired.*personal access token"):
        LabelStudioClient(ServerAddress(url=f"http://{HOST}:{_closed_port()}", api_key=expired))


def test_missing_token_is_an_error_not_an_anonymous_request(monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    with pytest.raises(LabelStudioAuthError, match="LABEL_STUDIO_API_KEY"):
        ServerAddress.from_environment(url="http://127.0.0.1:1")
