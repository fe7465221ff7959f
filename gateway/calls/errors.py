"""The error every call command raises (``CallController`` and what drives it)."""

from __future__ import annotations


class CallError(Exception):
    """A command cannot be carried out on this call; ``code`` is an HTTP-ish hint."""

    def __init__(self, message: str, code: int = 409) -> None:
        super().__init__(message)
        self.code = code
