"""Codes, their stored form, and what the call says; no IO.

A code is 4 to 8 decimal digits. Only ``HMAC-SHA256(key=salt, msg=code)`` is stored,
with 16 random bytes of salt per request: a leaked table gives no code without a
brute force per row, and equal codes of two requests do not look equal. A code has at
most 10**8 values, so the hash alone would not stop a determined offline attacker; what
stops guessing online is the attempt caps (per code, and per number across codes; see
``service``) and the TTL, and the stored hash keeps codes out of backups, logs and admin
screens. Checks use ``hmac.compare_digest``. The call plays
the code from audio (``readout``), so it is in no FreeSWITCH log or event either.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

MIN_LENGTH = 4
MAX_LENGTH = 8
DEFAULT_LENGTH = 4
CODE_TOKEN = "{code}"
DEFAULT_MESSAGE = "Your verification code is {code}. Again, {code}."


def is_code(text: str) -> bool:
    """Whether ``text`` is a code this service accepts: 4 to 8 ASCII digits."""
    return isinstance(text, str) and text.isascii() and text.isdigit() and MIN_LENGTH <= len(text) <= MAX_LENGTH


def generate(length: int = DEFAULT_LENGTH) -> str:
    """A uniformly random code of ``length`` digits (leading zeros kept)."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"code length must be {MIN_LENGTH} to {MAX_LENGTH}")
    return str(secrets.randbelow(10 ** length)).zfill(length)


def new_salt() -> str:
    return secrets.token_hex(16)


def hash_code(code: str, salt: str) -> str:
    return hmac.new(bytes.fromhex(salt), code.encode("ascii"), hashlib.sha256).hexdigest()


def matches(code: str, salt: str, code_hash: str) -> bool:
    """Whether ``code`` is the one hashed; constant-time in the hash comparison. Anything
    that is not a code still costs one hash, so a malformed guess times like a wrong one."""
    candidate = code if is_code(code) else "0" * MIN_LENGTH
    digest = hash_code(candidate, salt)
    return hmac.compare_digest(digest, code_hash) and candidate == code


def message_parts(message: str | None = None) -> list[str]:
    """The words a call speaks around the code: the default sentence (the code twice) or
    the client's ``message``, split at each ``{code}``. The code is played between two
    parts (``gateway.otp.readout``), never spoken from text."""
    return (message or DEFAULT_MESSAGE).split(CODE_TOKEN)
