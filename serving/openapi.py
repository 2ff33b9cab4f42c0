"""The Router's OpenAPI document (/docs.json), completed with what BentoML's generator leaves out.

BentoML documents every API with 200, 400, 404 and 500, and types an error's `detail` as a string.
The service also answers 401 (no or wrong API key), 409 (a post id or idempotency key reused with
other content), 413 (a body or batch over the limit) and 503 (/readyz, not ready), and its 400s
carry `detail` as a list of {loc, msg} objects (as BentoML's own validation errors do). A client
generated from the document, or a fuzzer checking answers against it (tests/test_api_fuzzing.py),
must see all of that: `complete` adds it.
"""

from __future__ import annotations

import copy
from typing import Any

from _bentoml_sdk import Service

from serving.security import OPEN_PATHS

ROUTER = "smista_router"
API_KEY_SCHEME = {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                             "description": "One of SMISTA_API_KEYS (also accepted as Authorization: Bearer <key>)."}}
ERROR_SCHEMA = "SmistaError"
ERROR = {
    "title": ERROR_SCHEMA,
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "What is wrong, and how to fix it."},
        "detail": {
            "description": "Per item: where (loc) and what (msg); or a string.",
            "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
        },
    },
    "required": ["error"],
}
EXTRA_RESPONSES = {
    "401": "Missing or wrong API key.",
    "413": "The body or the batch is over its limit.",
}
UNAVAILABLE = ("/route", "/feedback", "/crisis")
CONFLICT = {"/route": "A post id already routed (or used earlier in the request) with different content.",
            "/feedback": "An idempotency_key already used for different feedback."}


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}}


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the document with the API key scheme, the missing answers and the real error shape."""
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(API_KEY_SCHEME)
    components.setdefault("schemas", {})[ERROR_SCHEMA] = ERROR
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if path == "/readyz":
                responses["503"] = {"description": "Not ready: the database or the Classifier did not answer in time.",
                                    "content": {"text/plain": {"schema": {"type": "string"}}}}
            if path in OPEN_PATHS:
                operation["security"] = []
                continue
            operation["security"] = [{"ApiKey": []}]
            for status, response in list(responses.items()):
                if str(status).startswith(("4", "5")):
                    responses[status] = _error(response.get("description", "Error"))
            for status, description in EXTRA_RESPONSES.items():
                responses.setdefault(status, _error(description))
            if method == "post" and path in CONFLICT:
                responses["409"] = _error(CONFLICT[path])
            if path in UNAVAILABLE:
                responses["503"] = _error("The prediction store did not take the request (locked, full, unreachable); "
                                          "nothing was stored: retry after Retry-After seconds.")
    return spec


class CompletedSpec:
    """Stands in for BentoML's specification object: `asdict()` (what /docs.json serves) is completed."""

    def __init__(self, spec: Any):
        self._spec = spec

    def asdict(self) -> dict[str, Any]:
        return complete(self._spec.asdict())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spec, name)


def install() -> None:
    """Complete the Router's document wherever BentoML asks for it (once per process)."""
    generated = Service.openapi_spec
    if getattr(generated.fget, "smista_completed", False):
        return

    def openapi_spec(self):
        spec = generated.fget(self)
        return CompletedSpec(spec) if self.name == ROUTER else spec

    openapi_spec.smista_completed = True  # type: ignore[attr-defined]
    Service.openapi_spec = property(openapi_spec)
