"""Checks shared by the models' writers (admin CLI, REST surfaces).

Each returns the cleaned value or raises ``ValueError`` with a message fit to
show the person who typed the value.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit

SOCKET_URL_SCHEMES = ("ws", "wss")
WEBHOOK_URL_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048


def check_url(url: str, schemes: tuple[str, ...], what: str) -> str:
    """``url`` stripped, if it is an absolute URL with one of ``schemes`` and a host."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what} is empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{what} {url!r} contains whitespace")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        raise ValueError(f"{what} {url!r} is not a valid URL") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        expected = " or ".join(f"{s}://host/…" for s in schemes)
        raise ValueError(f"{what} {url!r} is not a valid URL; expected {expected}")
    return url


def check_socket_url(url: str, what: str = "socket URL") -> str:
    """A bot's WebSocket URL (``ws://`` or ``wss://``)."""
    return check_url(url, SOCKET_URL_SCHEMES, what)


def check_webhook_url(url: str, what: str = "webhook URL") -> str:
    """A customer's HTTP endpoint (``http://`` or ``https://``)."""
    return check_url(url, WEBHOOK_URL_SCHEMES, what)


_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")


def check_slug(value: str, what: str) -> str:
    """A lower-case identifier such as an agent key (``akylai``): a-z, 0-9, ``_``, ``-``."""
    if not isinstance(value, str) or not _SLUG_RE.match(value):
        raise ValueError(
            f"{what} {value!r} is invalid; use 1-64 characters a-z, 0-9, '_' or '-',"
            " starting with a letter or digit"
        )
    return value


#: Native AI providers a call's media can go to instead of a bot's WebSocket.
MEDIA_PROVIDERS = ("elevenlabs", "vapi")
_PROVIDER_REF_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")


def check_media_target(value: str, what: str = "socket_url") -> str:
    """Where a call's media goes, in the call-control API's forms.

    * ``ws://…`` or ``wss://…``: a bot's WebSocket;
    * ``elevenlabs`` or ``vapi``: that provider, its agent chosen later (routing
      webhook, number or account settings);
    * ``elevenlabs&<agent id>`` or ``vapi&<assistant id>``: that provider and agent.

    Returns the value stripped, with the provider's name in lower case; the id after
    ``&`` is kept as given (provider ids are case-sensitive).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} is empty")
    text = value.strip()
    provider, sep, ref = text.partition("&")
    if provider.lower() in MEDIA_PROVIDERS:
        if not sep:
            return provider.lower()
        if not _PROVIDER_REF_RE.match(ref):
            raise ValueError(
                f"{what} {text!r}: the id after '&' is invalid; expected 1-128 characters"
                " A-Z, a-z, 0-9, '_', '.', ':' or '-'"
            )
        return f"{provider.lower()}&{ref}"
    if "://" not in text:
        raise ValueError(
            f"{what} {text!r} is invalid; expected a ws:// or wss:// URL, 'elevenlabs',"
            " 'vapi', 'elevenlabs&<agent id>' or 'vapi&<assistant id>'"
        )
    return check_socket_url(text, what)
