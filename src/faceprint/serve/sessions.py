"""Logging in and out, who am I, the users an admin manages, and the API docs page.

``POST /login`` checks a password (rate-limited per account and per client before the slow check runs) and sets
two cookies: the session (HttpOnly, SameSite=Strict, Secure under TLS) and its CSRF token (readable by our pages,
which send it back in ``x-csrf-token`` with every write). ``POST /logout`` ends the session on the server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from faceprint.serve.accounts import ROLES, AccountError, Accounts
from faceprint.serve.login_page import DOCS_PAGE, LOGIN_PAGE
from faceprint.serve.policy import CSRF_COOKIE, SESSION_COOKIE, LoginLimiter, cookies, cross_site

__all__ = ["add_session_routes"]


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewUser(Login):
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")


def add_session_routes(app: FastAPI, accounts: Accounts, limiter: LoginLimiter) -> None:
    """Register /login, /logout, /api/me, /api/users and /docs on ``app``."""
    checking = asyncio.Semaphore(2)  # scrypt holds 16 MiB and a core for ~50 ms: two at once

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page() -> str:
        return LOGIN_PAGE

    @app.post("/login")
    async def login(body: Login, request: Request) -> JSONResponse:
        """Log in with a name and password: sets the session cookie."""
        why = cross_site(request.scope)
        if why is not None:  # a page of another site must not log the browser into an account of its choosing
            raise HTTPException(403, why)
        client = request.client.host if request.client else "?"
        wait = limiter.take(body.name, client)
        if wait > 0:
            raise HTTPException(429, f"too many login attempts; try again in {int(wait) + 1} s",
                                headers={"Retry-After": str(int(wait) + 1)})
        async with checking:
            role = await run_in_threadpool(accounts.check_password, body.name, body.password)
        if role is None:
            raise HTTPException(401, "wrong name or password")
        old = cookies(request.scope).get(SESSION_COOKIE)
        if old:  # a new login ends the session this browser held (no fixation, no pile of live sessions)
            await run_in_threadpool(accounts.end_session, old)
        token, csrf = await run_in_threadpool(accounts.start_session, body.name)
        out = JSONResponse({"name": body.name, "role": role})
        secure = request.url.scheme == "https"
        age = int(accounts.session_s)
        out.set_cookie(SESSION_COOKIE, token, max_age=age, httponly=True, samesite="strict", secure=secure, path="/")
        out.set_cookie(CSRF_COOKIE, csrf, max_age=age, httponly=False, samesite="strict", secure=secure, path="/")
        return out

    @app.post("/logout")
    async def logout(request: Request) -> JSONResponse:
        """End this session (its cookie no longer works anywhere)."""
        token = cookies(request.scope).get(SESSION_COOKIE)
        if token:
            await run_in_threadpool(accounts.end_session, token)
        out = JSONResponse({"logged_out": bool(token)})
        out.delete_cookie(SESSION_COOKIE, path="/")
        out.delete_cookie(CSRF_COOKIE, path="/")
        return out

    @app.get("/api/me")
    async def me(request: Request) -> dict[str, Any]:
        """Who this request is: name, role and how it authenticated (open: no accounts on a loopback server)."""
        who = request.state.principal
        return {"name": who.name, "role": who.role, "kind": who.kind}

    @app.get("/api/users")
    async def users() -> dict[str, Any]:
        """Every user and role (admins only)."""
        return {"users": [{"name": n, "role": r} for n, r in await run_in_threadpool(accounts.users)]}

    @app.post("/api/users")
    async def add_user(body: NewUser) -> dict[str, Any]:
        """Add a user (admins only)."""
        try:
            await run_in_threadpool(accounts.add_user, body.name, body.password, body.role)
        except AccountError as exc:
            raise HTTPException(409, str(exc)) from None
        return {"name": body.name, "role": body.role}

    @app.post("/api/users/{name}/remove")
    async def remove_user(name: str) -> dict[str, Any]:
        """Remove a user and end their sessions (admins only)."""
        try:
            await run_in_threadpool(accounts.remove_user, name)
        except AccountError as exc:
            raise HTTPException(404, str(exc)) from None
        return {"removed": name}

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> str:
        return DOCS_PAGE
