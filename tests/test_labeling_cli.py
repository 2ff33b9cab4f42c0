from __future__ import annotations

import socket

from conftest import make_post

from smista.cli import main


def _closed_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_config_command_prints_the_generated_xml(capsys):
    assert main(["label", "config"]) == 0
    out = capsys.readouterr().out
    assert '<Choices name="business_action" toName="text" choice="multiple"' in out


def test_import_against_a_server_that_is_down_fails_with_a_message(write_jsonl, capsys):
    path = write_jsonl("posts.jsonl", [make_post("p1")])
    code = main(["label", "import", str(path), "--url", _closed_url(), "--api-key", "token-123456"])
    assert code == 2
    assert "not reachable" in capsys.readouterr().err


def test_server_command_without_installation_points_at_the_script(tmp_path, monkeypatch, capsys):
    for name, value in {"LABEL_STUDIO_USERNAME": "admin@smista.local", "LABEL_STUDIO_PASSWORD": "password-123",
                        "LABEL_STUDIO_USER_TOKEN": "token-123456"}.items():
        monkeypatch.setenv(name, value)
    assert main(["label", "server", "--venv", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "d")]) == 2
    assert "install-labelstudio.sh" in capsys.readouterr().err


def test_server_command_without_credentials_names_them(tmp_path, monkeypatch, capsys):
    for name in ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["label", "server", "--venv", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "d")]) == 2
    assert "LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN" in capsys.readouterr().err
