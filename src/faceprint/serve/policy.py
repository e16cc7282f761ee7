"""Who may do what, decided before a request's body is read: one ASGI middleware in front of every route.

On loopback with no users and no keys the server is open (one person on a laptop), as before. Once a user or key
exists, or whenever the server listens beyond loopback, every route (pages, photos, thumbnails, reads and writes)
needs a session cookie (``faceprint users`` + the login page) or an API key (``Authorization: Bearer`` or
``x-api-key``). Roles: viewers read and search, editors also change people and enroll, admins also manage users.
A write made with a session cookie also needs the session's CSRF token in ``x-csrf-token`` (the pages send it; a
page of another site cannot read it) and is refused when the browser marks it cross-site.

Also here: the login rate limits and the security headers every answer carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from faceprint.serve.accounts import Accounts, Principal, rank

__all__ = ["LoginLimiter", "Policy", "SecurityHeaders", "cross_site", "needed_role", "route_path", "SESSION_COOKIE",
           "CSRF_COOKIE"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE, CSRF_COOKIE = "faceprint_session", "faceprint_csrf"
OPEN = {("GET", "/login"), ("POST", "/login")}  # the way in
READING_POSTS = {"/search", "/verify", "/api/who", "/logout"}  # POSTs that change nothing: viewers may send them
PAGES = {"/", "/people", "/docs"}  # a browser without a session is sent to the login page
SAFE = {"GET", "HEAD", "OPTIONS"}


PROXIED = (b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"via")


def route_path(scope: Scope) -> str:
    """The path routing matches (``root_path`` taken off, as Starlette's router does): roles follow the route."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and (path == root or path.startswith(root + "/")):  # at a "/" boundary only, as the router strips it
        return path[len(root):] or "/"
    return path


def needed_role(method: str, path: str) -> str | None:
    """The least role a request needs (None: anyone). Anything not listed as reading is a write: editor."""
    if (method, path) in OPEN:
        return None
    if path.startswith("/api/users"):
        return "admin"
    if method in SAFE or path in READING_POSTS:
        return "viewer"
    return "editor"


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers") or []}


def cross_site(scope: Scope) -> str | None:
    """Why a browser request comes from another site's page (None: it does not, or it is no browser's).

    Browsers mark requests with ``Sec-Fetch-Site``; older ones send an ``Origin`` naming the page. A client that
    sends neither is not a browser acting for another site."""
    h = _headers(scope)
    site = h.get(b"sec-fetch-site")
    if site is not None:
        return None if site in (b"same-origin", b"none") else f"cross-site request refused (Sec-Fetch-Site: {site.decode('latin-1')})"
    origin = h.get(b"origin")
    if origin is None:
        return None
    own = _origin(f"{scope.get('scheme', 'http')}://{h.get(b'host', b'').decode('latin-1')}")
    if _origin(origin.decode("latin-1")) != own:
        return f"cross-site request refused (Origin {origin.decode('latin-1')} is not {own})"
    return None


def _origin(value: str) -> str:
    """scheme://host:port in lower case with the default port written out, for comparing origins."""
    scheme, _, rest = value.strip().rstrip("/").lower().partition("://")
    host, _, port = rest.rpartition(":") if rest.rsplit("]", 1)[-1].count(":") else (rest, "", "")
    return f"{scheme}://{host}:{port or {'http': '80', 'https': '443'}.get(scheme, '')}"


def cookies(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _headers(scope).get(b"cookie", b"").decode("latin-1").split(";"):
        name, eq, value = part.strip().partition("=")
        if eq and name not in out:
            out[name] = value
    return out


async def answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Policy:
    """Authentication and roles for every HTTP request, before the app (and its body parsing) sees it.

    ``required``: credentials are needed even with no users or keys (the server listens beyond loopback).
    ``env_key``: a key given by environment (``FACEPRINT_API_TOKEN``), role editor."""

    def __init__(self, app: ASGIApp, accounts: Accounts, required: bool = False, env_key: str | None = None) -> None:
        self.app, self.accounts, self.required = app, accounts, required
        self.env_key = env_key.encode("utf-8", "surrogateescape") if env_key else None

    def closed(self) -> bool:
        """Whether requests need credentials now (a user or key made while serving closes the server at once)."""
        return self.required or self.env_key is not None or self.accounts.exists()

    def who(self, scope: Scope) -> tuple[Principal | None, str | None]:
        """(who the request is, why not when its credentials are wrong)."""
        h = _headers(scope)
        auth = h.get(b"authorization")
        key = h.get(b"x-api-key")
        if auth is not None:
            scheme, _, value = auth.partition(b" ")
            if scheme.lower() != b"bearer" or not value:
                return None, "Authorization: Bearer <key> expected"
            key = value.strip()
        if key is not None:
            if self.env_key is not None and hmac.compare_digest(key, self.env_key):
                return Principal("token", "editor", "key"), None
            found = self.accounts.key(key.decode("latin-1"))
            return (found, None) if found else (None, "unknown or revoked API key")
        token = cookies(scope).get(SESSION_COOKIE)
        if token:
            found = self.accounts.session(token)
            return (found, None) if found else (None, "session expired or ended: log in again")
        return None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no route takes one: refused rather than let past the policy
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], route_path(scope)
        role = needed_role(method, path)
        scope.setdefault("state", {})
        if not self.closed():
            if any(h in _headers(scope) for h in PROXIED):  # came through a proxy: not one person on a laptop
                await answer(send, 401, "this server has no users or keys, so it answers this machine only; "
                                        "add one (faceprint users add) to serve through a proxy")
                return
            scope["state"]["principal"] = Principal("local", "admin", "open")
            await self.app(scope, receive, send)
            return
        who, wrong = self.who(scope) if role is not None or path == "/login" else (None, None)
        scope["state"]["principal"] = who
        if role is None:
            await self.app(scope, receive, send)
            return
        if who is None:
            if method in SAFE and path in PAGES:  # a browser, also one holding an ended session: the login page
                target = quote(path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else ""))
                await _redirect(send, f"/login?next={target}")
                return
            await answer(send, 401, wrong or "log in, or send an API key (Authorization: Bearer <key>)",
                         [(b"www-authenticate", b'Bearer realm="faceprint"')])
            return
        if rank(who.role) < rank(role):
            await answer(send, 403, f"{who.name} is a {who.role}; this needs {role}")
            return
        if method not in SAFE and who.kind == "session":
            why = cross_site(scope)
            given = _headers(scope).get(b"x-csrf-token", b"")
            if why is None and not hmac.compare_digest(given, (who.csrf or "").encode()):
                why = "missing or wrong x-csrf-token (reload the page)"
            if why is not None:
                await answer(send, 403, why)
                return
        await self.app(scope, receive, send)


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


class LoginLimiter:
    """Token buckets: ``burst`` attempts at once, then one each ``every_s`` seconds, per (account, client), per
    account (looser: many clients guessing one password share it) and per client (whatever names it tries). A
    refused attempt costs nothing (its password is never checked). At most ``max_keys`` buckets are kept (the
    least recently used go first)."""

    def __init__(self, pair: tuple[int, float] = (5, 60.0), account: tuple[int, float] = (10, 30.0),
                 client: tuple[int, float] = (10, 30.0), max_keys: int = 10_000) -> None:
        self.rules, self.max_keys = {"pair": pair, "account": account, "client": client}, max_keys
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _level(self, kind: str, key: str, now: float) -> float:
        burst, every = self.rules[kind]
        tokens, then = self._buckets.get((kind, key), (float(burst), now))
        return min(float(burst), tokens + (now - then) / every)

    def take(self, account: str, client: str) -> float:
        """0 if an attempt may be checked now (and count it), else the seconds until one may."""
        now = time.monotonic()
        keys = (("pair", f"{account}\0{client}"), ("account", account), ("client", client))
        with self._lock:
            levels = {key: self._level(*key, now) for key in keys}
            short = [(1 - lv) * self.rules[k][1] for (k, _), lv in levels.items() if lv < 1]
            if short:
                return max(short)
            for key, lv in levels.items():
                self._buckets[key] = (lv - 1, now)
                self._buckets.move_to_end(key)
            while len(self._buckets) > self.max_keys:  # forget the most refilled bucket (a spent one is never the
                # first to go: junk names from fresh addresses cannot wipe an account's spent bucket)
                victim = max(self._buckets, key=lambda k: self._level(*k, now) / self.rules[k[0]][0])
                del self._buckets[victim]
            return 0.0


def script_hashes(*pages: str) -> list[str]:
    """CSP source expressions allowing exactly the inline scripts of these pages."""
    out = []
    for page in pages:
        for script in re.findall(r"<script>(.*?)</script>", page, re.S):
            out.append("'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'")
    return out


class SecurityHeaders:
    """Adds a Content-Security-Policy (only our own inline scripts run; no framing), X-Frame-Options: DENY,
    nosniff and a Referrer-Policy to every answer."""

    def __init__(self, app: ASGIApp, scripts: list[str]) -> None:
        self.app = app
        csp = ("default-src 'none'; script-src " + " ".join(scripts) + "; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
        self.headers = [(b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY"),
                        (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                        (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)
