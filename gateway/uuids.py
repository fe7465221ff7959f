"""Reading a UUID a client sent (a call id, an OTP request id)."""

from __future__ import annotations

import uuid as uuidlib

#: Longer input is not parsed at all (``uuid.UUID`` would strip braces and dashes from anything).
MAX_LENGTH = 64


def parse_uuid(text: object) -> str | None:
    """``text`` as a canonical lower-case UUID, or None if it is not one."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return None
    try:
        return str(uuidlib.UUID(text))
    except ValueError:
        return None
