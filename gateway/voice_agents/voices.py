"""ElevenLabs' voice list for an account: ``GET /v1/voices`` with the account's key
(``xi-api-key``), kept ``CACHE_SECONDS`` per account and key so that a builder paging
through voices does not call ElevenLabs on every request."""
from __future__ import annotations

import hashlib
import threading
import time

import requests

CACHE_SECONDS = 300
TIMEOUT = 10.0
_cache: dict[tuple[int, str], tuple[float, list[dict]]] = {}
_lock = threading.Lock()


class VoicesUnavailable(Exception):
    """ElevenLabs did not give the list; the message says why."""


def rest_url(media_url: str) -> str:
    """ElevenLabs' REST base from the connectors' WebSocket base (``ELEVENLABS_API_URL``):
    ``wss://api.elevenlabs.io`` → ``https://api.elevenlabs.io``."""
    if media_url.startswith("wss://"):
        return "https://" + media_url[len("wss://"):].rstrip("/")
    if media_url.startswith("ws://"):
        return "http://" + media_url[len("ws://"):].rstrip("/")
    return media_url.rstrip("/")


def list_voices(account_id: int, api_key: str, base_url: str) -> list[dict]:
    """``[{voice_id, name, category, labels, preview_url}]`` of the account's voices."""
    cache_key = (account_id, hashlib.sha256(api_key.encode()).hexdigest())
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
    try:
        response = requests.get(f"{base_url}/v1/voices", headers={"xi-api-key": api_key}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise VoicesUnavailable(f"ElevenLabs could not be reached ({type(exc).__name__})") from None
    if response.status_code in (401, 403):
        raise VoicesUnavailable("ElevenLabs refused the account's API key")
    if response.status_code != 200:
        raise VoicesUnavailable(f"ElevenLabs answered {response.status_code}")
    try:
        voices = [_voice(item) for item in response.json().get("voices", []) if isinstance(item, dict)]
    except (ValueError, AttributeError):
        raise VoicesUnavailable("ElevenLabs' answer was not a voice list") from None
    with _lock:
        _cache[cache_key] = (time.monotonic() + CACHE_SECONDS, voices)
    return voices


def _voice(item: dict) -> dict:
    labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
    return {"voice_id": str(item.get("voice_id", "")), "name": str(item.get("name", "")),
            "category": item.get("category") if isinstance(item.get("category"), str) else None,
            "labels": {str(k): str(v) for k, v in labels.items()},
            "preview_url": item.get("preview_url") if isinstance(item.get("preview_url"), str) else None}


def forget() -> None:
    """Empty the cache (tests)."""
    with _lock:
        _cache.clear()
