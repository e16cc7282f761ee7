"""The one rule for a person's name, wherever it is given (index identities, a library's people, the server)."""

from __future__ import annotations

__all__ = ["InvalidName", "valid_name"]

MAX_NAME = 200


class InvalidName(ValueError):
    """A name that breaks the rule."""


def valid_name(name: str) -> str:
    """``name`` stripped, or InvalidName when it is empty, too long or holds '/', a tab or a line break."""
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(c in name for c in "/\n\r\t"):
        raise InvalidName(f"a name is 1–{MAX_NAME} characters, without '/', tabs or line breaks")
    return name
