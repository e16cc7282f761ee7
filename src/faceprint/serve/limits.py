"""Bounded memory for the service: admission before a body is read, and bodies cut at a byte limit.

An ASGI middleware in front of the app: a POST is refused with 503 (and ``Retry-After``) when ``max_pending``
requests are already in flight, and with 413 when its declared ``Content-Length`` is over ``max_body`` (before a
byte of it is read) or, for a streamed body, as soon as the bytes read pass ``max_body``. An admitted body is
read here (at most ``max_body`` bytes) and replayed to the app, so memory is bounded by max_pending × max_body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    """Admission control and a body-size cap for POST requests (other methods pass through)."""

    def __init__(self, app: ASGIApp, max_body: int, max_pending: int, retry_after_s: int = 1) -> None:
        self.app, self.max_body, self.max_pending, self.retry_after_s = app, max_body, max_pending, retry_after_s
        self.pending = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if self.pending >= self.max_pending:
            await _answer(send, 503, f"busy: {self.pending} requests in flight; retry shortly",
                          [(b"retry-after", str(self.retry_after_s).encode())])
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _answer(send, 413, f"request body over {self.max_body} bytes (declared {int(declared)})")
            return
        self.pending += 1
        try:
            body = await self._read(receive)
            if body is None:
                await _answer(send, 413, f"request body over {self.max_body} bytes")
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            self.pending -= 1

    async def _read(self, receive: Receive) -> bytes | None:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None  # cut here: the rest is never read into memory
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect as the server would report it

    return replay
