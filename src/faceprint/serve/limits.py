"""Bounded memory for the service: admission before a body is read, and bodies cut at a byte limit.

An ASGI middleware in front of the app: a request with a body is refused with 503 (and ``Retry-After``) when
``max_pending`` requests are already in flight, and an expensive read (``heavy`` paths: clustering, suggestions,
photo lists) when ``max_heavy`` are; a body is refused with 413 when its declared ``Content-Length`` is over its cap
(``max_body`` on the upload routes, ``max_json`` on every other: JSON is parsed whole, so it gets a small cap)
before a byte of it is read, or, for a streamed body, as soon as the bytes read pass the cap. An admitted body is
streamed to the app (which spools multipart files to disk past 1 MB) and counted; past ``max_body`` the app sees a
disconnect and the client gets 413. Memory per request is then what the app itself keeps (the upload and its image).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from faceprint.serve.policy import answer, route_path

__all__ = ["BodyLimits"]

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimits:
    """Admission control and body-size caps for requests with bodies, and admission for expensive reads."""

    def __init__(self, app: ASGIApp, max_body: int, max_pending: int, retry_after_s: int = 1, max_json: int = 64 * 1024,
                 heavy: Callable[[str], bool] = lambda path: False, max_heavy: int = 4,
                 uploads: Callable[[str], bool] = lambda path: True) -> None:
        self.app, self.max_body, self.max_pending, self.retry_after_s = app, max_body, max_pending, retry_after_s
        self.max_json, self.heavy, self.max_heavy, self.uploads = max_json, heavy, max_heavy, uploads
        self.pending = self.heavy_pending = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD"):
            await self._read(scope, receive, send)
            return
        if self.pending >= self.max_pending:
            await self._busy(send, f"{self.pending} requests")
            return
        headers = dict(scope.get("headers") or [])
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        cap = self.max_body if multipart and self.uploads(route_path(scope)) else self.max_json  # the route decides
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await answer(send, 413, f"request body over {cap} bytes (declared {int(declared)})")
            return
        self.pending += 1
        size, over, started = 0, False, False

        async def limited() -> Message:  # the body streams through (never held here), counted
            nonlocal size, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > cap:
                    over = True  # cut here: the rest is never read; the app sees a disconnect
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to the cut body is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except Exception:
            if not over:
                raise
            log.debug("the app's error on a body cut at the limit (answered 413)", exc_info=True)
        finally:
            self.pending -= 1
        if over and not started:
            await answer(send, 413, f"request body over {cap} bytes")

    async def _busy(self, send: Send, what: str) -> None:
        await answer(send, 503, f"busy: {what} in flight; retry shortly", [(b"retry-after", str(self.retry_after_s).encode())])

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.heavy(route_path(scope)):
            await self.app(scope, receive, send)
            return
        if self.heavy_pending >= self.max_heavy:
            await self._busy(send, f"{self.heavy_pending} expensive reads")
            return
        self.heavy_pending += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.heavy_pending -= 1
