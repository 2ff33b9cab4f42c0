"""The request guard (API key, body size) and the SMISTA_* settings, on an in-process ASGI app."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from serving.security import RequestGuard
from serving.settings import ServingSettings, SettingsError, classifier_workers_from_env

KEY = "k3y-for-tests-0123456789"
OTHER_KEY = "second-key-abcdefghijklmno"


async def echo_app(scope, receive, send):
    """Answers with the length of the body it received, to show the guard replays it intact."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    payload = json.dumps({"received": len(body), "path": scope["path"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})


def client(**settings) -> httpx.AsyncClient:
    values = {"api_keys": f"{KEY},{OTHER_KEY}", "max_request_bytes": 2048, **settings}
    guard = RequestGuard(echo_app, ServingSettings.model_validate(values))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://testserver")


@pytest.mark.anyio
async def test_missing_and_wrong_keys_are_401_and_the_key_is_never_logged(caplog):
    async with client() as http:
        with caplog.at_level(logging.DEBUG):
            missing = await http.post("/route", json={})
            wrong = await http.post("/route", json={}, headers={"X-API-Key": "wrong-key-000000000000"})
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("ApiKey")
    assert wrong.status_code == 401 and wrong.json() == {"error": "wrong API key"}
    assert "wrong-key" not in caplog.text and KEY not in caplog.text
    assert '"reason": "wrong API key"' in caplog.text


@pytest.mark.anyio
async def test_any_configured_key_works_in_either_header():
    async with client() as http:
        assert (await http.post("/route", json={}, headers={"X-API-Key": KEY})).status_code == 200
        assert (await http.get("/metrics", headers={"Authorization": f"Bearer {OTHER_KEY}"})).status_code == 200


@pytest.mark.anyio
async def test_health_probes_need_no_key():
    async with client() as http:
        for path in ("/livez", "/healthz", "/readyz"):
            assert (await http.get(path)).status_code == 200
        assert (await http.get("/crisis")).status_code == 401


@pytest.mark.anyio
async def test_keys_can_be_switched_off_for_a_trusted_loopback():
    async with client(api_keys="", require_api_key=False) as http:
        assert (await http.post("/route", json={})).status_code == 200


@pytest.mark.anyio
async def test_bodies_over_the_limit_are_413_whatever_the_declared_length():
    headers = {"X-API-Key": KEY}
    async with client() as http:
        declared = await http.post("/route", content=b"x" * 4096, headers=headers)
        assert declared.status_code == 413
        assert declared.json()["error"] == (
            "4096 bytes is over the limit of 2048 bytes; send fewer or shorter posts per request")

        async def chunks():  # no Content-Length: the guard counts as it reads
            for _ in range(5):
                yield b"y" * 1000

        streamed = await http.post("/route", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        under = await http.post("/route", content=b"z" * 2000, headers=headers)
        assert under.json() == {"received": 2000, "path": "/route"}


def test_settings_from_environment():
    settings = ServingSettings.from_env({
        "SMISTA_MODEL": "/models/minilm", "SMISTA_API_KEYS": f" {KEY} , {OTHER_KEY} ",
        "SMISTA_MAX_POSTS_PER_REQUEST": "32", "SMISTA_DATABASE_URL": "postgresql://smista:hunter2@db/smista",
    })
    assert settings.model == "/models/minilm" and settings.max_posts_per_request == 32
    assert [key.get_secret_value() for key in settings.api_keys] == [KEY, OTHER_KEY]
    for text in (repr(settings), str(settings), settings.describe()):
        assert KEY not in text and "hunter2" not in text
    assert "database=postgresql://smista:***@db/smista" in settings.describe()
    assert ServingSettings.from_env(settings.to_env()) == settings


def test_default_model_is_the_champion_alias():
    assert ServingSettings.from_env({"SMISTA_API_KEYS": KEY}).model == "models:/smista-classifier@champion"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "no API keys: set SMISTA_API_KEYS"),
        ({"SMISTA_API_KEYS": "short"}, "SMISTA_API_KEYS: key #1 is shorter than 16 characters"),
        ({"SMISTA_API_KEYS": KEY, "SMISTA_MAX_TEXT_CHARS": "molti"}, "SMISTA_MAX_TEXT_CHARS: Input should be a valid integer"),
        ({"SMISTA_API_KEYS": KEY, "SMISTA_REQUIRE_API_KEY": "forse"}, "SMISTA_REQUIRE_API_KEY: Input should be a valid boolean"),
        ({"SMISTA_API_KEYS": KEY, "SMISTA_CLASSIFIER_WORKERS": "0"}, "SMISTA_CLASSIFIER_WORKERS: Input should be greater than or equal to 1"),
    ],
)
def test_bad_settings_name_the_variable(environ, expected):
    with pytest.raises(SettingsError, match=expected):
        ServingSettings.from_env(environ)


def test_classifier_workers_share_out_the_cores(monkeypatch):
    import serving.settings as settings_module

    monkeypatch.setattr(settings_module, "available_cores", lambda: 4)
    base = {"SMISTA_API_KEYS": KEY}
    assert ServingSettings.from_env(base).model_threads == 4  # one worker by default: every core
    assert ServingSettings.from_env({**base, "SMISTA_CLASSIFIER_WORKERS": "2"}).model_threads == 2
    assert ServingSettings.from_env({**base, "SMISTA_CLASSIFIER_WORKERS": "3"}).model_threads == 1
    assert ServingSettings.from_env({**base, "SMISTA_CLASSIFIER_WORKERS": "8"}).model_threads == 1  # never 0
    settings = ServingSettings.from_env({**base, "SMISTA_CLASSIFIER_WORKERS": "2"})
    assert ServingSettings.from_env(settings.to_env()).classifier_workers == 2
    assert "classifier_workers=2 model_threads=2" in settings.describe()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("two", "Input should be a valid integer"), ("0", "greater than or equal to 1"), ("65", "less than or equal to 64")],
)
def test_the_worker_count_read_at_import_is_validated_like_the_setting(value, expected):
    # service.py reads SMISTA_CLASSIFIER_WORKERS alone when BentoML imports it, before any worker
    # builds the full settings: the same bounds and a message naming the variable.
    assert classifier_workers_from_env({}) == 1
    assert classifier_workers_from_env({"SMISTA_CLASSIFIER_WORKERS": " 3 "}) == 3
    with pytest.raises(SettingsError, match=f"SMISTA_CLASSIFIER_WORKERS: .*{expected}.*got '{value}'"):
        classifier_workers_from_env({"SMISTA_CLASSIFIER_WORKERS": value})
