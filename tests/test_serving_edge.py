"""The service's outer layer in isolation: which paths count as served, how a client error is
logged, and what the OpenAPI document gains (the live behaviour is in test_serving_hardening.py)."""

from __future__ import annotations

import json
import logging
import sys

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from serving.edge import QuietClientErrors, escaped, is_served
from serving.openapi import complete


def app_with_routes(static_dir) -> Starlette:
    operations = FastAPI()

    @operations.get("/crisis")
    def crisis() -> dict:
        return {}

    async def ok(request):
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/classify", ok, methods=["POST"]),
        Route("/items/{item_id}", ok),
        Mount("/assets", StaticFiles(directory=static_dir)),
        Mount("/", operations),
    ])


def scope(path: str, method: str = "GET") -> dict:
    return {"type": "http", "path": path, "method": method, "root_path": "", "headers": [], "query_string": b""}


def test_only_paths_a_route_serves_count_as_served(tmp_path):
    (tmp_path / "app.js").write_text("x")
    routes = app_with_routes(tmp_path).routes
    served = ["/classify", "/items/7", "/assets/app.js", "/crisis", "/docs", "/openapi.json"]
    assert all(is_served(routes, scope(path)) for path in served)
    assert is_served(routes, scope("/classify", "GET"))  # a known path with another method: 405, not unknown
    unknown = ["/nothere", "/classify/x", "/assets/missing.js", "/assets/../secret", "/x\nforged", "/crisis\u2028"]
    assert not any(is_served(routes, scope(path)) for path in unknown)


def test_a_validation_error_is_logged_as_one_warning_without_the_field_names():
    class Body(BaseModel, extra="forbid"):
        text: str

    try:
        Body.model_validate({"text": "ciao", "evil\nINFO forged": 1})
    except ValidationError:
        record = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "Exception on %s [%s]",
                                   ("/classify", "POST"), sys.exc_info())
    assert QuietClientErrors().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    message = record.getMessage()
    assert "\n" not in message and "evil" not in message
    assert json.loads(message) == {"event": "request_rejected", "path": "/classify", "status": 400, "errors": 1,
                                   "types": ["extra_forbidden"]}
    other = logging.LogRecord("bentoml", logging.ERROR, __file__, 1, "boom", (), (RuntimeError, RuntimeError("x"), None))
    assert QuietClientErrors().filter(other) and other.levelno == logging.ERROR  # a real error stays one


def test_escaped_keeps_every_value_on_one_ascii_line():
    text = escaped({"path": "/a\nb\r\u2028\u0085é"})
    assert text.isascii() and "\n" not in text and json.loads(text)["path"] == "/a\nb\r\u2028\u0085é"


def test_the_document_gains_the_key_scheme_and_every_answer():
    spec = {"paths": {
        "/route": {"post": {"responses": {"200": {"description": "ok"}, "400": {"description": "Bad Request"}}}},
        "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/crisis": {"get": {"responses": {"200": {"description": "ok"}}}},
    }}
    done = complete(spec)
    assert "401" not in spec["paths"]["/route"]["post"]["responses"]  # the input is left alone
    route = done["paths"]["/route"]["post"]
    assert route["security"] == [{"ApiKey": []}] and {"400", "401", "409", "413"} <= set(route["responses"])
    assert route["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/SmistaError")
    assert done["paths"]["/readyz"]["get"]["security"] == [] and "503" in done["paths"]["/readyz"]["get"]["responses"]
    assert "409" not in done["paths"]["/crisis"]["get"]["responses"]
    assert done["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
