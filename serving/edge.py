"""The outermost layer of both services: what a client controls never reaches a log line or a
metric label raw.

BentoML puts its own middlewares (Prometheus traffic metrics, access log) outside any middleware a
service adds, and they label and log `scope["path"]` as the client sent it. Two consequences were
measured on a live server: every distinct URL path, even one refused with 401, made new
`bentoml_service_request_*` series (unbounded memory and scrape size), and a path holding a
URL-encoded newline forged a second line in the access log. So:

- `BoundedPaths` runs first of all (`install`): a path that no route of the app serves is replaced
  by `UNKNOWN_PATH` before anything sees it. The answer is the same 404 (or 401 without a key); the
  labels and logs can only name paths the service has.
- BentoML's access log is switched off in the service config, and `BoundedPaths` writes one JSON
  line per request instead (`smista.serving.access`), with every string escaped to ASCII.
- `QuietClientErrors` turns BentoML's "Exception on <path>" ERROR with a traceback, which it writes
  for a request body that fails validation (a client's mistake, answered with 400), into one
  WARNING line that names the error types and their count, never the offending field names.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from _bentoml_impl.server.app import ServiceAppFactory
from bentoml._internal.server import http_app
from pydantic import ValidationError
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles

UNKNOWN_PATH = "/unknown-path"
# Probes call these every few seconds; logging each would drown the log.
QUIET_PATHS = frozenset({"/livez", "/healthz", "/readyz", "/metrics"})

access_logger = logging.getLogger("smista.serving.access")


def escaped(value: Any) -> str:
    """JSON text of `value` with everything outside printable ASCII escaped (\\n, \\u2028, ...)."""
    return json.dumps(value, ensure_ascii=True, default=str)


def is_served(routes: Sequence[BaseRoute], scope: dict[str, Any]) -> bool:
    """Whether some route of the app serves the scope's path, by Starlette's own matching: mounted
    apps are searched, a static folder must hold the file, a known path with another method counts
    (it answers 405)."""
    for route in routes:
        match, child_scope = route.matches(scope)
        if match == Match.NONE:
            continue
        if not isinstance(route, Mount):
            return True
        inner = {**scope, **child_scope}
        if isinstance(route.app, StaticFiles):
            # The mount moved its prefix into root_path: the file is the rest of the path.
            rest = inner["path"][len(inner.get("root_path", "")):]
            if _static_file_exists(route.app, rest):
                return True
        elif is_served(getattr(route.app, "routes", ()), inner):
            return True
    return False


def _static_file_exists(static: StaticFiles, rest: str) -> bool:
    for directory in static.all_directories:
        root = os.path.realpath(directory)
        try:
            candidate = os.path.realpath(os.path.join(root, rest.lstrip("/")))
        except ValueError:  # a NUL byte in the path
            return False
        if candidate.startswith(root + os.sep) and os.path.isfile(candidate):
            return True
    return False


class BoundedPaths:
    """ASGI middleware, outermost: unknown paths become UNKNOWN_PATH; one escaped access-log line."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # Starlette puts the application in the scope before its middleware stack runs.
        if not is_served(scope["app"].routes, scope):
            scope = {**scope, "path": UNKNOWN_PATH, "raw_path": UNKNOWN_PATH.encode()}
        if scope["type"] != "http" or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        response: dict[str, int] = {"status": 0, "bytes": 0}

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
            elif message["type"] == "http.response.body":
                response["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            access_logger.info(escaped({
                "event": "http_request",
                "method": scope.get("method", ""),
                "path": scope["path"],
                "status": response["status"],
                "response_bytes": response["bytes"],
                "ms": round((time.perf_counter() - started) * 1000, 3),
            }))


class QuietClientErrors(logging.Filter):
    """For BentoML's request-exception logger: a body that failed validation is the client's error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], ValidationError):
            error: ValidationError = record.exc_info[1]
            path = record.args[0] if isinstance(record.args, tuple) and record.args else ""
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = escaped({
                "event": "request_rejected",
                "path": path,
                "status": 400,
                "errors": error.error_count(),
                "types": sorted({item["type"] for item in error.errors(include_input=False, include_context=False)}),
            })
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


def install() -> None:
    """Put BoundedPaths outside BentoML's own middlewares and quieten its client-error logging.

    BentoML 1.4 has no public hook for a middleware outside its metrics and access log, so this
    wraps `ServiceAppFactory.middlewares` (the list it builds its app from) once per process;
    tests/test_serving_hardening.py checks the effect on a live server.
    """
    logging.getLogger(http_app.__name__).addFilter(QuietClientErrors())
    built = ServiceAppFactory.middlewares
    if getattr(built.fget, "smista_bounded_paths", False):
        return

    def middlewares(self) -> list[Middleware]:
        return [Middleware(BoundedPaths), *built.fget(self)]

    bounded = property(middlewares)
    bounded.fget.smista_bounded_paths = True  # type: ignore[attr-defined]
    ServiceAppFactory.middlewares = bounded


# The service config that goes with it: BentoML's raw access log off (BoundedPaths writes one).
SERVICE_LOGGING = {"access": {"enabled": False}}
