"""An ASGI guard in front of every endpoint: API key and request size, before any parsing.

Keys are compared in constant time and never logged; the log names only the path and the kind of
failure. The body is read up to the limit and replayed to the app, so a client that lies in
Content-Length (or sends none, chunked) is stopped at the limit as well.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any

from serving.settings import ServingSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Health probes come from orchestrators that hold no key.
OPEN_PATHS = frozenset({"/livez", "/healthz", "/readyz"})

logger = logging.getLogger("smista.serving.security")


# The API key of the request being handled, as client_key() gives it: set by RequestGuard, read by the
# handlers (a context variable follows the request into the handler and its worker threads).
CURRENT_CLIENT: ContextVar[str | None] = ContextVar("smista_current_client", default=None)


def client_key(api_key: bytes) -> str:
    """A stable id of an API key that reveals nothing usable of it (16 hex digits of its SHA-256)."""
    return hashlib.sha256(b"smista-client:" + api_key).hexdigest()[:16]


class RequestGuard:
    def __init__(self, app: ASGIApp, settings: ServingSettings | None = None):
        self.app = app
        # Read here, in the worker that builds the app, not at import time.
        settings = settings or ServingSettings.from_env()
        self._keys = [key.get_secret_value().encode() for key in settings.api_keys]
        self._require_key = settings.require_api_key
        self._max_bytes = settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        client = None
        if self._require_key:
            failure, client = self._key_failure(scope)
            if failure is not None:
                logger.warning(json.dumps({"event": "auth_rejected", "path": scope["path"], "reason": failure}))
                await _respond(send, 401, {"error": failure}, {"www-authenticate": 'ApiKey header="X-API-Key"'})
                return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
            await _respond(send, 413, {"error": self._too_large(int(declared))})
            return
        body, complete = await self._read_body(receive)
        if not complete:
            await _respond(send, 413, {"error": self._too_large(None)})
            return
        token = CURRENT_CLIENT.set(client)
        try:
            await self.app(scope, _replay(body, receive), send)
        finally:
            CURRENT_CLIENT.reset(token)

    def _key_failure(self, scope: Scope) -> tuple[str | None, str | None]:
        """(why the request is refused, or None; the client_key of the matching key)."""
        presented = _header(scope, b"x-api-key")
        if presented is None:
            authorization = _header(scope, b"authorization")
            if authorization is not None and authorization.lower().startswith("bearer "):
                presented = authorization[7:].strip()
        if not presented:
            return "missing API key: send it in the X-API-Key header (or Authorization: Bearer <key>)", None
        candidate = presented.encode()
        # Compare against every key, without stopping early, so timing says nothing about which.
        matched = None
        for key in self._keys:
            if hmac.compare_digest(candidate, key):
                matched = key
        return (None, client_key(matched)) if matched is not None else ("wrong API key", None)

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # A disconnect before the body ended: let the app see it as it is.
                return b"".join(chunks), True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                return b"", False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), True

    def _too_large(self, declared: int | None) -> str:
        size = f"{declared} bytes" if declared is not None else "the request body"
        return f"{size} is over the limit of {self._max_bytes} bytes; send fewer or shorter posts per request"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, payload: dict[str, Any], extra_headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.encode(), value.encode()) for name, value in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
