"""``faceprint users add|list|remove|passwd|role LIB`` and ``faceprint keys create|list|revoke LIB``: who may use a
served index (kept in LIB/auth.sqlite; the server picks changes up at once)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from faceprint.cli.common import console, err_console

__all__ = ["keys_app", "users_app"]

users_app = typer.Typer(help="People who log in to the pages: name, password and role (viewer, editor or admin).",
                        no_args_is_help=True)
keys_app = typer.Typer(help="API keys for programs (sent as Authorization: Bearer <key> or x-api-key).", no_args_is_help=True)

Lib = Annotated[Path, typer.Argument(help="Index or library folder.")]
Role = Annotated[str, typer.Option(help="viewer (read, search), editor (also name and fix people, enroll) or admin "
                                   "(also manage users).")]


def _accounts(lib: Path):  # type: ignore[no-untyped-def]
    from faceprint.serve.accounts import Accounts

    if not (lib / "faces.sqlite").is_file():
        raise ValueError(f"{lib} is not a faceprint index or library (no faces.sqlite)")
    return Accounts(lib)


def _password(name: str) -> str:
    """Typed twice at a terminal (never echoed); otherwise the first line of standard input."""
    if sys.stdin.isatty():
        return typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise ValueError("no password given: type it at a terminal, or pipe it on standard input")
    return line.rstrip("\r\n")


@users_app.command("add")
def users_add(lib: Lib, name: Annotated[str, typer.Argument(help="Login name.")], role: Role = "viewer") -> None:
    """Add a user (the password is asked for, or read from standard input)."""
    _accounts(lib).add_user(name, _password(name), role)
    console.print(f"added {name} ({role})")


@users_app.command("passwd")
def users_passwd(lib: Lib, name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Set a new password; the user's sessions end."""
    _accounts(lib).set_password(name, _password(name))
    console.print(f"new password for {name}; their sessions ended")


@users_app.command("role")
def users_role(lib: Lib, name: Annotated[str, typer.Argument(help="Login name.")], role: Role = "viewer") -> None:
    """Change a user's role."""
    _accounts(lib).set_role(name, role)
    console.print(f"{name} is now {role}")


@users_app.command("remove")
def users_remove(lib: Lib, name: Annotated[str, typer.Argument(help="Login name.")]) -> None:
    """Remove a user; their sessions end."""
    _accounts(lib).remove_user(name)
    console.print(f"removed {name}")


@users_app.command("list")
def users_list(lib: Lib) -> None:
    """Every user and role."""
    for name, role in _accounts(lib).users():
        console.print(f"{name}\t{role}", highlight=False)


@keys_app.command("create")
def keys_create(lib: Lib, role: Role = "viewer",
                label: Annotated[Optional[str], typer.Option(help="What the key is for.")] = None) -> None:
    """Make an API key and print it once (only its hash is kept)."""
    kid, key = _accounts(lib).create_key(role, label)
    err_console.print(f"key {kid} ({role}); keep it now, it is not shown again:")
    print(key)


@keys_app.command("list")
def keys_list(lib: Lib) -> None:
    """Every key's id, role and label (never the key)."""
    for kid, role, label in _accounts(lib).keys():
        console.print(f"{kid}\t{role}\t{label or ''}", highlight=False)


@keys_app.command("revoke")
def keys_revoke(lib: Lib, key_id: Annotated[str, typer.Argument(help="The id `keys list` shows.")]) -> None:
    """Revoke a key at once."""
    _accounts(lib).revoke_key(key_id)
    console.print(f"revoked {key_id}")
