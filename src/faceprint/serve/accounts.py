"""Who may use a served index: users with passwords and roles, API keys for programs, and login sessions.

Kept in ``auth.sqlite`` beside the index's faces (``index build --force`` carries it to the new index). Nothing
secret is stored in clear: passwords as scrypt hashes (the standard library's ``hashlib.scrypt``, memory-hard, from
OpenSSL: no extra dependency to trust), API keys and session tokens (random 256-bit values, so a fast hash is
enough) as SHA-256 digests. Sessions are rows, not signed cookies: logging out, removing a user or changing a
password ends them at once, which a signed cookie cannot do.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from faceprint.search.rows import file_id  # which file a name holds now

__all__ = ["ROLES", "Accounts", "AccountError", "Principal", "rank"]

ROLES = ("viewer", "editor", "admin")  # each can do what the ones before it can
FILE = "auth.sqlite"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}  # ~16 MiB and ~50 ms per check
_DUMMY = hashlib.scrypt(b"no such user", salt=b"0" * 16, **_SCRYPT)  # unknown names cost what known ones cost
_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, role TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,
                                  created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, digest BLOB NOT NULL UNIQUE, role TEXT NOT NULL, label TEXT,
                                 created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (digest BLOB PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                                     csrf TEXT NOT NULL, expires REAL NOT NULL);
"""


class AccountError(ValueError):
    """A refused account change (unknown user, bad role, weak password...), with a one-line reason."""


@dataclass(frozen=True)
class Principal:
    """Who a request is: a user (with the session's CSRF token) or an API key."""

    name: str
    role: str
    kind: str  # "session" or "key"
    csrf: str | None = None


def rank(role: str) -> int:
    """viewer 0 < editor 1 < admin 2."""
    return ROLES.index(role)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class Accounts:
    """The users, keys and sessions of one index folder (created on the first write)."""

    def __init__(self, root: str | Path, session_s: float = 12 * 3600) -> None:
        self.path, self.session_s = Path(root) / FILE, session_s
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, reopened when the file was replaced (``index build --force`` swapped the folder)."""
        conn, ident = getattr(self._local, "conn", None), file_id(self.path)
        if conn is not None and (ident is None or ident != self._local.ident):
            conn.close()
            conn = None
        while conn is None:
            conn = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(_SCHEMA)
            now = file_id(self.path)
            if ident is not None and now != ident:  # swapped while connecting: connect again
                conn.close()
                conn, ident = None, now
                continue
            self._local.conn, self._local.ident = conn, now
        return conn

    def exists(self) -> bool:
        """Whether any user or key exists (then every route needs one), without creating the file."""
        if not self.path.is_file():
            return False
        db = self._db()
        return bool(db.execute("SELECT EXISTS(SELECT 1 FROM users) OR EXISTS(SELECT 1 FROM keys)").fetchone()[0])

    # users
    def add_user(self, name: str, password: str, role: str = "viewer") -> None:
        _check_role(role)
        if not name or len(name) > 64 or not name.isprintable() or name != name.strip():
            raise AccountError("a user name is 1-64 printable characters with no leading or trailing space")
        salt, hashed = _hash(password)
        try:
            self._db().execute("INSERT INTO users VALUES (?, ?, ?, ?, ?)", (name, role, salt, hashed, time.time()))
        except sqlite3.IntegrityError:
            raise AccountError(f"user {name!r} exists (use `faceprint users passwd` or remove it first)") from None

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end."""
        salt, hashed = _hash(password)
        db = self._db()
        with _txn(db):
            if db.execute("UPDATE users SET salt = ?, hash = ? WHERE name = ?", (salt, hashed, name)).rowcount == 0:
                raise AccountError(f"no user {name!r}")
            db.execute("DELETE FROM sessions WHERE user = ?", (name,))

    def set_role(self, name: str, role: str) -> None:
        _check_role(role)
        if self._db().execute("UPDATE users SET role = ? WHERE name = ?", (role, name)).rowcount == 0:
            raise AccountError(f"no user {name!r}")

    def remove_user(self, name: str) -> None:
        """Remove a user; their sessions end."""
        if self._db().execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
            raise AccountError(f"no user {name!r}")

    def users(self) -> list[tuple[str, str]]:
        """(name, role) of every user, by name."""
        if not self.path.is_file():
            return []
        return [tuple(r) for r in self._db().execute("SELECT name, role FROM users ORDER BY name")]  # type: ignore[misc]

    def check_password(self, name: str, password: str) -> str | None:
        """The user's role if the password is theirs, else None (a slow check either way)."""
        row = self._db().execute("SELECT salt, hash, role FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            hmac.compare_digest(_DUMMY, hashlib.scrypt(password.encode("utf-8", "surrogateescape"), salt=b"1" * 16,
                                                       **_SCRYPT))
            return None
        given = hashlib.scrypt(password.encode("utf-8", "surrogateescape"), salt=row[0], **_SCRYPT)
        return row[2] if hmac.compare_digest(given, row[1]) else None

    # keys
    def create_key(self, role: str, label: str | None = None) -> tuple[str, str]:
        """A new API key: (its id, the key itself, shown once: only its digest is stored)."""
        _check_role(role)
        kid = secrets.token_hex(4)
        key = f"fp_{kid}_{secrets.token_urlsafe(32)}"
        self._db().execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?)", (kid, _digest(key), role, label, time.time()))
        return kid, key

    def keys(self) -> list[tuple[str, str, str | None]]:
        """(id, role, label) of every key."""
        if not self.path.is_file():
            return []
        return [tuple(r) for r in self._db().execute("SELECT id, role, label FROM keys ORDER BY created")]  # type: ignore[misc]

    def revoke_key(self, kid: str) -> None:
        if self._db().execute("DELETE FROM keys WHERE id = ?", (kid,)).rowcount == 0:
            raise AccountError(f"no key {kid!r}")

    def key(self, key: str) -> Principal | None:
        if not key.startswith("fp_") or len(key) > 100 or not self.path.is_file():
            return None
        row = self._db().execute("SELECT id, role FROM keys WHERE digest = ?", (_digest(key),)).fetchone()
        return Principal(f"key {row[0]}", row[1], "key") if row else None

    # sessions
    def start_session(self, name: str) -> tuple[str, str]:
        """A new session of ``name``: (its token, its CSRF token)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        db = self._db()
        with _txn(db):
            db.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))  # expired ones go as new ones come
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (_digest(token), name, csrf, time.time() + self.session_s))
        return token, csrf

    def session(self, token: str) -> Principal | None:
        """The live session of this token, if any."""
        if not token or len(token) > 100 or not self.path.is_file():
            return None
        row = self._db().execute("SELECT s.user, u.role, s.csrf, s.expires FROM sessions s JOIN users u ON u.name = s.user "
                                 "WHERE s.digest = ?", (_digest(token),)).fetchone()
        if row is None or row[3] < time.time():
            return None
        return Principal(row[0], row[1], "session", row[2])

    def end_session(self, token: str) -> None:
        self._db().execute("DELETE FROM sessions WHERE digest = ?", (_digest(token),))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)} (not {role!r})")


def _hash(password: str) -> tuple[bytes, bytes]:
    if len(password) < 8:
        raise AccountError("a password has at least 8 characters")
    if len(password) > 1024:
        raise AccountError("a password has at most 1024 characters")
    salt = secrets.token_bytes(16)
    return salt, hashlib.scrypt(password.encode("utf-8", "surrogateescape"), salt=salt, **_SCRYPT)


class _txn:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, *_: object) -> None:  # type: ignore[no-untyped-def]
        self.db.execute("ROLLBACK" if kind else "COMMIT")

