"""Checks shared by the models' writers (admin CLI, REST surfaces).

Each returns the cleaned value or raises ``ValueError`` with a message fit to
show the person who typed the value.
"""
from __future__ import annotations

import re

from gateway import net_policy

SOCKET_URL_SCHEMES = ("ws", "wss")
WEBHOOK_URL_SCHEMES = ("http", "https")
MAX_URL_LENGTH = 2048


def check_url(url: str, schemes: tuple[str, ...], what: str, *, check_host: bool = True) -> str:
    """``url`` stripped, if it is an absolute URL with one of ``schemes`` and a host that
    the outbound policy lets the gateway connect to (``gateway.net_policy``: a literal
    address, or every address a name resolves to; a name that does not resolve is left
    to the connection to refuse). ``check_host=False`` checks the syntax only, for a
    value about to be connected to (the connection applies the policy itself)."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what} is empty")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{what} {url!r} contains whitespace")
    if not check_host:
        net_policy.split_url(url, schemes, what)
        return url
    return net_policy.check_url(url, schemes, what)


def check_socket_url(url: str, what: str = "socket URL", *, check_host: bool = True) -> str:
    """A bot's WebSocket URL (``ws://`` or ``wss://``)."""
    return check_url(url, SOCKET_URL_SCHEMES, what, check_host=check_host)


def check_webhook_url(url: str, what: str = "webhook URL", *, check_host: bool = True) -> str:
    """A customer's HTTP endpoint (``http://`` or ``https://``)."""
    return check_url(url, WEBHOOK_URL_SCHEMES, what, check_host=check_host)


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


def check_provider_ref(value: str, what: str) -> str:
    """An ElevenLabs agent id or a Vapi assistant id, stripped, in the form the ``&<id>``
    of a media target takes; ``ValueError`` naming ``what`` otherwise."""
    text = value.strip() if isinstance(value, str) else ""
    if not _PROVIDER_REF_RE.match(text):
        raise ValueError(f"{what} {value!r} is invalid; expected 1-128 characters A-Z, a-z, 0-9, '_', '.',"
                         " ':' or '-'")
    return text


def check_media_target(value: str, what: str = "socket_url", *, check_host: bool = True) -> str:
    """Where a call's media goes, in the call-control API's forms.

    * ``ws://…`` or ``wss://…``: a bot's WebSocket;
    * ``elevenlabs`` or ``vapi``: that provider, its agent chosen later (routing
      webhook, number or account settings);
    * ``elevenlabs&<agent id>`` or ``vapi&<assistant id>``: that provider and agent.

    Returns the value stripped, with the provider's name in lower case; the id after
    ``&`` is kept as given (provider ids are case-sensitive). A URL's host must pass the
    outbound policy (:func:`check_url`).
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
    return check_socket_url(text, what, check_host=check_host)
